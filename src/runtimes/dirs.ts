// Shared by the version-manager sources: "<root>/<version>/bin/<exe>" install trees.

import { accessSync, constants, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compareVersions } from '../util.ts';
import type { FoundRuntime } from '../types.ts';
import type { Candidate, SourceOptions } from './source.ts';

export const homeOf = (o: SourceOptions) => o.home ?? os.homedir();
export const envOf = (o: SourceOptions) => o.env ?? process.env;
/** $XDG_DATA_HOME or ~/.local/share */
export const dataHome = (o: SourceOptions) => envOf(o).XDG_DATA_HOME || path.join(homeOf(o), '.local', 'share');

export function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The entries of a directory, oldest version first ([] when it does not exist). */
export function versionsIn(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => !n.startsWith('.')).sort((a, b) => compareVersions(a.replace(/^\D+/, ''), b.replace(/^\D+/, '')) || a.localeCompare(b));
  } catch {
    return [];
  }
}

/**
 * One candidate per version directory under `root`: the first of `exes` (relative to the version dir, e.g.
 * "bin/python3") that is executable there. `via` names the tool and the version directory.
 */
export function installs(runtime: FoundRuntime, root: string, exes: string[], tool: string): Candidate[] {
  const out: Candidate[] = [];
  for (const v of versionsIn(root)) {
    const exe = exes.map((e) => path.join(root, v, e)).find(isExecutable);
    if (exe) out.push({ runtime, path: exe, via: `${tool} ${v}` });
  }
  return out;
}
