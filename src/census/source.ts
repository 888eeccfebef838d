// Where the census reads a libc's source: Debian's source package of exactly the provisioned version, unpacked
// into <cache>/census/src/<pkg>-<debian version>/ (written to a temporary sibling, renamed when whole), or a
// source tree given with --libc.
//
// The mirror serves every orig tarball but not every .dsc/.debian.tar (bullseye's musl 1.2.2-1, trixie's glibc
// 2.41-12+deb13u5 and sid's 2.43-7 were 404 here): then the upstream tarball is read without Debian's patches,
// and the source record says so. glibc is unpacked partially: the .c and .h files, not locales, manuals or tests.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildAtomically, PrivateApt } from '../../adapters/apt.ts';
import { capture, cleanBaseEnv } from '../proc.ts';
import { isDir, isFile, readJson } from '../util.ts';

export type CensusLibc = 'glibc' | 'musl' | 'python';

export interface SourceRecord {
  libc: CensusLibc;
  version: string;
  /** Debian source package version, or null for a --libc tree */
  debian: string | null;
  dir: string;
  /** what was read: "Debian glibc 2.36-9+deb12u14 (orig + 131 Debian patches applied, 2 failed)" */
  origin: string;
}

export interface Wanted {
  env: string;
  libc: CensusLibc;
  version: string;
  debian: string;
}

/** The libcs of the environments provisioned here: the host's glibc and the cache's glibc and musl versions. */
export function provisionedLibcs(cacheDir: string): Wanted[] {
  const out: Wanted[] = [];
  const host = capture('dpkg-query', ['-W', '-f', '${Version}', 'libc6'], { env: cleanBaseEnv(), timeoutMs: 20_000 });
  const hv = host.code === 0 ? host.stdout.trim() : '';
  if (hv) out.push({ env: `glibc-${upstream(hv)}`, libc: 'glibc', version: upstream(hv), debian: hv });
  for (const v of safeList(path.join(cacheDir, 'glibc'))) {
    const info = readJson<{ version?: string; debVersion?: string }>(path.join(cacheDir, 'glibc', v, 'forkmatrix.json'));
    if (info?.version && info.debVersion && !out.some((o) => o.env === `glibc-${info.version}`))
      out.push({ env: `glibc-${info.version}`, libc: 'glibc', version: info.version, debian: info.debVersion });
  }
  for (const v of safeList(path.join(cacheDir, 'musl'))) {
    const info = readJson<{ version?: string; packages?: Record<string, string> }>(path.join(cacheDir, 'musl', v, 'info.json'));
    const deb = info?.packages?.musl;
    if (info?.version && deb) out.push({ env: `musl-${info.version}`, libc: 'musl', version: info.version, debian: deb });
  }
  return out.sort((a, b) => a.env.localeCompare(b.env, undefined, { numeric: true }));
}

const upstream = (deb: string) => deb.replace(/^\d+:/, '').replace(/-[^-]*$/, '');

function safeList(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}

const GLIBC_TAR_ARGS = ['--wildcards', '*.c', '*.h', '--exclude=*/localedata/*', '--exclude=*/po/*', '--exclude=*/manual/*', '--exclude=*/benchtests/*'];

/** Fetch and unpack the Debian source of exactly `w.debian` (cached). */
export async function debianSource(cacheDir: string, w: Wanted, log: (l: string) => void, pkgName?: string): Promise<SourceRecord> {
  const pkg = pkgName ?? (w.libc === 'glibc' ? 'glibc' : 'musl');
  const dir = path.join(cacheDir, 'census', 'src', `${pkg}-${w.debian}`);
  const recordFile = path.join(dir, 'census-source.json');
  if (isFile(recordFile)) return { ...(readJson<SourceRecord>(recordFile) as SourceRecord), dir };
  const dl = path.join(cacheDir, 'census', 'dl', pkg);
  mkdirSync(dl, { recursive: true });
  const up = upstream(w.debian);
  let aptProblem = '';
  try {
    log(`census: fetching Debian's ${pkg} ${w.debian} source`);
    new PrivateApt(cacheDir).source(`${pkg}=${w.debian}`, dl, log);
  } catch (e) {
    aptProblem = (e as Error).message.split('\n')[0];
  }
  const files = safeList(dl);
  const orig = files.find((f) => f.startsWith(`${pkg}_${up}.orig.tar.`) && !f.endsWith('.asc'));
  if (!orig) throw new Error(`census: no ${pkg}_${up}.orig.tar.* after apt-get source ${pkg}=${w.debian}${aptProblem ? `: ${aptProblem}` : ''}`);
  const debTar = files.find((f) => f === `${pkg}_${w.debian.replace(/^\d+:/, '')}.debian.tar.xz`);
  let origin = '';
  await buildAtomically(dir, (tmp) => {
    const args = ['-xf', path.join(dl, orig), '-C', tmp, '--strip-components=1', ...(pkg === 'glibc' ? GLIBC_TAR_ARGS : pkg.startsWith('python') ? ['--wildcards', '*.c', '*.h'] : [])];
    const r = capture('tar', args, { env: cleanBaseEnv(), timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`tar ${args.join(' ')} failed: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
    if (debTar) {
      const p = capture('tar', ['-xf', path.join(dl, debTar), '-C', tmp, 'debian/patches'], { env: cleanBaseEnv(), timeoutMs: 300_000 });
      const series = path.join(tmp, 'debian', 'patches', 'series');
      let applied = 0;
      const failed: string[] = [];
      if (p.code === 0 && isFile(series)) {
        for (const raw of readFileSync(series, 'utf8').split('\n')) {
          const line = raw.replace(/(^|\s)#.*$/, '').trim();
          if (!line) continue;
          const [patch, ...opts] = line.split(/\s+/);
          const strip = opts.find((o) => /^-p\d+$/.test(o)) ?? '-p1';
          const pr = capture('patch', [strip, '-f', '-s', '--no-backup-if-mismatch', '-r', '-', '-d', tmp, '-i', path.join(tmp, 'debian', 'patches', patch)], { env: cleanBaseEnv(), timeoutMs: 120_000 });
          if (pr.code === 0) applied++;
          else failed.push(patch);
        }
      }
      // a patch "fails" here mostly for the files not unpacked (tests, manuals, locales); the rest of it is applied
      origin = `Debian ${pkg} ${w.debian}: upstream ${orig} with ${applied} Debian patches applied${failed.length ? `, ${failed.length} partly (hunks for files not unpacked or not applying)` : ''}`;
    } else {
      origin = `Debian ${pkg} ${w.debian}: upstream ${orig} only; Debian's patches not applied (${/404/.test(aptProblem) ? 'its .dsc/.debian.tar.xz is 404 on the mirror' : aptProblem || 'no .debian.tar.xz'})`;
    }
    const rec: SourceRecord = { libc: w.libc, version: w.version, debian: w.debian, dir, origin };
    writeFileSync(path.join(tmp, 'census-source.json'), JSON.stringify(rec, null, 1) + '\n');
  });
  return { ...(readJson<SourceRecord>(recordFile) as SourceRecord), dir };
}

/** A --libc source tree: a musl or glibc checkout. Throws a one-line message when it is neither. */
export function localSource(dir: string): SourceRecord {
  const abs = path.resolve(dir);
  if (!isDir(abs)) throw new Error(`--libc ${dir}: no such directory (give a musl or glibc source tree)`);
  if (isFile(path.join(abs, 'src/process/fork.c')) && isFile(path.join(abs, 'src/internal/lock.h'))) {
    const v = existsSync(path.join(abs, 'VERSION')) ? readFileSync(path.join(abs, 'VERSION'), 'utf8').trim() : 'unknown';
    return { libc: 'musl', version: `${v}+local`, debian: null, dir: abs, origin: `musl source tree ${abs}` };
  }
  if (isFile(path.join(abs, 'posix/fork.c')) && isFile(path.join(abs, 'malloc/malloc.c'))) {
    const vh = isFile(path.join(abs, 'version.h')) ? readFileSync(path.join(abs, 'version.h'), 'utf8') : '';
    const v = /#define\s+VERSION\s+"([^"]+)"/.exec(vh)?.[1] ?? 'unknown';
    return { libc: 'glibc', version: `${v}+local`, debian: null, dir: abs, origin: `glibc source tree ${abs}` };
  }
  throw new Error(`--libc ${dir}: not a libc source tree (expected musl's src/process/fork.c or glibc's posix/fork.c and malloc/malloc.c)`);
}

/**
 * CPython's source as Debian builds it (bookworm's python3.11: the source the musl-python build uses; the host's
 * interpreter may be another patch release, which the record says). Only .c and .h files are unpacked.
 */
export async function pythonSource(cacheDir: string, log: (l: string) => void, pkg = 'python3.11', suite = 'bookworm'): Promise<SourceRecord> {
  const dl = path.join(cacheDir, 'census', 'dl', pkg);
  mkdirSync(dl, { recursive: true });
  let aptProblem = '';
  try {
    log(`census: fetching Debian ${suite}'s ${pkg} source`);
    new PrivateApt(cacheDir).source(`${pkg}/${suite}`, dl, log);
  } catch (e) {
    aptProblem = (e as Error).message.split('\n')[0];
  }
  const dsc = safeList(dl).filter((f) => f.startsWith(`${pkg}_`) && f.endsWith('.dsc')).sort().pop();
  const debian = dsc ? decodeURIComponent(dsc.slice(pkg.length + 1, -4)) : null;
  const orig = safeList(dl).find((f) => /\.orig\.tar\.\w+$/.test(f) && f.startsWith(`${pkg}_`));
  if (!debian || !orig) throw new Error(`census: no ${pkg} source after apt-get source ${pkg}/${suite}${aptProblem ? `: ${aptProblem}` : ''}`);
  const version = upstream(debian);
  return debianSource(cacheDir, { env: `python-${version}`, libc: 'python', version, debian }, log, pkg);
}
