// Shard plans for a CI matrix: which cells each of N machines runs, balanced by what each cell cost last time.
//
// A unit of the plan is a (case, environment) pair, `runtime/family/id@env`: the only names that are the same on
// the machine that plans (which has nothing provisioned) and on the machines that run (a runtime's version may
// differ). Its cost is the seconds its cells took in a previous matrix (elapsed_ms, scaled to the budget asked
// for), plus a per-cell overhead (compiling, starting 3 harness processes) calibrated from the published runs;
// a unit with no record is estimated from its case's budget. The units are spread over N shards by LPT (longest
// first onto the least loaded shard), then improved by moves and swaps off the heaviest shard; each shard's time
// is predicted by simulating its `jobs` workers taking the units in the order the run takes them (src/run.ts).
// Everything here is pure: the command (src/plan-cmd.ts) reads the files.

import { budgetFor, type BudgetSpec } from './budget.ts';
import type { CaseDef, CellResult, RuntimeName } from './types.ts';

export const PLAN_VERSION = 1;

/**
 * Seconds a cell costs beyond its harness's own fork loop (elapsed_ms): compiling, starting the harness processes,
 * the interpreter's start. Calibrated on the published matrix of 2026-11-30 (wall x jobs - sum of elapsed_ms, per
 * cell, per run: libc 2.7-3.0 s once its cases were compiled, python 2.7 s, the ruby+node+libuv run 12.3 s).
 */
export const OVERHEAD_S: Record<string, number> = { libc: 3, python: 3, ruby: 12, node: 12, libuv: 12 };
/**
 * Seconds a CI machine spends on each provision before its cells run, with a warm cache (actions/cache restores
 * ~/.cache/forkmatrix, then `provision` checks it): estimates, not measured on a hosted runner. `host` is apt-get
 * in a fresh container (not cached); a Debian root unpacks a ~400 MB tarball. A cold cache costs minutes more
 * (a root's debootstrap ~11 min) once per cache key.
 */
export const PROVISION_S: Record<string, number> = { host: 60, glibc: 30, allocators: 10, musl: 30, 'musl-python': 20, 'musl-ruby': 20, libuv: 40, 'root-bullseye': 60, 'root-bookworm': 60, 'root-trixie': 60, 'root-sid': 60 };
/** A cell that is skipped (its runtime is missing there) costs next to nothing. */
export const SKIP_S = 0.2;

export interface Unit {
  key: string; // runtime/family/id@env
  case: string;
  env: string;
  runtime: RuntimeName;
  seconds: number;
  /** true when no cell of this unit was recorded: the cost is the case's budget */
  estimated: boolean;
}

export interface Shard {
  index: number; // 1-based, as in --shard I/N
  /** unit keys in the order the shard runs them */
  cells: string[];
  envs: string[];
  /** what `forkmatrix provision` needs on this shard's machine */
  provision: string[];
  /** sum of the units' seconds */
  load_s: number;
  /** provisioning before the cells (PROVISION_S) */
  setup_s: number;
  /** the simulated wall time of this shard: its setup, then its cells on `jobs` workers */
  predicted_s: number;
}

export interface Plan {
  version: number;
  budget: string;
  jobs: number;
  from: string | null;
  /** --suites DIR the cases came from, when not suites/ */
  suites: string | null;
  total_s: number;
  /** no plan can beat the host's setup + max(total / (shards x jobs), the longest unit) */
  lower_bound_s: number;
  makespan_s: number;
  estimated: number;
  shards: Shard[];
  /** for a CI's matrix feature: one entry per shard */
  matrix: { include: { shard: number; provision: string }[] };
}

export const unitKey = (caseKey: string, env: string) => `${caseKey}@${env}`;

/** What a recorded cell would cost under `target` (its forks and seconds): its own time per fork, capped by the seconds. */
export function cellSeconds(rec: Pick<CellResult, 'verdict' | 'forks' | 'elapsed_ms' | 'runtime' | 'budget'>, target: { forks: number; seconds: number } | null): number {
  if (rec.verdict === 'skip') return SKIP_S;
  const loop = rec.elapsed_ms / 1000;
  let s = loop;
  if (target && rec.forks > 0 && (target.forks !== rec.budget.forks || target.seconds !== rec.budget.seconds)) s = Math.min(target.seconds, (target.forks * loop) / rec.forks);
  return s + (OVERHEAD_S[rec.runtime] ?? 3);
}

/**
 * The cost of each (case, env) unit. `records` are the cells of a previous matrix; a unit's cost is the sum of
 * its recorded cells (one per runtime instance: libuv 1.44 and 1.50 on one libc) under `budget`. Under `quick` the
 * recorded time is taken as it is (it includes the adaptive top-up slices); under `full` or N forks it is scaled.
 */
export function unitCosts(pairs: { c: Pick<CaseDef, 'key' | 'runtime' | 'forks' | 'seconds' | 'timeoutMs'>; env: string }[], records: CellResult[], budget: BudgetSpec): Unit[] {
  const byUnit = new Map<string, CellResult[]>();
  for (const r of records) byUnit.set(unitKey(r.case, r.env), [...(byUnit.get(unitKey(r.case, r.env)) ?? []), r]);
  return pairs.map(({ c, env }) => {
    const key = unitKey(c.key, env);
    const target = budgetFor(c as CaseDef, budget);
    const recs = byUnit.get(key);
    const seconds = recs?.length
      ? recs.reduce((s, r) => s + cellSeconds(r, budget.kind === 'quick' ? null : target), 0)
      : target.seconds + (OVERHEAD_S[c.runtime] ?? 3);
    return { key, case: c.key, env, runtime: c.runtime, seconds: Math.round(seconds * 1000) / 1000, estimated: !recs?.length };
  });
}

/**
 * The (case, env) pairs of a published matrix, with today's cases: every case of a runtime on every environment
 * that had a column of that runtime (a case added since is planned where its runtime ran).
 */
export function publishedPairs<C extends Pick<CaseDef, 'runtime'>>(cases: C[], columns: { env: string; runtime: RuntimeName }[]): { c: C; env: string }[] {
  const envs = [...new Set(columns.map((col) => col.env))];
  return envs.flatMap((env) => cases.filter((c) => columns.some((col) => col.env === env && col.runtime === c.runtime)).map((c) => ({ c, env })));
}

const byCostThenKey = (a: { seconds: number; key: string }, b: { seconds: number; key: string }) => b.seconds - a.seconds || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/**
 * Spread `units` over `n` shards. A shard's load is its units' seconds over its `jobs` workers plus the setup its
 * units need (each provision once per shard: restoring the CI cache and checking it), so units of one environment
 * stay together unless spreading them pays. LPT (each unit, longest first, onto the shard where the load grows
 * least; ties to the lower index), then improvement: move a unit off the heaviest shard, or swap one of its units
 * with a lighter one of another shard, whenever that lowers both below the old maximum. Deterministic.
 */
export function balance(units: { key: string; seconds: number; setup?: string[] }[], n: number, o: { jobs?: number; setupCost?: Record<string, number> } = {}): string[][] {
  const jobs = Math.max(1, o.jobs ?? 1);
  const sorted = [...units].sort(byCostThenKey);
  const info = new Map(sorted.map((u) => [u.key, { s: u.seconds / jobs, setup: u.setup ?? [] }]));
  const bins: string[][] = Array.from({ length: n }, () => []);
  const cells = new Array<number>(n).fill(0);
  const uses: Map<string, number>[] = Array.from({ length: n }, () => new Map());
  const setupOf = (i: number) => [...uses[i].keys()].reduce((t, p) => t + (o.setupCost?.[p] ?? 0), 0);
  const load = (i: number) => cells[i] + setupOf(i);
  const add = (i: number, k: string) => {
    const u = info.get(k)!;
    cells[i] += u.s;
    for (const p of u.setup) uses[i].set(p, (uses[i].get(p) ?? 0) + 1);
  };
  const remove = (i: number, k: string) => {
    const u = info.get(k)!;
    cells[i] -= u.s;
    for (const p of u.setup) uses[i].get(p) === 1 ? uses[i].delete(p) : uses[i].set(p, uses[i].get(p)! - 1);
  };
  const grow = (i: number, k: string) => info.get(k)!.s + info.get(k)!.setup.reduce((t, p) => t + (uses[i].has(p) ? 0 : (o.setupCost?.[p] ?? 0)), 0);
  for (const u of sorted) {
    let best = 0;
    for (let i = 1; i < n; i++) if (load(i) + grow(i, u.key) < load(best) + grow(best, u.key) - 1e-9) best = i;
    bins[best].push(u.key);
    add(best, u.key);
  }
  const loads = () => Array.from({ length: n }, (_, i) => load(i));
  for (let iter = 0; iter < 5_000; iter++) {
    const l = loads();
    const h = l.reduce((b, x, i) => (x > l[b] + 1e-9 ? i : b), 0);
    const max = l[h];
    let done = false;
    for (let t = 0; t < n && !done; t++) {
      if (t === h) continue;
      for (let a = 0; a < bins[h].length && !done; a++) {
        const ka = bins[h][a];
        remove(h, ka);
        add(t, ka);
        if (Math.max(load(h), load(t)) < max - 1e-6) {
          bins[t].push(...bins[h].splice(a, 1));
          done = true;
          break;
        }
        remove(t, ka);
        for (let b = 0; b < bins[t].length && !done; b++) {
          const kb = bins[t][b];
          if (info.get(kb)!.s >= info.get(ka)!.s) continue;
          remove(t, kb);
          add(t, ka);
          add(h, kb);
          if (Math.max(load(h), load(t)) < max - 1e-6) {
            bins[h][a] = kb;
            bins[t][b] = ka;
            done = true;
            break;
          }
          remove(h, kb);
          remove(t, ka);
          add(t, kb);
        }
        if (!done) add(h, ka);
      }
    }
    if (!done) break;
  }
  // each shard runs its units longest first (src/run.ts takes them in this order)
  const cost = (k: string) => info.get(k)!.s;
  return bins.map((b) => b.sort((x, y) => byCostThenKey({ key: x, seconds: cost(x) }, { key: y, seconds: cost(y) })));
}

/** The wall time of `jobs` workers each taking the next of `seconds` (in order) when free: how src/run.ts schedules. */
export function simulate(seconds: number[], jobs: number): number {
  const free = new Array<number>(Math.max(1, jobs)).fill(0);
  for (const s of seconds) {
    let w = 0;
    for (let i = 1; i < free.length; i++) if (free[i] < free[w]) w = i;
    free[w] += s;
  }
  return Math.max(0, ...free);
}

/**
 * What `forkmatrix provision` must bring onto a machine for these units. The CI image is Debian bookworm, whose
 * own glibc (2.36) is the host environment (HOST_ENV); other glibc versions are `glibc`, Debian roots `root-<suite>`.
 */
export const HOST_ENV = 'glibc-2.36';
export function provisionFor(units: Pick<Unit, 'env' | 'runtime'>[]): string[] {
  const out = new Set<string>(['host']);
  for (const u of units) {
    const [base, alloc] = u.env.split('+');
    const root = /^glibc-[\d.]+-(\w+)$/.exec(base);
    if (root) out.add(`root-${root[1]}`);
    else if (base.startsWith('musl-')) {
      out.add('musl');
      if (u.runtime === 'python' || u.runtime === 'ruby') out.add(`musl-${u.runtime}`);
    } else if (base !== HOST_ENV && base.startsWith('glibc-')) out.add('glibc');
    if (alloc) out.add('allocators');
    if (u.runtime === 'libuv') out.add('libuv');
  }
  return [...out];
}

export function makePlan(units: Unit[], n: number, o: { jobs: number; budget: string; from: string | null; suites?: string | null; setupCost?: Record<string, number> }): Plan {
  const byKey = new Map(units.map((u) => [u.key, u]));
  const setupCost = o.setupCost ?? PROVISION_S;
  const withSetup = units.map((u) => ({ ...u, setup: provisionFor([u]) }));
  const shards: Shard[] = balance(withSetup, n, { jobs: o.jobs, setupCost }).map((keys, i) => {
    const us = keys.map((k) => byKey.get(k)!);
    const load = us.reduce((s, u) => s + u.seconds, 0);
    const provision = us.length ? provisionFor(us) : [];
    const setup = provision.reduce((t, p) => t + (setupCost[p] ?? 0), 0);
    return {
      index: i + 1, cells: keys, envs: [...new Set(us.map((u) => u.env))].sort(), provision,
      load_s: round(load), setup_s: round(setup), predicted_s: round(setup + simulate(us.map((u) => u.seconds), o.jobs)),
    };
  });
  const total = units.reduce((s, u) => s + u.seconds, 0);
  return {
    version: PLAN_VERSION, budget: o.budget, jobs: o.jobs, from: o.from, suites: o.suites ?? null, total_s: round(total),
    lower_bound_s: round((units.length ? (setupCost.host ?? 0) : 0) + Math.max(total / (n * o.jobs), ...units.map((u) => u.seconds), 0)),
    makespan_s: Math.max(0, ...shards.map((s) => s.predicted_s)), estimated: units.filter((u) => u.estimated).length, shards,
    matrix: { include: shards.map((s) => ({ shard: s.index, provision: s.provision.join(' ') })) },
  };
}

const round = (x: number) => Math.round(x * 10) / 10;

export const fmtDuration = (s: number) => (s >= 60 ? `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, '0')} s` : `${s.toFixed(1)} s`);

/** The plan for a terminal: one line per shard and the predicted makespan. */
export function planText(p: Plan): string {
  const lines = p.shards.map((s) => `  shard ${String(s.index).padStart(2)}/${p.shards.length}: ${String(s.cells.length).padStart(3)} cells, ${fmtDuration(s.predicted_s).padStart(11)} predicted (setup ${Math.round(s.setup_s)} s: provision ${s.provision.join(' ') || '-'}; ${s.envs.join(', ')})`);
  const units = p.shards.reduce((n, s) => n + s.cells.length, 0);
  return `${lines.join('\n')}\n\n${units} cells (${p.estimated} without a record, estimated from their budget), ${fmtDuration(p.total_s)} of cell time, budget ${p.budget}, ${p.jobs} jobs per shard\npredicted makespan for ${p.shards.length} shards: ${fmtDuration(p.makespan_s)} (no plan can beat ${fmtDuration(p.lower_bound_s)})\n`;
}

/** A plan file as `run --plan` reads it: the reason it cannot be used, or null. */
export function planProblem(x: unknown): string | null {
  const p = x as Plan;
  if (!p || typeof p !== 'object' || Array.isArray(p)) return 'not a forkmatrix plan (expected a JSON object from forkmatrix plan --out FILE)';
  if (p.version !== PLAN_VERSION) return `plan version ${JSON.stringify(p.version)}, this forkmatrix reads version ${PLAN_VERSION}: make it again with this forkmatrix's plan`;
  if (!Array.isArray(p.shards) || !p.shards.length) return 'no shards in it';
  for (const [i, s] of p.shards.entries())
    if (s?.index !== i + 1 || !Array.isArray(s.cells) || !s.cells.every((c) => typeof c === 'string' && /^[^@\s]+\/[^@\s]+@\S+$/.test(c)))
      return `shard ${i + 1} is damaged (expected { index: ${i + 1}, cells: ["runtime/family/id@env", ...] })`;
  if (typeof p.budget !== 'string') return 'no budget in it';
  return null;
}
