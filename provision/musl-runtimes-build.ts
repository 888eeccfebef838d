// The pieces of a build against musl that provision/musl-runtimes.ts (musl-python, musl-ruby) and
// provision/python-ft-build.ts (musl-python-ft) share: the toolchain check, the CC wrapper, the cache key, one
// logged shell step of a build, the build environment, and zlib + libffi built static with -fPIC.

import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isDir, isFile } from '../src/util.ts';
import { capture, cleanBaseEnv, runGrouped } from '../src/proc.ts';
import { buildAtomically } from '../adapters/apt.ts';
import {
  RECIPE_REVISION, runtimesDir, type BuildKey, type BuildToolchain, type MuslRuntime,
} from '../adapters/musl-runtimes.ts';
import { shq, tail, unpackSource, type FetchedSource } from './debian-source.ts';
import { TRIPLE } from './musl-toolchain.ts';

const BUILD_TIMEOUT_MS = 3 * 3600_000; // a loaded 2-core machine: Ruby took ~4 min unloaded, 20+ min loaded

/**
 * What is wrong with a toolchain for these builds (empty: nothing): musl's own headers first, kernel headers only
 * through the private kernel-include dir (linux, asm-generic, asm symlinks), never /usr/include itself.
 */
export function toolchainProblems(tc: BuildToolchain): string[] {
  const problems: string[] = [];
  const specsFile = path.join(tc.dir, 'musl-gcc.specs');
  let specs = '';
  try {
    specs = readFileSync(specsFile, 'utf8');
  } catch {
    problems.push(`${specsFile} is missing`);
  }
  if (specs) {
    if (!/-nostdinc\b/.test(specs)) problems.push(`${specsFile} lacks -nostdinc (host headers would leak in)`);
    if (/(-I|-isystem)\s*\/usr\/include\b/.test(specs)) problems.push(`${specsFile} puts /usr/include on the include path`);
    if (!specs.includes(`-isystem ${path.join(tc.dir, 'kernel-include')}`)) problems.push(`${specsFile} does not use ${path.join(tc.dir, 'kernel-include')}`);
  }
  const ki = path.join(tc.dir, 'kernel-include');
  for (const name of ['linux', 'asm-generic', 'asm']) {
    const p = path.join(ki, name);
    let link = false;
    try {
      link = lstatSync(p).isSymbolicLink();
    } catch {
      /* missing */
    }
    if (!link || !isDir(p)) problems.push(`${p} is not a symlink to a kernel header dir`);
  }
  if (!tc.gcc) problems.push(`${tc.cc} does not run`);
  return problems;
}

/** The CC wrapper of a build: the musl toolchain, answering both spellings of -print-multiarch. */
export function ccWrapperText(muslCc: string): string {
  return `#!/bin/sh
# forkmatrix musl-runtimes: the musl toolchain for configure scripts (CPython asks \`$CC --print-multiarch\`)
if [ "$#" = 1 ]; then case "$1" in -print-multiarch|--print-multiarch) echo ${TRIPLE}; exit 0;; esac; fi
exec ${shq(muslCc)} "$@"
`;
}

export function buildKey(rt: MuslRuntime | 'deps', sources: Record<string, string>, tc: Pick<BuildToolchain, 'musl' | 'muslDev' | 'gcc'>): BuildKey {
  const sorted = Object.fromEntries(Object.entries(sources).sort(([a], [b]) => a.localeCompare(b)));
  return { recipe: RECIPE_REVISION[rt], runtime: rt, sources: sorted, toolchain: { musl: tc.musl, musl_dev: tc.muslDev, gcc: tc.gcc } };
}

export function keyHash(k: BuildKey): string {
  return createHash('sha256').update(JSON.stringify(k)).digest('hex').slice(0, 12);
}

// ------------------------------------------------------------------------------------------------------------------
// building

export interface Ctx {
  cacheDir: string;
  tc: BuildToolchain;
  work: string; // scratch dir of this provision
  cc: string; // the wrapper
  log: (l: string) => void;
}

/** Run one shell step of a build, its output to <work>/logs/<name>.log; throws with the log's tail. */
export async function step(ctx: Ctx, name: string, cwd: string, script: string, env: Record<string, string> = {}): Promise<void> {
  const logs = path.join(ctx.work, 'logs');
  mkdirSync(logs, { recursive: true });
  const logFile = path.join(logs, `${name}.log`);
  const t0 = Date.now();
  ctx.log(`musl-runtimes: ${name} ...`);
  const r = await runGrouped('/bin/sh', ['-ec', script], {
    env: { PATH: '/usr/bin:/bin', HOME: ctx.work, LANG: 'C', LC_ALL: 'C', TZ: 'UTC', ...env },
    cwd,
    logFile,
    timeoutMs: BUILD_TIMEOUT_MS,
  });
  if (r.code !== 0 || r.timedOut) {
    // keep the log where the user can read it after the scratch dir is gone
    const kept = path.join(runtimesDir(ctx.cacheDir), 'logs', `${name}.log`);
    mkdirSync(path.dirname(kept), { recursive: true });
    let text = '';
    try {
      text = readFileSync(logFile, 'utf8');
      writeFileSync(kept, text);
    } catch {
      /* no log */
    }
    throw new Error(`musl-runtimes: ${name} failed (${r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`}); log: ${kept}\n${tail(text, 12)}`);
  }
  ctx.log(`musl-runtimes: ${name} done (${Math.round((Date.now() - t0) / 1000)} s)`);
}

export const buildEnv = (ctx: Ctx, deps: string, extra: Record<string, string> = {}) => ({
  CC: ctx.cc,
  // pkg-config sees only the dependencies built here: the host's .pc files (liblzma, uuid, libtirpc, openssl ...)
  // would make configure enable modules whose glibc-only headers the musl toolchain cannot see
  PKG_CONFIG_LIBDIR: `${deps}/lib/pkgconfig`,
  PKG_CONFIG_PATH: '',
  CFLAGS: '-O2 -fPIC',
  CPPFLAGS: `-I${deps}/include`,
  LDFLAGS: `-L${deps}/lib`,
  ...extra,
});

/** Move the content of `<stage>/<final>` (what `make install DESTDIR=stage` left) into `into`. */
export function takeStaged(stage: string, final: string, into: string): void {
  const staged = path.join(stage, final);
  if (!isDir(staged)) throw new Error(`musl-runtimes: make install left nothing in ${staged}`);
  for (const f of readdirSync(staged)) renameSync(path.join(staged, f), path.join(into, f));
  rmSync(stage, { recursive: true, force: true });
}

/** zlib and libffi, static with -fPIC, into <cache>/musl-runtimes/deps/<key>/ (their .pc files name that dir). */
export async function buildDeps(ctx: Ctx, fetched: FetchedSource[]): Promise<string> {
  const sources = Object.fromEntries(fetched.map((s) => [s.pkg, s.version]));
  const key = buildKey('deps', sources, ctx.tc);
  const dir = path.join(runtimesDir(ctx.cacheDir), 'deps', keyHash(key));
  if (isFile(path.join(dir, 'lib', 'libz.a')) && isFile(path.join(dir, 'lib', 'libffi.a'))) {
    ctx.log(`musl-runtimes: zlib ${sources.zlib} and libffi ${sources.libffi} are built (${dir})`);
    return dir;
  }
  rmSync(dir, { recursive: true, force: true });
  await buildAtomically(dir, async (tmp) => {
    for (const s of fetched) {
      const src = path.join(ctx.work, `${s.pkg}-src`);
      const stage = path.join(ctx.work, `${s.pkg}-stage`);
      unpackSource(s, src);
      const env = buildEnv(ctx, tmp);
      if (s.pkg === 'zlib') {
        await step(ctx, 'zlib', src, `./configure --static --prefix=${shq(dir)}\nmake -j2\nmake install DESTDIR=${shq(stage)}`, env);
      } else if (s.pkg === 'libffi') {
        await step(ctx, 'libffi', src,
          `./configure --prefix=${shq(dir)} --disable-shared --enable-static --with-pic --disable-docs --disable-multi-os-directory\nmake -j2\nmake install DESTDIR=${shq(stage)}`,
          env);
      }
      // a package's install dir has the same subdirectories as the other's: merge file by file
      const cp = capture('cp', ['-a', path.join(stage, dir) + '/.', tmp], { env: cleanBaseEnv(), timeoutMs: 120_000 });
      if (cp.code !== 0) throw new Error(`musl-runtimes: installing ${s.pkg} into ${tmp} failed: ${tail(cp.stderr, 3)}`);
      rmSync(stage, { recursive: true, force: true });
      rmSync(src, { recursive: true, force: true });
    }
    writeFileSync(path.join(tmp, 'key.json'), JSON.stringify(key, null, 1) + '\n');
  });
  return dir;
}
