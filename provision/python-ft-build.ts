// Building free-threaded CPython (the recipe and the layout: provision/python-ft.ts). The source comes through the
// private apt state (adapters/apt.ts) and is unpacked with Debian's patches (unpackSource); the musl build reuses the
// musl-runtimes toolchain, CC wrapper and static zlib/libffi (provision/musl-runtimes-build.ts). Each build goes into a
// temporary sibling renamed into place (buildAtomically), is smoke-tested there (threads + fork, required modules,
// the libc proved from its maps, the GIL really off), and is removed again when that fails.

import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildAtomically, PrivateApt } from '../adapters/apt.ts';
import { which } from '../adapters/host.ts';
import { buildToolchain, DEPENDENCY_SOURCES, proveFromMaps, REQUIRED_MODULES } from '../adapters/musl-runtimes.ts';
import { installedVersions } from '../adapters/musl.ts';
import { debGreater, fetchSources, shq, tail, unpackSource, type FetchedSource } from './debian-source.ts';
import { muslProvisioner } from './musl.ts';
import { buildDeps, buildEnv, ccWrapperText, toolchainProblems, type Ctx } from './musl-runtimes-build.ts';
import { smokeScript, smokeTest, symbolGaps } from './musl-runtimes-smoke.ts';
import { lockFile, withLock } from '../src/lock.ts';
import { capture, cleanBaseEnv, runGrouped } from '../src/proc.ts';
import { isFile, readJson } from '../src/util.ts';
import type { AdapterOptions } from '../src/types.ts';
import type { Provisioner } from './provisioner.ts';
import {
  configureArgs, ftInfoFile, ftKey, ftKeyHash, ftLink, ftRoot, FT_NAMES, FT_VERSIONS, parseFtWord, parseMadison, sourceOrder, staleReason,
  type FtBuildInfo, type FtLibc, type FtToolchain, type FtVersion,
} from './python-ft.ts';

const BUILD_TIMEOUT_MS = 4 * 3600_000; // 2 cores shared by several agents: a build took (see README) tens of minutes

/** The host toolchain (glibc) or the musl-runtimes one (musl: the oldest provisioned musl). */
export function ftToolchain(cacheDir: string, libc: FtLibc): FtToolchain | null {
  if (libc === 'musl') {
    const tc = buildToolchain(cacheDir);
    return tc && { libc, gcc: tc.gcc, libcVersion: tc.musl, libcDev: tc.muslDev };
  }
  const g = capture('gcc', ['-dumpfullversion'], { env: cleanBaseEnv(), timeoutMs: 20_000 });
  const v = capture('getconf', ['GNU_LIBC_VERSION'], { env: cleanBaseEnv(), timeoutMs: 20_000 });
  const glibc = /glibc\s+(\S+)/.exec(v.stdout)?.[1];
  if (g.code !== 0 || !glibc) return null;
  return { libc, gcc: `gcc ${g.stdout.trim()}`, libcVersion: glibc, libcDev: null };
}

/** Source versions of `pkg` in the private apt lists, with their suites (apt-cache madison). */
function madison(cacheDir: string, pkg: string, log: (l: string) => void): string {
  new PrivateApt(cacheDir).update(log);
  const d = path.join(cacheDir, 'apt');
  const r = capture('apt-cache', [
    '-o', `Dir::Etc::SourceList=${path.join(d, 'sources.list')}`, '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', `Dir::State::Lists=${path.join(d, 'lists')}`, '-o', `Dir::Cache=${path.join(d, 'cache')}`,
    '-o', `Dir::State::status=${path.join(d, 'status')}`, '-o', 'Dir::Cache::pkgcache=pkgcache.bin', '-o', 'Dir::Cache::srcpkgcache=srcpkgcache.bin',
    'madison', pkg,
  ], { env: cleanBaseEnv(), timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`apt-cache madison ${pkg} failed: ${tail(r.stderr || r.error || '', 2)}`);
  return r.stdout;
}

/**
 * The newest Debian source of `v` the mirror delivers, downloaded into <cache>/python-ft/sources/<pkg>/<version>/.
 * Throws one line naming every version tried and why it failed.
 */
export function fetchFtSource(cacheDir: string, v: FtVersion, log: (l: string) => void): FetchedSource {
  const order = sourceOrder(parseMadison(madison(cacheDir, v.pkg, log), v.pkg), v.minor, debGreater);
  if (!order.length) throw new Error(`${v.pkg}: no source package in the Debian suites of the private apt lists`);
  const tried: string[] = [];
  for (const e of order) {
    const dir = path.join(cacheDir, 'python-ft', 'sources', v.pkg, e.version.replace(/[^\w.+~-]/g, '_'));
    const dsc = path.join(dir, `${v.pkg}_${e.version.replace(/^\d+:/, '')}.dsc`);
    try {
      if (!isFile(dsc)) {
        log(`python-ft: fetching ${v.pkg} ${e.version} (${e.suite})`);
        new PrivateApt(cacheDir).source(`${v.pkg}=${e.version}`, dir, log);
      }
      if (isFile(dsc)) return { pkg: v.pkg, version: e.version, dsc };
      tried.push(`${e.version}: no ${path.basename(dsc)}`);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      tried.push(`${e.version} (${e.suite}): ${((err as Error).message.match(/\d{3}\s+Not Found/) ?? [(err as Error).message.slice(-120)])[0]}`);
    }
  }
  throw new Error(`${v.pkg}: the Debian mirror delivers no source version (${tried.join('; ')})`);
}

interface Step {
  name: string;
  script: string;
}

/** Run shell steps (niced), each logged to <work>/logs/<name>.log; returns seconds per step; throws with the tail. */
async function runSteps(cacheDir: string, work: string, cwd: string, steps: Step[], env: Record<string, string>, log: (l: string) => void): Promise<Record<string, number>> {
  const secs: Record<string, number> = {};
  mkdirSync(path.join(work, 'logs'), { recursive: true });
  for (const s of steps) {
    const logFile = path.join(work, 'logs', `${s.name}.log`);
    const t0 = Date.now();
    log(`python-ft: ${s.name} ...`);
    const r = await runGrouped('nice', ['-n', '10', '/bin/sh', '-ec', s.script], {
      env: { PATH: '/usr/bin:/bin', HOME: work, LANG: 'C', LC_ALL: 'C', TZ: 'UTC', ...env }, cwd, logFile, timeoutMs: BUILD_TIMEOUT_MS,
    });
    secs[s.name] = Math.round((Date.now() - t0) / 1000);
    if (r.code !== 0 || r.timedOut) {
      const kept = path.join(cacheDir, 'python-ft', 'logs', `${s.name}.log`); // outlives the scratch dir
      mkdirSync(path.dirname(kept), { recursive: true });
      const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
      writeFileSync(kept, text);
      throw new Error(`python-ft: ${s.name} failed (${r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`}); log: ${kept}\n${tail(text, 12)}`);
    }
    log(`python-ft: ${s.name} done (${secs[s.name]} s)`);
  }
  return secs;
}

const GIL_CHECK = ['-c', "import sys, sysconfig, platform; print(platform.python_version(), sysconfig.get_config_var('Py_GIL_DISABLED'), sys._is_gil_enabled())"];

/** The smoke test of a build in its final place: glibc runs it directly, musl through every provisioned loader. */
async function smoke(cacheDir: string, libc: FtLibc, exe: string, scratch: string, log: (l: string) => void) {
  const launchers: { version: string | null; loader: string | null }[] = libc === 'glibc'
    ? [{ version: null, loader: null }]
    : installedVersions(cacheDir).map((m) => ({ version: m.version, loader: m.loader }));
  if (libc === 'musl') {
    const gaps = symbolGaps(path.dirname(path.dirname(exe)), exe, Object.fromEntries(installedVersions(cacheDir).map((m) => [m.version, m.loader])));
    for (const [v, files] of Object.entries(gaps)) {
      const main = Object.keys(files).filter((f) => f.startsWith('bin/'));
      if (main.length) throw new Error(`python-ft: the interpreter needs symbols musl ${v} lacks: ${main.map((f) => `${f}: ${files[f].join(', ')}`).join('; ')}`);
      log(`python-ft: on musl ${v} these modules cannot load: ${Object.keys(files).map((f) => path.basename(f)).join(', ')}`);
    }
  }
  const verified: Record<string, string> = {};
  let rep: { version: string; modules: Record<string, boolean> } | null = null;
  let gil = true;
  for (const l of launchers) {
    const argv = (args: string[]) => (l.loader ? [l.loader, exe, ...args] : [exe, ...args]);
    if (l.loader) {
      const r = await smokeTest('python', exe, l.loader, scratch);
      if (r.libc.name !== 'musl' || r.libc.version !== l.version) throw new Error(`python-ft: ${exe} through ${l.loader} mapped ${r.libc.path} (${r.libc.name} ${r.libc.version})`);
      verified[r.libc.version] = r.libc.path;
      rep = r;
    } else {
      const [cmd, ...args] = argv(smokeScript('python'));
      const r = capture(cmd, args, { env: cleanBaseEnv({ HOME: scratch }), timeoutMs: 120_000 });
      const line = r.stdout.split('\n').find((x) => x.startsWith('{"'));
      if (r.code !== 0 || !line) throw new Error(`python-ft: ${exe}: smoke test failed (exit ${r.code ?? r.signal}): ${tail(r.stderr || r.stdout, 6)}`);
      const out = JSON.parse(line) as { version: string; forks: number; modules: Record<string, boolean>; maps: string };
      const proof = proveFromMaps(out.maps);
      if (!proof || proof.name !== 'glibc') throw new Error(`python-ft: ${exe} mapped no glibc (${proof ? `${proof.name} ${proof.version}` : 'no libc'})`);
      const missing = REQUIRED_MODULES.python.filter((m) => !out.modules[m]);
      if (missing.length) throw new Error(`python-ft: ${exe}: required modules missing: ${missing.join(', ')}`);
      verified[proof.version] = proof.path;
      rep = out;
    }
    const [cmd, ...args] = argv(GIL_CHECK);
    const g = capture(cmd, args, { env: cleanBaseEnv({ HOME: scratch }), timeoutMs: 60_000 });
    const f = g.stdout.trim().split(/\s+/);
    if (g.code !== 0 || f[1] !== '1') throw new Error(`python-ft: ${exe} is not a free-threaded build (Py_GIL_DISABLED=${f[1] ?? '?'}): ${tail(g.stderr, 3)}`);
    if (f[2] !== 'False') throw new Error(`python-ft: ${exe} runs with the GIL enabled (sys._is_gil_enabled() = ${f[2]})`);
    gil = false;
    log(`python-ft: ${f[0]}t runs free-threaded${l.version ? ` on musl ${l.version}` : ''} (sys._is_gil_enabled() = False)`);
  }
  if (!rep) throw new Error('python-ft: no musl to smoke-test on');
  return { version: `${rep.version}t`, modules: rep.modules, verified, gil };
}

/** Point <root>/<minor>t at `target` (relative to root), atomically. */
function switchLink(link: string, target: string): void {
  const tmp = `${link}.link-${process.pid}`;
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, link);
}

/** Build one free-threaded CPython (or find it up to date). */
export async function provisionFt(libc: FtLibc, v: FtVersion, opts: AdapterOptions, log: (l: string) => void): Promise<FtBuildInfo> {
  const t0 = Date.now();
  const { cacheDir } = opts;
  for (const tool of ['make', 'tar', 'find', 'dpkg', 'nice', 'gcc']) if (!which(tool)) throw new Error(`python-ft: ${tool} is missing (as root: apt-get install ${tool === 'find' ? 'findutils' : tool === 'nice' ? 'coreutils' : tool})`);
  if (libc === 'musl' && !installedVersions(cacheDir).length) {
    log('python-ft: no musl provisioned yet: provisioning musl first');
    await muslProvisioner.provision(['musl'], opts, log);
  }
  const tc = ftToolchain(cacheDir, libc);
  if (!tc) throw new Error(libc === 'musl' ? 'python-ft: no musl toolchain (npx forkmatrix provision musl)' : 'python-ft: gcc or getconf GNU_LIBC_VERSION does not run (as root: apt-get install gcc)');
  const mtc = libc === 'musl' ? buildToolchain(cacheDir)! : null;
  if (mtc) {
    const problems = toolchainProblems(mtc);
    if (problems.length) throw new Error(`python-ft: the musl ${mtc.musl} toolchain is not usable: ${problems.join('; ')} (re-run npx forkmatrix provision musl)`);
  }
  const main = fetchFtSource(cacheDir, v, log);
  const deps = libc === 'musl' ? fetchSources(cacheDir, DEPENDENCY_SOURCES, log) : [];
  const key = ftKey(v.minor, Object.fromEntries([main, ...deps].map((s) => [s.pkg, s.version])), tc);
  const hash = ftKeyHash(key);
  const root = ftRoot(cacheDir, libc);
  const link = ftLink(cacheDir, libc, v.minor);
  const infoFile = ftInfoFile(cacheDir, libc, v.minor);
  const have = readJson<FtBuildInfo>(infoFile);
  if (have && have.hash === hash && isFile(path.join(link, 'bin', 'python3'))) {
    log(`python-ft: ${FT_NAMES[libc]} ${have.version} is up to date (${main.pkg} ${main.version}; ${tc.gcc}, ${libc} ${tc.libcVersion}): ${path.join(link, 'bin', 'python3')}`);
    return have;
  }
  if (have) log(`python-ft: the ${libc} ${v.minor}t build is stale (${staleReason(have.key, key) ?? 'its files are gone'}): rebuilding`);

  const final = path.join(root, 'builds', `${v.minor}t-${hash}`);
  const work = path.join(root, `work-${v.minor}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(path.join(work, 'bin'), { recursive: true });
  let steps: Record<string, number> = {};
  let info: FtBuildInfo;
  try {
    let env: Record<string, string> = { CFLAGS: '-O2' };
    if (mtc) {
      const cc = path.join(work, 'bin', 'cc');
      writeFileSync(cc, ccWrapperText(mtc.cc));
      chmodSync(cc, 0o755);
      const ctx: Ctx = { cacheDir, tc: mtc, work, cc, log };
      const depDir = await buildDeps(ctx, deps);
      env = buildEnv(ctx, depDir, {
        CFLAGS: '-O2',
        LIBFFI_CFLAGS: `-I${depDir}/include`, LIBFFI_LIBS: `-L${depDir}/lib -lffi`,
        ZLIB_CFLAGS: `-I${depDir}/include`, ZLIB_LIBS: `-L${depDir}/lib -lz`,
      });
    }
    rmSync(final, { recursive: true, force: true }); // a half-finished earlier attempt of the same key
    await buildAtomically(final, async (tmp) => {
      const src = path.join(work, 'src');
      unpackSource(main, src);
      const bdir = path.join(work, 'build');
      const stage = path.join(work, 'stage');
      mkdirSync(bdir, { recursive: true });
      const name = `${FT_NAMES[libc]}-${v.minor}`;
      steps = await runSteps(cacheDir, work, bdir, [
        { name: `${name}-configure`, script: [path.join(src, 'configure'), ...configureArgs(final, libc)].map(shq).join(' ') },
        { name: `${name}-make`, script: 'make -j2' },
        { name: `${name}-install`, script: `make install DESTDIR=${shq(stage)}` },
      ], env, log);
      const staged = path.join(stage, final);
      if (!existsSync(staged)) throw new Error(`python-ft: make install left nothing in ${staged}`);
      for (const f of readdirSync(staged)) renameSync(path.join(staged, f), path.join(tmp, f));
      rmSync(path.join(tmp, 'lib', `python${v.minor}t`, 'test'), { recursive: true, force: true });
      if (!isFile(path.join(tmp, 'bin', 'python3'))) symlinkSync(`python${v.minor}t`, path.join(tmp, 'bin', 'python3'));
      writeFileSync(path.join(tmp, 'forkmatrix-key.json'), JSON.stringify(key, null, 1) + '\n');
    }, log);
    try {
      const exe = path.join(final, 'bin', 'python3');
      const s = await smoke(cacheDir, libc, exe, work, log);
      info = {
        key, hash, dir: final, executable: exe, version: s.version, gil: s.gil, modules: s.modules, verified: s.verified,
        built: new Date().toISOString(), build_seconds: Math.round((Date.now() - t0) / 1000), steps,
      };
      writeFileSync(path.join(final, 'forkmatrix-build.json'), JSON.stringify(info, null, 1) + '\n');
    } catch (e) {
      rmSync(final, { recursive: true, force: true });
      throw e;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  switchLink(link, path.relative(root, final));
  writeFileSync(infoFile + '.tmp', JSON.stringify(info, null, 1) + '\n');
  renameSync(infoFile + '.tmp', infoFile);
  for (const f of readdirSync(path.join(root, 'builds'))) {
    if (f.startsWith(`${v.minor}t-`) && f !== path.basename(final) && !f.includes('.tmp-') && !f.endsWith('.lock')) rmSync(path.join(root, 'builds', f), { recursive: true, force: true });
  }
  const without = ['zlib', '_hashlib', '_ssl', 'pyexpat', '_sqlite3', '_bz2', '_lzma'].filter((m) => info.modules[m] === false);
  log(`python-ft: ${FT_NAMES[libc]} ${info.version} ready: ${path.join(link, 'bin', 'python3')} (${info.build_seconds} s: ${Object.entries(steps).map(([k, s]) => `${k.replace(/^.*-/, '')} ${s} s`).join(', ')}${without.length ? `; without ${without.join(', ')}` : ''})`);
  return info;
}

/** `forkmatrix provision python-ft musl-python-ft@3.13 ...`: each word builds what it names (see parseFtWord). */
export async function provisionFtWords(words: string[], opts: AdapterOptions, log: (l: string) => void): Promise<void> {
  if (process.arch !== 'x64') throw new Error(`python-ft: x86_64 only; this machine is ${process.arch}`);
  for (const w of words) {
    const req = parseFtWord(w);
    if (!req) continue;
    const failures: string[] = [];
    for (const v of req.versions) {
      try {
        await withLock(lockFile(opts.cacheDir, `provision-python-ft-${req.libc}-${v.minor}`), `building ${w} ${v.minor}t`, log, () => provisionFt(req.libc, v, opts, log));
        if (!req.all) break;
      } catch (e) {
        const msg = (e as Error).message;
        // a missing source is worth trying the next version for; a broken build is not
        if (req.all || !/delivers no source|no source package/.test(msg)) throw e;
        log(`python-ft: ${v.minor}t skipped: ${msg}`);
        failures.push(msg);
        if (v === req.versions[req.versions.length - 1]) throw new Error(`${w}: ${failures.join('; ')}`);
      }
    }
  }
}

/** The state of one libc's builds for `forkmatrix list`, without downloading or compiling anything. */
export function ftStatus(cacheDir: string, libc: FtLibc): { id: string; state: 'available' | 'provisionable'; detail: string } {
  const id = FT_NAMES[libc];
  const built = (['3.14', '3.13'] as const)
    .map((m) => readJson<FtBuildInfo>(ftInfoFile(cacheDir, libc, m)))
    .filter((i): i is FtBuildInfo => !!i && isFile(path.join(ftLink(cacheDir, libc, i.key.minor), 'bin', 'python3')));
  if (built.length)
    return { id, state: 'available', detail: built.map((i) => `python ${i.version} (${Object.entries(i.key.sources).map(([p, ver]) => `${p} ${ver}`).join(', ')}; ${i.key.toolchain.gcc}, ${libc} ${i.key.toolchain.libc}; built in ${i.build_seconds} s)`).join('; ') };
  return { id, state: 'provisionable', detail: `free-threaded CPython (--disable-gil) from Debian's python3.14/python3.13 sources on ${libc} (tens of minutes on 2 loaded cores): npx forkmatrix provision ${id}` };
}

/** `python-ft`, `python-ft@3.13` (glibc) and `musl-python-ft`, `musl-python-ft@3.14` (musl): one provisioner per libc. */
function ftProvisioner(libc: FtLibc): Provisioner {
  const name = FT_NAMES[libc];
  return {
    name: `${name}@`,
    needs: `a Debian mirror (apt-get source), gcc, make, dpkg-source${libc === 'musl' ? ', the musl toolchain (provisioned first when absent)' : ''}`,
    writes: `python-ft/${libc}/<minor>t (a link to builds/<minor>t-<key>/), python-ft/${libc}/<minor>t.json, python-ft/sources/`,
    accepts: (word) => word === name || word.startsWith(`${name}@`),
    check: (word) => (parseFtWord(word) ? null : `provision ${word}: no such free-threaded CPython; use ${name} (the newest whose Debian source the mirror has) or ${FT_VERSIONS.map((v) => `${name}@${v.minor}`).join(', ')}`),
    async provision(words, opts, log) {
      await provisionFtWords(words, { cacheDir: opts.cacheDir, extraRuntimes: [], preload: [], libc: [] }, log);
    },
  };
}

export const pythonFtProvisioners: Provisioner[] = [ftProvisioner('glibc'), ftProvisioner('musl')];
