// Free-threaded CPython (PEP 703, `--disable-gil`: python3.13t, python3.14t) built from Debian's own source
// packages, on the host's glibc (`python-ft`) and on musl (`musl-python-ft`, with the musl-runtimes toolchain and
// its static zlib/libffi). Layout, per libc:
//   <cache>/python-ft/<libc>/builds/<minor>t-<hash>/   one build, complete or absent (buildAtomically)
//   <cache>/python-ft/<libc>/<minor>t                  symlink to the current build (switched atomically)
//   <cache>/python-ft/<libc>/<minor>t.json             its BuildInfo (key, version, build seconds, smoke test)
// src/runtimes/python-ft.ts finds them (glibc: a runtime source; musl: the musl adapter's candidates).
//
// The key: recipe revision + libc + the Debian source versions + the toolchain (gcc and the host glibc, or musl and
// Debian's musl-dev). The source version: the newest Debian version of python3.X that the mirror can deliver (a
// mirror may list a version in its Sources index and not carry the files: apt-get then fails with 404 and the next
// older version is tried).
//
// This file holds the pure parts; provision/python-ft-build.ts builds.

import { createHash } from 'node:crypto';
import path from 'node:path';

export type FtLibc = 'glibc' | 'musl';

/** Bump when the recipe changes in a way that needs a rebuild. */
export const FT_RECIPE = 1;

export interface FtVersion {
  minor: string; // "3.14"
  pkg: string; // Debian source package
}

/** Newest first: `python-ft` builds the first one whose source the mirror delivers, `python-ft@3.13` that one. */
export const FT_VERSIONS: FtVersion[] = [
  { minor: '3.14', pkg: 'python3.14' },
  { minor: '3.13', pkg: 'python3.13' },
];

export const FT_NAMES: Record<FtLibc, string> = { glibc: 'python-ft', musl: 'musl-python-ft' };

/** Every word `forkmatrix provision` accepts for these builds. */
export const FT_PROVISION_NAMES = (Object.values(FT_NAMES) as string[]).flatMap((n) => [n, ...FT_VERSIONS.map((v) => `${n}@${v.minor}`)]);

export interface FtRequest {
  libc: FtLibc;
  /** the versions to try, in order; `all: false` stops at the first one built */
  versions: FtVersion[];
  all: boolean;
}

/** `python-ft`, `musl-python-ft@3.13` -> what to build; null when the word is not one of ours. */
export function parseFtWord(word: string): FtRequest | null {
  const [name, ver] = word.split('@');
  const libc = (Object.keys(FT_NAMES) as FtLibc[]).find((l) => FT_NAMES[l] === name);
  if (!libc) return null;
  if (ver === undefined) return { libc, versions: FT_VERSIONS, all: false };
  const v = FT_VERSIONS.find((x) => x.minor === ver);
  return v ? { libc, versions: [v], all: true } : null;
}

export interface SourceEntry {
  version: string;
  suite: string;
}

/** `apt-cache madison PKG` output -> the source versions and the suite each is in. */
export function parseMadison(text: string, pkg: string): SourceEntry[] {
  const out: SourceEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split('|').map((s) => s.trim());
    if (f.length < 3 || f[0] !== pkg || !/\bSources$/.test(f[2])) continue;
    const suite = /\s(\S+?)(?:\/\S+)?\s+Sources$/.exec(f[2])?.[1] ?? '?';
    if (!out.some((e) => e.version === f[1])) out.push({ version: f[1], suite });
  }
  return out;
}

/**
 * The order to try source versions in: newest first (`gt(a, b)`: Debian's version order, dpkg --compare-versions),
 * versions of the wanted minor only (python3.13 in sid may one day be 3.13.x+really3.14: not ours).
 */
export function sourceOrder(entries: SourceEntry[], minor: string, gt: (a: string, b: string) => boolean): SourceEntry[] {
  const mine = entries.filter((e) => upstreamVersion(e.version).startsWith(minor + '.'));
  return [...mine].sort((a, b) => (gt(a.version, b.version) ? -1 : gt(b.version, a.version) ? 1 : 0));
}

/** "3.13.5-2+deb13u5" -> "3.13.5"; "1:3.14.0~rc1-1" -> "3.14.0~rc1" */
export const upstreamVersion = (deb: string) => deb.replace(/^\d+:/, '').replace(/-[^-]*$/, '');

export interface FtToolchain {
  libc: FtLibc;
  gcc: string | null; // "gcc 12.2.0"
  /** glibc: the host glibc version; musl: the musl version the toolchain links against */
  libcVersion: string;
  /** musl: Debian's musl-dev version (the headers), glibc: null */
  libcDev: string | null;
}

export interface FtKey {
  recipe: number;
  minor: string;
  libc: FtLibc;
  sources: Record<string, string>; // source package -> Debian version (musl: with zlib, libffi)
  toolchain: { gcc: string | null; libc: string; libc_dev: string | null };
}

export function ftKey(minor: string, sources: Record<string, string>, tc: FtToolchain): FtKey {
  const sorted = Object.fromEntries(Object.entries(sources).sort(([a], [b]) => a.localeCompare(b)));
  return { recipe: FT_RECIPE, minor, libc: tc.libc, sources: sorted, toolchain: { gcc: tc.gcc, libc: tc.libcVersion, libc_dev: tc.libcDev } };
}

export const ftKeyHash = (k: FtKey) => createHash('sha256').update(JSON.stringify(k)).digest('hex').slice(0, 12);

/** Why a recorded build no longer fits (a rebuild is due), or null when it does. */
export function staleReason(have: FtKey, want: FtKey): string | null {
  if (have.recipe !== want.recipe) return `recipe revision ${have.recipe}, now ${want.recipe}`;
  const t = have.toolchain;
  const u = want.toolchain;
  if (t.gcc !== u.gcc || t.libc !== u.libc || t.libc_dev !== u.libc_dev)
    return `built with ${t.gcc} on ${have.libc} ${t.libc}, the toolchain is now ${u.gcc} on ${want.libc} ${u.libc}`;
  const changed = Object.keys({ ...have.sources, ...want.sources }).filter((p) => have.sources[p] !== want.sources[p]);
  if (changed.length) return `sources changed: ${changed.map((p) => `${p} ${have.sources[p] ?? '-'} -> ${want.sources[p] ?? '-'}`).join(', ')}`;
  return null;
}

export interface FtBuildInfo {
  key: FtKey;
  hash: string;
  dir: string;
  executable: string;
  /** platform.python_version() + "t" */
  version: string;
  /** sys._is_gil_enabled() in the smoke test (must be false) */
  gil: boolean;
  modules: Record<string, boolean>;
  /** libc version -> the libc file the smoke test proved mapped */
  verified: Record<string, string>;
  built: string;
  build_seconds: number;
  /** seconds per step (configure, make, install) */
  steps: Record<string, number>;
}

export const ftRoot = (cacheDir: string, libc: FtLibc) => path.join(cacheDir, 'python-ft', libc);
export const ftLink = (cacheDir: string, libc: FtLibc, minor: string) => path.join(ftRoot(cacheDir, libc), `${minor}t`);
export const ftInfoFile = (cacheDir: string, libc: FtLibc, minor: string) => path.join(ftRoot(cacheDir, libc), `${minor}t.json`);
export const ftProvisionCmd = (libc: FtLibc, minor?: string) => `npx forkmatrix provision ${FT_NAMES[libc]}${minor ? `@${minor}` : ''}`;

/** configure arguments of a free-threaded build into `prefix` (no pip, no test modules, no PGO/LTO). */
export function configureArgs(prefix: string, libc: FtLibc): string[] {
  const args = [`--prefix=${prefix}`, '--disable-gil', '--without-ensurepip', '--disable-test-modules'];
  if (libc === 'musl') args.push('--with-system-ffi');
  return args;
}
