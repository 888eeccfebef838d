// The musl adapter: Debian's musl 1.2.2 (bullseye), 1.2.3 (bookworm) and 1.2.5 (trixie), unpacked without root
// into <cache>/musl/<version>/, plus `--libc PATH` for a musl install prefix or build tree (environment
// `musl-<version>+local`, the CI gate's candidate).
//
// How a program runs on a chosen musl: musl's dynamic loader *is* its libc.so, and executing it as a command runs
// a program on it whatever the program's PT_INTERP says (`<dir>/lib/ld-musl-x86_64.so.1 PROGRAM ARGS`). musl keeps
// binary compatibility with older releases, so C cases are compiled once against the OLDEST musl provisioned
// (1.2.2) and the same binary runs under every version; symbols newer than 1.2.2 (`_Fork`, 1.2.3) are reached
// through weak symbols or dlsym by the harness and the cases.
//
// The toolchain is the host's gcc with a musl-gcc style specs file (no root, no musl-tools): musl's headers and a
// private kernel-header dir of symlinks (linux, asm-generic, asm; never -I/usr/include), musl's crt files, libc and
// libgcc, and -dynamic-linker pointing at the version's own loader.
//
// Nothing is taken from a label: a version directory is named by the banner its unpacked loader prints, and every
// environment's probe runs a real program through the loader, reads its /proc/self/maps and proves the mapped file.
//
// What the environments run on: the `-g` build of each version that `provision musl` makes from Debian's source
// package of the same Debian version (adapters/musl-debug.ts, <cache>/musl/debug/<version>/), so gdb names musl's
// functions in a hung child; Debian's stripped binary only until that build exists (status says which). The
// toolchain (headers, crt files) stays Debian's musl-dev, so builds keyed on it (musl-runtimes) are unchanged.
//
// Provision names: `musl` (all three), `musl-1.2.2`, `musl-1.2.3`, `musl-1.2.5` (one Debian suite each).

import { createHash } from 'node:crypto';
import {
  closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, realpathSync, renameSync, rmSync, statSync,
  symlinkSync, writeFileSync, chmodSync,
} from 'node:fs';
import path from 'node:path';
import { compareVersions, isDir, isFile, readJson } from '../src/util.ts';
import { capture, cleanBaseEnv } from '../src/proc.ts';
import { libcFromMaps, parseBanner, proveLibcFile } from '../src/probe.ts';
import type {
  Adapter, AdapterOptions, AdapterStatus, Environment, LibcProof, MissingRuntime, RuntimeInstance, FoundRuntime,
} from '../src/types.ts';
import { buildAtomically, debVersion, PrivateApt, unpackDeb, type DebianSuite } from './apt.ts';
import { which } from './host.ts';
import { lockFile, withLock } from '../src/lock.ts';
import { ftCandidates } from '../src/runtimes/python-ft.ts';
import { parseQuery } from '../src/runtimes/spec.ts';
import { findOf, RUNTIME_SPECS, specOf } from '../src/runtimes/specs.ts';
import { buildSource, cachedBuild, recordedFailure, resolveSource } from '../src/libc-src/build.ts';
import { isMuslSource, treeKind } from '../src/libc-src/tree.ts';

export const LOADER = 'ld-musl-x86_64.so.1';
const TRIPLE = 'x86_64-linux-musl';

/** The Debian suites this adapter takes musl from, with the version each is known to carry (a label only). */
export const MUSL_SUITES: { suite: DebianSuite; label: string }[] = [
  { suite: 'bullseye', label: '1.2.2' },
  { suite: 'bookworm', label: '1.2.3' },
  { suite: 'trixie', label: '1.2.5' },
];

/** What `forkmatrix provision NAME` this adapter handles. */
export const MUSL_PROVISION_NAMES = ['musl', ...MUSL_SUITES.map((s) => `musl-${s.label}`), 'musl-debug'];

const PROVISION_CMD = 'npx forkmatrix provision musl';

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

/** Where the `-g` build of a provisioned version goes (adapters/musl-debug.ts builds it): an install prefix. */
export const debugMuslDir = (cacheDir: string, version: string) => path.join(muslDir(cacheDir), 'debug', version);

/** Recorded in <cache>/musl/debug/<version>/info.json. */
export interface MuslDebugInfo {
  version: string;
  banner: string;
  suite: string;
  /** the Debian version of the source built (= the binary package's) */
  debian: string;
  /** adapters/musl-debug.ts DEBUG_RECIPE of the build */
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

/** The ELF program interpreter (PT_INTERP) of a file, read from its headers; null when it has none / is no ELF. */
export function elfInterpreter(file: string): string | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const h = Buffer.alloc(64);
    if (readSync(fd, h, 0, 64, 0) < 52 || h.readUInt32BE(0) !== 0x7f454c46) return null;
    const is64 = h[4] === 2;
    const le = h[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u64 = (b: Buffer, o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
    const phoff = is64 ? u64(h, 0x20) : u32(h, 0x1c);
    const phentsize = u16(h, is64 ? 0x36 : 0x2a);
    const phnum = u16(h, is64 ? 0x38 : 0x2c);
    const ph = Buffer.alloc(phentsize);
    for (let i = 0; i < phnum; i++) {
      readSync(fd, ph, 0, phentsize, phoff + i * phentsize);
      if (u32(ph, 0) !== 3) continue; // PT_INTERP
      const off = is64 ? u64(ph, 8) : u32(ph, 4);
      const size = is64 ? u64(ph, 32) : u32(ph, 16);
      const s = Buffer.alloc(Math.min(size, 4096));
      readSync(fd, s, 0, s.length, off);
      return s.toString('latin1').replace(/\0.*$/s, '');
    }
    return null;
  } finally {
    closeSync(fd);
  }
}

// ------------------------------------------------------------------------------------------------------------------
// the toolchain

/** Where a musl's headers and libraries are, for the specs file. */
interface ToolchainLayout {
  includes: string[]; // musl's own header dirs, in order
  lib: string; // crt1.o, crti.o, crtn.o, libc.so, libc.a ...
  loader: string; // -dynamic-linker
  kernelInclude: string; // private dir: linux, asm-generic, asm
}

function specsText(t: ToolchainLayout): string {
  for (const p of [...t.includes, t.lib, t.loader, t.kernelInclude])
    if (/\s/.test(p)) throw new Error(`musl: the path ${JSON.stringify(p)} has white space, which a gcc specs file cannot hold (use a --cache without spaces)`);
  const inc = [...t.includes, t.kernelInclude].map((d) => `-isystem ${d}`).join(' ');
  const l = t.lib;
  return `%rename cpp_options old_cpp_options

*cpp_options:
-nostdinc ${inc} -isystem include%s %(old_cpp_options)

*cc1:
%(cc1_cpu) -nostdinc ${inc} -isystem include%s

*link_libgcc:
-L${l} -L .%s

*libgcc:
libgcc.a%s %:if-exists(libgcc_eh.a%s)

*startfile:
%{shared:;static-pie:${l}/rcrt1.o; :${l}/Scrt1.o} ${l}/crti.o crtbeginS.o%s

*endfile:
crtendS.o%s ${l}/crtn.o

*link:
-dynamic-linker ${t.loader} -nostdlib %{shared:-shared} %{static:-static} %{static-pie:-static -pie --no-dynamic-linker} %{rdynamic:-export-dynamic}

*esp_link:


*esp_options:


*esp_cpp_options:


`;
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function wrapperText(gcc: string, specs: string, what: string): string {
  return `#!/bin/sh
# forkmatrix: gcc against ${what}, without root and without the host's musl-tools (written by adapters/musl.ts)
if [ "$#" = 1 ] && [ "$1" = -print-multiarch ]; then echo ${TRIPLE}; exit 0; fi
exec ${shq(gcc)} "$@" -specs ${shq(specs)}
`;
}

/** The host's kernel headers (linux-libc-dev), or null when they are absent. */
function hostKernelHeaders(): { linux: string; asmGeneric: string; asm: string } | null {
  const k = { linux: '/usr/include/linux', asmGeneric: '/usr/include/asm-generic', asm: '/usr/include/x86_64-linux-gnu/asm' };
  return isDir(k.linux) && isDir(k.asmGeneric) && isDir(k.asm) ? k : null;
}

/** Kernel headers: the host's, or Debian's linux-libc-dev unpacked into the cache (no root). */
async function kernelHeaders(cacheDir: string, log: (l: string) => void, mayDownload: boolean): Promise<{ linux: string; asmGeneric: string; asm: string } | null> {
  const host = hostKernelHeaders();
  if (host) return host;
  const dir = path.join(muslDir(cacheDir), 'kernel-headers');
  const fromDir = () => ({ linux: path.join(dir, 'usr/include/linux'), asmGeneric: path.join(dir, 'usr/include/asm-generic'), asm: path.join(dir, 'usr/include/x86_64-linux-gnu/asm') });
  if (isDir(dir)) return fromDir();
  if (!mayDownload) return null;
  log('musl: no kernel headers in /usr/include: unpacking Debian linux-libc-dev/bookworm into the cache');
  await buildAtomically(dir, (tmp) => {
    const [deb] = new PrivateApt(cacheDir).download(['linux-libc-dev/bookworm'], path.join(tmp, '.debs'), log);
    unpackDeb(deb, tmp);
    rmSync(path.join(tmp, '.debs'), { recursive: true, force: true });
  });
  return fromDir();
}

/** Write <dir>/kernel-include/{linux,asm-generic,asm} as symlinks to the kernel headers. */
function writeKernelInclude(dir: string, k: { linux: string; asmGeneric: string; asm: string }): string {
  const ki = path.join(dir, 'kernel-include');
  mkdirSync(ki, { recursive: true });
  for (const [name, target] of [['linux', k.linux], ['asm-generic', k.asmGeneric], ['asm', k.asm]] as const) {
    rmSync(path.join(ki, name), { force: true });
    symlinkSync(target, path.join(ki, name));
  }
  return ki;
}

/** Write the specs file and the wrapper for a toolchain into `dir` (paths inside are `finalDir`'s). */
function writeToolchain(dir: string, finalDir: string, layout: Omit<ToolchainLayout, 'kernelInclude'>, k: { linux: string; asmGeneric: string; asm: string }, gcc: string, what: string): void {
  writeKernelInclude(dir, k);
  const t: ToolchainLayout = { ...layout, kernelInclude: path.join(finalDir, 'kernel-include') };
  mkdirSync(path.join(dir, 'bin'), { recursive: true });
  writeFileSync(path.join(dir, 'musl-gcc.specs'), specsText(t));
  const w = path.join(dir, 'bin', 'musl-gcc');
  writeFileSync(w, wrapperText(gcc, path.join(finalDir, 'musl-gcc.specs'), what));
  chmodSync(w, 0o755);
}

/** The host's gcc by the name a user types (not its versioned real file, which an upgrade replaces). */
function hostGcc(): string | null {
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
async function probeMusl(m: MuslInstall): Promise<LibcProof> {
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

function suiteMarker(cacheDir: string, suite: string): string {
  return path.join(muslDir(cacheDir), 'by-suite', `${suite}.json`);
}

/** Download, unpack, prove and lay out one Debian suite's musl. Returns the proved version. */
async function provisionSuite(suite: DebianSuite, opts: AdapterOptions, log: (l: string) => void): Promise<string> {
  const root = muslDir(opts.cacheDir);
  const marker = suiteMarker(opts.cacheDir, suite);
  const have = readJson<{ version: string }>(marker);
  if (have && installedVersions(opts.cacheDir).some((m) => m.version === have.version)) {
    log(`musl: ${suite} is provisioned (musl ${have.version} in ${path.join(root, have.version)})`);
    return have.version;
  }
  const gcc = hostGcc();
  if (!gcc) throw new Error('musl: no gcc to build the musl toolchain with (as root: apt-get install gcc)');
  const k = await kernelHeaders(opts.cacheDir, log, true);
  if (!k) throw new Error('musl: no kernel headers (apt-get install linux-libc-dev)');

  mkdirSync(root, { recursive: true });
  const stage = path.join(root, `.stage-${suite}-${process.pid}`);
  rmSync(stage, { recursive: true, force: true });
  try {
    log(`musl: downloading musl and musl-dev from Debian ${suite}`);
    const debs = new PrivateApt(opts.cacheDir).download([`musl/${suite}`, `musl-dev/${suite}`], path.join(stage, 'debs'), log);
    const unpacked = path.join(stage, 'root');
    for (const d of debs) unpackDeb(d, unpacked);
    const packages = { musl: debVersion(debs[0]), 'musl-dev': debVersion(debs[1]) };
    const libc = [`usr/lib/${TRIPLE}/libc.so`, `lib/${TRIPLE}/libc.so`].map((p) => path.join(unpacked, p)).find(isFile);
    const devLib = path.join(unpacked, 'usr/lib', TRIPLE);
    const include = path.join(unpacked, 'usr/include', TRIPLE);
    if (!libc || !isFile(path.join(devLib, 'crt1.o')) || !isDir(include))
      throw new Error(`musl: the ${suite} packages (musl ${packages.musl}) do not have the expected layout (libc.so, crt1.o, include/${TRIPLE})`);
    // The version is what the unpacked libc says about itself, not the package's label.
    const r = capture(libc, [], { env: { PATH: '/usr/bin:/bin' }, timeoutMs: 10_000 });
    const banner = (r.stdout + r.stderr).trim();
    const proved = parseBanner(banner);
    if (proved.name !== 'musl') throw new Error(`musl: ${libc} from Debian ${suite} (musl ${packages.musl}) did not say it is musl: ${banner.slice(0, 200)}`);
    const version = proved.version;
    log(`musl: Debian ${suite} musl ${packages.musl} is musl ${version}`);
    const final = path.join(root, version);
    if (!existsSync(final)) {
      try {
        await buildAtomically(final, (tmp) => {
          const lib = path.join(tmp, 'lib');
          mkdirSync(lib, { recursive: true });
          // libc.so as a real file in lib/, the loader name beside it: the loader's prefix (dirname of lib/) is
          // then this directory, and musl reads its library path from <prefix>/etc/ld-musl-x86_64.path.
          copyFileSync(libc, path.join(lib, 'libc.so'));
          chmodSync(path.join(lib, 'libc.so'), 0o755);
          symlinkSync('libc.so', path.join(lib, LOADER));
          for (const f of readdirSync(devLib)) if (/\.(o|a)$/.test(f)) copyFileSync(path.join(devLib, f), path.join(lib, f));
          renameSync(include, path.join(tmp, 'include'));
          mkdirSync(path.join(tmp, 'etc'), { recursive: true });
          writeFileSync(path.join(tmp, 'etc', `ld-musl-x86_64.path`), `${path.join(final, 'lib')}\n`);
          writeToolchain(tmp, final, { includes: [path.join(final, 'include')], lib: path.join(final, 'lib'), loader: path.join(final, 'lib', LOADER) }, k, gcc, `musl ${version} (Debian ${suite} ${packages['musl-dev']})`);
          const info: MuslInfo = { version, banner: banner.split('\n').slice(0, 2).join(' '), suite, packages, gcc, provisioned: new Date().toISOString() };
          writeFileSync(path.join(tmp, 'info.json'), JSON.stringify(info, null, 1) + '\n');
        });
      } catch (e) {
        if (!existsSync(final)) throw e; // else: a concurrent provision won the rename
      }
      // The specs name the final paths, so the toolchain can only be tried once it is in place.
      const m = installedVersions(opts.cacheDir).find((x) => x.version === version);
      try {
        if (!m) throw new Error(`${final} is incomplete`);
        const p = await probeMusl(m);
        if (p.name !== 'musl' || p.version !== version) throw new Error(`the probe loaded ${p.path}: ${p.name} ${p.version}`);
      } catch (e) {
        rmSync(final, { recursive: true, force: true });
        throw new Error(`musl ${version}: the toolchain does not work: ${(e as Error).message}`);
      }
    } else log(`musl: musl ${version} is already in ${final}`);
    mkdirSync(path.dirname(marker), { recursive: true });
    writeFileSync(marker, JSON.stringify({ version, packages }) + '\n');
    log(`musl: musl ${version} ready in ${final}`);
    return version;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------------------------------
// --libc PATH: a musl install prefix or build tree

export interface MuslPrefix {
  prefix: string;
  kind: 'prefix' | 'build tree';
  libc: string;
  lib: string;
  includes: string[];
  version: string;
  banner: string;
}

/** Does `dir` look like glibc (an install prefix, build tree or lib dir)? Such paths belong to another adapter. */
export function looksLikeGlibc(dir: string): boolean {
  const candidates = ['', 'lib', 'lib64', 'lib/x86_64-linux-gnu', 'usr/lib', 'usr/lib/x86_64-linux-gnu'];
  for (const c of candidates) {
    if (existsSync(path.join(dir, c, 'libc.so.6'))) return true;
    if (existsSync(path.join(dir, c, 'ld-linux-x86-64.so.2'))) return true;
  }
  if (existsSync(path.join(dir, 'elf', 'ld.so')) || existsSync(path.join(dir, 'elf', 'ld-linux-x86-64.so.2'))) return true;
  for (const c of ['libc.so', 'lib/libc.so']) {
    const f = path.join(dir, c);
    if (!isFile(f)) continue;
    try {
      const head = readFileSync(f).subarray(0, 4096).toString('latin1');
      if (/GNU ld script/.test(head) || /GNU C Library/.test(head)) return true;
    } catch {
      /* unreadable */
    }
    // the real glibc libc.so of a build tree announces itself when run
    const b = proveLibcFile(path.resolve(f));
    if (b.name === 'glibc') return true;
  }
  return false;
}

/**
 * Check that PATH is a musl install prefix (`make install prefix=PATH`: PATH/lib/libc.so, PATH/include) or a musl
 * build tree (lib/libc.so, include/, obj/include, arch/x86_64) and prove its version. Throws a clear error otherwise.
 */
export function muslPrefix(p: string): MuslPrefix {
  const prefix = path.resolve(p);
  const how = `expected a musl install prefix (PATH/lib/libc.so and PATH/include, as musl's \`./configure --prefix=PATH --syslibdir=PATH/lib && make install\` leaves them; without --syslibdir, make install as root replaces the system's /lib/ld-musl-x86_64.so.1) or a musl build tree (PATH/lib/libc.so after \`make\`)`;
  if (!isDir(prefix)) throw new Error(`--libc ${p}: no such directory; ${how}`);
  const libc = path.join(prefix, 'lib', 'libc.so');
  if (!isFile(libc)) throw new Error(`--libc ${p}: not a musl prefix: ${libc} does not exist; ${how}`);
  const r = capture(libc, [], { env: { PATH: '/usr/bin:/bin' }, timeoutMs: 10_000 });
  const banner = (r.stdout + r.stderr).trim();
  const proved = parseBanner(banner);
  if (proved.name !== 'musl')
    throw new Error(`--libc ${p}: not a musl prefix: ${libc} is not musl's loader (run, it said: ${JSON.stringify(banner.split('\n')[0]?.slice(0, 120) ?? '')}${r.error ? `; ${r.error}` : ''}); ${how}`);
  const buildTree = isFile(path.join(prefix, 'obj', 'include', 'bits', 'alltypes.h')) && isDir(path.join(prefix, 'arch', 'x86_64'));
  const includes = buildTree
    ? ['obj/include', 'arch/x86_64', 'arch/generic', 'include'].map((d) => path.join(prefix, d))
    : [path.join(prefix, 'include')];
  if (!isFile(path.join(prefix, 'include', 'stdio.h')))
    throw new Error(`--libc ${p}: musl ${proved.version} has no headers in ${path.join(prefix, 'include')} (install with \`make install\` after \`./configure --prefix=${p} --syslibdir=${p}/lib\`); ${how}`);
  for (const f of ['crt1.o', 'crti.o', 'crtn.o'])
    if (!isFile(path.join(prefix, 'lib', f))) throw new Error(`--libc ${p}: musl ${proved.version} lacks ${path.join(prefix, 'lib', f)} (its C start files); ${how}`);
  return { prefix, kind: buildTree ? 'build tree' : 'prefix', libc, lib: path.join(prefix, 'lib'), includes, version: proved.version, banner: banner.split('\n').slice(0, 2).join(' ') };
}

/** The toolchain for a --libc prefix, in <cache>/musl/local/<key>/ (keyed by the prefix and its libc's identity). */
async function localInstall(mp: MuslPrefix, cacheDir: string): Promise<MuslInstall> {
  const gcc = hostGcc();
  if (!gcc) throw new Error(`--libc ${mp.prefix}: no gcc to compile against it (as root: apt-get install gcc)`);
  const st = statSync(mp.libc);
  const headers = statSync(path.join(mp.prefix, 'include', 'stdio.h'));
  const key = createHash('sha256').update([mp.prefix, st.size, st.mtimeMs, headers.mtimeMs, gcc].join('\0')).digest('hex').slice(0, 16);
  const dir = path.join(muslDir(cacheDir), 'local', `${mp.version}-${key}`);
  const cc = path.join(dir, 'bin', 'musl-gcc');
  if (!isFile(cc)) {
    const k = await kernelHeaders(cacheDir, () => {}, false);
    if (!k) throw new Error(`--libc ${mp.prefix}: no kernel headers in /usr/include (apt-get install linux-libc-dev, or ${PROVISION_CMD} which fetches them)`);
    try {
      await buildAtomically(dir, (tmp) => {
        writeToolchain(tmp, dir, { includes: mp.includes, lib: mp.lib, loader: mp.libc }, k, gcc, `musl ${mp.version} from ${mp.prefix}`);
        writeFileSync(path.join(tmp, 'prefix.json'), JSON.stringify({ ...mp }, null, 1) + '\n');
      });
    } catch (e) {
      if (!isFile(cc)) throw e;
    }
  }
  return { version: mp.version, loader: mp.libc, cc, work: dir, info: null, prefix: mp.prefix };
}

// ------------------------------------------------------------------------------------------------------------------
// runtimes

/**
 * Hook for musl-linked interpreters (a later provision step builds them): the first existing path wins. They run
 * through the environment's loader, like every program here.
 */
export function muslRuntimeCandidates(cacheDir: string, runtime: FoundRuntime): string[] {
  // the runtimes adapters/musl-runtimes.ts builds (python, ruby); none for the others
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

  async provision(what, opts, log) {
    // `musl-debug`: also build each provisioned version from its Debian source with -g (6-14 min each on 2 cores),
    // so hung children's backtraces name musl's functions; the columns then run on that build
    const debug = what.includes('musl-debug');
    const wanted = MUSL_SUITES.filter((s) => what.includes('musl') || debug || what.includes(`musl-${s.label}`));
    if (!wanted.length) return;
    if (process.arch !== 'x64') throw new Error(`musl: this adapter knows x86_64 only (${LOADER}); this machine is ${process.arch}`);
    // one provision of musl at a time per cache: a second one waits, then finds the versions built and reuses them
    await withLock(lockFile(opts.cacheDir, 'provision-musl'), 'provisioning musl', log, async () => {
      // lazily: musl-debug.ts uses musl-runtimes.ts, which imports this module
      const { buildDebugMusl } = await import('./musl-debug.ts');
      for (const s of wanted) {
        const version = await provisionSuite(s.suite, opts, log);
        const m = installedVersions(opts.cacheDir).find((x) => x.version === version);
        if (!m?.info) throw new Error(`musl ${version}: ${path.join(muslDir(opts.cacheDir), version)} is incomplete`);
        // the libc the environment runs on, when asked for: Debian's source of this very package version, built with -g
        if (debug) await buildDebugMusl(opts.cacheDir, s.suite, version, m.info.packages.musl, log);
      }
    });
  },

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
