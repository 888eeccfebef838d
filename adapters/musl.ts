// The musl adapter: discovery, proof and launch. Debian's musl 1.2.2 (bullseye), 1.2.3 (bookworm) and 1.2.5
// (trixie), which `provision musl` (provision/musl.ts) unpacks without root into <cache>/musl/<version>/, plus
// `--libc PATH` for a musl install prefix or build tree (environment `musl-<version>+local`, the CI gate's
// candidate; its toolchain is made on first use by provision/musl-toolchain.ts).
//
// How a program runs on a chosen musl: musl's dynamic loader *is* its libc.so, and executing it as a command runs
// a program on it whatever the program's PT_INTERP says (`<dir>/lib/ld-musl-x86_64.so.1 PROGRAM ARGS`). musl keeps
// binary compatibility with older releases, so C cases are compiled once against the OLDEST musl provisioned
// (1.2.2) and the same binary runs under every version; symbols newer than 1.2.2 (`_Fork`, 1.2.3) are reached
// through weak symbols or dlsym by the harness and the cases.
//
// The toolchain (provision/musl-toolchain.ts) is the host's gcc with a musl-gcc style specs file: musl's headers
// and a private kernel-header dir, musl's crt files, libc and libgcc, -dynamic-linker the version's own loader.
//
// Nothing is taken from a label: a version directory is named by the banner its unpacked loader prints, and every
// environment's probe runs a real program through the loader, reads its /proc/self/maps and proves the mapped file.
//
// What the environments run on: the `-g` build of each version that `provision musl-debug` makes from Debian's
// source package of the same Debian version (provision/musl-debug.ts, <cache>/musl/debug/<version>/), so gdb names
// musl's functions in a hung child; Debian's stripped binary only until that build exists (status says which). The
// toolchain (headers, crt files) stays Debian's musl-dev, so builds keyed on it (musl-runtimes) are unchanged.

import { readdirSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { compareVersions, isFile, readJson } from '../src/util.ts';
import { capture, cleanBaseEnv } from '../src/proc.ts';
import { libcFromMaps, proveLibcFile } from '../src/probe.ts';
import type {
  Adapter, AdapterOptions, AdapterStatus, Environment, LibcProof, MissingRuntime, RuntimeInstance, FoundRuntime,
} from '../src/types.ts';
import { buildAtomically, type DebianSuite } from './apt.ts';
import { which } from './host.ts';
import { localInstall } from '../provision/musl-toolchain.ts';
import { elfInterpreter, looksLikeGlibc, muslPrefix, type MuslPrefix } from './musl-prefix.ts';
import { ftCandidates } from '../src/runtimes/python-ft.ts';
import { parseQuery } from '../src/runtimes/spec.ts';
import { findOf, RUNTIME_SPECS, specOf } from '../src/runtimes/specs.ts';
import { buildSource, cachedBuild, recordedFailure, resolveSource } from '../src/libc-src/build.ts';
import { isMuslSource, treeKind } from '../src/libc-src/tree.ts';

// --libc PATH and ELF interpreters: adapters/musl-prefix.ts (src/cli.ts and the tests import them from here)
export { elfInterpreter, looksLikeGlibc, muslPrefix, type MuslPrefix };

export const LOADER = 'ld-musl-x86_64.so.1';

/** The Debian suites this adapter takes musl from, with the version each is known to carry (a label only). */
export const MUSL_SUITES: { suite: DebianSuite; label: string }[] = [
  { suite: 'bullseye', label: '1.2.2' },
  { suite: 'bookworm', label: '1.2.3' },
  { suite: 'trixie', label: '1.2.5' },
];

export const PROVISION_CMD = 'npx forkmatrix provision musl';

/** Recorded in <cache>/musl/<version>/info.json. */
export interface MuslInfo {
  version: string;
  banner: string;
  suite: string;
  packages: Record<string, string>; // Debian package -> Debian version
  gcc: string;
  provisioned: string;
}

/** A musl the adapter can run programs on: a provisioned version or a --libc prefix. */
export interface MuslInstall {
  version: string;
  /** the loader to run programs through (musl's libc.so) */
  loader: string;
  /** the toolchain wrapper compiling against this musl */
  cc: string;
  /** where compiled helpers (the probe) go */
  work: string;
  info: MuslInfo | null;
  /** --libc PATH, for +local */
  prefix: string | null;
}

export const muslDir = (cacheDir: string) => path.join(cacheDir, 'musl');

/** Where the `-g` build of a provisioned version goes (provision/musl-debug.ts builds it): an install prefix. */
export const debugMuslDir = (cacheDir: string, version: string) => path.join(muslDir(cacheDir), 'debug', version);

/** Recorded in <cache>/musl/debug/<version>/info.json. */
export interface MuslDebugInfo {
  version: string;
  banner: string;
  suite: string;
  /** the Debian version of the source built (= the binary package's) */
  debian: string;
  /** provision/musl-debug.ts DEBUG_RECIPE of the build */
  recipe?: number;
  cflags: string;
  gcc: string;
  /** what was built: the .dsc and the patches/rules steps applied, or upstream's tarball */
  source: string;
  /** when Debian's packaging could not be had */
  note?: string;
  build_seconds: number;
  built: string;
}

/**
 * The `-g` build of a provisioned version, when it is complete and built from the same Debian version as the
 * binary: the loader the environment runs programs through. Null otherwise (the environment then runs on
 * Debian's stripped binary, and says so).
 */
export function debugBuild(cacheDir: string, m: MuslInstall): { loader: string; info: MuslDebugInfo } | null {
  const dir = debugMuslDir(cacheDir, m.version);
  const info = readJson<MuslDebugInfo>(path.join(dir, 'info.json'));
  const loader = path.join(dir, 'lib', LOADER);
  if (!info || info.version !== m.version || !isFile(loader)) return null;
  if (m.info && info.debian !== m.info.packages.musl) return null;
  return { loader, info };
}

// ------------------------------------------------------------------------------------------------------------------
// small helpers

function lastLines(s: string, n = 3): string {
  return s.trim().split('\n').slice(-n).join(' ').slice(0, 600);
}

/** The host's gcc by the name a user types (not its versioned real file, which an upgrade replaces). */
export function hostGcc(): string | null {
  return which('gcc') ?? which('cc');
}

const gccVersions = new Map<string, string | null>();
/** `gcc 12.2.0` for a wrapper (asks the compiler; cached per process). */
function wrapperGccVersion(cc: string): string | null {
  if (!gccVersions.has(cc)) {
    const r = capture(cc, ['-dumpfullversion'], { env: cleanBaseEnv(), timeoutMs: 20_000 });
    gccVersions.set(cc, r.code === 0 && r.stdout.trim() ? `gcc ${r.stdout.trim()}` : null);
  }
  return gccVersions.get(cc)!;
}

const PROBE_C = `#include <stdio.h>
#include <unistd.h>
int main(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) { perror("/proc/self/maps"); return 1; }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
    fclose(f);
    return 0;
}
`;

/** The probe (prints its own /proc/self/maps) built once with `cc` into `<work>/probe/maps`. */
async function probeBinary(cc: string, work: string): Promise<string> {
  const dir = path.join(work, 'probe');
  const bin = path.join(dir, 'maps');
  if (isFile(bin)) return bin;
  try {
    await buildAtomically(dir, (tmp) => {
      writeFileSync(path.join(tmp, 'maps.c'), PROBE_C);
      const r = capture(cc, ['-O1', path.join(tmp, 'maps.c'), '-o', path.join(tmp, 'maps')], { env: cleanBaseEnv(), timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`the musl toolchain ${cc} cannot build the probe: ${lastLines(r.stderr || r.error || '')}`);
    });
  } catch (e) {
    if (!isFile(bin)) throw e; // another process built it first otherwise
  }
  return bin;
}

/** Run the probe through `loader` and prove the libc file it mapped. */
export async function probeMusl(m: MuslInstall): Promise<LibcProof> {
  const bin = await probeBinary(m.cc, m.work);
  const r = capture(m.loader, [bin], { env: cleanBaseEnv(), timeoutMs: 20_000 });
  const file = libcFromMaps(r.stdout);
  if (!file) throw new Error(`no libc in the mappings of ${bin} run through ${m.loader} (${lastLines(r.stderr || r.error || 'no output')})`);
  return proveLibcFile(file);
}

// ------------------------------------------------------------------------------------------------------------------
// provisioned versions

/** Every provisioned version that is complete, oldest first. */
export function installedVersions(cacheDir: string): MuslInstall[] {
  const root = muslDir(cacheDir);
  const out: MuslInstall[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(root);
  } catch {
    return out;
  }
  for (const v of names) {
    if (!/^\d+\.\d+\.\d+/.test(v) || v.includes('.tmp-')) continue;
    const dir = path.join(root, v);
    const info = readJson<MuslInfo>(path.join(dir, 'info.json'));
    const loader = path.join(dir, 'lib', LOADER);
    const cc = path.join(dir, 'bin', 'musl-gcc');
    if (!info || info.version !== v || !isFile(loader) || !isFile(cc)) continue;
    out.push({ version: v, loader, cc, work: dir, info, prefix: null });
  }
  return out.sort((a, b) => compareVersions(a.version, b.version));
}

export function suiteMarker(cacheDir: string, suite: string): string {
  return path.join(muslDir(cacheDir), 'by-suite', `${suite}.json`);
}

// ------------------------------------------------------------------------------------------------------------------
// runtimes

/**
 * Hook for musl-linked interpreters (a later provision step builds them): the first existing path wins. They run
 * through the environment's loader, like every program here.
 */
export function muslRuntimeCandidates(cacheDir: string, runtime: FoundRuntime): string[] {
  // the runtimes provision/musl-runtimes.ts builds (python, ruby); none for the others
  const exe = ({ python: 'python3', ruby: 'ruby' } as Partial<Record<FoundRuntime, string>>)[runtime];
  return exe ? [path.join(cacheDir, 'musl-runtimes', runtime, 'bin', exe), path.join(cacheDir, `musl-${runtime}`, 'bin', exe)] : [];
}

/** Ask an interpreter for its version (its runtime's query, runners/<rt>/index.ts), run through the musl loader. */
function identifyThrough(loader: string, runtime: FoundRuntime, exe: string): RuntimeInstance | { reason: string } {
  const r = capture(loader, [exe, ...findOf(runtime).query], { env: cleanBaseEnv(), timeoutMs: 30_000 });
  if (r.code !== 0 || !r.stdout.trim()) return { reason: `${exe} did not answer when run through ${loader} (${lastLines(r.stderr || r.error || 'no output', 2)})` };
  const id = parseQuery(specOf(runtime), exe, r.stdout.trim().split('\n')[0]);
  if ('reason' in id) return id;
  let executable = exe;
  try {
    executable = realpathSync(exe);
  } catch {
    /* keep */
  }
  return { ...id, executable };
}

function isMuslInterp(interp: string | null): boolean {
  return !!interp && /ld-musl-|\/libc\.so$/.test(interp);
}

function muslRuntimes(m: MuslInstall, opts: AdapterOptions): { runtimes: RuntimeInstance[]; missing: MissingRuntime[] } {
  const runtimes: RuntimeInstance[] = [];
  const missing: MissingRuntime[] = [];
  const gv = wrapperGccVersion(m.cc);
  if (gv) {
    const tc = m.prefix ? `musl ${m.version} headers from ${m.prefix}` : `musl ${m.version} headers`;
    runtimes.push({ runtime: 'libc', version: `${gv} + ${tc}`, executable: m.cc });
  } else missing.push({ runtime: 'libc', reason: `the musl toolchain ${m.cc} does not run (re-run ${PROVISION_CMD}, or apt-get install gcc)` });

  // every interpreter runtime (runners/<rt>/index.ts): a musl-linked --runtime, else what `provision musl-<rt>` built
  for (const spec of RUNTIME_SPECS) {
    if (!spec.find || spec.runtime === 'libc') continue;
    const rt = spec.runtime as Exclude<FoundRuntime, 'libc'>;
    const given = opts.extraRuntimes.filter((x) => x.runtime === rt);
    const extra = given.filter((x) => isMuslInterp(elfInterpreter(x.path))).map((x) => x.path);
    const built = muslRuntimeCandidates(opts.cacheDir, rt);
    // free-threaded CPython builds for musl (provision musl-python-ft) beside musl-python
    const ft = rt === 'python' ? ftCandidates(opts.cacheDir, 'musl').map((c) => c.path) : [];
    const found = [...extra, ...built.filter(isFile).slice(0, 1), ...ft];
    if (!found.length) {
      const notMusl = given.map((x) => `${x.path} is ${elfInterpreter(x.path) ? `linked for ${elfInterpreter(x.path)}` : 'not an ELF program'}`);
      const how = built.length ? `npx forkmatrix provision musl-${rt}` : `pass --runtime ${rt}=PATH of a musl-linked ${rt}`;
      missing.push({ runtime: rt, reason: `no musl-linked ${rt}${notMusl.length ? `: ${notMusl.join('; ')}` : ''} (${how})` });
      continue;
    }
    for (const exe of found) {
      const id = identifyThrough(m.loader, rt, exe);
      if ('reason' in id) missing.push({ runtime: rt, reason: id.reason });
      else if (!runtimes.some((r) => r.runtime === rt && r.executable === id.executable)) runtimes.push(id);
    }
  }
  return { runtimes, missing };
}

// ------------------------------------------------------------------------------------------------------------------
// environments

function makeEnvironment(id: string, run: MuslInstall, toolchain: MuslInstall, opts: AdapterOptions): Environment {
  // Programs are compiled with `toolchain` (the oldest musl, or the --libc prefix itself) and run through `run`'s
  // loader; interpreters are identified through that loader too.
  const { runtimes, missing } = muslRuntimes({ ...run, cc: toolchain.cc, version: toolchain.version, prefix: toolchain.prefix }, opts);
  const env: Environment = {
    id,
    adapter: 'musl',
    expect: { libc: 'musl', version: run.version },
    env: {},
    runtimes,
    missing,
    root: '',
    launch: (argv, e) => ({ command: run.loader, args: [...argv], env: { ...e, ...env.env } }),
    probe: async () => probeMusl({ ...run, cc: toolchain.cc, work: toolchain.work }),
  };
  return env;
}

/** Is a --libc argument a source to build (git:PATH@REV, a musl source tree, a .dsc) rather than an install? */
export function isLibcSource(p: string): boolean {
  return p.startsWith('git:') || isMuslSource(path.resolve(p)) || treeKind(path.resolve(p)) === 'glibc';
}

/**
 * The environment of a --libc source (src/libc-src/): built once into the cache, named musl-<version>+git.<short>
 * (or +src.<hash>), compiled against and run on its own build. Throws one line (SourceError) when it cannot be.
 */
export async function sourceEnvironment(spec: string, opts: AdapterOptions, log: (l: string) => void, flag = '--libc'): Promise<Environment> {
  const s = resolveSource(spec, flag);
  const b = await buildSource(opts.cacheDir, s, log);
  const mp = muslPrefix(b.prefix);
  const local = await localInstall(mp, opts.cacheDir);
  // the column names the musl version, not the cache path (the env id names the commit)
  return makeEnvironment(s.id, { ...local, version: mp.version }, { ...local, prefix: null }, opts);
}

/** The --libc paths that are musl installs; glibc paths and sources are skipped; anything else is refused. */
function libcPrefixes(opts: AdapterOptions): MuslPrefix[] {
  const out: MuslPrefix[] = [];
  for (const p of opts.libc) {
    if (isLibcSource(p)) continue; // sourceEnvironment's
    let mp: MuslPrefix;
    try {
      mp = muslPrefix(p);
    } catch (e) {
      if (looksLikeGlibc(path.resolve(p))) continue; // the glibc adapter's
      throw e;
    }
    out.push(mp);
  }
  return out;
}

export const muslAdapter: Adapter = {
  name: 'musl',

  async environments(opts) {
    const envs: Environment[] = [];
    const installs = installedVersions(opts.cacheDir).filter((m) => {
      // the banner must still name the version the directory is named after
      const p = proveLibcFile(m.loader);
      return p.name === 'musl' && p.version === m.version;
    });
    const oldest = installs[0];
    for (const m of installs) {
      // run on the -g build of the same Debian source when there is one (its banner must name the version too)
      const dbg = debugBuild(opts.cacheDir, m);
      const p = dbg && proveLibcFile(dbg.loader);
      const run = dbg && p?.name === 'musl' && p.version === m.version ? { ...m, loader: dbg.loader } : m;
      envs.push(makeEnvironment(`musl-${m.version}`, run, oldest, opts));
    }
    for (const mp of libcPrefixes(opts)) {
      const local = await localInstall(mp, opts.cacheDir);
      envs.push(makeEnvironment(`musl-${mp.version}+local`, local, local, opts));
    }
    // source trees and git:PATH@REV: built here (cached by commit or content hash)
    for (const p of opts.libc.filter(isLibcSource)) envs.push(await sourceEnvironment(p, opts, (l) => process.stderr.write(`forkmatrix: ${l}\n`)));
    return envs;
  },

  async status(opts) {
    const out: AdapterStatus[] = [];
    const installs = installedVersions(opts.cacheDir);
    const gcc = hostGcc();
    const tools = ['apt-get', 'dpkg-deb'].filter((t) => !which(t));
    for (const s of MUSL_SUITES) {
      const marker = readJson<{ version: string; packages?: Record<string, string> }>(suiteMarker(opts.cacheDir, s.suite));
      const m = marker && installs.find((x) => x.version === marker.version);
      if (m) {
        const dbg = debugBuild(opts.cacheDir, m);
        const { runtimes, missing } = muslRuntimes({ ...m, loader: dbg?.loader ?? m.loader, cc: installs[0].cc, version: installs[0].version }, opts);
        const what = dbg
          ? `musl ${m.version} built here from Debian's source (${s.suite} ${dbg.info.debian}) with ${dbg.info.cflags} (${dbg.info.gcc}) in ${path.dirname(dbg.loader)}`
          : `musl ${m.version} (Debian ${s.suite} ${m.info?.packages.musl ?? '?'}, stripped: backtraces without libc symbols until ${PROVISION_CMD} builds it with -g) in ${path.dirname(m.loader)}`;
        out.push({
          id: `musl-${m.version}`, state: 'available',
          detail: `${what}; runtimes: ${runtimes.map((r) => `${r.runtime} ${r.version}`).join(', ') || 'none'}${missing.length ? '; missing: ' + missing.map((x) => x.runtime).join(', ') : ''}`,
        });
      } else if (process.arch !== 'x64') out.push({ id: `musl-${s.label}`, state: 'impossible', detail: `x86_64 only (${LOADER}); this machine is ${process.arch}` });
      else if (!gcc) out.push({ id: `musl-${s.label}`, state: 'impossible', detail: 'no gcc to build the musl toolchain (as root: apt-get install gcc)' });
      else if (tools.length) out.push({ id: `musl-${s.label}`, state: 'impossible', detail: `no ${tools.join(', ')} to fetch Debian's musl packages` });
      else out.push({ id: `musl-${s.label}`, state: 'provisionable', detail: `musl from Debian ${s.suite}, unpacked without root: ${PROVISION_CMD}` });
    }
    for (const p of opts.libc) {
      if (isLibcSource(p)) {
        try {
          const src = resolveSource(p);
          const b = cachedBuild(opts.cacheDir, src);
          const failed = recordedFailure(opts.cacheDir, src);
          out.push(b ? { id: src.id, state: 'available', detail: `--libc ${p}: built here in ${b.info.build_seconds} s (${b.prefix})` }
            : { id: src.id, state: failed ? 'impossible' : 'provisionable', detail: failed ? `does not build: ${failed}` : `--libc ${p}: built on first use (minutes), or now: npx forkmatrix provision libc-src ${p}` });
        } catch (e) {
          out.push({ id: 'musl+src', state: 'impossible', detail: (e as Error).message });
        }
        continue;
      }
      try {
        const mp = muslPrefix(p);
        out.push({ id: `musl-${mp.version}+local`, state: 'available', detail: `--libc ${p}: musl ${mp.version} (${mp.kind}), run through ${mp.libc}` });
      } catch (e) {
        if (!looksLikeGlibc(path.resolve(p))) out.push({ id: `musl+local`, state: 'impossible', detail: (e as Error).message });
      }
    }
    return out;
  },
};
