// The verdict: a pure function of (case, evidence from the harness processes, proof). No fork happens here, so
// every rule below is tested on fixtures (test/verdict-logic.test.ts) besides the real-fork tests.
//
// The rules (README "Reading the matrix"):
// - A failure is evidence: one child that hung (proved blocked by the harness), crashed or said no fails the cell,
//   whatever the pressure. A hang record without the harness's proof is not trusted: the cell is an error.
// - A pass must be earned: at least MIN_PASS_FORKS forks over at least MIN_PASS_PROCESSES fresh harness processes
//   (a per-process condition, like an fd number or which thread started first, cannot turn a failing cell into a
//   pass), and proof of pressure: every loop thread made iterations during the fork window, none raised or stalled.
//   Less than that is `inconclusive`, never `pass`.
// - A cell runs in an environment that proved its libc, and, where the environment preloads an allocator or
//   another interposer, every harness process must show it mapped.

import { scopeApplies } from './schema.ts';
import type { CaseDef, FailKind, FailureRecord, Found, HarnessResult, Known, Verdict } from './types.ts';

export const MIN_PASS_FORKS = 300;
export const MIN_PASS_PROCESSES = 3;
/**
 * A loop thread whose last finished iteration is older than this share of the fork window, and at least
 * STALL_MIN_MS, stalled (a lock the parent never gets back). Shorter gaps are a slow loop body or a loaded machine
 * (measured: a Python thread waiting 1 s for the GIL on 2 cores under load 25): not proof of a stall.
 */
const STALL_SHARE = 0.75;
const STALL_MIN_MS = 3000;
/** Fewer sampled forks than this say nothing about whether forks landed inside the loop bodies. */
const MIN_INSIDE_SAMPLES = 50;

/** The loop threads' work over every harness process of a cell. */
export interface PressureSummary {
  threads: number;
  /** fork-window time summed over processes, ms */
  window_ms: number;
  /** iterations per thread index, summed over processes */
  iterations: number[];
  /** the slowest thread's iterations per second, over all processes (the weakest pressure seen) */
  min_rate: number | null;
  forks_inside: number;
  forks_sampled: number;
  /** what disqualifies the pressure (a thread that raised, stalled or never iterated), per process */
  problems: string[];
}

/** Everything the harness processes of one cell (or of several slices of it) reported, added up. */
export interface Evidence {
  processes: number;
  forks: number;
  counts: { ok: number; hang: number; crash: number; wrong: number };
  slow: number;
  elapsed_ms: number;
  first_failures: FailureRecord[];
  pressure: PressureSummary | null;
  /** harness-level errors that stood after their re-runs */
  errors: string[];
  skipped: string | null;
  /** interposers (allocators, --preload) the environment loads that a harness process did not map */
  unmapped: string[];
}

export interface Judgement {
  verdict: Verdict;
  kind: FailKind | null;
  reason: string | null;
  known: Known | null;
  found: Found | null;
}

export function emptyEvidence(): Evidence {
  return { processes: 0, forks: 0, counts: { ok: 0, hang: 0, crash: 0, wrong: 0 }, slow: 0, elapsed_ms: 0, first_failures: [], pressure: null, errors: [], skipped: null, unmapped: [] };
}

/** The pressure of one harness process, summarised, with what disqualifies it. */
export function summarisePressure(r: HarnessResult, threads: number, proc = 1): PressureSummary | null {
  if (threads === 0) return { threads: 0, window_ms: r.elapsed_ms ?? 0, iterations: [], min_rate: null, forks_inside: 0, forks_sampled: 0, problems: [] };
  const p = r.pressure;
  if (!p || !Array.isArray(p.threads)) return null;
  const problems: string[] = [];
  const w = p.window_ms > 0 ? p.window_ms : r.elapsed_ms;
  let minRate: number | null = null;
  if (p.threads.length < threads) problems.push(`process ${proc}: ${threads - p.threads.length} of ${threads} loop threads reported nothing (never started)`);
  p.threads.forEach((t, i) => {
    const rate = w > 0 ? t.iterations / (w / 1000) : 0;
    minRate = minRate == null ? rate : Math.min(minRate, rate);
    if (t.error) problems.push(`process ${proc}: loop thread ${i} raised: ${t.error}`);
    else if (t.last_ms != null && t.last_ms >= STALL_MIN_MS && t.last_ms > STALL_SHARE * w)
      problems.push(`process ${proc}: loop thread ${i} stalled: no iteration finished in the last ${Math.round(t.last_ms)} ms of the ${Math.round(w)} ms fork window`);
  });
  return { threads, window_ms: w, iterations: p.threads.map((t) => t.iterations), min_rate: minRate, forks_inside: p.forks_inside ?? 0, forks_sampled: p.forks_sampled ?? 0, problems };
}

function addPressure(a: PressureSummary | null, b: PressureSummary | null): PressureSummary | null {
  if (!a || !b) return a ?? b;
  const n = Math.max(a.iterations.length, b.iterations.length);
  const rates = [a.min_rate, b.min_rate].filter((x): x is number => x != null);
  return {
    threads: Math.max(a.threads, b.threads),
    window_ms: a.window_ms + b.window_ms,
    iterations: Array.from({ length: n }, (_, i) => (a.iterations[i] ?? 0) + (b.iterations[i] ?? 0)),
    min_rate: rates.length ? Math.min(...rates) : null,
    forks_inside: a.forks_inside + b.forks_inside,
    forks_sampled: a.forks_sampled + b.forks_sampled,
    problems: [...a.problems, ...b.problems],
  };
}

/** One harness process's result as evidence. `preloads` are the interposers it must show mapped. */
export function evidenceOf(r: HarnessResult, threads: number, preloads: string[] = [], proc = 1): Evidence {
  const e = emptyEvidence();
  e.processes = 1;
  if (r.error) e.errors.push(r.error);
  if (r.skipped) e.skipped = r.skipped;
  e.forks = r.forks ?? 0;
  e.counts = { ok: r.ok ?? 0, hang: r.hang ?? 0, crash: r.crash ?? 0, wrong: r.wrong ?? 0 };
  e.slow = r.slow ?? 0;
  e.elapsed_ms = r.elapsed_ms ?? 0;
  e.first_failures = r.first_failures ?? [];
  if (!r.error && !r.skipped) {
    e.pressure = summarisePressure(r, threads, proc);
    if (!e.pressure) e.pressure = { threads, window_ms: r.elapsed_ms ?? 0, iterations: [], min_rate: null, forks_inside: 0, forks_sampled: 0, problems: [`process ${proc}: the harness reported no pressure counters`] };
    if (preloads.length) {
      const mapped = new Set((r.mapped ?? []).map((m) => m.split('/').pop()));
      for (const lib of preloads) if (!mapped.has(lib.split('/').pop())) e.unmapped.push(`${lib} (process ${proc})`);
    }
  }
  return e;
}

/** Two pieces of evidence of the same cell (processes of one slice, or slices), added up. */
export function addEvidence(a: Evidence, b: Evidence): Evidence {
  return {
    processes: a.processes + b.processes,
    forks: a.forks + b.forks,
    counts: { ok: a.counts.ok + b.counts.ok, hang: a.counts.hang + b.counts.hang, crash: a.counts.crash + b.counts.crash, wrong: a.counts.wrong + b.counts.wrong },
    slow: a.slow + b.slow,
    elapsed_ms: a.elapsed_ms + b.elapsed_ms,
    first_failures: [...a.first_failures, ...b.first_failures].slice(0, 8),
    pressure: addPressure(a.pressure, b.pressure),
    errors: [...a.errors, ...b.errors],
    skipped: a.skipped ?? b.skipped,
    unmapped: [...a.unmapped, ...b.unmapped],
  };
}

export function failuresOf(e: Evidence): number {
  return e.counts.hang + e.counts.crash + e.counts.wrong;
}

/** The expected-failure entry (known before found) that covers this failure, if any. */
function expected<T extends Known | Found>(xs: T[], kind: FailKind, libc: { name: string; version: string } | null, runtimeVersion: string): T | null {
  return xs.find((k) => scopeApplies(k, libc, runtimeVersion) && (k.verdict === 'fail' || k.verdict === kind)) ?? null;
}

/**
 * The verdict of a cell. `libc` is the proved libc the harnesses ran on; `runtimeVersion` the runtime's version
 * (for runtime-scoped known/found entries).
 */
export function verdict(c: Pick<CaseDef, 'threads' | 'known' | 'found'>, e: Evidence, libc: { name: string; version: string } | null, runtimeVersion: string): Judgement {
  const none = { kind: null, known: null, found: null };
  if (e.errors.length) return { ...none, verdict: 'error', reason: e.errors[0] };
  if (e.skipped) return { ...none, verdict: 'skip', reason: e.skipped };
  if (!e.forks) return { ...none, verdict: 'error', reason: 'no fork ran' };
  if (e.unmapped.length)
    return { ...none, verdict: 'error', reason: `the environment's interposer was not mapped into the harness: ${e.unmapped.join(', ')} (the column would not test what it names)` };
  const failures = failuresOf(e);
  if (failures) {
    const first = e.first_failures[0] ?? null;
    const kind: FailKind = first?.kind ?? (e.counts.hang ? 'hang' : e.counts.crash ? 'crash' : 'wrong');
    const unproved = e.first_failures.find((f) => f.kind === 'hang' && !f.diag?.proof);
    if (unproved)
      return { ...none, verdict: 'error', reason: `a child counted as hung at iteration ${unproved.iteration} carries no proof that it was blocked (runners/PROTOCOL.md): the harness is out of date` };
    // every kind of failure the cell saw must be explained: a known hang does not cover a crash seen beside it
    // (that crash is unexplained, or a finding); known only when every kind is known
    const kinds = ([kind, 'hang', 'crash', 'wrong'] as FailKind[]).filter((k, i, a) => e.counts[k] > 0 && a.indexOf(k) === i);
    if (!kinds.length) kinds.push(kind);
    const known = kinds.map((k) => expected(c.known, k, libc, runtimeVersion));
    const found = kinds.map((k, i) => (known[i] ? null : expected(c.found, k, libc, runtimeVersion)));
    if (kinds.some((_, i) => !known[i] && !found[i])) return { verdict: 'fail', kind, reason: null, known: null, found: null };
    const f = found.find((x) => !!x) ?? null;
    return { verdict: 'fail', kind, reason: null, known: f ? null : known[0], found: f };
  }
  if (c.threads > 0) {
    const p = e.pressure;
    if (!p) return { ...none, verdict: 'error', reason: 'no pressure: the harness reported no loop-thread counters' };
    if (p.problems.length) return { ...none, verdict: 'error', reason: `no pressure: ${p.problems[0]}${p.problems.length > 1 ? ` (and ${p.problems.length - 1} more)` : ''}` };
    // a loop body may outlast one process's window (a slow body, a loaded machine): a thread must finish iterations
    // over the cell, not in every process
    const idle = p.iterations.findIndex((n) => !n);
    if (idle >= 0)
      return { ...none, verdict: 'error', reason: `no pressure: loop thread ${idle} finished no iteration in ${e.processes} harness process${e.processes === 1 ? '' : 'es'} (${Math.round(p.window_ms)} ms of forking): stuck in its loop, or never started` };
    if (p.forks_sampled >= MIN_INSIDE_SAMPLES && p.forks_inside === 0)
      return { ...none, verdict: 'inconclusive', reason: `no pressure at the forks: none of ${p.forks_sampled} forks found a loop thread inside its loop body` };
  }
  if (e.forks < MIN_PASS_FORKS || e.processes < MIN_PASS_PROCESSES)
    return {
      ...none,
      verdict: 'inconclusive',
      reason: `no failure in ${e.forks} forks over ${e.processes} harness process${e.processes === 1 ? '' : 'es'}: a pass needs at least ${MIN_PASS_FORKS} forks over ${MIN_PASS_PROCESSES}`,
    };
  return { ...none, verdict: 'pass', reason: null };
}
