// The gate's verdict is confirmed before it fails a build. A cell that fails the gate after one quick run is run
// again: first with the same seed and budget, then (if that shows nothing) with a fresh seed and a fresh budget of
// at least MIN_PASS_FORKS forks. A failure seen again confirms it (the report says after how many re-runs); one
// that neither re-run reproduces is `flaky`: reported, never failing CI. An error cell is re-run once and takes
// the re-run's verdict when that is not an error (a harness killed by a loaded machine is not a regression).
// Also: the bisect command the gate prints for a confirmed regression of a libc built from git.

import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCell } from './cell.ts';
import { compare, failsGate, type Baseline, type GateCell } from './gate.ts';
import { planCells } from './run.ts';
import { runners } from './registry.ts';
import { MIN_PASS_FORKS } from './verdict.ts';
import { removeOnExit } from './util.ts';
import { parseGitSpec } from './libc-src/tree.ts';
import type { CaseDef, CellResult, Environment } from './types.ts';

export interface ConfirmContext {
  cases: CaseDef[];
  envs: Environment[];
  baseline: Baseline | null;
  cacheDir: string;
  repoDir: string;
  log: (l: string) => void;
}

type Rerun = (cell: CellResult, seed: number, forks: number, seconds: number) => Promise<CellResult | null>;

/** The decision, on numbers only: what the re-runs make of a cell that failed the gate once. */
export function confirmation(first: CellResult, reruns: CellResult[]): { confirmed: boolean; note: string } {
  const seen = (c: CellResult) => `${c.kind ?? c.verdict} ${c.failures}/${c.forks}`;
  const hit = reruns.findIndex((r) => r.failures > 0);
  const what = ['same seed', 'fresh budget'];
  if (hit >= 0) return { confirmed: true, note: `confirmed by re-run ${hit + 1} (${what[hit]}: ${seen(reruns[hit])})` };
  return {
    confirmed: false,
    note: `flaky: the quick run saw ${seen(first)}; not reproduced by ${reruns.map((r, i) => `the ${what[i]} (0/${r.forks})`).join(' nor ')}: not failing the gate`,
  };
}

export async function confirmGate(gated: GateCell[], ctx: ConfirmContext): Promise<GateCell[]> {
  const todo = gated.filter((g) => failsGate(g.status));
  if (!todo.length) return gated;
  const work = mkdtempSync(path.join(os.tmpdir(), 'forkmatrix-confirm-'));
  const forget = removeOnExit(work);
  const rerun: Rerun = async (cell, seed, forks, seconds) => {
    const c = ctx.cases.find((x) => x.key === cell.case);
    const env = ctx.envs.find((e) => e.id === cell.env);
    if (!c || !env) return null;
    const plan = planCells([c], [env], null, ctx.cacheDir).find((p) => p.rt && p.rt.version === cell.runtime_version);
    if (!plan?.rt) return null;
    const proof = await env.probe().catch(() => null);
    return runCell(c, env, plan.rt, runners[c.runtime], {
      budget: { forks, seconds, timeoutMs: cell.budget.timeout_ms }, seed, failFast: true, gdb: null, cacheDir: ctx.cacheDir,
      repoDir: ctx.repoDir, workDir: work, proof, replay: cell.replay.replace(/ --seed \d+$/, ''),
    });
  };
  try {
    const out: GateCell[] = [];
    for (const g of gated) {
      if (!failsGate(g.status)) {
        out.push(g);
        continue;
      }
      const key = `${g.cell.case} on ${g.cell.env}`;
      if (g.status === 'error') {
        ctx.log(`gate: re-running the error cell ${key}`);
        const again = await rerun(g.cell, randomInt(1, 2 ** 31 - 1), g.cell.budget.forks, g.cell.budget.seconds);
        if (again && again.verdict !== 'error') {
          const re = compare([again], ctx.baseline, ctx.cases)[0];
          out.push(failsGate(re.status)
            ? { ...re, confirmations: 1, note: `${re.note} (after a re-run of an error: ${g.note.slice(0, 120)})` }
            : { ...re, note: `${re.note} (a re-run; the first run was an error: ${g.note.slice(0, 160)})`, confirmations: 1 });
        } else out.push({ ...g, confirmations: 1, note: `${g.note} (the error reproduced in a re-run)` });
        continue;
      }
      const reruns: CellResult[] = [];
      ctx.log(`gate: confirming ${key} (${g.cell.kind} ${g.cell.failures}/${g.cell.forks}): re-run with the same seed ${g.cell.seed}`);
      const same = await rerun(g.cell, g.cell.seed, g.cell.budget.forks, g.cell.budget.seconds);
      if (same) reruns.push(same);
      if (!same || same.failures === 0) {
        const forks = Math.max(MIN_PASS_FORKS, g.cell.budget.forks);
        ctx.log(`gate: ${key}: not reproduced by the same seed; a fresh budget of ${forks} forks`);
        const fresh = await rerun(g.cell, randomInt(1, 2 ** 31 - 1), forks, Math.max(g.cell.budget.seconds, 10));
        if (fresh) reruns.push(fresh);
      }
      const d = confirmation(g.cell, reruns);
      out.push(d.confirmed ? { ...g, confirmations: reruns.length, note: `${g.note}; ${d.note}` } : { ...g, status: 'flaky', confirmations: reruns.length, note: d.note });
    }
    return out;
  } finally {
    rmSync(work, { recursive: true, force: true });
    forget();
  }
}

/** The --libc sources given as git:PATH@REV, by the environment id they became: for the baseline and bisect hints. */
export async function gitSources(libc: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const { resolveSource } = await import('./libc-src/build.ts');
  for (const spec of libc) {
    try {
      const s = resolveSource(spec);
      if (s.commit) out[s.id] = `git:${s.path}@${s.commit}`;
    } catch {
      /* not a source: nothing to record */
    }
  }
  return out;
}

/** The bisect command for a regressed cell, when both the candidate and the baseline came from one git checkout. */
export function bisectHint(g: GateCell, candidate: Record<string, string>, baseline: Baseline | null, preload: string[]): string | null {
  const mine = candidate[g.cell.env] ? parseGitSpec(candidate[g.cell.env]) : null;
  if (mine) {
    const theirs = Object.values(baseline?.sources ?? {}).map(parseGitSpec).find((x) => x && x.repo === mine.repo);
    return `npx forkmatrix bisect --libc-git ${mine.repo} --good ${theirs ? theirs.rev.slice(0, 12) : '<a commit the baseline passed on>'} --bad ${mine.rev.slice(0, 12)} --case ${g.cell.case}`;
  }
  if (preload.length && g.cell.env.includes('+'))
    return `npx forkmatrix bisect --preload-git <the interposer's repository> --good <a commit that passed> --bad <the commit of ${path.basename(preload[0])}> --case ${g.cell.case} --env ${g.cell.env.replace(/\+[^+]*$/, '')}`;
  return null;
}
