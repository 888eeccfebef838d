// Free-threaded CPython builds in the cache (provision/python-ft.ts: `forkmatrix provision python-ft` and
// `musl-python-ft`). The glibc builds are a runtime source for glibc environments (linked against the host's
// glibc); the musl builds are found by the musl adapter (ftCandidates(cacheDir, 'musl') beside musl-python), which
// runs them through each musl's loader. Only readdir/stat here: the caller identifies each candidate.

import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Candidate, RuntimeSource, SourceOptions } from './source.ts';

/** `<cache>/python-ft/<libc>/<minor>t/bin/python3` of every build there, newest minor first. */
export function ftCandidates(cacheDir: string, libc: 'glibc' | 'musl'): { path: string; minor: string }[] {
  const root = path.join(cacheDir, 'python-ft', libc);
  let names: string[] = [];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const out: { path: string; minor: string }[] = [];
  for (const n of names) {
    const m = /^(\d+)\.(\d+)t$/.exec(n);
    if (!m) continue;
    const exe = path.join(root, n, 'bin', 'python3');
    try {
      if (!statSync(exe).isFile()) continue;
    } catch {
      continue; // a dangling link: the build was removed
    }
    out.push({ path: exe, minor: `${m[1]}.${m[2]}` });
  }
  const num = (s: string) => s.split('.').map(Number);
  return out.sort((a, b) => num(b.minor)[0] - num(a.minor)[0] || num(b.minor)[1] - num(a.minor)[1]);
}

export const pythonFtSource: RuntimeSource = {
  name: 'python-ft',
  libc: 'glibc',
  candidates(opts: SourceOptions): Candidate[] {
    return ftCandidates(opts.cacheDir, 'glibc').map((c) => ({ runtime: 'python', path: c.path, via: `python-ft ${c.minor}t (provision python-ft)` }));
  },
};
