// Adaptive quick budgets: spend the forks where a verdict is still uncertain.
//
// Under --budget quick a cell stops at its first failure (its verdict is decided: fail) instead of spending the
// rest of its 3 seconds on more hangs of 1-2 s each. The seconds it did not use go into a bank; once every cell
// has had its first slice, the bank buys more slices for the cells that have not failed yet, the fewest forks
// first (the widest "could have missed" rate), up to each case's own full budget. A quick run thus takes no longer
// than before, and the passes it reports rest on more forks. Each slice is a separate harness run with its own
// seed; a cell records its slices (`rounds`) and the seed of the one that failed, so a failure can be replayed.

import { QUICK } from './budget.ts';
import { cellFromEvidence, evidenceOfCell } from './cell.ts';
import { addEvidence, MIN_PASS_FORKS } from './verdict.ts';
import type { CaseDef, CellResult } from './types.ts';

/** A slice shorter than this is not worth a harness start. */
export const MIN_SLICE_S = 1;

/** Seconds of cell time saved by cells that finished their slice early, to be spent on uncertain cells. */
export class Bank {
  seconds = 0;
  /** A cell's first slice was planned for `planned` s and used `usedMs`: bank the rest. */
  deposit(planned: number, usedMs: number): void {
    this.seconds += Math.max(0, planned - usedMs / 1000);
  }
  /** Take up to `want` seconds, or nothing when less than a useful slice is left. */
  withdraw(want: number): number {
    const got = Math.min(want, this.seconds);
    if (got < MIN_SLICE_S) return 0;
    this.seconds -= got;
    return got;
  }
}

/**
 * The next slice an uncertain cell may get (within its case's full budget), or null when it has had enough.
 * `topUp`: the cell has no failure but fewer forks than a pass needs (src/verdict.ts): it gets its slice whether or
 * not the bank holds seconds, so that a quick run ends in verdicts, not in a column of "inconclusive" on a slow or
 * loaded machine. Other passing cells are paid from the bank.
 */
export function nextSlice(c: CaseDef, cell: CellResult): { forks: number; seconds: number; topUp: boolean } | null {
  const short = cell.verdict === 'inconclusive' && cell.failures === 0 && /^no failure in/.test(cell.reason ?? '');
  if (cell.verdict !== 'pass' && !short) return null;
  const topUp = short && cell.forks < MIN_PASS_FORKS;
  const forks = Math.min(topUp ? Math.max(MIN_PASS_FORKS - cell.forks + 30, 60) : QUICK.forks, c.forks - cell.forks);
  const seconds = Math.min(topUp ? Math.max(QUICK.seconds, (cell.elapsed_ms / 1000) * ((MIN_PASS_FORKS - cell.forks + 30) / Math.max(1, cell.forks))) : QUICK.seconds, c.seconds - cell.elapsed_ms / 1000);
  return forks > 0 && seconds >= MIN_SLICE_S ? { forks, seconds, topUp } : null;
}

/** Which uncertain cell gets the next slice: the one whose pass rests on the fewest forks. */
export function mostUncertain<T extends { cell: CellResult }>(xs: T[]): T | undefined {
  return xs.reduce<T | undefined>((best, x) => (!best || x.cell.forks < best.cell.forks ? x : best), undefined);
}

/** One cell from two slices of it: the evidence adds up and is judged again (src/verdict.ts); the first failure and its seed win. */
export function mergeRounds(c: Pick<CaseDef, 'threads' | 'known' | 'found'>, a: CellResult, b: CellResult): CellResult {
  if (b.verdict === 'skip' || b.verdict === 'error') return a; // a later slice that could not run adds nothing
  const decider = a.failures ? a : b.failures ? b : a;
  const shift = (f: CellResult['first_failure']) => (f && f.elapsed_ms != null ? { ...f, elapsed_ms: f.elapsed_ms + a.elapsed_ms } : f);
  const eb = evidenceOfCell(b);
  eb.first_failures = eb.first_failures.map((f) => shift(f)!);
  const ev = addEvidence(evidenceOfCell(a), eb);
  if (decider === b) ev.first_failures = [...eb.first_failures, ...evidenceOfCell(a).first_failures].slice(0, 8);
  const rounds = [...(a.rounds ?? [{ seed: a.seed, forks: a.forks, failures: a.failures, elapsed_ms: a.elapsed_ms }]), { seed: b.seed, forks: b.forks, failures: b.failures, elapsed_ms: b.elapsed_ms }];
  const merged = cellFromEvidence(c, a, ev, a.libc, a.runtime_version, { child_ms: b.forks > a.forks ? b.child_ms : a.child_ms, reruns: [...(a.reruns ?? []), ...(b.reruns ?? [])] });
  return {
    ...merged,
    seed: decider.seed,
    replay: decider.replay,
    budget: { forks: a.budget.forks + b.budget.forks, seconds: a.budget.seconds + b.budget.seconds, timeout_ms: a.budget.timeout_ms },
    rounds,
  };
}
