// Debian source packages, fetched and unpacked (shared by provision musl-python/musl-ruby, musl-debug, libuv and
// python-ft): `apt-get source --download-only` through the private apt state (adapters/apt.ts) into
// <cache>/musl-runtimes/sources/<pkg>/ (one version kept per package), and unpacked with Debian's patches applied
// (dpkg-source -x, or tar + the quilt series), every file then given one time stamp so make never re-runs
// autoconf/automake/bison on a patched input.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { capture, cleanBaseEnv } from '../src/proc.ts';
import { PrivateApt, type DebianSuite } from '../adapters/apt.ts';
import { which } from '../adapters/host.ts';
import { runtimesDir } from '../adapters/musl-runtimes.ts';

export interface SourcePackage {
  pkg: string;
  suite: DebianSuite;
}

export function tail(s: string, n = 15): string {
  return s.trim().split('\n').slice(-n).join('\n');
}

export const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Debian version order (dpkg --compare-versions), for picking the newest .dsc of a package. */
export function debGreater(a: string, b: string): boolean {
  return capture('dpkg', ['--compare-versions', a, 'gt', b], { env: cleanBaseEnv() }).code === 0;
}

export interface FetchedSource {
  pkg: string;
  version: string;
  dsc: string;
}

/** The newest .dsc of `pkg` in `dir`. */
export function newestDsc(dir: string, pkg: string): FetchedSource | null {
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
