// Shared by the tests: real runs of fixture suites on this machine's host environment.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadSuite, selectCases } from '../src/cases.ts';
import { REPO } from '../src/cli.ts';
import { run, type RunOptions } from '../src/run.ts';
import { hostEnvironment } from '../adapters/host.ts';
import { removeOnExit } from '../src/util.ts';
import type { CellResult, Environment } from '../src/types.ts';

import './setup.mjs';

/** The tests' private cache (test/setup.mjs): never the user's ~/.cache/forkmatrix. */
export const CACHE = process.env.FORKMATRIX_CACHE!;

/** A temporary directory, removed when the test process exits (tests leave nothing in $TMPDIR). */
export function tmp(prefix = 'fm-test-'): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  removeOnExit(d);
  return d;
}

export async function runFixture(dir: string, suites: string[], extra: Partial<RunOptions> = {}) {
  const suite = await loadSuite(REPO, path.join(REPO, dir));
  if (suite.problems.length) throw new Error(JSON.stringify(suite.problems));
  const cases = selectCases(suite.cases, suites, null);
  const env = hostEnvironment({ cacheDir: CACHE, extraRuntimes: [], preload: [], libc: [] });
  const out = tmp();
  const outcome = await run({
    repoDir: REPO, cacheDir: CACHE, outRoot: out, cases, environments: [env], budget: { kind: 'full' }, jobs: 2, seed: 7, failFast: false, ...extra,
  });
  const byId = (id: string) => outcome.cells.find((c) => c.case.endsWith('/' + id)) as CellResult;
  return { ...outcome, byId, out, env };
}

/** Processes whose command line mentions `marker` (leftovers of a run). */
export function processesMentioning(marker: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (!cmd.includes(marker)) continue;
      // the state and parent say why it is still there (a zombie, a process being torn down, an orphan)
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      found.push(`${pid} (state ${state}, parent ${ppid}): ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return found;
}

/** This machine's own environment id (e.g. glibc-2.36): tests pin runs to it so provisioned extras don't slow them. */
export const HOST_ENV = hostEnvironment({ cacheDir: CACHE, extraRuntimes: [], preload: [], libc: [] }).id;

/**
 * A cell of a passing case in a test whose subject is the environment, not the pass rule: no failure, and a pass,
 * or inconclusive only because a loaded machine ran fewer than 300 forks in the case's budget (the pass rule
 * itself is tested in verdict-logic and proof).
 */
export function passedOrShort(cell: CellResult | undefined): { ok: boolean; why: string } {
  if (!cell) return { ok: false, why: 'no such cell' };
  const short = cell.verdict === 'inconclusive' && /a pass needs at least 300 forks/.test(cell.reason ?? '');
  return { ok: cell.failures === 0 && (cell.verdict === 'pass' || short), why: `${cell.verdict}, ${cell.failures} failures in ${cell.forks} forks: ${cell.reason ?? cell.first_failure?.message ?? ''}` };
}

/** Run the named fixture cases on given environments (full budget, seed 11); `cell(env, key)` finds one. */
export async function runCases(dir: string, suites: string[], ids: string[], envs: Environment[]) {
  const suite = await loadSuite(REPO, path.join(REPO, dir));
  const cases = selectCases(suite.cases, suites, ids);
  const out = tmp('fm-cases-');
  const problems: string[] = [];
  const r = await run({
    repoDir: REPO, cacheDir: CACHE, outRoot: out, cases, environments: envs, budget: { kind: 'full' }, jobs: 2, seed: 11, failFast: false,
    onProblem: (l) => problems.push(l),
  });
  const cell = (env: string, key: string) => r.cells.find((c) => c.env === env && c.case === key) as CellResult;
  return { ...r, cell, out, problems };
}
