// `forkmatrix census`: every libc-internal lock of each provisioned libc version, what that version's fork() does
// with it, the public functions that reach it, and the cases that cover it (issue 12).
//
// For the rest of the project:
//   knownLockIds()            the lock ids `locks:` may name (census/catalogue.json): schema.ts validates with it
//   censusSummary(cases)      coverage per libc version, from the committed catalogue, the cases and
//                             census/reasons.yaml: for matrix.json (no source is read, nothing is downloaded)
//   censusHtml(summary)       that summary as an HTML section for the page
//   runCensus(opts)           the census itself (downloads and reads the sources; cached per version)

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { globMatch } from '../cases.ts';
import type { CaseDef } from '../types.ts';
import { readJson, writeWhole } from '../util.ts';
import { glibcDialect, muslDialect, pythonDialect } from './dialects.ts';
import { runCensusEngine, type CensusLock, type LockStatus } from './engine.ts';
import { debianSource, localSource, provisionedLibcs, pythonSource, type SourceRecord } from './source.ts';

export const CENSUS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'census');
export const CATALOGUE = path.join(CENSUS_DIR, 'catalogue.json');
export const REASONS = path.join(CENSUS_DIR, 'reasons.yaml');

export const METHOD = [
  'Locks: glibc objects declared with __libc_lock_define*, __libc_rwlock_define*, __rtld_lock_define* (or their types), _IO_lock_t and `int X = LLL_LOCK_INITIALIZER`;',
  "musl objects passed to LOCK()/__lock(), its internal pthread mutexes/rwlocks, a FILE's lock, the objects fork()'s atfork_locks table points to, __thread_list_lock.",
  'Only the files an x86_64 Linux build compiles (sysdeps override: the most specific file of a name), no tests or programs. Ids: libc:source path without extension:variable',
  '(struct.member for a lock inside each object of a type; a template such as nss/getXXbyYY.c counts under the file that includes it).',
  "fork(): the fork function and what it calls (4 levels, by name): acquired there = taken, only re-initialised = reset, else none; each status names its call chain.",
  'Public functions (an approximation): exported functions of the same translation unit that take the lock directly or through any function of the unit,',
  'plus one hop: exported functions elsewhere that call an internal function of that unit which reaches it (`via`). Exported: not static, and the name or an alias',
  "(weak_alias, strong_alias, versioned_symbol) does not start with '_'. Preprocessor conditionals are not evaluated: both branches are read.",
].join(' ');

export interface CensusVersion {
  libc: 'glibc' | 'musl' | 'python';
  version: string;
  env: string | null;
  source: string;
  forkFile: string | null;
  files: number;
  units: number;
  unresolved: string[];
  locks: CensusLock[];
}

export interface CensusOptions {
  cacheDir: string;
  /** environment ids (glibc-2.36, musl-1.2.5); default every provisioned one */
  envs?: string[] | null;
  /** source trees (--libc) */
  libcSrc?: string[];
  /** also the runtimes (CPython); default: when neither envs nor libcSrc narrows the census */
  runtimes?: boolean;
  log?: (l: string) => void;
}

export class CensusUsageError extends Error {}

/** A hash of the census code: a cached result is reused only when the code that made it is the same. */
function codeHash(): string {
  const h = createHash('sha256');
  const dir = path.dirname(fileURLToPath(import.meta.url));
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.ts')).sort()) h.update(f).update(readFileSync(path.join(dir, f)));
  return h.digest('hex').slice(0, 16);
}

function censusOf(src: SourceRecord, env: string | null, cacheDir: string | null, log: (l: string) => void): CensusVersion {
  const hash = codeHash();
  const cacheFile = cacheDir && src.debian ? path.join(cacheDir, 'census', 'results', `${src.libc}-${src.debian}-${hash}.json`) : null;
  const cached = cacheFile ? readJson<CensusVersion>(cacheFile) : null;
  if (cached) return { ...cached, env };
  log(`census: reading ${src.libc} ${src.version} (${src.dir})`);
  const dialect = src.libc === 'glibc' ? glibcDialect : src.libc === 'python' ? pythonDialect : muslDialect;
  const r = runCensusEngine(src.dir, dialect);
  const out: CensusVersion = { libc: src.libc, version: src.version, env, source: src.origin, forkFile: r.forkFile, files: r.files, units: r.units, unresolved: r.unresolved, locks: r.locks };
  if (!r.forkFile) throw new Error(`census: ${src.libc} ${src.version} (${src.dir}): no fork function found (${dialect.fork.files.join(', ')})`);
  if (cacheFile) writeWhole(cacheFile, JSON.stringify(out));
  return out;
}

/** Run the census on the provisioned libcs (or --env LIST) and --libc trees. */
export async function runCensus(o: CensusOptions): Promise<CensusVersion[]> {
  const log = o.log ?? (() => {});
  const out: CensusVersion[] = [];
  const avail = provisionedLibcs(o.cacheDir);
  let wanted = avail;
  if (o.envs?.length) {
    const unknown = o.envs.filter((e) => !avail.some((a) => a.env === e));
    if (unknown.length) throw new CensusUsageError(`--env ${unknown.join(',')}: no such libc provisioned here; available: ${avail.map((a) => a.env).join(', ') || 'none'} (see 'forkmatrix list')`);
    wanted = avail.filter((a) => o.envs!.includes(a.env));
  }
  const locals = (o.libcSrc ?? []).map((d) => {
    try {
      return localSource(d);
    } catch (e) {
      throw new CensusUsageError((e as Error).message);
    }
  });
  if (locals.length && !o.envs?.length) wanted = [];
  for (const w of wanted) out.push(censusOf(await debianSource(o.cacheDir, w, log), w.env, o.cacheDir, log));
  for (const s of locals) out.push(censusOf(s, null, null, log));
  // the runtimes whose source makes it practical: CPython (PyThread_type_lock vs PyOS_BeforeFork/AfterFork_Child)
  if (o.runtimes ?? (!o.envs?.length && !locals.length)) out.push(censusOf(await pythonSource(o.cacheDir, log), null, o.cacheDir, log));
  return out;
}

// ------------------------------------------------------------------------------------------------------------------
// the catalogue (committed) and the lock ids validate accepts

export interface CatalogueLock {
  id: string;
  libc: string;
  kind: string;
  /** where it is defined in the newest version censused */
  at: string;
  /** per version: fork's handling and how many public functions reach it (same unit, one hop) */
  versions: Record<string, { status: LockStatus; public: number; via: number; how?: string }>;
  /** public functions (newest version; the first 12) */
  public: string[];
}

export interface Catalogue {
  method: string;
  versions: { libc: string; version: string; source: string; fork: string | null; locks: number }[];
  locks: CatalogueLock[];
}

export function readCatalogue(file = CATALOGUE): Catalogue | null {
  return readJson<Catalogue>(file);
}

/** Merge census results into the catalogue (versions censused replace their old entries; +local ones are left out when writing). */
export function updateCatalogue(results: CensusVersion[], file = CATALOGUE, write = true): Catalogue {
  const old = (write ? readCatalogue(file) : null) ?? { method: METHOD, versions: [], locks: [] };
  // a --libc tree (+local) never goes into the committed catalogue; unwritten, it is the tree's own coverage
  const fresh = write ? results.filter((r) => !r.version.endsWith('+local')) : results;
  const key = (libc: string, v: string) => `${libc} ${v}`;
  const replaced = new Set(fresh.map((r) => key(r.libc, r.version)));
  const versions = [
    ...old.versions.filter((v) => !replaced.has(key(v.libc, v.version))),
    ...fresh.map((r) => ({ libc: r.libc, version: r.version, source: r.source, fork: r.forkFile, locks: r.locks.length })),
  ].sort((a, b) => a.libc.localeCompare(b.libc) || a.version.localeCompare(b.version, undefined, { numeric: true }));
  const locks = new Map<string, CatalogueLock>();
  for (const l of old.locks) {
    const kept = Object.fromEntries(Object.entries(l.versions).filter(([v]) => !replaced.has(key(l.libc, v))));
    if (Object.keys(kept).length) locks.set(l.id, { ...l, versions: kept });
  }
  const ordered = [...fresh].sort((a, b) => a.version.localeCompare(b.version, undefined, { numeric: true }));
  for (const r of ordered) {
    for (const l of r.locks) {
      const c = locks.get(l.id) ?? { id: l.id, libc: r.libc, kind: l.kind, at: '', versions: {}, public: [] };
      c.kind = l.kind;
      c.at = `${l.file}:${l.line}`;
      c.public = l.public.slice(0, 12);
      c.versions[r.version] = { status: l.status, public: l.public.length, via: l.via.length, ...(l.how[0] ? { how: l.how[0] } : {}) };
      locks.set(l.id, c);
    }
  }
  const cat: Catalogue = { method: METHOD, versions, locks: [...locks.values()].sort((a, b) => a.id.localeCompare(b.id)) };
  if (write) writeWhole(file, JSON.stringify(cat, null, 1) + '\n', { ifChanged: true });
  return cat;
}

let knownCache: { mtime: string; ids: Set<string> } | null = null;
/** Every lock id of census/catalogue.json (empty when there is none). */
export function knownLockIds(file = CATALOGUE): Set<string> {
  let stamp = '';
  try {
    stamp = String(readFileSync(file).length);
  } catch {
    return new Set();
  }
  if (knownCache && knownCache.mtime === `${file}:${stamp}`) return knownCache.ids;
  const ids = new Set((readCatalogue(file)?.locks ?? []).map((l) => l.id));
  knownCache = { mtime: `${file}:${stamp}`, ids };
  return ids;
}

/** census/reasons.yaml: `id: reason` (an id may use * wildcards). Throws naming the file on a bad entry. */
export function readReasons(file = REASONS): Map<string, string> {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return new Map();
  }
  const doc = parseYaml(text) as unknown;
  if (doc == null) return new Map();
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${file}: expected a map of lock id: reason`);
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (typeof v !== 'string' || !v.trim()) throw new Error(`${file}: ${k}: expected a one-line reason`);
    out.set(k, v.trim());
  }
  return out;
}

function reasonFor(id: string, reasons: Map<string, string>): string | null {
  const exact = reasons.get(id);
  if (exact) return exact;
  for (const [k, v] of reasons) if (k.includes('*') && globMatch(k, id)) return v;
  return null;
}

// ------------------------------------------------------------------------------------------------------------------
// coverage

export type Coverage = 'covered' | 'reason' | 'uncovered' | 'safe';

export interface CoverageLock {
  id: string;
  status: LockStatus;
  public: number;
  via: number;
  cases: string[];
  coverage: Coverage;
  reason?: string;
}

export interface CensusSummaryVersion {
  libc: string;
  version: string;
  source: string;
  locks: number;
  taken: number;
  reset: number;
  none: number;
  /** status none with a public path: each needs a case or a reason */
  exposed: number;
  covered: number;
  reasoned: number;
  uncovered: number;
  /** cases naming any lock of this version */
  cases: number;
  list: CoverageLock[];
}

export interface CensusSummary {
  method: string;
  versions: CensusSummaryVersion[];
  /** locks a case names that no censused version has */
  unknownLocks: string[];
}

/** Coverage per libc version from the catalogue, the cases' `locks:` and census/reasons.yaml. */
export function censusSummary(cases: Pick<CaseDef, 'runtime' | 'id' | 'locks'>[], cat: Catalogue | null = readCatalogue(), reasons: Map<string, string> = readReasons()): CensusSummary | null {
  if (!cat) return null;
  const byLock = new Map<string, string[]>();
  for (const c of cases) for (const l of c.locks ?? []) byLock.set(l, [...(byLock.get(l) ?? []), `${c.runtime}/${c.id}`]);
  // unknown: in neither this catalogue nor the committed one (a --libc tree's view keeps the Debian versions' ids)
  const known = new Set([...cat.locks.map((l) => l.id), ...knownLockIds()]);
  const versions = cat.versions.map((v) => {
    const list: CoverageLock[] = [];
    for (const l of cat.locks) {
      if (l.libc !== v.libc) continue;
      const at = l.versions[v.version];
      if (!at) continue;
      const casesHere = byLock.get(l.id) ?? [];
      const exposed = at.status === 'none' && at.public + at.via > 0;
      const reason = reasonFor(l.id, reasons);
      let coverage: Coverage = 'safe';
      if (casesHere.length) coverage = 'covered';
      else if (exposed) coverage = reason ? 'reason' : 'uncovered';
      else if (at.status === 'none') coverage = 'reason';
      list.push({
        id: l.id, status: at.status, public: at.public, via: at.via, cases: casesHere, coverage,
        ...(coverage === 'reason' ? { reason: reason ?? 'no public function reaches it (census approximation)' } : {}),
      });
    }
    const n = (f: (x: CoverageLock) => boolean) => list.filter(f).length;
    return {
      libc: v.libc, version: v.version, source: v.source, locks: list.length, taken: n((x) => x.status === 'taken'), reset: n((x) => x.status === 'reset'),
      none: n((x) => x.status === 'none'), exposed: n((x) => x.status === 'none' && x.public + x.via > 0), covered: n((x) => x.coverage === 'covered'),
      reasoned: n((x) => x.coverage === 'reason' && x.public + x.via > 0), uncovered: n((x) => x.coverage === 'uncovered'),
      cases: new Set(list.flatMap((x) => x.cases)).size, list,
    };
  });
  return { method: cat.method, versions, unknownLocks: [...byLock.keys()].filter((k) => !known.has(k)).sort() };
}

export { renderTerminal, censusHtml, censusJson } from './render.ts';
