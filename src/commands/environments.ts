// The environments a running command offers its cases: every adapter's, plus musl releases built from git.

import { adapters } from '../registry.ts';
import type { AdapterOptions, Environment } from '../types.ts';
import { UsageError } from './shared.ts';

export async function allEnvironments(opts: AdapterOptions): Promise<Environment[]> {
  const out: Environment[] = [];
  for (const a of adapters) {
    try {
      out.push(...(await a.environments(opts)));
    } catch (e) {
      // a bad --libc or --preload: one line naming it, not a stack trace
      throw new UsageError((e as Error).message);
    }
  }
  return out;
}

/** --env musl-1.2.0 and other musl releases nobody provisioned: built from --libc-git / $FORKMATRIX_MUSL_GIT's tags. */
export async function muslReleases(wanted: string[] | null, envs: Environment[], git: string | undefined, aopts: AdapterOptions) {
  const { withReleases } = await import('../libc-src/index.ts');
  return withReleases(wanted, envs, git, aopts, (l) => process.stderr.write(`forkmatrix: ${l}\n`)).catch((e: Error) => {
    throw new UsageError(e.message);
  });
}
