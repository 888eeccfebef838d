// Python and Ruby linked against musl: built from Debian's own source packages with the musl adapter's toolchain,
// into the layout the musl adapter looks for (`<cache>/musl-runtimes/{python,ruby}/bin/{python3,ruby}`, see
// muslRuntimeCandidates in adapters/musl.ts). This adapter offers no environment of its own: the musl adapter runs
// the interpreters through each musl version's loader.
//
// The recipe (DESIGN.md section 4, measured):
// - sources: `apt-get source` of zlib, libffi and python3.11 / ruby3.1 from Debian bookworm through the private apt
//   state (adapters/apt.ts), unpacked with Debian's patches applied (dpkg-source -x, or tar + the quilt series),
//   every file then given one time stamp so make never re-runs autoconf/automake/bison on a patched input;
// - zlib and libffi static with -fPIC (shared by both builds, keyed like them);
// - CC is a wrapper around the musl toolchain that answers `-print-multiarch` AND `--print-multiarch` (CPython's
//   configure asks with two dashes) with x86_64-linux-musl;
// - pkg-config sees only those two (PKG_CONFIG_LIBDIR): the host's .pc files would enable modules (lzma, uuid, nis)
//   whose headers the musl toolchain cannot see;
// - CPython 3.11: `Py_BUILD_CORE_MODULE` defined in Modules/pyexpat.c (a Debian security patch uses internal API
//   there), and setup.py's add_multiarch_paths() dropped (it puts -I/usr/include/x86_64-linux-musl, a host musl-dev's
//   headers of another musl version, before the toolchain's);
// - Ruby 3.1: `--with-baseruby=no`, `ac_cv_func_qsort_r=no` (qsort_r is new in musl 1.2.3: the binary must also run
//   under 1.2.2), `ac_cv_func_crypt=no ac_cv_func_crypt_r=no` (Debian's musl 1.2.3 exports no crypt: Ruby's own
//   missing/crypt.c), NOT `--enable-load-relative`: run through a loader Ruby would take its prefix from
//   /proc/self/exe, i.e. the loader's directory, so the prefix is the final directory and the smoke test runs there;
// - compiled against the OLDEST provisioned musl (like the musl adapter's C cases), so one build runs on all;
// - make -j2, install into a staging dir, smoke test (threads + fork + socketpair, the required modules, the libc
//   proved from the interpreter's own /proc/self/maps) through EVERY provisioned musl's loader once the tree is
//   renamed into `<cache>/musl-runtimes/builds/<runtime>-<key>/` (buildAtomically; removed again when the smoke
//   test fails), then the symlink `<cache>/musl-runtimes/<runtime>` is switched to it atomically. Before that an
//   `nm -D` check names, per musl version, symbols the build needs and that libc lacks (the interpreter itself:
//   an error; a module: recorded as unloadable there, e.g. _crypt on Debian's 1.2.3).
// Cache key: recipe revision + the Debian source versions + the toolchain (musl version, Debian musl-dev version,
// gcc version); it is stored in `<cache>/musl-runtimes/<runtime>.json` next to the build: a change rebuilds.
//
// Provision names: `musl-python`, `musl-ruby` (each provisions `musl` first when no musl is there yet), and `libuv`
// (the libuv1 source that runners/libuv builds with each environment's compiler).

import { createHash } from 'node:crypto';
import {
  chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { isDir, isFile, readJson } from '../src/util.ts';
import { capture, cleanBaseEnv, runGrouped } from '../src/proc.ts';
import { libcFromMaps, proveLibcFile } from '../src/probe.ts';
import type { Adapter, AdapterOptions, AdapterStatus, HarnessResult, LibcProof } from '../src/types.ts';
import { buildAtomically, PrivateApt, type DebianSuite } from './apt.ts';
import { which } from './host.ts';
import { lockFile, withLock } from '../src/lock.ts';
import { installedVersions, LOADER, muslAdapter, muslRuntimeCandidates, type MuslInstall } from './musl.ts';

export type MuslRuntime = 'python' | 'ruby';
export const MUSL_RUNTIMES: MuslRuntime[] = ['python', 'ruby'];

/** What `forkmatrix provision NAME` this adapter handles (`libuv`: the source runners/libuv builds). */
export const MUSL_RUNTIME_PROVISION_NAMES = [...MUSL_RUNTIMES.map((r) => `musl-${r}`), 'libuv'];

/** Bump one when the recipe changes in a way that needs a rebuild of it. */
export const RECIPE_REVISION: Record<MuslRuntime | 'deps', number> = { deps: 1, python: 2, ruby: 2 };

const TRIPLE = 'x86_64-linux-musl';
const SUITE: DebianSuite = 'bookworm';
const BUILD_TIMEOUT_MS = 3 * 3600_000; // a loaded 2-core machine: Ruby took ~4 min unloaded, 20+ min loaded
const provisionCmd = (rt: MuslRuntime) => `npx forkmatrix provision musl-${rt}`;

export interface SourcePackage {
  pkg: string;
  suite: DebianSuite;
}

/** The Debian source packages each build needs, in build order (the dependencies first). */
export const DEPENDENCY_SOURCES: SourcePackage[] = [
  { pkg: 'zlib', suite: SUITE },
  { pkg: 'libffi', suite: SUITE },
];
export const RUNTIME_SOURCE: Record<MuslRuntime, SourcePackage> = {
  python: { pkg: 'python3.11', suite: SUITE },
  ruby: { pkg: 'ruby3.1', suite: SUITE },
};

/** The source fetch plan of a runtime: `pkg/suite` specs for `apt-get source`, dependencies first. */
export function fetchPlan(rt: MuslRuntime): string[] {
  return [...DEPENDENCY_SOURCES, RUNTIME_SOURCE[rt]].map((s) => `${s.pkg}/${s.suite}`);
}

/** Modules a build must have (a smoke test failure otherwise) and those it records when it has them. */
export const REQUIRED_MODULES: Record<MuslRuntime, string[]> = {
  python: ['_socket', 'select', '_posixsubprocess', 'time', 'pwd', '_random', 'math', '_struct', 'fcntl', 'ctypes', 'json', 'threading'],
  ruby: ['socket', 'etc', 'json', 'rbconfig'],
};
export const OPTIONAL_MODULES: Record<MuslRuntime, string[]> = {
  python: ['zlib', '_hashlib', '_ssl', 'pyexpat', '_sqlite3', '_bz2', '_lzma', 'readline'],
  ruby: ['fiddle', 'zlib', 'openssl', 'ripper', 'io/console'],
};

export const runtimesDir = (cacheDir: string) => path.join(cacheDir, 'musl-runtimes');
export const buildInfoFile = (cacheDir: string, rt: MuslRuntime) => path.join(runtimesDir(cacheDir), `${rt}.json`);

// ------------------------------------------------------------------------------------------------------------------
// small helpers

export function tail(s: string, n = 15): string {
  return s.trim().split('\n').slice(-n).join('\n');
}

export const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Debian version order (dpkg --compare-versions), for picking the newest .dsc of a package. */
export function debGreater(a: string, b: string): boolean {
  return capture('dpkg', ['--compare-versions', a, 'gt', b], { env: cleanBaseEnv() }).code === 0;
}

// ------------------------------------------------------------------------------------------------------------------
// the toolchain

/** The musl toolchain a build is compiled with: the oldest provisioned musl (whose binaries run on every newer one). */
export interface BuildToolchain {
  musl: string; // proved version of the musl the toolchain links against
  muslDev: string | null; // Debian musl-dev version
  gcc: string | null; // "gcc 12.2.0"
  cc: string; // the musl adapter's musl-gcc wrapper
  dir: string; // <cache>/musl/<version>
  loader: string;
}

export function buildToolchain(cacheDir: string): BuildToolchain | null {
  const m: MuslInstall | undefined = installedVersions(cacheDir)[0];
  if (!m) return null;
  const r = capture(m.cc, ['-dumpfullversion'], { env: cleanBaseEnv(), timeoutMs: 20_000 });
  return {
    musl: m.version,
    muslDev: m.info?.packages['musl-dev'] ?? null,
    gcc: r.code === 0 && r.stdout.trim() ? `gcc ${r.stdout.trim()}` : null,
    cc: m.cc,
    dir: m.work,
    loader: m.loader,
  };
}

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

// ------------------------------------------------------------------------------------------------------------------
// cache key

export interface BuildKey {
  recipe: number;
  runtime: MuslRuntime | 'deps';
  sources: Record<string, string>; // source package -> Debian version
  toolchain: { musl: string; musl_dev: string | null; gcc: string | null };
}

export function buildKey(rt: MuslRuntime | 'deps', sources: Record<string, string>, tc: Pick<BuildToolchain, 'musl' | 'muslDev' | 'gcc'>): BuildKey {
  const sorted = Object.fromEntries(Object.entries(sources).sort(([a], [b]) => a.localeCompare(b)));
  return { recipe: RECIPE_REVISION[rt], runtime: rt, sources: sorted, toolchain: { musl: tc.musl, musl_dev: tc.muslDev, gcc: tc.gcc } };
}

export function keyHash(k: BuildKey): string {
  return createHash('sha256').update(JSON.stringify(k)).digest('hex').slice(0, 12);
}

/** Recorded in <cache>/musl-runtimes/<runtime>.json (and in the build as forkmatrix-build.json). */
export interface BuildInfo {
  runtime: MuslRuntime;
  key: BuildKey;
  hash: string;
  /** the build's directory (the <runtime> symlink points here) */
  dir: string;
  executable: string;
  version: string;
  modules: Record<string, boolean>;
  /** musl versions the smoke test passed on, each proved from the interpreter's maps */
  verified: Record<string, string>;
  /** per musl version, the modules that reference symbols that version lacks (nm -D), e.g. crypt_r on Debian's 1.2.3 */
  unloadable?: Record<string, string[]>;
  built: string;
  build_seconds: number;
}

// ------------------------------------------------------------------------------------------------------------------
// sources

export interface FetchedSource {
  pkg: string;
  version: string;
  dsc: string;
}

/** The newest .dsc of `pkg` in `dir`. */
function newestDsc(dir: string, pkg: string): FetchedSource | null {
  let best: FetchedSource | null = null;
  for (const f of readdirSync(dir)) {
    if (!f.startsWith(pkg + '_') || !f.endsWith('.dsc')) continue;
    const version = decodeURIComponent(f.slice(pkg.length + 1, -4));
    if (!best || debGreater(version, best.version)) best = { pkg, version, dsc: path.join(dir, f) };
  }
  return best;
}

/** Files a .dsc names (Files:/Checksums-Sha256: sections), plus the .dsc itself. */
function dscFiles(dsc: string): string[] {
  const names = new Set<string>([path.basename(dsc)]);
  let inFiles = false;
  for (const line of readFileSync(dsc, 'utf8').split('\n')) {
    if (/^(Files|Checksums-Sha\d+):/.test(line)) inFiles = true;
    else if (/^\S/.test(line)) inFiles = false;
    else if (inFiles && line.trim()) names.add(line.trim().split(/\s+/).pop()!);
  }
  return [...names];
}

/**
 * `apt-get source --download-only` each package into <cache>/musl-runtimes/sources/<pkg>/ (apt skips files it has
 * already, so an unchanged version costs no download); older versions there are removed.
 */
export function fetchSources(cacheDir: string, specs: SourcePackage[], log: (l: string) => void): FetchedSource[] {
  const apt = new PrivateApt(cacheDir);
  return specs.map((s) => {
    const dir = path.join(runtimesDir(cacheDir), 'sources', s.pkg);
    mkdirSync(dir, { recursive: true });
    apt.source(`${s.pkg}/${s.suite}`, dir, log);
    const got = newestDsc(dir, s.pkg);
    if (!got) throw new Error(`apt-get source ${s.pkg}/${s.suite} left no ${s.pkg}_*.dsc in ${dir}`);
    const keep = new Set(dscFiles(got.dsc));
    for (const f of readdirSync(dir)) if (!keep.has(f)) rmSync(path.join(dir, f), { recursive: true, force: true });
    return got;
  });
}

/** The quilt series of an unpacked Debian source (patch file, strip level), comments dropped. */
export function quiltSeries(text: string): { patch: string; strip: number }[] {
  const out: { patch: string; strip: number }[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) continue;
    const [patch, ...opts] = line.split(/\s+/);
    const p = opts.find((o) => /^-p\d+$/.test(o));
    out.push({ patch, strip: p ? Number(p.slice(2)) : 1 });
  }
  return out;
}

/**
 * Unpack a Debian source package with its patches applied into `dest` (a new directory): dpkg-source -x when it
 * exists, else the orig tarball + the debian tarball + the quilt series with patch(1). Every file then gets one
 * time stamp, so make sees no input newer than its generated output (no autoconf, automake or bison run).
 */
export function unpackSource(src: FetchedSource, dest: string): void {
  const env = cleanBaseEnv();
  if (which('dpkg-source')) {
    const r = capture('dpkg-source', ['--no-check', '-x', src.dsc, dest], { env, timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`dpkg-source -x ${src.dsc} failed: ${tail(r.stderr || r.stdout || r.error || '', 3)}`);
  } else {
    const dir = path.dirname(src.dsc);
    const files = dscFiles(src.dsc);
    const orig = files.find((f) => /\.orig\.tar\.\w+$/.test(f));
    const deb = files.find((f) => /\.debian\.tar\.\w+$/.test(f));
    if (!orig || !deb) throw new Error(`${src.dsc}: not a 3.0 (quilt) source (no .orig.tar / .debian.tar), and dpkg-source is not installed (apt-get install dpkg-dev)`);
    mkdirSync(dest, { recursive: true });
    for (const [tarball, args] of [[orig, ['--strip-components=1']], [deb, []]] as const) {
      const r = capture('tar', ['-xf', path.join(dir, tarball), '-C', dest, ...args], { env, timeoutMs: 600_000 });
      if (r.code !== 0) throw new Error(`tar -xf ${tarball} failed: ${tail(r.stderr, 3)}`);
    }
    const series = path.join(dest, 'debian', 'patches', 'series');
    for (const { patch, strip } of existsSync(series) ? quiltSeries(readFileSync(series, 'utf8')) : []) {
      const r = capture('patch', [`-p${strip}`, '-N', '-s', '-i', path.join(dest, 'debian', 'patches', patch)], { env, cwd: dest, timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`${src.pkg}: debian/patches/${patch} does not apply: ${tail(r.stdout + r.stderr, 3)}`);
    }
  }
  const r = capture('find', [dest, '-exec', 'touch', '-h', '-d', '@1700000000', '{}', '+'], { env, timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`could not reset the time stamps in ${dest}: ${tail(r.stderr, 3)}`);
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
async function step(ctx: Ctx, name: string, cwd: string, script: string, env: Record<string, string> = {}): Promise<void> {
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
function takeStaged(stage: string, final: string, into: string): void {
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

function pythonScript(src: string, prefix: string, stage: string): string {
  return [
    `${shq(path.join(src, 'configure'))} --prefix=${shq(prefix)} --without-ensurepip --disable-test-modules --with-system-ffi`,
    'make -j2',
    `make install DESTDIR=${shq(stage)}`,
  ].join('\n');
}

function rubyScript(src: string, prefix: string, stage: string, deps: string): string {
  return [
    `${shq(path.join(src, 'configure'))} --prefix=${shq(prefix)} --disable-install-doc --disable-install-rdoc ` +
      `--with-baseruby=no --with-opt-dir=${shq(deps)} --without-gmp --disable-jit-support`,
    'make -j2',
    `make install-nodoc DESTDIR=${shq(stage)}`,
  ].join('\n');
}

const PYEXPAT_FIX = '#ifndef Py_BUILD_CORE_BUILTIN\n#  define Py_BUILD_CORE_MODULE 1\n#endif\n\n';

/**
 * A Debian security patch makes Modules/pyexpat.c include an internal header (pycore_ceval.h), which needs
 * Py_BUILD_CORE_MODULE: define it at the top like CPython's other stdlib modules (Modules/_abc.c) do.
 * Returns whether the file was changed.
 */
export function fixPyexpat(src: string): boolean {
  const f = path.join(src, 'Modules', 'pyexpat.c');
  if (!isFile(f)) return false;
  const text = readFileSync(f, 'utf8');
  if (!text.includes('pycore_') || text.includes('Py_BUILD_CORE_MODULE')) return false;
  writeFileSync(f, PYEXPAT_FIX + text);
  return true;
}

/**
 * CPython's setup.py adds /usr/include/<multiarch> and /usr/lib/<multiarch> (x86_64-linux-musl: a host musl-dev of
 * another version) in front of the toolchain's headers: drop that call. Returns whether the file was changed.
 */
export function fixSetupPy(src: string): boolean {
  const f = path.join(src, 'setup.py');
  if (!isFile(f)) return false;
  const text = readFileSync(f, 'utf8');
  const call = '        self.add_multiarch_paths()\n';
  if (!text.includes(call)) return false;
  writeFileSync(f, text.replace(call, '        pass  # forkmatrix: no host multiarch dirs in a musl build\n'));
  return true;
}

/** Smoke test: threads + fork + socketpair, modules, the libc from the process's own maps. Prints one JSON line. */
export function smokeScript(rt: MuslRuntime): string[] {
  if (rt === 'python') {
    const req = JSON.stringify(REQUIRED_MODULES.python);
    const opt = JSON.stringify(OPTIONAL_MODULES.python);
    return ['-I', '-c', `
import importlib, json, os, platform, socket, sys, threading, time
mods = {}
for m in ${req} + ${opt}:
    try:
        importlib.import_module(m); mods[m] = True
    except Exception:
        mods[m] = False
stop = False
def spin():
    while not stop:
        time.localtime(); os.getpid(); [x for x in range(50)]
ts = [threading.Thread(target=spin, daemon=True) for _ in range(2)]
for t in ts: t.start()
forks = 0
for i in range(20):
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            a.close(); b.sendall(b"ok%d" % i); os._exit(0)
        except BaseException:
            os._exit(1)
    b.close()
    got = a.recv(16); a.close()
    _, st = os.waitpid(pid, 0)
    if got != b"ok%d" % i or st != 0: raise SystemExit("fork %d: child said %r, status %d" % (i, got, st))
    forks += 1
stop = True
import ctypes
assert ctypes.CDLL(None).getpid() == os.getpid()
print(json.dumps({"version": platform.python_version(), "forks": forks, "modules": mods, "maps": open("/proc/self/maps").read()}))
`];
  }
  const req = JSON.stringify(REQUIRED_MODULES.ruby);
  const opt = JSON.stringify(OPTIONAL_MODULES.ruby);
  return ['--disable-gems', '-e', `
mods = {}
(${req} + ${opt}).each { |m| begin; require m; mods[m] = true; rescue LoadError, StandardError; mods[m] = false; end }
require "json"
require "socket"
stop = false
ts = 2.times.map { Thread.new { until stop; Time.now.localtime; Process.pid; Thread.pass; end } }
forks = 0
20.times do |i|
  a, b = UNIXSocket.pair
  pid = fork do
    a.close; b.write("ok#{i}"); b.close
    exit!(0)
  end
  b.close
  got = a.read; a.close
  _, st = Process.wait2(pid)
  raise "fork #{i}: child said #{got.inspect}, #{st.inspect}" unless got == "ok#{i}" && st.success?
  forks += 1
end
stop = true
ts.each(&:join)
if mods["fiddle"]
  raise "fiddle: getpid differs" unless Fiddle::Function.new(Fiddle.dlopen(nil)["getpid"], [], Fiddle::TYPE_INT).call == Process.pid
end
puts JSON.generate({"version" => RUBY_VERSION, "forks" => forks, "modules" => mods, "maps" => File.read("/proc/self/maps")})
`];
}

/** The libc a process had mapped (from its /proc/self/maps text), proved by running that file. */
export function proveFromMaps(maps: string): LibcProof | null {
  const file = libcFromMaps(maps);
  return file ? proveLibcFile(file) : null;
}

/** The libc a harness reported (`result.libc.path`), proved by running it; throws unless it is musl `version`. */
export function proveHarnessLibc(result: Pick<HarnessResult, 'libc'>, version?: string): LibcProof {
  const file = result.libc?.path;
  if (!file) throw new Error('the harness reported no libc path');
  const p = proveLibcFile(file);
  if (p.name !== 'musl') throw new Error(`the harness mapped ${file}, which is ${p.name} ${p.version}, not musl`);
  if (version && p.version !== version) throw new Error(`the harness mapped ${file}: musl ${p.version}, not ${version}`);
  return p;
}

/** Run the smoke test with `exe` through `loader`; returns the interpreter's report. */
export async function smokeTest(rt: MuslRuntime, exe: string, loader: string, scratch: string): Promise<{ version: string; forks: number; modules: Record<string, boolean>; libc: LibcProof }> {
  mkdirSync(scratch, { recursive: true });
  const logFile = path.join(scratch, `smoke-${rt}-${process.pid}-${Date.now()}.log`);
  const r = await runGrouped(loader, [exe, ...smokeScript(rt)], { env: cleanBaseEnv({ HOME: scratch }), logFile, timeoutMs: 120_000 });
  let out = '';
  try {
    out = readFileSync(logFile, 'utf8');
  } finally {
    rmSync(logFile, { force: true });
  }
  const line = out.split('\n').find((l) => l.startsWith('{"'));
  if (r.code !== 0 || !line) throw new Error(`${exe} through ${loader}: smoke test failed (${r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`}): ${tail(out, 6)}`);
  const rep = JSON.parse(line) as { version: string; forks: number; modules: Record<string, boolean>; maps: string };
  const libc = proveFromMaps(rep.maps);
  if (!libc) throw new Error(`${exe} through ${loader}: no libc in its mappings`);
  const missing = REQUIRED_MODULES[rt].filter((m) => !rep.modules[m]);
  if (missing.length) throw new Error(`${exe}: required modules missing: ${missing.join(', ')}`);
  return { version: rep.version, forks: rep.forks, modules: rep.modules, libc };
}

/** Dynamic symbols of an ELF file (`nm -D`): defined or undefined (weak references left out). */
function dynSymbols(file: string, which: 'defined' | 'undefined'): string[] {
  const r = capture('nm', ['-D', `--${which}-only`, file], { env: cleanBaseEnv(), timeoutMs: 60_000 });
  if (r.code !== 0) return [];
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 2 && !/^[wv]$/.test(f[f.length - 2])).map((f) => f[f.length - 1]);
}

function elfFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && (e.name.endsWith('.so') || path.basename(d) === 'bin')) {
        try {
          const b = readFileSync(p).subarray(0, 4);
          if (b.length === 4 && b.readUInt32BE(0) === 0x7f454c46) out.push(p);
        } catch {
          /* unreadable */
        }
      }
    }
  };
  walk(dir);
  return out;
}

/**
 * Which symbols of a build no musl version provides: per version, file (relative) -> missing symbols. The
 * interpreter's own exports count as provided (extension modules link against it). A gap in the interpreter itself
 * means it cannot start on that version; a gap in a module means that module cannot be loaded there.
 */
export function symbolGaps(buildDir: string, exe: string, libcs: Record<string, string>): Record<string, Record<string, string[]>> {
  const own = new Set(dynSymbols(exe, 'defined'));
  const files = elfFiles(buildDir).map((f) => ({ f, und: dynSymbols(f, 'undefined') }));
  const ignore = /^(_ITM_|__gmon_start__|_Jv_|__cxa_finalize$|__register_frame_info$|__deregister_frame_info$)/;
  const gaps: Record<string, Record<string, string[]>> = {};
  for (const [version, libc] of Object.entries(libcs)) {
    const have = new Set([...own, ...dynSymbols(libc, 'defined')]);
    for (const { f, und } of files) {
      const miss = und.filter((u) => !have.has(u) && !ignore.test(u));
      if (miss.length) (gaps[version] ??= {})[path.relative(buildDir, f)] = miss;
    }
  }
  return gaps;
}

/** Switch <cache>/musl-runtimes/<rt> to point at `target` (relative), atomically. */
function switchLink(cacheDir: string, rt: MuslRuntime, target: string): void {
  const link = path.join(runtimesDir(cacheDir), rt);
  const tmpLink = `${link}.link-${process.pid}`;
  rmSync(tmpLink, { force: true });
  symlinkSync(target, tmpLink);
  let old: ReturnType<typeof lstatSync> | null = null;
  try {
    old = lstatSync(link);
  } catch {
    /* none */
  }
  if (old && !old.isSymbolicLink()) {
    // a real directory from an older layout: move it away first (rename cannot replace a directory by a link)
    const aside = `${link}.old-${process.pid}`;
    renameSync(link, aside);
    rmSync(aside, { recursive: true, force: true });
  }
  renameSync(tmpLink, link);
}

async function provisionRuntime(rt: MuslRuntime, opts: AdapterOptions, log: (l: string) => void): Promise<BuildInfo> {
  const t0 = Date.now();
  const cacheDir = opts.cacheDir;
  if (!installedVersions(cacheDir).length) {
    log(`musl-runtimes: no musl provisioned yet: provisioning musl first`);
    await muslAdapter.provision!(['musl'], opts, log);
  }
  const tc = buildToolchain(cacheDir);
  if (!tc) throw new Error('musl-runtimes: no musl toolchain (npx forkmatrix provision musl)');
  const problems = toolchainProblems(tc);
  if (problems.length) throw new Error(`musl-runtimes: the musl ${tc.musl} toolchain is not usable: ${problems.join('; ')} (re-run npx forkmatrix provision musl)`);
  for (const tool of ['make', 'tar', 'find', 'dpkg', 'nm']) if (!which(tool)) throw new Error(`musl-runtimes: ${tool} is missing (as root: apt-get install ${({ find: 'findutils', nm: 'binutils' } as Record<string, string>)[tool] ?? tool})`);

  log(`musl-runtimes: fetching the sources (${fetchPlan(rt).join(', ')})`);
  const fetched = fetchSources(cacheDir, [...DEPENDENCY_SOURCES, RUNTIME_SOURCE[rt]], log);
  const sources = Object.fromEntries(fetched.map((s) => [s.pkg, s.version]));
  const key = buildKey(rt, sources, tc);
  const hash = keyHash(key);
  const infoFile = buildInfoFile(cacheDir, rt);
  const have = readJson<BuildInfo>(infoFile);
  const exeName = rt === 'python' ? 'python3' : 'ruby';
  const current = muslRuntimeCandidates(cacheDir, rt)[0];
  if (have && have.hash === hash && isFile(current) && isFile(path.join(have.dir, 'bin', exeName))) {
    log(`musl-runtimes: ${rt} ${have.version} is up to date (${Object.entries(sources).map(([p, v]) => `${p} ${v}`).join(', ')}; musl ${tc.musl}, ${tc.gcc})`);
    return have;
  }
  if (have) log(`musl-runtimes: the ${rt} build is stale (key ${have.hash} -> ${hash}): rebuilding`);

  const builds = path.join(runtimesDir(cacheDir), 'builds');
  const final = path.join(builds, `${rt}-${hash}`);
  mkdirSync(builds, { recursive: true });
  const work = path.join(runtimesDir(cacheDir), `work-${rt}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(path.join(work, 'bin'), { recursive: true });
  const cc = path.join(work, 'bin', 'cc');
  writeFileSync(cc, ccWrapperText(tc.cc));
  chmodSync(cc, 0o755);
  const ctx: Ctx = { cacheDir, tc, work, cc, log };
  let info: BuildInfo;
  try {
    const deps = await buildDeps(ctx, fetched.filter((s) => DEPENDENCY_SOURCES.some((d) => d.pkg === s.pkg)));
    rmSync(final, { recursive: true, force: true }); // a half-finished earlier attempt of the same key
    await buildAtomically(final, async (tmp) => {
      const main = fetched.find((s) => s.pkg === RUNTIME_SOURCE[rt].pkg)!;
      const src = path.join(work, `${main.pkg}-src`);
      unpackSource(main, src);
      if (rt === 'python' && fixPyexpat(src)) log('musl-runtimes: Modules/pyexpat.c: defined Py_BUILD_CORE_MODULE (a Debian patch uses internal API there)');
      if (rt === 'python' && fixSetupPy(src)) log('musl-runtimes: setup.py: no host multiarch include/lib dirs');
      const bdir = path.join(work, 'build');
      const stage = path.join(work, 'stage');
      mkdirSync(bdir, { recursive: true });
      if (rt === 'python') {
        await step(ctx, 'python3.11', bdir, pythonScript(src, final, stage), buildEnv(ctx, deps, {
          CFLAGS: '-O2',
          LIBFFI_CFLAGS: `-I${deps}/include`, LIBFFI_LIBS: `-L${deps}/lib -lffi`,
          ZLIB_CFLAGS: `-I${deps}/include`, ZLIB_LIBS: `-L${deps}/lib -lz`,
        }));
      } else {
        await step(ctx, 'ruby3.1', bdir, rubyScript(src, final, stage, deps), buildEnv(ctx, deps, {
          CFLAGS: '-O2',
          ac_cv_func_qsort_r: 'no',
          // Debian bookworm's musl 1.2.3 ships no crypt/crypt_r (1.2.2 and 1.2.5 do): Ruby's own missing/crypt.c
          ac_cv_func_crypt: 'no', ac_cv_func_crypt_r: 'no', ac_cv_lib_crypt_crypt: 'no',
        }));
      }
      takeStaged(stage, final, tmp);
      if (rt === 'python') {
        rmSync(path.join(tmp, 'lib', 'python3.11', 'test'), { recursive: true, force: true });
        if (!isFile(path.join(tmp, 'bin', 'python3'))) symlinkSync('python3.11', path.join(tmp, 'bin', 'python3'));
      }
      writeFileSync(path.join(tmp, 'forkmatrix-key.json'), JSON.stringify(key, null, 1) + '\n');
    });
    // The smoke test, through every provisioned musl's loader, in the final place: the prefix is compiled in
    // (Ruby cannot be relocated when it runs through a loader). A build that fails it is removed.
    try {
      const exe = path.join(final, 'bin', exeName);
      const installs = installedVersions(cacheDir);
      const gaps = symbolGaps(final, exe, Object.fromEntries(installs.map((m) => [m.version, m.loader])));
      for (const [v, files] of Object.entries(gaps)) {
        const main = Object.entries(files).filter(([f]) => f.startsWith('bin/'));
        if (main.length) throw new Error(`musl-runtimes: ${rt} needs symbols musl ${v} does not have: ${main.map(([f, m]) => `${f}: ${m.join(', ')}`).join('; ')}`);
        log(`musl-runtimes: on musl ${v} these ${rt} modules cannot load: ${Object.entries(files).map(([f, m]) => `${path.basename(f)} (${m.join(', ')})`).join('; ')}`);
      }
      const verified: Record<string, string> = {};
      let rep: Awaited<ReturnType<typeof smokeTest>> | null = null;
      for (const m of installs) {
        rep = await smokeTest(rt, exe, m.loader, work);
        if (rep.libc.name !== 'musl' || rep.libc.version !== m.version)
          throw new Error(`musl-runtimes: ${exe} run through ${m.loader} mapped ${rep.libc.path} (${rep.libc.name} ${rep.libc.version})`);
        verified[m.version] = rep.libc.path;
        log(`musl-runtimes: ${rt} ${rep.version} runs on musl ${m.version} (${rep.forks} forks with threads, libc proved: ${rep.libc.path})`);
      }
      if (!rep) throw new Error('musl-runtimes: no musl to smoke-test on');
      info = {
        runtime: rt, key, hash, dir: final, executable: exe, version: rep.version, modules: rep.modules, verified,
        unloadable: Object.fromEntries(Object.entries(gaps).map(([v, files]) => [v, Object.keys(files)])),
        built: new Date().toISOString(), build_seconds: Math.round((Date.now() - t0) / 1000),
      };
      writeFileSync(path.join(final, 'forkmatrix-build.json'), JSON.stringify(info, null, 1) + '\n');
    } catch (e) {
      rmSync(final, { recursive: true, force: true });
      throw e;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  switchLink(cacheDir, rt, path.relative(runtimesDir(cacheDir), final));
  writeFileSync(infoFile + '.tmp', JSON.stringify(info, null, 1) + '\n');
  renameSync(infoFile + '.tmp', infoFile);
  // older builds of this runtime are no longer pointed at
  for (const f of readdirSync(builds)) if (f.startsWith(`${rt}-`) && f !== path.basename(final)) rmSync(path.join(builds, f), { recursive: true, force: true });
  const missingOpt = OPTIONAL_MODULES[rt].filter((m) => info.modules[m] === false);
  log(`musl-runtimes: ${rt} ${info.version} ready: ${muslRuntimeCandidates(cacheDir, rt)[0]} (${Math.round((Date.now() - t0) / 1000)} s${missingOpt.length ? `; without ${missingOpt.join(', ')}` : ''})`);
  return info;
}

// ------------------------------------------------------------------------------------------------------------------
// status

/** The state of one runtime build, without downloading or compiling anything. */
export function buildStatus(cacheDir: string, rt: MuslRuntime, tc: BuildToolchain | null = buildToolchain(cacheDir)): AdapterStatus {
  const id = `musl-${rt}`;
  const info = readJson<BuildInfo>(buildInfoFile(cacheDir, rt));
  const exe = muslRuntimeCandidates(cacheDir, rt)[0];
  const missingTools = ['make', 'tar', 'apt-get', 'dpkg'].filter((t) => !which(t));
  if (process.arch !== 'x64') return { id, state: 'impossible', detail: `x86_64 only (${LOADER}); this machine is ${process.arch}` };
  if (!which('gcc') && !which('cc')) return { id, state: 'impossible', detail: 'no gcc (as root: apt-get install gcc)' };
  if (missingTools.length) return { id, state: 'impossible', detail: `no ${missingTools.join(', ')} (as root: apt-get install ${missingTools.join(' ')})` };
  if (!tc) return { id, state: 'provisionable', detail: `${RUNTIME_SOURCE[rt].pkg} from Debian ${SUITE} sources, built against musl (provisions musl first): ${provisionCmd(rt)}` };
  if (info && isFile(exe)) {
    const k = info.key.toolchain;
    if (info.key.recipe !== RECIPE_REVISION[rt])
      return { id, state: 'provisionable', detail: `the ${rt} build is stale: recipe revision ${info.key.recipe}, now ${RECIPE_REVISION[rt]}: ${provisionCmd(rt)}` };
    if (k.musl !== tc.musl || k.musl_dev !== tc.muslDev || k.gcc !== tc.gcc)
      return { id, state: 'provisionable', detail: `the ${rt} build is stale: built with musl ${k.musl} and ${k.gcc}, the toolchain is now musl ${tc.musl} and ${tc.gcc}: ${provisionCmd(rt)}` };
    const src = Object.entries(info.key.sources).map(([p, v]) => `${p} ${v}`).join(', ');
    const without = OPTIONAL_MODULES[rt].filter((m) => info.modules[m] === false);
    return {
      id, state: 'available',
      detail: `${rt} ${info.version} linked against musl ${k.musl} (${src}) in ${info.dir}; verified on musl ${Object.keys(info.verified).join(', ')}${without.length ? `; without ${without.join(', ')}` : ''}`,
    };
  }
  return { id, state: 'provisionable', detail: `${RUNTIME_SOURCE[rt].pkg} from Debian ${SUITE} sources, built against musl ${tc.musl} (minutes: CPython ~2, Ruby ~5 on 2 idle cores): ${provisionCmd(rt)}` };
}

// ------------------------------------------------------------------------------------------------------------------
// libuv (runners/libuv): Debian's libuv1 sources, unpacked; the runner builds each with each environment's compiler.
// Two of them: bookworm's (1.44.2, what Debian 12 programs link), and the one closest to the libuv the host's Node
// bundles (process.versions.uv: Node 20.20 bundles 1.46.0; Debian has 1.40, 1.44, 1.50, 1.53: the smallest Debian
// version whose major.minor is not older than Node's, else the newest), each its own column ("libuv 1.50.0 (...)").

export const LIBUV_SOURCE: SourcePackage = { pkg: 'libuv1', suite: SUITE };
export const LIBUV_PROVISION_NAME = 'libuv';
const libuvMarker = (cacheDir: string) => path.join(cacheDir, 'libuv', 'source', 'current.json');
/** Every provisioned libuv source: [{ package, version, dir, upstream, why }], bookworm's first. */
export const libuvSourcesFile = (cacheDir: string) => path.join(cacheDir, 'libuv', 'source', 'sources.json');

export interface LibuvSourceEntry {
  package: string;
  version: string; // Debian version
  dir: string;
  upstream: string; // libuv version, e.g. 1.50.0
  why: string;
}

const upstreamOf = (debVersion: string) => debVersion.replace(/^\d+:/, '').replace(/-[^-]*$/, '').replace(/\+dfsg.*$/, '');
const majorMinor = (v: string) => v.split('.').slice(0, 2).map(Number);
const mmCompare = (a: string, b: string) => {
  const [x, y] = [majorMinor(a), majorMinor(b)];
  return x[0] - y[0] || x[1] - y[1];
};

/** The libuv1 source versions Debian's suites carry (apt-cache showsrc on the private lists). */
function debianLibuvVersions(cacheDir: string, log: (l: string) => void): string[] {
  new PrivateApt(cacheDir).update(log);
  const dir = path.join(cacheDir, 'apt');
  const r = capture('apt-cache', [
    '-o', `Dir::Etc::SourceList=${path.join(dir, 'sources.list')}`, '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', `Dir::State::Lists=${path.join(dir, 'lists')}`, '-o', `Dir::Cache=${path.join(dir, 'cache')}`,
    '-o', `Dir::State::status=${path.join(dir, 'status')}`, '-o', 'Dir::Cache::pkgcache=pkgcache.bin', '-o', 'Dir::Cache::srcpkgcache=srcpkgcache.bin',
    'showsrc', LIBUV_SOURCE.pkg,
  ], { env: cleanBaseEnv(), timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`apt-cache showsrc ${LIBUV_SOURCE.pkg} failed: ${tail(r.stderr || r.error || '', 2)}`);
  const out = new Set<string>();
  for (const stanza of r.stdout.split(/\n\s*\n/)) {
    if (!new RegExp(`^Package:\\s*${LIBUV_SOURCE.pkg}\\s*$`, 'm').test(stanza)) continue;
    const v = /^Version:\s*(\S+)/m.exec(stanza)?.[1];
    if (v) out.add(v);
  }
  return [...out].sort((a, b) => (debGreater(a, b) ? 1 : debGreater(b, a) ? -1 : 0));
}

/** The Debian libuv1 version closest to `nodeUv` (Node's bundled libuv): the oldest not older in major.minor, else the newest. */
export function closestLibuv(versions: string[], nodeUv: string): string | null {
  if (!versions.length) return null;
  return versions.find((v) => mmCompare(upstreamOf(v), nodeUv) >= 0) ?? versions[versions.length - 1];
}

async function provisionOneLibuv(cacheDir: string, s: FetchedSource, why: string, log: (l: string) => void): Promise<LibuvSourceEntry> {
  const root = path.join(cacheDir, 'libuv', 'source', `${s.pkg}-${s.version}`);
  const dir = path.join(root, 'src');
  if (!isFile(path.join(dir, 'include', 'uv.h'))) {
    rmSync(root, { recursive: true, force: true });
    await buildAtomically(root, (tmp) => unpackSource(s, path.join(tmp, 'src')));
    log(`libuv: ${s.pkg} ${s.version} unpacked in ${dir} (${why})`);
  } else log(`libuv: ${s.pkg} ${s.version} is provisioned (${dir}; ${why})`);
  return { package: s.pkg, version: s.version, dir, upstream: upstreamOf(s.version), why };
}

/**
 * Fetch and unpack libuv1 from Debian bookworm into <cache>/libuv/source/ (current.json, what runners/libuv used
 * first), and the Debian libuv1 closest to the host Node's bundled libuv (sources.json lists both).
 */
export async function provisionLibuvSource(cacheDir: string, log: (l: string) => void): Promise<{ package: string; version: string; dir: string }> {
  const [s] = fetchSources(cacheDir, [LIBUV_SOURCE], log);
  const first = await provisionOneLibuv(cacheDir, s, `Debian ${SUITE}`, log);
  const marker = { package: first.package, version: first.version, dir: first.dir };
  writeFileSync(libuvMarker(cacheDir) + '.tmp', JSON.stringify(marker, null, 1) + '\n');
  renameSync(libuvMarker(cacheDir) + '.tmp', libuvMarker(cacheDir));
  const entries = [first];
  const nodeUv = process.versions.uv;
  const want = closestLibuv(debianLibuvVersions(cacheDir, log), nodeUv);
  if (want && want !== s.version) {
    // its own download directory: fetchSources keeps one version per package
    const dl = path.join(cacheDir, 'libuv', 'debsrc', want.replace(/[^\w.+-]/g, '_'));
    mkdirSync(dl, { recursive: true });
    new PrivateApt(cacheDir).source(`${LIBUV_SOURCE.pkg}=${want}`, dl, log);
    const got = newestDsc(dl, LIBUV_SOURCE.pkg);
    if (!got) throw new Error(`apt-get source ${LIBUV_SOURCE.pkg}=${want} left no .dsc in ${dl}`);
    entries.push(await provisionOneLibuv(cacheDir, got, `the Debian libuv1 closest to the libuv ${nodeUv} that Node ${process.versions.node} bundles`, log));
  } else if (want) log(`libuv: Debian ${SUITE}'s libuv1 is also the one closest to Node ${process.versions.node}'s bundled libuv ${nodeUv}`);
  writeFileSync(libuvSourcesFile(cacheDir) + '.tmp', JSON.stringify(entries, null, 1) + '\n');
  renameSync(libuvSourcesFile(cacheDir) + '.tmp', libuvSourcesFile(cacheDir));
  return marker;
}

export const muslRuntimesAdapter: Adapter = {
  name: 'musl-runtimes',

  async provision(what, opts, log) {
    if (what.includes(LIBUV_PROVISION_NAME))
      await withLock(lockFile(opts.cacheDir, 'provision-libuv'), 'provisioning the libuv source', log, () => provisionLibuvSource(opts.cacheDir, log));
    const wanted = MUSL_RUNTIMES.filter((rt) => what.includes(`musl-${rt}`));
    if (!wanted.length) return;
    if (process.arch !== 'x64') throw new Error(`musl-runtimes: x86_64 only (${LOADER}); this machine is ${process.arch}`);
    for (const rt of wanted) await withLock(lockFile(opts.cacheDir, `provision-musl-${rt}`), `building musl-${rt}`, log, () => provisionRuntime(rt, opts, log));
  },

  // the interpreters run in the musl adapter's environments
  async environments() {
    return [];
  },

  async status(opts) {
    const tc = buildToolchain(opts.cacheDir);
    const uv = readJson<{ version: string; dir: string }>(libuvMarker(opts.cacheDir));
    const all = (readJson<LibuvSourceEntry[]>(libuvSourcesFile(opts.cacheDir)) ?? []).filter((e) => isFile(path.join(e.dir, 'include', 'uv.h')));
    const libuv: AdapterStatus = uv && isFile(path.join(uv.dir, 'include', 'uv.h'))
      ? { id: 'libuv', state: 'available', detail: `libuv1 ${all.length ? all.map((e) => `${e.version} (${e.why})`).join(', ') : uv.version} source in ${path.dirname(path.dirname(uv.dir))} (the libuv runner builds each with each environment's C compiler, needs cmake)${all.length < 2 ? `; npx forkmatrix provision libuv adds the Debian libuv1 closest to Node's bundled ${process.versions.uv}` : ''}` }
      : { id: 'libuv', state: 'provisionable', detail: `the libuv1 sources from Debian ${SUITE} and the one closest to Node's bundled libuv ${process.versions.uv}, for the libuv runner: npx forkmatrix provision libuv` };
    // free-threaded CPython (provision/python-ft-build.ts, imported lazily: it builds on this module)
    const { ftStatus } = await import('../provision/python-ft-build.ts');
    return [...MUSL_RUNTIMES.map((rt) => buildStatus(opts.cacheDir, rt, tc)), libuv, ftStatus(opts.cacheDir, 'glibc'), ftStatus(opts.cacheDir, 'musl')];
  },
};
