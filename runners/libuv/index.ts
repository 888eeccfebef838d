// The libuv runner: libuv's promises in the child of a multithreaded fork (the machinery under Node's
// child_process: uv_spawn, the threadpool, uv_loop_fork), exercised from C so that they can be checked on every
// libc, musl included (no musl-linked Node can be had here; libuv itself builds against musl in seconds).
//
// A case is a C case (same snippet API and harness as runners/libc: fm.h, harness.c) whose snippets may use
// <uv.h>. The runtime instance is the environment's C compiler; libuv is built with that compiler, static, from
// Debian's libuv1 source (fetched by `npx forkmatrix provision libuv` into <cache>/libuv/source/), once per
// compiler into <cache>/libuv/build/<key>/, and linked into each case binary (<cache>/libuv/cases/<key>/).

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { capture, cleanBaseEnv, runGrouped } from '../../src/proc.ts';
import type { RuntimeInstance, RunnerContext } from '../../src/types.ts';
import type { RuntimeSpec } from '../../src/runtimes/spec.ts';
import { CFLAGS, composeC } from '../libc/index.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const LIBC_DIR = path.join(HERE, '..', 'libc');

/** What `provision libuv` leaves: <cache>/libuv/source/current.json naming the unpacked source. */
export interface LibuvSource {
  package: string; // libuv1
  version: string; // Debian version, e.g. 1.44.2-1+deb12u1
  dir: string; // unpacked, patched source (CMakeLists.txt, include/uv.h, src/)
}

export const libuvSourceMarker = (cacheDir: string) => path.join(cacheDir, 'libuv', 'source', 'current.json');

export function libuvSource(cacheDir: string): LibuvSource | null {
  return libuvSources(cacheDir)[0] ?? null;
}

const usable = (s: LibuvSource) => existsSync(path.join(s.dir, 'include', 'uv.h')) && existsSync(path.join(s.dir, 'CMakeLists.txt'));

/**
 * Every provisioned libuv source, Debian bookworm's first: <cache>/libuv/source/sources.json (bookworm's and the
 * Debian libuv1 closest to the libuv the host's Node bundles), or current.json alone (an older provision).
 */
export function libuvSources(cacheDir: string): LibuvSource[] {
  const read = (f: string): unknown => {
    try {
      return JSON.parse(readFileSync(f, 'utf8'));
    } catch {
      return null;
    }
  };
  const all = read(path.join(cacheDir, 'libuv', 'source', 'sources.json'));
  if (Array.isArray(all)) {
    const ok = (all as LibuvSource[]).filter((s) => s && typeof s.dir === 'string' && usable(s));
    if (ok.length) return ok;
  }
  const one = read(libuvSourceMarker(cacheDir)) as LibuvSource | null;
  return one && typeof one.dir === 'string' && usable(one) ? [one] : [];
}

/** The upstream version of a source ("1.44.2"), from its header, else from the Debian version. */
export const sourceVersion = (s: LibuvSource) => uvHeaderVersion(s.dir) ?? s.version.replace(/-[^-]*$/, '');

/**
 * The sources a run uses: all of them, or those FORKMATRIX_LIBUV names (comma-separated version prefixes, e.g.
 * "1.50" or "1.44.2,1.50"; "node": the one closest to this Node's bundled libuv).
 */
export function selectedLibuvSources(cacheDir: string, want = process.env.FORKMATRIX_LIBUV): LibuvSource[] {
  const all = libuvSources(cacheDir);
  if (!want || !want.trim()) return all;
  const keys = want.split(',').map((k) => k.trim()).filter(Boolean);
  return all.filter((s, i) => keys.some((k) => (k === 'node' ? i === all.length - 1 && all.length > 1 : sourceVersion(s).startsWith(k))));
}

/** One runtime instance per selected libuv source, made from the environment's C compiler instance. */
export function libuvInstances(cc: RuntimeInstance, cacheDir: string): RuntimeInstance[] {
  const srcs = selectedLibuvSources(cacheDir);
  if (!srcs.length) return [{ ...cc, runtime: 'libuv', version: `not provisioned (${cc.version})` }];
  return srcs.map((s) => ({ ...cc, runtime: 'libuv', version: `${sourceVersion(s)} (${cc.version})` }));
}

/** The source an instance was made from (its version label starts with the libuv version). */
function sourceFor(cacheDir: string, instanceVersion: string): LibuvSource | null {
  const all = libuvSources(cacheDir);
  const v = /^\d+\.\d+\.\d+/.exec(instanceVersion)?.[0];
  return (v && all.find((s) => sourceVersion(s) === v)) || all[0] || null;
}

/** libuv's version from its header (uv/version.h), e.g. "1.44.2". */
export function uvHeaderVersion(srcDir: string): string | null {
  try {
    const h = readFileSync(path.join(srcDir, 'include', 'uv', 'version.h'), 'utf8');
    const n = (k: string) => new RegExp(`#define UV_VERSION_${k}\\s+(\\d+)`).exec(h)?.[1];
    return n('MAJOR') && n('MINOR') && n('PATCH') ? `${n('MAJOR')}.${n('MINOR')}.${n('PATCH')}` : null;
  } catch {
    return null;
  }
}

function which(name: string): string | null {
  for (const d of cleanBaseEnv().PATH.split(':')) {
    const p = path.join(d, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* next */
    }
  }
  return null;
}

const tail = (s: string, n = 8) => s.trim().split('\n').slice(-n).join('\n');

interface BuiltLibuv {
  include: string;
  lib: string;
  version: string;
  key: string;
}

const building = new Map<string, Promise<BuiltLibuv | { skip: string } | { error: string }>>();

/** libuv built with the compiler `cc` (static, -fPIC), cached by compiler + source version. */
export function ensureLibuv(ctx: Pick<RunnerContext, 'runtime' | 'cacheDir'>): Promise<BuiltLibuv | { skip: string } | { error: string }> {
  const src = sourceFor(ctx.cacheDir, ctx.runtime.version);
  if (!src) return Promise.resolve({ skip: 'the libuv source is not provisioned (npx forkmatrix provision libuv)' });
  const cmake = which('cmake');
  if (!cmake) return Promise.resolve({ skip: 'no cmake to build libuv with (as root: apt-get install cmake)' });
  const cc = ctx.runtime.executable;
  const flags = ctx.runtime.cflags ?? [];
  const key = createHash('sha256').update([cc, ctx.runtime.version, flags.join(' '), src.version, src.dir].join('\0')).digest('hex').slice(0, 16);
  const hit = building.get(key);
  if (hit) return hit;
  const p = buildLibuv(ctx.cacheDir, cmake, cc, flags, src, key);
  building.set(key, p);
  return p;
}

async function buildLibuv(cacheDir: string, cmake: string, cc: string, flags: string[], src: LibuvSource, key: string): Promise<BuiltLibuv | { error: string }> {
  const dir = path.join(cacheDir, 'libuv', 'build', key);
  const version = uvHeaderVersion(src.dir) ?? src.version;
  const done = (): BuiltLibuv => ({ include: path.join(src.dir, 'include'), lib: path.join(dir, 'libuv.a'), version, key });
  if (existsSync(path.join(dir, 'libuv.a'))) return done();
  const tmp = `${dir}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  mkdirSync(tmp, { recursive: true });
  const log = path.join(tmp, 'build.log');
  const env = cleanBaseEnv({ CFLAGS: ['-O2', '-g', '-fPIC', ...flags].join(' ') });
  const b = path.join(tmp, 'b');
  try {
    const steps: string[][] = [
      ['-S', src.dir, '-B', b, `-DCMAKE_C_COMPILER=${cc}`, '-DCMAKE_BUILD_TYPE=RelWithDebInfo', '-DLIBUV_BUILD_TESTS=OFF', '-DLIBUV_BUILD_BENCH=OFF', '-DBUILD_TESTING=OFF', '-DCMAKE_POSITION_INDEPENDENT_CODE=ON'],
      ['--build', b, '--target', 'uv_a', '-j', '2'],
    ];
    for (const args of steps) {
      const r = await runGrouped(cmake, args, { env, logFile: log, timeoutMs: 1_200_000 });
      if (r.code !== 0) return { error: `libuv ${src.version} does not build with ${cc} (cmake ${args[0]}${r.timedOut ? ', timed out' : ''}):\n${tail(readFileSync(log, 'utf8'))}` };
    }
    const lib = readdirSync(b).find((f) => /^libuv.*\.a$/.test(f));
    if (!lib) return { error: `libuv ${src.version}: cmake built no static library in ${b}` };
    renameSync(path.join(b, lib), path.join(tmp, 'libuv.a'));
    rmSync(b, { recursive: true, force: true });
    writeFileSync(path.join(tmp, 'build.json'), JSON.stringify({ cc, flags, source: src, version }, null, 1) + '\n');
    mkdirSync(path.dirname(dir), { recursive: true });
    try {
      renameSync(tmp, dir);
    } catch {
      /* another process built it first */
    }
    return done();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export const libuvSpec: RuntimeSpec = {
  runtime: 'libuv',
  language: 'c',
  order: 5,
  hostPackages: { cmake: 'cmake' }, // builds libuv
  builtOn: {
    runtime: 'libc',
    // One instance, one column, per provisioned libuv source (FORKMATRIX_LIBUV narrows it, e.g. "1.50" or
    // "node": the one closest to Node's bundled libuv).
    instance(cc, cacheDir) {
      return libuvInstances(cc, cacheDir);
    },
  },
  async prepare(c, ctx) {
    const uv = await ensureLibuv(ctx);
    if ('skip' in uv || 'error' in uv) return uv;
    const cc = ctx.runtime.executable;
    const flags = [...CFLAGS, ...(ctx.runtime.cflags ?? [])];
    const source = composeC(c).replace('#include "fm.h"', '#include "fm.h"\n#include <uv.h>');
    const harness = readFileSync(path.join(LIBC_DIR, 'harness.c'), 'utf8') + readFileSync(path.join(LIBC_DIR, 'fm.h'), 'utf8');
    const hash = createHash('sha256').update([cc, ctx.runtime.version, flags.join(' '), uv.key, source, harness].join('\0')).digest('hex').slice(0, 20);
    const dir = path.join(ctx.cacheDir, 'libuv', 'cases', hash);
    const bin = path.join(dir, 'case.bin');
    if (!existsSync(bin)) {
      const tmp = `${dir}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
      mkdirSync(tmp, { recursive: true });
      writeFileSync(path.join(tmp, 'case.c'), source);
      const r = capture(cc, [...flags, '-I', LIBC_DIR, '-I', uv.include, path.join(tmp, 'case.c'), path.join(LIBC_DIR, 'harness.c'), '-o', path.join(tmp, 'case.bin'), uv.lib, '-ldl', '-lrt', '-lpthread'], {
        env: cleanBaseEnv(), cwd: ctx.repoDir, timeoutMs: 120_000,
      });
      if (r.code !== 0) {
        rmSync(tmp, { recursive: true, force: true });
        const msg = (r.stderr || r.error || '').split('\n').filter((l) => /error|undefined reference/.test(l)).slice(0, 5).join('\n');
        return { error: `does not compile with ${path.basename(cc)} ${ctx.runtime.version} and libuv ${uv.version}:\n${msg || r.stderr.slice(0, 1500)}` };
      }
      mkdirSync(path.dirname(dir), { recursive: true });
      try {
        renameSync(tmp, dir);
      } catch {
        rmSync(tmp, { recursive: true, force: true });
      }
    }
    return { argv: [bin] };
  },
};

export const libuvRunner = libuvSpec;
