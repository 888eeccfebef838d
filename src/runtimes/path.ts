// The runtimes on PATH (what the user would type: python3, ruby, node, cc), then the standard directories;
// version managers' shims are looked past (their installs are sources of their own).

import path from 'node:path';
import { cleanBaseEnv } from '../proc.ts';
import { RUNTIME_SPECS } from './specs.ts';
import { envOf, isExecutable } from './dirs.ts';
import type { Candidate, RuntimeSource, SourceOptions } from './source.ts';

/**
 * A version manager's dispatcher (pyenv/rbenv/asdf/mise shims, volta's bin): which interpreter it runs depends on
 * the directory and variables, and asking it costs seconds (pyenv's is a bash script). The manager's own source
 * lists every install it could dispatch to, so PATH looks past it.
 */
export const isShimDir = (d: string) => /\/shims\/?$/.test(d) || /\/\.volta\/bin\/?$/.test(d);

export function whichIn(name: string, o: SourceOptions): string | null {
  const dirs = [...(envOf(o).PATH ?? '').split(':'), ...cleanBaseEnv().PATH.split(':')].filter((d) => d && !isShimDir(d));
  for (const d of dirs) {
    const p = path.join(d, name);
    if (isExecutable(p)) return p;
  }
  return null;
}

export const pathSource: RuntimeSource = {
  name: 'PATH',
  candidates(o) {
    const out: Candidate[] = [];
    for (const s of RUNTIME_SPECS) {
      if (!s.find) continue;
      const exe = s.find.names.map((n) => whichIn(n, o)).find(Boolean);
      if (exe) out.push({ runtime: s.runtime as Candidate['runtime'], path: exe, via: 'PATH' });
    }
    return out;
  },
};
