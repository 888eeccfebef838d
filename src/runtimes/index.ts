// Where runtimes come from: every source below names candidate executables (one line per source), and discover()
// identifies each by running its version query, dedupes by real path, and turns a broken one into a `missing`
// entry with a one-line reason. The host and the glibc copies use it; Debian roots and musl find their own.

import { realpathSync } from 'node:fs';
import { compareVersions } from '../util.ts';
import type { FoundRuntime, MissingRuntime, RuntimeInstance } from '../types.ts';
import { asdfSource, miseSource } from './asdf.ts';
import { fnmSource, nvmSource, voltaSource } from './nvm.ts';
import { nodeDistSource } from './node-dist.ts';
import { pathSource } from './path.ts';
import { pythonFtSource } from './python-ft.ts';
import { pyenvSource } from './pyenv.ts';
import { rbenvSource, rvmSource } from './rbenv.ts';
import { uvSource } from './uv.ts';
import { FOUND_RUNTIMES, findOf } from './specs.ts';
import type { Candidate, RuntimeSource, SourceOptions } from './source.ts';

/** Every source, in the order they are asked (a function: node-dist reads adapters/glibc.ts, which reads this). */
export const sources = (): RuntimeSource[] => [
  pathSource, // first: the PATH interpreter keeps its place when a version manager has the same one
  pyenvSource,
  uvSource,
  asdfSource,
  miseSource,
  rbenvSource,
  rvmSource,
  nvmSource,
  fnmSource,
  voltaSource,
  nodeDistSource, // official Node builds in the cache (provision node@N); glibc environments only
  pythonFtSource, // free-threaded CPython built into the cache (provision python-ft); glibc environments only
];

export type Identify = (runtime: FoundRuntime, exe: string) => RuntimeInstance | { reason: string };

export interface DiscoverOptions extends SourceOptions {
  /** the libc of the environment the runtimes are for ('glibc' sources are skipped elsewhere) */
  libc: 'glibc' | 'musl';
  /** its glibc version ("2.36"), when known: a source's refuse() hook compares a candidate's need with it */
  glibc?: string;
  /** --runtime NAME=PATH additions (asked first: a version's column is theirs; a broken one is missing with the flag named) */
  extra?: { runtime: FoundRuntime; path: string }[];
  sources?: RuntimeSource[];
}

const realOr = (p: string) => {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
};

/** Every candidate of every source, identified, deduped; what could not be used is `missing` with the reason. */
export function discover(o: DiscoverOptions, identify: Identify): { runtimes: RuntimeInstance[]; missing: MissingRuntime[] } {
  const runtimes: RuntimeInstance[] = [];
  const missing: MissingRuntime[] = [];
  const cands: Candidate[] = [];
  const sourceOf = new Map<Candidate, RuntimeSource>();
  for (const s of o.sources ?? sources()) {
    if (s.libc && s.libc !== o.libc) continue;
    for (const c of s.candidates(o)) { // readdir/stat only; a source whose directories are absent offers nothing
      cands.push(c);
      sourceOf.set(c, s);
    }
  }
  for (const rt of FOUND_RUNTIMES) {
    const f = findOf(rt);
    const mine = cands.filter((c) => c.runtime === rt);
    if (!mine.length && !o.extra?.some((x) => x.runtime === rt))
      missing.push({ runtime: rt, reason: `no ${f.names.join('/')} on PATH (${f.install}, or --runtime ${rt}=/path)` });
  }
  const seen = new Set<string>();
  // --runtime first (what the user named wins a version's column), then PATH and the version managers in order
  const all = [...(o.extra ?? []).map((x) => ({ ...x, via: `--runtime ${x.runtime}=${x.path}` })), ...cands];
  const order = (c: Candidate) => FOUND_RUNTIMES.indexOf(c.runtime);
  for (const c of all.map((c, i) => ({ c, i })).sort((a, b) => order(a.c) - order(b.c) || a.i - b.i).map((x) => x.c)) {
    const key = `${c.runtime}\0${realOr(c.path)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const refused = sourceOf.get(c)?.refuse?.(c.path, { glibc: o.glibc });
    if (refused) {
      missing.push({ runtime: c.runtime, reason: refused });
      continue;
    }
    const id = identify(c.runtime, c.path);
    if ('reason' in id) {
      missing.push({ runtime: c.runtime, reason: `${c.via}: ${id.reason}` });
      continue;
    }
    const k2 = `${id.runtime}\0${realOr(id.executable)}`;
    if (seen.has(k2) && k2 !== key) continue;
    seen.add(k2);
    const same = runtimes.find((r) => r.runtime === id.runtime && r.version === id.version);
    if (same) {
      // one column per runtime version in an environment: the first found keeps it
      missing.push({ runtime: c.runtime, reason: `${c.via}: ${id.runtime} ${id.version} at ${id.executable} is the same version as ${same.executable} (one column per version; pass --runtime to use it elsewhere)` });
      continue;
    }
    runtimes.push(id);
  }
  // matrix order, then oldest version first (a runtime's columns read as a release history)
  runtimes.sort((a, b) => FOUND_RUNTIMES.indexOf(a.runtime as FoundRuntime) - FOUND_RUNTIMES.indexOf(b.runtime as FoundRuntime) || compareVersions(a.version, b.version));
  return { runtimes, missing };
}
