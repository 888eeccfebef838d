// Statistical bisect, the decisions: how many forks tell a commit that behaves like the failing end from one
// that does not, which commit to try next, and what the steps prove. Pure functions over numbers and lists; the
// command (src/bisect-cmd.ts) builds the commits and runs the cells.
//
// The two ends: OLD (the ancestor) and NEW. A regression: OLD passes, NEW fails; a fix (--fixed, or detected when
// --bad is the ancestor of --good): OLD fails, NEW passes. Either way the search is for the first commit that
// behaves like NEW. A failure is proof (a hang is proved, a crash is a signal), so a commit with any failure
// "fails"; a commit "passes" only after enough forks without one: the budget below.

import { wilson } from './stats.ts';

/** The chance we accept of calling a failing commit passing. */
export const MISS = 0.01;
/** The fewest forks (and harness processes) a "passes" step gets, whatever the failing end's rate. */
export const MIN_FORKS = 30;
export const MIN_PROCESSES = 3;
/** Forks per harness process at most: a bigger budget is spread over more fresh processes. */
export const FORKS_PER_PROCESS = 150;
export const MAX_FORKS = 6000;

export interface Budget {
  forks: number;
  processes: number;
  /** the failure rate the budget is sized for: the 95% lower bound of the failing end's measured rate */
  rate: number;
  /** P(no failure in `forks` forks | the commit fails at `rate`) */
  miss: number;
  why: string;
}

/**
 * The forks a step needs so that a commit failing at least as often as the failing end's 95% lower bound shows a
 * failure with probability >= 1 - MISS: n = ln(MISS) / ln(1 - p). Assumes forks fail independently at that rate;
 * because a failure can hinge on a per-process condition, the forks are spread over >= 3 fresh processes.
 */
export function stepBudget(failures: number, forks: number, miss = MISS): Budget {
  if (failures <= 0 || forks <= 0) throw new Error('the failing end must show a failure before a budget can be chosen');
  const p = wilson(failures, forks)[0];
  const raw = p >= 1 ? 1 : Math.ceil(Math.log(miss) / Math.log(1 - p));
  const n = Math.min(MAX_FORKS, Math.max(MIN_FORKS, raw));
  const processes = Math.max(MIN_PROCESSES, Math.ceil(n / FORKS_PER_PROCESS));
  const m = Math.pow(1 - p, n);
  const capped = raw > MAX_FORKS ? ` (capped at ${MAX_FORKS}: the chance of a miss is ${(m * 100).toPrecision(2)}%, above ${miss * 100}%)` : '';
  return {
    forks: n, processes, rate: p, miss: m,
    why: `the failing end failed ${failures} of ${forks} forks (95% lower bound ${(p * 100).toPrecision(3)}%): ${n} forks over ${processes} fresh processes leave a commit failing that often a ${(m * 100).toPrecision(3)}% chance of showing no failure${raw <= MAX_FORKS ? ` (< ${miss * 100}%)` : ''}${capped}`,
  };
}

export type Behaviour = 'old' | 'new' | 'skip';

/** A step's outcome: fails / passes / skip (did not build, or the cell errored), mapped to old/new by the mode. */
export function behaviourOf(outcome: 'fails' | 'passes' | 'skip', mode: 'regression' | 'fix'): Behaviour {
  if (outcome === 'skip') return 'skip';
  return (outcome === 'fails') === (mode === 'regression') ? 'new' : 'old';
}

/**
 * The next commit index to test, or the answer. `marks[i]` is what commit i (0 = OLD end, last = NEW end) showed.
 * The window is (last 'old' before the first 'new' after it, that 'new'); untested commits inside it are tried
 * nearest the middle first; skipped ones are passed over.
 */
export function nextStep(marks: (Behaviour | undefined)[]): { test: number } | { firstNew: number; skipped: number[] } {
  const n = marks.length;
  let lo = 0;
  for (let i = 0; i < n; i++) if (marks[i] === 'old') lo = i;
  let hi = n - 1;
  for (let i = lo + 1; i < n; i++) if (marks[i] === 'new') { hi = i; break; }
  const open: number[] = [];
  for (let i = lo + 1; i < hi; i++) if (marks[i] === undefined) open.push(i);
  if (!open.length) {
    const skipped: number[] = [];
    for (let i = lo + 1; i < hi; i++) if (marks[i] === 'skip') skipped.push(i);
    return { firstNew: hi, skipped };
  }
  const mid = (lo + hi) / 2;
  open.sort((a, b) => Math.abs(a - mid) - Math.abs(b - mid) || a - b);
  return { test: open[0] };
}

/** The steps a clean bisect of `commits` candidates takes at most (log2). */
export function maxSteps(commits: number): number {
  return Math.max(0, Math.ceil(Math.log2(Math.max(1, commits))));
}

/** A step's outcome from a cell's numbers: any failure fails; a pass needs the whole budget without one. */
export function outcomeOf(cell: { verdict: string; failures: number; forks: number; processes?: number }, b: Pick<Budget, 'forks' | 'processes'>): 'fails' | 'passes' | 'short' | 'skip' {
  if (cell.failures > 0) return 'fails';
  if (cell.verdict === 'error' || cell.verdict === 'skip') return 'skip';
  return cell.forks >= b.forks && (cell.processes ?? 1) >= Math.min(b.processes, MIN_PROCESSES) ? 'passes' : 'short';
}
