// `forkmatrix plan` and the shard a `run --shard I/N` takes: the files around the pure balancing in src/plan.ts.

import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseBudget, budgetLabel, type BudgetSpec } from './budget.ts';
import { selectCases } from './cases.ts';
import { matrixFromTap, type Matrix } from './matrix.ts';
import { makePlan, planProblem, planText, publishedPairs, unitCosts, unitKey, type Plan } from './plan.ts';
import { REPO, UsageError, loadValidSuite, parse } from './cli.ts';
import { writeAll } from './util.ts';
import type { CaseDef, CellResult, Environment } from './types.ts';

export const PLAN_HELP = `Usage: forkmatrix plan --shards N [--from RESULTS] [--env LIST] [--suite LIST] [--case GLOB] [--budget B]
                      [--jobs N] [--suites DIR] [--out FILE] [--json]

Splits the cells over N machines (a CI matrix) so that they finish together: each (case, environment) costs the
seconds its cells took in RESULTS (default: results/published; a results directory, its matrix.json or TAP
streams), scaled to the budget; a cell with no record is estimated from its case's budget. LPT (longest first
onto the least loaded shard), then moves and swaps off the heaviest shard. Prints each shard and the predicted
makespan (the slowest shard, simulated with --jobs workers: default 2, a 2-core CI machine).

  --shards N      how many machines
  --from RESULTS  the recorded costs; also the cells, when --env is not given: every case of a runtime on each
                  environment that had a column of that runtime
  --env LIST      plan every selected case on these environments instead
  --budget B      quick (default), full or a fork count: what the shards will run
  --out FILE      write the plan (JSON) for 'forkmatrix run --plan FILE --shard I/N'
  --json          print the plan as JSON instead of the table (its "matrix" is a CI matrix: one entry per shard)

'run --shard I/N' without --plan takes shard I of the same balancing over its own cells, from results/published.`;

/** The cells of a matrix, flat. */
const cellsOf = (m: Matrix): CellResult[] => Object.values(m.cells).flatMap((row) => Object.values(row));

/** A previous matrix: a results directory (its matrix.json, else its TAP), a matrix.json, or .tap files. */
export async function readMatrix(p: string, flag: string): Promise<Matrix> {
  let file = p;
  try {
    if (statSync(p).isDirectory() && existsSync(path.join(p, 'matrix.json'))) file = path.join(p, 'matrix.json');
  } catch {
    throw new UsageError(`${flag} ${p}: no such file or directory (give a results directory such as results/published, or its matrix.json)`);
  }
  if (file.endsWith('.json')) {
    let m: Matrix;
    try {
      m = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new UsageError(`${flag} ${file}: not readable JSON (${(e as Error).message.split('\n')[0]}): give a forkmatrix matrix.json`);
    }
    if (!m || typeof m !== 'object' || !Array.isArray(m.columns) || !m.cells || typeof m.cells !== 'object')
      throw new UsageError(`${flag} ${file}: not a forkmatrix matrix.json (no columns and cells): give the matrix.json that run or report wrote`);
    return m;
  }
  if (!statSync(p).isDirectory() && !p.endsWith('.tap')) throw new UsageError(`${flag} ${p}: not a matrix.json, a .tap stream or a results directory: give e.g. results/published/matrix.json`);
  const m = await matrixFromTap([p]).catch((e: Error) => {
    throw new UsageError(`${flag} ${p}: ${e.message}`);
  });
  if (!m.sources.length || !m.columns.length) throw new UsageError(`${flag} ${p}: no forkmatrix results in it (no matrix.json, no .tap stream with cells): give e.g. results/published`);
  return m;
}

/** Workers per shard the plan assumes by default (a 2-core CI machine); run --shard without --plan balances with it too. */
export const PLAN_JOBS = 2;

/** A function, not a constant: src/cli.ts (REPO) imports this module and is still being evaluated at its load. */
const defaultFrom = () => path.join(REPO, 'results', 'published');

export async function cmdPlan(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, {
    shards: { type: 'string' }, from: { type: 'string' }, env: { type: 'string' }, suite: { type: 'string' }, case: { type: 'string' },
    budget: { type: 'string' }, jobs: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' },
  }, 'plan');
  if (v.help) return (process.stdout.write(PLAN_HELP + '\n'), 0);
  const n = Number(v.shards);
  if (!v.shards || !Number.isInteger(n) || n < 1 || n > 256) throw new UsageError(`--shards ${v.shards ?? '(missing)'}: expected a whole number of machines from 1 to 256, e.g. --shards 20`);
  const jobs = v.jobs ? Number(v.jobs) : PLAN_JOBS;
  if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`--jobs ${v.jobs}: expected a whole number >= 1 (the workers each shard runs)`);
  const budget = parseBudget(v.budget ?? 'quick');
  if (!budget) throw new UsageError(`--budget ${v.budget}: expected quick, full or a number of forks`);
  const suite = await loadValidSuite(v.suites);
  const list = (s?: string) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : null);
  const cases = selectCases(suite.cases, list(v.suite), list(v.case));
  if (!cases.length) throw new UsageError(`no case matches --suite ${v.suite ?? '(all)'} --case ${v.case ?? '(all)'}: see 'forkmatrix list'`);
  const from = v.from ?? (existsSync(defaultFrom()) ? defaultFrom() : null);
  const prev = from ? await readMatrix(from, '--from') : null;
  const envs = list(v.env);
  if (!envs && !prev) throw new UsageError(`plan needs the cells' environments: --env LIST, or --from a results directory (results/published is not here)`);
  const pairs = envs ? envs.flatMap((env) => cases.map((c) => ({ c, env }))) : publishedPairs(cases, prev!.columns);
  if (!pairs.length) throw new UsageError(`plan: ${from} has no column for the selected cases' runtimes; give --env LIST`);
  const units = unitCosts(pairs, prev ? cellsOf(prev) : [], budget);
  const plan = makePlan(units, n, { jobs, budget: budgetLabel(budget), from: from ? path.relative(process.cwd(), path.resolve(from)) || '.' : null, suites: v.suites ?? null });
  const json = JSON.stringify(plan, null, 1) + '\n';
  if (v.out) {
    const dir = path.dirname(path.resolve(v.out));
    try {
      mkdirSync(dir, { recursive: true });
      if (existsSync(v.out) && statSync(v.out).isDirectory()) throw new UsageError(`--out ${v.out}: a directory: give the plan file to write, e.g. --out ${path.join(v.out, 'plan.json')}`);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`--out ${v.out}: cannot make its folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give a writable path`);
    }
    writeAll(dir, [[path.basename(v.out), json]]);
  }
  process.stdout.write(v.json ? json : planText(plan));
  return 0;
}

/** Read and check a plan file for `run --plan FILE --shard I/N`. */
export function readPlan(file: string, shard: { index: number; count: number } | null): { plan: Plan; cells: string[] } {
  let p: unknown;
  try {
    p = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`--plan ${file}: ${code ? `cannot read it (${code})` : `not JSON (${(e as Error).message.split('\n')[0]})`}: give the file 'forkmatrix plan --out FILE' wrote`);
  }
  const why = planProblem(p);
  if (why) throw new UsageError(`--plan ${file}: ${why}`);
  const plan = p as Plan;
  if (!shard) throw new UsageError(`--plan ${file} needs --shard I/${plan.shards.length}: which of its shards to run`);
  if (shard.count !== plan.shards.length) throw new UsageError(`--shard ${shard.index}/${shard.count}: the plan ${file} has ${plan.shards.length} shards; use --shard I/${plan.shards.length}`);
  return { plan, cells: plan.shards[shard.index - 1].cells };
}

/**
 * The cases and environments of a sharded run, and the cells in the order to run them. With a plan: exactly its
 * shard (every environment it names must be here). Without: shard I of the same balancing over the run's own
 * cells, costed from results/published.
 */
export async function shardSelection(o: { cases: CaseDef[]; envs: Environment[]; shard: { index: number; count: number }; budget: BudgetSpec; planned: { plan: Plan; cells: string[] } | null; planFile?: string }): Promise<{ cases: CaseDef[]; envs: Environment[]; cells: string[] }> {
  if (o.planned) {
    const want = o.planned.cells;
    const keys = new Set(want.map((k) => k.slice(0, k.lastIndexOf('@'))));
    const unknown = [...keys].filter((k) => !o.cases.some((c) => c.key === k));
    if (unknown.length) throw new UsageError(`--plan ${o.planFile}: case ${unknown[0]}${unknown.length > 1 ? ` (and ${unknown.length - 1} more)` : ''} is not in the suite: make the plan again from this checkout`);
    const envIds = [...new Set(want.map((k) => k.slice(k.lastIndexOf('@') + 1)))];
    const missing = envIds.filter((e) => !o.envs.some((x) => x.id === e));
    const shard = o.planned.plan.shards[o.shard.index - 1];
    if (missing.length)
      throw new UsageError(`--plan ${o.planFile}: shard ${o.shard.index} needs ${missing.join(', ')}, not available here: run 'forkmatrix provision ${shard.provision?.join(' ') || 'host'}' first (see 'forkmatrix list')`);
    return { cases: o.cases.filter((c) => keys.has(c.key)), envs: o.envs.filter((e) => envIds.includes(e.id)), cells: want };
  }
  const prev = existsSync(defaultFrom()) ? await readMatrix(defaultFrom(), '--from').catch(() => null) : null;
  const units = unitCosts(o.envs.flatMap((e) => o.cases.map((c) => ({ c, env: e.id }))), prev ? cellsOf(prev) : [], o.budget);
  const plan = makePlan(units, o.shard.count, { jobs: PLAN_JOBS, budget: budgetLabel(o.budget), from: null });
  const cells = plan.shards[o.shard.index - 1].cells;
  return { cases: o.cases, envs: o.envs, cells };
}

export { unitKey };
