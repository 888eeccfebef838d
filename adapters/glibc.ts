// The glibc adapter: glibc versions other than the host's, run on this machine without root.
//
// - Debian's libc6 from trixie (2.41) and sid (the newest), downloaded with the private apt state and unpacked into
//   <cache>/glibc/<version>/ (`forkmatrix provision glibc`).
// - `--libc PATH`: a glibc build tree (elf/ld.so + libc.so) or an install dir (lib/ld-linux-x86-64.so.2 +
//   lib/libc.so.6): environment `glibc-<proved version>+local`.
//
// C cases (compiled by the host cc against the host glibc) run through the tree's own loader:
//   <loader> --library-path <tree dirs>:<host lib dirs> PROG ...
// The interpreters (python3, ruby, node from the host) run as patchelf'd copies whose PT_INTERP is the tree's
// loader and whose search path starts with the tree's lib dirs, so children they spawn by absolute path
// (sys.executable, process.execPath, RbConfig.ruby) stay on that glibc. Each copy is checked once: it must run, map
// only this tree's glibc pieces, and name itself as its executable. A glibc older than a binary's newest
// GLIBC_x.y symbol version need is refused with that reason (why bullseye's 2.31 cannot run this host's binaries).
// Nothing is taken from a label: probe() reads a real process's /proc/self/maps and runs the libc for its banner.

import { isMuslSource, treeKind } from '../src/libc-src/tree.ts';
import { compareVersions } from '../src/util.ts';
import { createHash } from 'node:crypto';
import {
  closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, realpathSync, renameSync, rmSync,
  statSync, writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { copyEnv, LAZY_COPY_MAX, makeCopy, notForGlibc, readCopy, patchedProgram } from '../provision/glibc-copies.ts';
import { hostRuntimes, probeHost, which } from './host.ts';
import { glibcRefusal } from '../src/runtimes/node-dist.ts';
import { capture, cleanBaseEnv } from '../src/proc.ts';
import { libcFromMaps, parseBanner, proveLibcFile, sameFile } from '../src/probe.ts';
import type { Adapter, AdapterOptions, AdapterStatus, Environment, LibcProof, MissingRuntime, RuntimeInstance } from '../src/types.ts';

// ELF reading and glibc symbol-version needs live in adapters/elf.ts (re-exported here for their old importers)
export type { ElfInfo, GlibcNeed } from './elf.ts';
import type { GlibcNeed } from './elf.ts';
import { readElf, glibcNeeds, refuseOlder } from './elf.ts';
export { readElf, glibcNeeds, refuseOlder };
export { compareVersions };

// ---------------------------------------------------------------------------------------------------------------
// Host facts

/** glibc's own shared objects (the pieces that must all come from one glibc), by file name. */
export const GLIBC_PIECE_RE =
  /^(ld-linux-x86-64\.so\.2|ld\.so|ld-\d[\d.]*\.so|lib(c|m|mvec|pthread|dl|rt|resolv|util|anl|nsl|BrokenLocale|c_malloc_debug|memusage|pcprofile|thread_db|nss_[a-z]+)([-.][\d.]+)?\.so(\.[\d.]+)?)$/;

/** Sonames a runtime copy is made to load from its tree first: a host library with its own RUNPATH (e.g. a pyenv
 * libpython) would otherwise find the host's libm through the system search path. */
export const FIRST_NEEDED = ['libm.so.6', 'libpthread.so.0', 'libdl.so.2', 'librt.so.1'];

export function hostLibDirs(): string[] {
  return ['/usr/local/lib/x86_64-linux-gnu', '/usr/local/lib', '/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu'].filter((d) => existsSync(d));
}

/** Debian codename of this host (for tools downloaded to run here). */
export function hostCodename(): string {
  try {
    const m = /^VERSION_CODENAME=(\w+)/m.exec(readFileSync('/etc/os-release', 'utf8'));
    if (m) return m[1];
  } catch {
    /* not Debian-like */
  }
  return 'bookworm';
}

let hostProofMemo: LibcProof | null | undefined;
/** The host's proved glibc (null when the host libc is not glibc). */
export function hostGlibc(): LibcProof | null {
  if (hostProofMemo !== undefined) return hostProofMemo;
  try {
    const p = probeHost();
    hostProofMemo = p.name === 'glibc' ? p : null;
  } catch {
    hostProofMemo = null;
  }
  return hostProofMemo;
}

const rtMemo = new Map<string, ReturnType<typeof hostRuntimes>>();
/** Remember runtimes already identified (e.g. by hostEnvironment) so they are not asked again. */
export function rememberHostRuntimes(extra: AdapterOptions['extraRuntimes'], found: ReturnType<typeof hostRuntimes>): void {
  rtMemo.set(JSON.stringify(extra), found);
}
/** hostRuntimes, once per process per --runtime set (every interpreter is asked for its version once). */
export function hostRuntimesOnce(opts: AdapterOptions): ReturnType<typeof hostRuntimes> {
  const k = JSON.stringify(opts.extraRuntimes);
  if (!rtMemo.has(k)) rtMemo.set(k, hostRuntimes(opts));
  return rtMemo.get(k)!;
}

/**
 * What a C case binary built by `cc` on this host needs at least (a small threaded, dlopen-ing program compiled
 * once and cached): every case links against the host glibc, so this is the floor for running C cases elsewhere.
 */
export function ccNeeds(cacheDir: string, cc: RuntimeInstance): GlibcNeed & { error?: string } {
  const key = createHash('sha256').update(`${cc.executable}\0${cc.version}\0v1`).digest('hex').slice(0, 16);
  const dir = path.join(cacheDir, 'glibc', 'cc-probe', key);
  const bin = path.join(dir, 'probe');
  if (!existsSync(bin)) {
    const tmp = `${dir}.tmp-${process.pid}`;
    mkdirSync(tmp, { recursive: true });
    writeFileSync(
      path.join(tmp, 'probe.c'),
      [
        '#define _GNU_SOURCE',
        '#include <dlfcn.h>', '#include <pthread.h>', '#include <stdio.h>', '#include <stdlib.h>', '#include <time.h>', '#include <unistd.h>', '#include <sys/wait.h>',
        'static void *f(void *a) { return a; }',
        'int main(void) { pthread_t t; pthread_create(&t, 0, f, 0); pthread_join(t, 0); void *h = dlopen("libm.so.6", RTLD_NOW);',
        '  struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); pid_t p = fork(); if (!p) _exit(0); waitpid(p, 0, 0);',
        '  printf("%p %ld\\n", h, (long)ts.tv_sec); free(malloc(10)); return 0; }',
        '',
      ].join('\n'),
    );
    const r = capture(cc.executable, ['-O1', '-pthread', path.join(tmp, 'probe.c'), '-o', path.join(tmp, 'probe'), '-ldl', '-lrt'], { env: cleanBaseEnv(), timeoutMs: 60_000 });
    if (r.code !== 0) {
      rmSync(tmp, { recursive: true, force: true });
      return { newest: null, by: null, private: [], error: `${cc.executable} cannot build a probe: ${r.stderr.trim().split('\n').slice(-2).join(' ')}` };
    }
    mkdirSync(path.dirname(dir), { recursive: true });
    try {
      renameSync(tmp, dir);
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // another process built it first
    }
  }
  return glibcNeeds([bin]);
}

/** Shared objects a program loads (host ldd), for version needs of an interpreter and its libraries. */
function lddClosure(exe: string): string[] {
  const r = capture('ldd', [exe], { env: cleanBaseEnv(), timeoutMs: 20_000 });
  const out: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /=>\s+(\/\S+)\s+\(0x/.exec(line);
    if (m) out.push(m[1]);
  }
  return out;
}

/** The files whose version needs decide whether an interpreter can run on another glibc: it and its non-glibc libs. */
const filesMemo = new Map<string, string[]>();
export function runtimeFiles(exe: string): string[] {
  if (!filesMemo.has(exe)) filesMemo.set(exe, [exe, ...lddClosure(exe).filter((f) => !GLIBC_PIECE_RE.test(path.basename(f)))]);
  return filesMemo.get(exe)!;
}

/** Every file mapped in a /proc/PID/maps text. */
export function mappedFiles(maps: string): string[] {
  const out = new Set<string>();
  for (const line of maps.split('\n')) {
    const f = line.trim().split(/\s+/).slice(5).join(' ');
    if (f.startsWith('/')) out.add(f.replace(/ \(deleted\)$/, ''));
  }
  return [...out];
}

export const realOr = (p: string) => {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
};

// ---------------------------------------------------------------------------------------------------------------
// Trees: one glibc on disk (a Debian libc6 unpacked, or --libc PATH)

export interface GlibcTree {
  kind: 'debian' | 'local';
  id: string;
  version: string;
  /** where it comes from, for messages */
  label: string;
  root: string;
  loader: string;
  libc: string;
  /** directories holding this glibc's shared objects (searched first) */
  dirs: string[];
  /** where patchelf'd runtime copies live */
  copies: string;
  /** variables every process in the environment gets (declared) */
  env: Record<string, string>;
}

export interface DebMeta {
  suite: string[];
  deb: string;
  debVersion: string;
  version: string;
  banner: string;
}

/** Debian releases this adapter knows: what they ship, and which it provisions. */
export const DEBIAN_GLIBC: { suite: string; version: string | null; provision: boolean }[] = [
  { suite: 'bullseye', version: '2.31', provision: false },
  { suite: 'bookworm', version: '2.36', provision: false },
  { suite: 'trixie', version: '2.41', provision: true },
  { suite: 'sid', version: null, provision: true },
];

export function findLoaderDir(root: string): string | null {
  for (const d of ['usr/lib/x86_64-linux-gnu', 'lib/x86_64-linux-gnu']) {
    if (existsSync(path.join(root, d, 'ld-linux-x86-64.so.2')) && existsSync(path.join(root, d, 'libc.so.6'))) return path.join(root, d);
  }
  return null;
}

/** The version banner of a libc file: executed directly (proveLibcFile), else through its own loader (a libc whose
 * PT_INTERP names the host's loader cannot run by itself). */
export function bannerOf(libc: string, loader: string): LibcProof {
  const direct = proveLibcFile(libc);
  if (direct.name !== 'unknown') return direct;
  const r = capture(loader, [libc], { env: { PATH: '/usr/bin:/bin' }, timeoutMs: 10_000 });
  const banner = (r.stdout + r.stderr).trim();
  const { name, version } = parseBanner(banner);
  return { name, version, path: libc, banner: banner.split('\n').slice(0, 2).join(' ') };
}

export function debianTree(dir: string): GlibcTree | null {
  let meta: DebMeta;
  try {
    meta = JSON.parse(readFileSync(path.join(dir, 'forkmatrix.json'), 'utf8')) as DebMeta;
  } catch {
    return null;
  }
  const lib = findLoaderDir(dir);
  if (!lib) return null;
  return {
    kind: 'debian', id: `glibc-${meta.version}`, version: meta.version, label: `Debian ${meta.suite.join('/')} libc6 ${meta.debVersion}`, root: dir,
    loader: path.join(lib, 'ld-linux-x86-64.so.2'), libc: path.join(lib, 'libc.so.6'), dirs: [lib], copies: path.join(dir, 'runtimes'),
    env: existsSync(path.join(lib, 'gconv')) ? { GCONV_PATH: path.join(lib, 'gconv') } : {},
  };
}

/** The provisioned Debian glibc copies in the cache. */
export function debianTrees(cacheDir: string): GlibcTree[] {
  const base = path.join(cacheDir, 'glibc');
  let names: string[] = [];
  try {
    names = readdirSync(base).filter((n) => /^\d+\.\d+/.test(n) && !n.includes('.tmp-'));
  } catch {
    return [];
  }
  return names.map((n) => debianTree(path.join(base, n))).filter((t): t is GlibcTree => !!t).sort((a, b) => compareVersions(a.version, b.version));
}

/** Build-tree subdirectories glibc's testrun.sh puts on --library-path. */
const BUILD_SUBDIRS = ['', 'math', 'elf', 'dlfcn', 'nss', 'nis', 'nptl', 'rt', 'resolv', 'login', 'crypt', 'malloc', 'dfp'];

export type LocalKind = { kind: 'glibc'; tree: GlibcTree } | { kind: 'musl' } | { kind: 'error'; message: string };

/** What --libc PATH is: a glibc build tree or install dir (an environment), a musl one (not ours), or neither. */
export function classifyLocal(p: string, cacheDir: string): LocalKind {
  const abs = path.resolve(p);
  // git:PATH@REV and source trees are built (musl) or refused with the reason (glibc) by src/libc-src/
  if (p.startsWith('git:') || isMuslSource(abs) || (treeKind(abs) === 'glibc' && !existsSync(path.join(abs, 'libc.so')))) return { kind: 'musl' };
  if (!existsSync(abs)) return { kind: 'error', message: `--libc ${p}: no such directory` };
  if (!statSync(abs).isDirectory()) {
    if (proveLibcFile(abs).name === 'musl') return { kind: 'musl' };
    return { kind: 'error', message: `--libc ${p}: expected a glibc build tree or install directory, not a file` };
  }
  const has = (...xs: string[]) => xs.map((x) => path.join(abs, x)).find((f) => existsSync(f)) ?? null;
  let loader: string | null = null;
  let libc: string | null = null;
  let dirs: string[] = [];
  let how = '';
  const buildLoader = has('elf/ld-linux-x86-64.so.2', 'elf/ld.so');
  const buildLibc = has('libc.so.6', 'libc.so');
  if (buildLoader && buildLibc && !isLinkerScript(buildLibc)) {
    loader = buildLoader;
    libc = buildLibc;
    dirs = BUILD_SUBDIRS.map((s) => path.join(abs, s)).filter((d) => existsSync(d));
    how = 'build tree';
  } else {
    const instLoader = has('lib/ld-linux-x86-64.so.2', 'lib64/ld-linux-x86-64.so.2');
    const instLibc = has('lib/libc.so.6', 'lib64/libc.so.6');
    if (instLoader && instLibc) {
      loader = instLoader;
      libc = instLibc;
      dirs = [path.dirname(instLibc), path.dirname(instLoader)].filter((d, i, a) => a.indexOf(d) === i);
      how = 'install dir';
    }
  }
  if (!loader || !libc) {
    // musl (another adapter's): lib/ld-musl-*.so.1, or a lib/libc.so that says it is musl
    const libDir = path.join(abs, 'lib');
    const muslLoader = existsSync(libDir) && readdirSync(libDir).some((f) => /^ld-musl-.*\.so\.1$/.test(f));
    const libcSo = path.join(libDir, 'libc.so');
    if (muslLoader || (existsSync(libcSo) && !isLinkerScript(libcSo) && proveLibcFile(libcSo).name === 'musl')) return { kind: 'musl' };
    return {
      kind: 'error',
      message: `--libc ${p}: not a glibc build tree (elf/ld-linux-x86-64.so.2 or elf/ld.so, and libc.so.6 or libc.so) nor a glibc install dir (lib/ld-linux-x86-64.so.2 and lib/libc.so.6)`,
    };
  }
  const proof = bannerOf(libc, loader);
  if (proof.name !== 'glibc') return { kind: 'error', message: `--libc ${p}: ${libc} is not a glibc (it says: ${proof.banner.slice(0, 120) || 'nothing'})` };
  const key = createHash('sha256').update(realOr(abs)).digest('hex').slice(0, 16);
  const env: Record<string, string> = {};
  if (how === 'build tree' && existsSync(path.join(abs, 'iconvdata'))) env.GCONV_PATH = path.join(abs, 'iconvdata');
  else if (how === 'install dir' && existsSync(path.join(path.dirname(libc), 'gconv'))) env.GCONV_PATH = path.join(path.dirname(libc), 'gconv');
  return {
    kind: 'glibc',
    tree: {
      kind: 'local', id: `glibc-${proof.version}+local`, version: proof.version, label: `--libc ${abs} (${how})`, root: abs, loader, libc, dirs,
      copies: path.join(cacheDir, 'glibc', 'local', key, 'runtimes'), env,
    },
  };
}

function isLinkerScript(f: string): boolean {
  try {
    const fd = openSync(f, 'r');
    const b = Buffer.alloc(4);
    readSync(fd, b, 0, 4, 0);
    closeSync(fd);
    return b.readUInt32BE(0) !== 0x7f454c46;
  } catch {
    return true;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// patchelf (Debian's): on PATH, else downloaded into the cache (no root)

export function cachedPatchelf(cacheDir: string): string | null {
  try {
    for (const d of readdirSync(path.join(cacheDir, 'tools')).filter((n) => /^patchelf-/.test(n) && !n.includes('.tmp-')).sort().reverse()) {
      const p = path.join(cacheDir, 'tools', d, 'usr/bin/patchelf');
      if (existsSync(p)) return p;
    }
  } catch {
    /* none */
  }
  return null;
}

function patchelfNow(cacheDir: string): string | null {
  const sys = which('patchelf');
  return sys ?? cachedPatchelf(cacheDir);
}

// ---------------------------------------------------------------------------------------------------------------
// Proof: the glibc pieces a process maps (runtime copies: provision/glibc-copies.ts)

/** Is every glibc piece in this maps text from the tree? Returns the offending files. */
export function foreignPieces(maps: string, tree: GlibcTree): string[] {
  const own = treeFiles(tree);
  return mappedFiles(maps).filter((f) => GLIBC_PIECE_RE.test(path.basename(f)) && !own.has(realOr(f)));
}

const treeFilesMemo = new Map<string, Set<string>>();
/** The real paths of every file in a tree's dirs (an install dir may be symlinks to elsewhere). */
function treeFiles(tree: GlibcTree): Set<string> {
  const key = tree.dirs.join(':');
  let set = treeFilesMemo.get(key);
  if (!set) {
    set = new Set<string>();
    for (const d of tree.dirs) {
      let names: string[] = [];
      try {
        names = readdirSync(d);
      } catch {
        continue;
      }
      for (const n of names) set.add(realOr(path.join(d, n)));
    }
    treeFilesMemo.set(key, set);
  }
  return set;
}

// ---------------------------------------------------------------------------------------------------------------
// Environments

/** Run /bin/cat /proc/self/maps through an environment's launcher: the maps text, or throw with the loader's words. */
export function probeMaps(e: Pick<Environment, 'launch' | 'env'>, extraEnv: Record<string, string> = {}): { maps: string; stderr: string } {
  const l = e.launch(['/bin/cat', '/proc/self/maps'], { ...cleanBaseEnv(), ...extraEnv, ...e.env });
  const r = capture(l.command, l.args, { env: l.env, cwd: l.cwd, timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`the probe (${[l.command, ...l.args].join(' ')}) failed: ${(r.stderr || r.error || `exit ${r.code}`).trim().split('\n').slice(-2).join(' ')}`);
  return { maps: r.stdout, stderr: r.stderr };
}

/** Prove a tree from a real process: its libc is the tree's, every glibc piece comes from the tree, the banner. */
export function proveTree(tree: GlibcTree, e: Pick<Environment, 'launch' | 'env'>): LibcProof {
  const { maps } = probeMaps(e);
  const file = libcFromMaps(maps);
  if (!file) throw new Error(`no libc in the probe's mappings through ${tree.loader}`);
  if (!sameFile(file, tree.libc)) throw new Error(`the probe through ${tree.loader} loaded ${file}, not ${tree.libc}`);
  const foreign = foreignPieces(maps, tree);
  if (foreign.length) throw new Error(`the probe mixes glibc pieces from elsewhere: ${foreign.join(', ')}`);
  const proof = bannerOf(file, tree.loader);
  if (proof.name !== 'glibc') throw new Error(`${file} does not say it is glibc: ${proof.banner.slice(0, 160)}`);
  return { ...proof, path: file };
}

export interface TreeEnvOptions {
  /** make missing small copies now (python, ruby); false: only report them missing */
  lazyCopies: boolean;
}

/** The environment of one tree: the host cc (if its binaries can run here) and the checked runtime copies. */
export async function treeEnvironment(tree: GlibcTree, opts: AdapterOptions, o: TreeEnvOptions = { lazyCopies: true }): Promise<Environment> {
  const { runtimes: hostRts, missing: hostMissing } = hostRuntimesOnce(opts);
  const runtimes: RuntimeInstance[] = [];
  const missing: MissingRuntime[] = [...hostMissing];
  const env: Record<string, string> = { ...tree.env };
  const copyExes = new Set<string>();
  const patchelf = patchelfNow(opts.cacheDir);
  for (const rt of hostRts) {
    if (rt.runtime === 'libc') {
      const n = ccNeeds(opts.cacheDir, rt);
      if (n.error) missing.push({ runtime: 'libc', reason: n.error });
      else if (n.newest && compareVersions(tree.version, n.newest) < 0)
        missing.push({ runtime: 'libc', reason: `C cases built by ${rt.version} on this host need GLIBC_${n.newest}; ${tree.id} is older: use a Debian root of that release` });
      else runtimes.push(rt);
      continue;
    }
    // the executable's own need first, in the words `list` and `run` use for it ("node 18.20.8 needs glibc 2.28, this
    // environment has 2.27"); then the libraries it loads
    const refuse = notForGlibc(rt) ?? glibcRefusal(rt.executable, tree.version, `${rt.runtime} ${rt.version}`)
      ?? refuseOlder(runtimeFiles(rt.executable), tree.version, `${rt.runtime} ${rt.version}`);
    if (refuse) {
      missing.push({ runtime: rt.runtime, reason: refuse });
      continue;
    }
    let rec = readCopy(tree, rt);
    if (!rec && o.lazyCopies && patchelf && statSync(rt.executable).size <= LAZY_COPY_MAX) rec = await makeCopy(tree, rt, patchelf);
    const how = tree.kind === 'debian' ? 'npx forkmatrix provision glibc' : `npx forkmatrix provision glibc --libc ${tree.root}`;
    if (!rec) missing.push({ runtime: rt.runtime, reason: `no ${rt.runtime} copy for ${tree.id} yet (${rt.executable}): ${patchelf ? '' : 'needs patchelf; '}run ${how}` });
    else if (!rec.ok) missing.push({ runtime: rt.runtime, reason: `${rt.runtime} ${rt.version} cannot run on ${tree.id}: ${rec.reason}` });
    else {
      runtimes.push({ runtime: rt.runtime, version: rt.version, executable: rec.executable! });
      copyExes.add(rec.executable!);
      Object.assign(env, copyEnv(tree, rt));
    }
  }
  const libraryPath = [...tree.dirs, ...hostLibDirs()].join(':');
  const progs = new Map<string, string | null>();
  const e: Environment = {
    id: tree.id,
    adapter: 'glibc',
    expect: { libc: 'glibc', version: tree.version },
    env,
    runtimes,
    missing,
    launch(argv, given) {
      const full = { ...given, ...e.env };
      // a patchelf'd copy has the tree's loader as PT_INTERP: run it directly (so /proc/self/exe is the copy)
      if (copyExes.has(argv[0])) return { command: argv[0], args: argv.slice(1), env: full };
      // any other program (a compiled C case, the probe's /bin/cat): a patchelf'd copy when patchelf is here, so
      // /proc/self/exe is the program (gdb then names the case's own frames in a hang's backtrace, and a child
      // that re-executes itself stays here); else the loader runs it with --library-path
      if (!progs.has(argv[0])) progs.set(argv[0], patchelf ? patchedProgram(tree, argv[0], patchelf) : null);
      const prog = progs.get(argv[0]);
      if (prog) return { command: prog, args: argv.slice(1), env: full };
      return { command: tree.loader, args: ['--library-path', libraryPath, ...argv], env: full };
    },
    async probe() {
      return proveTree(tree, e);
    },
  };
  return e;
}

/** Trees from --libc (glibc ones; musl paths are another adapter's; anything else is refused). */
export function localTrees(opts: AdapterOptions): GlibcTree[] {
  const out: GlibcTree[] = [];
  for (const p of opts.libc) {
    const k = classifyLocal(p, opts.cacheDir);
    if (k.kind === 'error') throw new Error(k.message);
    if (k.kind === 'glibc') {
      const why = probeFloor(opts.cacheDir, k.tree.version);
      if (why) throw new Error(`--libc ${p}: ${why}`);
      // two --libc trees of the same version: glibc-2.43+local, glibc-2.43+local-2
      const same = out.filter((t) => t.version === k.tree.version).length;
      if (same) k.tree.id = `${k.tree.id}-${same + 1}`;
      out.push(k.tree);
    }
  }
  return out;
}

/** Why nothing of this host can run on glibc `version` (the probe program /bin/cat itself is too new), or null. */
export function probeFloor(_cacheDir: string, version: string): string | null {
  return refuseOlder(['/bin/cat'], version, "this host's binaries");
}

/** Every glibc environment this adapter has now: provisioned Debian copies (not the host's own version) + --libc. */
export async function glibcTreeEnvironments(opts: AdapterOptions, o?: TreeEnvOptions): Promise<Environment[]> {
  const host = hostGlibc();
  const trees = [...debianTrees(opts.cacheDir).filter((t) => !host || t.version !== host.version), ...localTrees(opts)];
  const out: Environment[] = [];
  for (const t of trees) out.push(await treeEnvironment(t, opts, o));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The adapter

function runtimeSummary(e: Environment): string {
  const have = e.runtimes.map((r) => `${r.runtime} ${r.version}`).join(', ') || 'none';
  return `runtimes: ${have}${e.missing.length ? '; missing: ' + e.missing.map((m) => `${m.runtime} (${m.reason})`).join('; ') : ''}`;
}

export const glibcAdapter: Adapter = {
  name: 'glibc',
  async environments(opts) {
    return glibcTreeEnvironments(opts);
  },
  async status(opts) {
    const out: AdapterStatus[] = [];
    const host = hostGlibc();
    const trees = debianTrees(opts.cacheDir);
    const floor = (v: string) => probeFloor(opts.cacheDir, v);
    for (const d of DEBIAN_GLIBC) {
      const have = trees.find((t) => (JSON.parse(readFileSync(path.join(t.root, 'forkmatrix.json'), 'utf8')) as DebMeta).suite.includes(d.suite));
      const version = have?.version ?? d.version;
      if (host && version === host.version) continue; // the host adapter's
      const id = version ? `glibc-${version}` : `glibc-${d.suite}`;
      const why = version ? floor(version) : null;
      if (why) {
        out.push({ id, state: 'impossible', detail: `${d.suite}'s glibc ${version}: ${why}` });
        continue;
      }
      if (!d.provision && !have) continue; // e.g. bookworm on a newer host that could run it: not offered
      if (have) {
        const e = await treeEnvironment(have, opts, { lazyCopies: false });
        out.push({ id: have.id, state: 'available', detail: `${have.label} in ${have.root}; ${runtimeSummary(e)}` });
      } else {
        out.push({ id, state: 'provisionable', detail: `npx forkmatrix provision glibc (Debian ${d.suite} libc6${version ? ', glibc ' + version : ', the newest glibc'}; a download, no root)` });
      }
    }
    for (const p of opts.libc) {
      let k: LocalKind;
      try {
        k = classifyLocal(p, opts.cacheDir);
      } catch (e) {
        k = { kind: 'error', message: (e as Error).message };
      }
      if (k.kind === 'musl') continue;
      if (k.kind === 'error') {
        out.push({ id: `glibc-?+local`, state: 'impossible', detail: k.message });
        continue;
      }
      const why = floor(k.tree.version);
      if (why) out.push({ id: k.tree.id, state: 'impossible', detail: `${k.tree.label}: ${why}` });
      else {
        const e = await treeEnvironment(k.tree, opts, { lazyCopies: false });
        out.push({ id: k.tree.id, state: 'available', detail: `${k.tree.label}; ${runtimeSummary(e)}` });
      }
    }
    return out;
  },
};
