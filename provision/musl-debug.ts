// musl with symbols: Debian's musl *source* package of exactly the provisioned version (the binary package's
// Debian version, e.g. 1.2.3-1), Debian's patches applied (dpkg-source -x), built here with the host's gcc and
// CFLAGS='-O2 -g', rootless, into <cache>/musl/debug/<version>/ (an install prefix: lib/libc.so, its loader name,
// include/, crt files). Debian's packages are stripped, so a hung child's gdb backtrace on them reads `?? ()` in
// every libc frame; on this build it names musl's functions (__lock, __lockfile, __timedwait, ...).
//
// The musl environments then RUN on this build (option (a)): a stripped Debian binary plus separately built
// symbols (option (b)) would only be true if the code were identical, and it is not: Debian compiled its binaries
// with its suite's gcc (10 in bullseye, 12 in bookworm, 14 in trixie) and its own flags (measured: the .text
// sections of the two libc.so differ in size and bytes, see muslDebugCompare), so addresses from one binary
// looked up in the other's symbols would name wrong functions. Same upstream version and the same Debian patches,
// a different compiler: the environment's detail says "built here from Debian's source with -g", and the libc
// proof still reads the banner of the very file the harness mapped.
//
// Run by the `musl` provisioner (provision/musl.ts) for `provision musl-debug`; the musl adapter
// (adapters/musl.ts debugBuild) finds the build and runs the environments on it.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { capture, cleanBaseEnv, runGrouped } from '../src/proc.ts';
import { parseBanner } from '../src/probe.ts';
import { readJson } from '../src/util.ts';
import { buildAtomically, PrivateApt, type DebianSuite } from '../adapters/apt.ts';
import { quiltSeries, unpackSource } from './debian-source.ts';
import { debugMuslDir, LOADER, muslDir, type MuslDebugInfo } from '../adapters/musl.ts';

const BUILD_TIMEOUT_MS = 45 * 60_000; // measured 1-3 min per version at load ~25 on 2 cores; generous
const CFLAGS = '-O2 -g';
/** Bumped when the recipe changes what gets built (2: debian/clean's deletions, e.g. no crypt, as in Debian's build). */
export const DEBUG_RECIPE = 2;

function tail(s: string, n = 4): string {
  return s.trim().split('\n').slice(-n).join(' ').slice(0, 800);
}

/** The one `musl_<version>.dsc` in `dir`, or null. */
function dscIn(dir: string, debianVersion: string): string | null {
  const want = `musl_${debianVersion.replace(/^\d+:/, '')}.dsc`;
  return readdirSync(dir).includes(want) ? path.join(dir, want) : null;
}

/** What was fetched: the Debian source package, or (when the mirror lacks its packaging) upstream's tarball only. */
type MuslSource = { dsc: string; orig?: undefined; note?: undefined } | { dsc?: undefined; orig: string; note: string };

/**
 * Fetch Debian's musl source of exactly `debianVersion` (the binary package's version: `apt-get source
 * musl=VERSION`) into <cache>/musl/sources/<suite>/ (kept: a rebuild downloads nothing). Measured here: the mirror
 * no longer serves bullseye's musl_1.2.2-1.dsc and .debian.tar.xz (404) but does serve its orig tarball (which apt
 * checks against the Sources index's hashes): then the build is of that upstream tarball, and says so.
 */
function fetchMuslSource(cacheDir: string, suite: DebianSuite, debianVersion: string, log: (l: string) => void): MuslSource {
  const dir = path.join(muslDir(cacheDir), 'sources', suite);
  mkdirSync(dir, { recursive: true });
  const upstream = debianVersion.replace(/^\d+:/, '').replace(/-[^-]+$/, '');
  const origIn = () => readdirSync(dir).find((f) => f.startsWith(`musl_${upstream}.orig.tar.`) && !f.endsWith('.asc'));
  const have = dscIn(dir, debianVersion);
  if (have) return { dsc: have };
  log(`musl: fetching Debian's musl source ${debianVersion} (${suite})`);
  try {
    new PrivateApt(cacheDir).source(`musl=${debianVersion}`, dir, log);
  } catch (e) {
    const orig = origIn();
    if (!orig) throw e;
    const note = `Debian's ${debianVersion} packaging is not on the mirror (${(e as Error).message.slice(0, 200)}): built from upstream's musl_${upstream} tarball as Debian ships it, without Debian's packaging`;
    log(`musl: ${note}`);
    return { orig: path.join(dir, orig), note };
  }
  const got = dscIn(dir, debianVersion);
  if (!got) throw new Error(`musl: apt-get source musl=${debianVersion} left no musl_${debianVersion}.dsc in ${dir} (files: ${readdirSync(dir).join(', ')})`);
  return { dsc: got };
}

/**
 * Build (once) the `-g` musl of one provisioned version. `version` is what Debian's binary says it is;
 * `debianVersion` the binary package's version, whose source is built. Returns the install prefix.
 */
export async function buildDebugMusl(
  cacheDir: string, suite: DebianSuite, version: string, debianVersion: string, log: (l: string) => void,
): Promise<string> {
  const final = debugMuslDir(cacheDir, version);
  const info = readJson<MuslDebugInfo>(path.join(final, 'info.json'));
  if (existsSync(final) && info?.debian === debianVersion && info.recipe === DEBUG_RECIPE) {
    log(`musl: musl ${version} with symbols is built (${final})`);
    return final;
  }
  if (existsSync(final)) {
    // built from another Debian revision (the suite moved on) or by an older recipe: rebuild
    log(`musl: ${final} was built from Debian ${info?.debian ?? '?'} by recipe ${info?.recipe ?? 1}, not ${debianVersion} by recipe ${DEBUG_RECIPE}: rebuilding`);
    rmSync(final, { recursive: true, force: true });
  }
  for (const tool of ['make', 'gcc']) if (!capture('sh', ['-c', `command -v ${tool}`]).stdout.trim())
    throw new Error(`musl: no ${tool} to build musl ${version} with symbols (as root: apt-get install build-essential)`);
  const source = fetchMuslSource(cacheDir, suite, debianVersion, log);
  const t0 = performance.now();
  await buildAtomically(final, async (tmp) => {
    const src = path.join(tmp, '.src');
    const env = cleanBaseEnv();
    const applied: string[] = [];
    if (source.dsc) {
      unpackSource({ pkg: 'musl', version: debianVersion, dsc: source.dsc }, src); // dpkg-source -x: Debian's patches
      // dpkg-source -x links the orig tarball beside the directory it extracts into: not part of the install
      for (const f of readdirSync(tmp)) if (f.startsWith('musl_')) rmSync(path.join(tmp, f), { force: true });
      const series = path.join(src, 'debian', 'patches', 'series');
      if (existsSync(series)) applied.push(...quiltSeries(readFileSync(series, 'utf8')).map((p) => `patch ${p.patch}`));
      // Debian's build starts with `debian/rules clean`, whose dh_clean deletes what debian/clean lists (bookworm,
      // trixie: src/crypt/ and include/crypt.h, so Debian's libc.so has no crypt): the same deletions here
      const clean = path.join(src, 'debian', 'clean');
      if (existsSync(clean)) {
        const entries = readFileSync(clean, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
        const bad = entries.find((e) => !/^[\w.*+/-]+$/.test(e) || e.startsWith('/') || e.split('/').includes('..'));
        if (bad) throw new Error(`musl ${version}: debian/clean has an entry this recipe does not apply: ${JSON.stringify(bad)}`);
        const r = capture('sh', ['-c', `rm -rf -- ${entries.join(' ')}`], { env, cwd: src, timeoutMs: 60_000 });
        if (r.code !== 0) throw new Error(`musl ${version}: removing debian/clean's files failed: ${tail(r.stderr)}`);
        applied.push(`debian/clean (${entries.filter((e) => !e.startsWith('debian/')).join(' ')})`);
      }
      // debian/rules also changes the source tree before configure (bookworm, trixie: copy_fts adds musl-fts to
      // libc.so and fts.h); run Debian's own target rather than copy what it does
      if (/^copy_fts:/m.test(readFileSync(path.join(src, 'debian', 'rules'), 'utf8'))) {
        const r = capture('make', ['-f', 'debian/rules', 'copy_fts'], { env, cwd: src, timeoutMs: 120_000 });
        if (r.code !== 0) throw new Error(`musl ${version}: debian/rules copy_fts failed: ${tail(r.stderr || r.stdout)}`);
        applied.push('debian/rules copy_fts');
      }
    } else {
      mkdirSync(src, { recursive: true });
      const r = capture('tar', ['-xf', source.orig!, '-C', src, '--strip-components=1'], { env, timeoutMs: 120_000 });
      if (r.code !== 0) throw new Error(`musl ${version}: tar -xf ${source.orig} failed: ${tail(r.stderr)}`);
    }
    const logFile = path.join(tmp, 'build.log');
    // Debug info names the source as musl-<debian version>/src/..., not this temporary directory.
    const cflags = `${CFLAGS} -ffile-prefix-map=${src}=musl-${debianVersion}`;
    const steps: [string, string[]][] = [
      ['./configure', [`--prefix=${final}`, `--syslibdir=${final}/lib`, `CFLAGS=${cflags}`]],
      ['make', ['-j2']],
      // DESTDIR: the files land in tmp (renamed to `final` when complete), their configured paths are `final`'s
      ['make', ['install', `DESTDIR=${path.join(tmp, '.dest')}`]],
    ];
    for (const [cmd, args] of steps) {
      const r = await runGrouped(cmd, args, { env, cwd: src, logFile: `${logFile}.part`, timeoutMs: BUILD_TIMEOUT_MS });
      const out = capture('cat', [`${logFile}.part`]).stdout;
      writeFileSync(logFile, out, { flag: 'a' });
      if (r.code !== 0) throw new Error(`musl ${version} (Debian ${debianVersion} source): ${cmd} ${args.join(' ')} failed${r.timedOut ? ` (timed out after ${BUILD_TIMEOUT_MS / 60000} min)` : ''}: ${tail(out)}`);
    }
    rmSync(`${logFile}.part`, { force: true });
    const dest = path.join(tmp, '.dest', final);
    for (const d of readdirSync(dest)) renameSync(path.join(dest, d), path.join(tmp, d));
    rmSync(path.join(tmp, '.dest'), { recursive: true, force: true });
    rmSync(src, { recursive: true, force: true });
    // the loader name as a relative link (make install writes an absolute one), and the library path file musl
    // reads from <dirname of the loader's dir>/etc/ (only this prefix's lib/, as for Debian's binary)
    rmSync(path.join(tmp, 'lib', LOADER), { force: true });
    symlinkSync('libc.so', path.join(tmp, 'lib', LOADER));
    mkdirSync(path.join(tmp, 'etc'), { recursive: true });
    writeFileSync(path.join(tmp, 'etc', 'ld-musl-x86_64.path'), `${path.join(final, 'lib')}\n`);
    // proved, not assumed: the built libc says which musl it is, and carries symbols
    const libc = path.join(tmp, 'lib', 'libc.so');
    const b = capture(libc, [], { env: { PATH: '/usr/bin:/bin' }, timeoutMs: 10_000 });
    const banner = (b.stdout + b.stderr).trim();
    const proved = parseBanner(banner);
    if (proved.name !== 'musl' || proved.version !== version)
      throw new Error(`musl: the libc built from Debian's musl ${debianVersion} source says ${JSON.stringify(banner.slice(0, 160))}, not musl ${version}`);
    const sections = capture('readelf', ['-S', '-W', libc]).stdout;
    if (!/\.debug_info\b/.test(sections)) throw new Error(`musl ${version}: the build has no .debug_info (CFLAGS ${CFLAGS} not honoured?)`);
    const seconds = Math.round((performance.now() - t0) / 100) / 10;
    const gcc = capture('gcc', ['-dumpfullversion']).stdout.trim();
    const rec: MuslDebugInfo = {
      version, banner: banner.split('\n').slice(0, 2).join(' '), suite, debian: debianVersion, recipe: DEBUG_RECIPE, cflags: CFLAGS, gcc: `gcc ${gcc}`,
      source: source.dsc ? `Debian source ${path.basename(source.dsc)}${applied.length ? ` + ${applied.join(', ')}` : ' (no patches)'}` : path.basename(source.orig!),
      ...(source.note ? { note: source.note } : {}),
      build_seconds: seconds, built: new Date().toISOString(),
    };
    writeFileSync(path.join(tmp, 'info.json'), JSON.stringify(rec, null, 1) + '\n');
    log(`musl: musl ${version} built from Debian's source ${debianVersion} with ${CFLAGS} in ${seconds} s (${final})`);
  }, log);
  return final;
}

/**
 * Is Debian's binary the same code as the one built here? Compares the .text sections (size and bytes): they
 * differ (another compiler), which is why the environments run on the build (see the header). And is it the same
 * library? The exported symbols (`nm -D --defined-only`) of the two, which the test wants equal.
 */
export function muslDebugCompare(debianLibc: string, builtLibc: string): { same: boolean; debian: number; built: number; onlyDebian: string[]; onlyBuilt: string[] } {
  const exports = (f: string) => new Set(capture('nm', ['-D', '--defined-only', f], { timeoutMs: 20_000 }).stdout.split('\n').map((l) => l.trim().split(/\s+/)[2]).filter(Boolean));
  const de = exports(debianLibc);
  const be = exports(builtLibc);
  const onlyDebian = [...de].filter((x) => !be.has(x)).sort();
  const onlyBuilt = [...be].filter((x) => !de.has(x)).sort();
  const size = (f: string) => {
    const m = /\s\.text\s+PROGBITS\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)/.exec(capture('readelf', ['-S', '-W', f]).stdout);
    return m ? parseInt(m[1], 16) : -1;
  };
  const bytes = (f: string) => capture('objcopy', ['-O', 'binary', '--only-section=.text', f, '/dev/stdout'], { timeoutMs: 20_000 }).stdout;
  const debian = size(debianLibc);
  const built = size(builtLibc);
  return { same: debian === built && debian > 0 && bytes(debianLibc) === bytes(builtLibc), debian, built, onlyDebian, onlyBuilt };
}
