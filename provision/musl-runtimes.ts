// Provisioner `musl-python`, `musl-ruby`: Python and Ruby linked against musl, built from Debian's own source
// packages with the musl toolchain (provision/musl-toolchain.ts), into the layout the musl adapter looks for
// (`<cache>/musl-runtimes/{python,ruby}/bin/{python3,ruby}`, see muslRuntimeCandidates in adapters/musl.ts), which
// runs the interpreters through each musl version's loader; adapters/musl-runtimes.ts reports their state.
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
// Provision names: `musl-python`, `musl-ruby` (each provisions `musl` first when no musl is there yet; one build of
// a runtime at a time per cache, lock `provision-musl-<runtime>`). Sources: provision/debian-source.ts; the shared
// build steps and zlib/libffi: provision/musl-runtimes-build.ts; the smoke test: provision/musl-runtimes-smoke.ts.

import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isFile, readJson } from '../src/util.ts';
import type { AdapterOptions } from '../src/types.ts';
import { buildAtomically } from '../adapters/apt.ts';
import { which } from '../adapters/host.ts';
import { lockFile, withLock } from '../src/lock.ts';
import { installedVersions, LOADER, muslRuntimeCandidates } from '../adapters/musl.ts';
import {
  buildInfoFile, buildToolchain, DEPENDENCY_SOURCES, LIBUV_PROVISION_NAME, MUSL_RUNTIMES, OPTIONAL_MODULES, runtimesDir, RUNTIME_SOURCE,
  type BuildInfo, type MuslRuntime,
} from '../adapters/musl-runtimes.ts';
import { fetchSources, shq, unpackSource } from './debian-source.ts';
import { muslProvisioner } from './musl.ts';
import { buildDeps, buildEnv, buildKey, ccWrapperText, keyHash, step, takeStaged, toolchainProblems, type Ctx } from './musl-runtimes-build.ts';
import { smokeTest, symbolGaps } from './musl-runtimes-smoke.ts';
import { adapterOptionsOf, type Provisioner } from './provisioner.ts';

/** What `forkmatrix provision NAME` names the musl-linked runtimes and the libuv source (provision/libuv.ts). */
export const MUSL_RUNTIME_PROVISION_NAMES = [...MUSL_RUNTIMES.map((r) => `musl-${r}`), LIBUV_PROVISION_NAME];

/** The source fetch plan of a runtime: `pkg/suite` specs for `apt-get source`, dependencies first. */
export function fetchPlan(rt: MuslRuntime): string[] {
  return [...DEPENDENCY_SOURCES, RUNTIME_SOURCE[rt]].map((s) => `${s.pkg}/${s.suite}`);
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
    await muslProvisioner.provision(['musl'], opts, log);
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

export const muslRuntimesProvisioner: Provisioner = {
  name: 'musl-python',
  needs: 'x86_64, a Debian mirror (http), gcc, make, tar, find, dpkg, nm; musl (provisioned first when missing)',
  writes: 'musl-runtimes/{python,ruby} -> builds/<runtime>-<key>/, <runtime>.json, deps/<key>/, sources/, logs/',
  accepts: (word) => MUSL_RUNTIMES.some((rt) => word === `musl-${rt}`),
  check: () => null,
  async provision(what, o, log) {
    const opts = adapterOptionsOf(o);
    const wanted = MUSL_RUNTIMES.filter((rt) => what.includes(`musl-${rt}`));
    if (!wanted.length) return;
    if (process.arch !== 'x64') throw new Error(`musl-runtimes: x86_64 only (${LOADER}); this machine is ${process.arch}`);
    for (const rt of wanted) await withLock(lockFile(opts.cacheDir, `provision-musl-${rt}`), `building musl-${rt}`, log, () => provisionRuntime(rt, opts, log));
  },
};
