// Python and Ruby linked against musl: discovery only. `provision musl-python musl-ruby` (provision/musl-runtimes.ts)
// builds them from Debian's own source packages with the musl toolchain into the layout the musl adapter looks for
// (`<cache>/musl-runtimes/{python,ruby}/bin/{python3,ruby}`, see muslRuntimeCandidates in adapters/musl.ts); this
// adapter offers no environment of its own (the musl adapter runs the interpreters through each musl version's
// loader) and reports the builds' state (and that of the libuv sources, provision/libuv.ts, and of the free-threaded
// builds, provision/python-ft-build.ts). What is kept here is what the status and the provisioners both read: the
// layout, the recipe revision, the sources each build takes, the modules it must have, the build record, and how a
// musl libc is proved from a process's maps.

import path from 'node:path';
import { isFile, readJson } from '../src/util.ts';
import { capture, cleanBaseEnv } from '../src/proc.ts';
import { libcFromMaps, proveLibcFile } from '../src/probe.ts';
import type { Adapter, AdapterStatus, HarnessResult, LibcProof } from '../src/types.ts';
import type { DebianSuite } from './apt.ts';
import { which } from './host.ts';
import { installedVersions, LOADER, muslRuntimeCandidates, type MuslInstall } from './musl.ts';
import type { SourcePackage } from '../provision/debian-source.ts';

export type MuslRuntime = 'python' | 'ruby';
export const MUSL_RUNTIMES: MuslRuntime[] = ['python', 'ruby'];

/** Bump one when the recipe changes in a way that needs a rebuild of it. */
export const RECIPE_REVISION: Record<MuslRuntime | 'deps', number> = { deps: 1, python: 2, ruby: 2 };

/** The Debian suite the musl runtimes' and libuv's sources come from. */
export const SUITE: DebianSuite = 'bookworm';
const provisionCmd = (rt: MuslRuntime) => `npx forkmatrix provision musl-${rt}`;

/** The Debian source packages each build needs, in build order (the dependencies first). */
export const DEPENDENCY_SOURCES: SourcePackage[] = [
  { pkg: 'zlib', suite: SUITE },
  { pkg: 'libffi', suite: SUITE },
];
export const RUNTIME_SOURCE: Record<MuslRuntime, SourcePackage> = {
  python: { pkg: 'python3.11', suite: SUITE },
  ruby: { pkg: 'ruby3.1', suite: SUITE },
};


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

// ------------------------------------------------------------------------------------------------------------------
// cache key

export interface BuildKey {
  recipe: number;
  runtime: MuslRuntime | 'deps';
  sources: Record<string, string>; // source package -> Debian version
  toolchain: { musl: string; musl_dev: string | null; gcc: string | null };
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
// libuv (runners/libuv): the libuv1 sources provision/libuv.ts unpacks, where it writes them

export const LIBUV_SOURCE: SourcePackage = { pkg: 'libuv1', suite: SUITE };
export const LIBUV_PROVISION_NAME = 'libuv';
export const libuvMarker = (cacheDir: string) => path.join(cacheDir, 'libuv', 'source', 'current.json');
/** Every provisioned libuv source: [{ package, version, dir, upstream, why }], bookworm's first. */
export const libuvSourcesFile = (cacheDir: string) => path.join(cacheDir, 'libuv', 'source', 'sources.json');

export interface LibuvSourceEntry {
  package: string;
  version: string; // Debian version
  dir: string;
  upstream: string; // libuv version, e.g. 1.50.0
  why: string;
}

export const muslRuntimesAdapter: Adapter = {
  name: 'musl-runtimes',

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
