// A run: every selected case in every selected environment, cells scheduled over --jobs, one TAP stream per
// (environment, runtime), then the matrix. The core reports progress through callbacks; it knows no terminal.

import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync, symlinkSync, unlinkSync } from 'node:fs';
import { removeOnExit } from './util.ts';
import os from 'node:os';
import path from 'node:path';
import { Bank, mergeRounds, mostUncertain, nextSlice } from './adaptive.ts';
import { budgetFor, budgetLabel, type BudgetSpec } from './budget.ts';
import { runCell } from './cell.ts';
import { buildMatrix, toJSON, toMarkdown, type Matrix } from './matrix.ts';
import { toHTML } from './html.ts';
import { runners } from './registry.ts';
import { writeStream } from './tap.ts';
import { censusSummary } from './census/index.ts';
import type { CaseDef, CellResult, Environment, LibcProof, RuntimeInstance } from './types.ts';
import { which } from '../adapters/host.ts';

export interface RunOptions {
  repoDir: string;
  cacheDir: string;
  outRoot: string; // results/
  runId?: string;
  cases: CaseDef[];
  /** every case of the suite, for the lock coverage (census) written beside the matrix; default: cases */
  allCases?: CaseDef[];
  environments: Environment[];
  budget: BudgetSpec;
  jobs: number;
  seed: number | null;
  failFast: boolean;
  /** the harness's seeded random delay before each fork, 0..N us (default: src/cell.ts) */
  maxDelayUs?: number;
  /** --shard i/n: with `cells` (runtime/family/id@env, src/plan.ts), exactly those cells in that order */
  shard?: { index: number; count: number; cells?: readonly string[] } | null;
  /** options the replay command needs besides case/env/budget/seed (e.g. --suites DIR) */
  replayExtra?: string;
  envCheck?: boolean;
  signal?: AbortSignal;
  onCellStart?: (p: { n: number; total: number; label: string }) => void;
  /** a cell finished; `slice` > 1 when an adaptive budget gave it another slice (cell: all slices so far) */
  onCellDone?: (p: { n: number; total: number; done: number; cell: CellResult; slice?: number }) => void;
  onProblem?: (line: string) => void;
}

export interface RunOutcome {
  dir: string;
  matrix: Matrix;
  cells: CellResult[];
  streams: string[];
}

interface PlannedCell {
  c: CaseDef;
  env: Environment;
  rt: RuntimeInstance | null;
  missing: string | null;
  stream: string;
}

export function streamName(env: Environment, rt: { runtime: string; version: string }): string {
  return `${env.id}__${rt.runtime}-${rt.version}`.replace(/[^A-Za-z0-9._+-]/g, '_');
}

/**
 * The deterministic plan of cells; --shard i/n keeps every n-th cell of it. A runtime built on another (libuv on
 * the C compiler) gets an instance made from the environment's instance of that runtime, or its reason for missing.
 */
export function planCells(cases: CaseDef[], envs: Environment[], shard?: RunOptions['shard'], cacheDir = ''): PlannedCell[] {
  const plan: PlannedCell[] = [];
  for (const env of envs) {
    for (const runtime of [...new Set(cases.map((c) => c.runtime))]) {
      const on = runners[runtime]?.builtOn;
      const base = on?.runtime ?? runtime;
      const instances = env.runtimes.filter((r) => r.runtime === base).flatMap((r) => (on ? on.instance(r, cacheDir) : [r]));
      const rcases = cases.filter((c) => c.runtime === runtime);
      if (!instances.length) {
        const why = env.missing.find((m) => m.runtime === base)?.reason ?? `no ${base === runtime ? runtime : `${base} (for ${runtime})`} in ${env.id}`;
        for (const c of rcases) plan.push({ c, env, rt: null, missing: why, stream: streamName(env, { runtime, version: 'missing' }) });
        continue;
      }
      for (const rt of instances) for (const c of rcases) plan.push({ c, env, rt, missing: null, stream: streamName(env, rt) });
    }
  }
  if (!shard) return plan;
  if (shard.cells) {
    // a balanced shard (src/plan.ts): its (case, env) units, longest first, every runtime instance of each
    const order = new Map(shard.cells.map((k, i) => [k, i]));
    const at = (p: PlannedCell) => order.get(`${p.c.key}@${p.env.id}`) ?? -1;
    return plan.filter((p) => at(p) >= 0).sort((a, b) => at(a) - at(b));
  }
  return plan.filter((_, i) => i % shard.count === shard.index - 1);
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
}

/**
 * A run directory no other run can take: `.<id>.partial` is created with mkdir (exclusive: it fails if it exists),
 * and only while `<id>` itself does not exist; a run started in the same second as another gets `<stamp>-2`, `-3`...
 * The partial directory is renamed to `<id>` when the run completes. Returns the id and the partial directory.
 */
function reserveRunDir(outRoot: string, wanted: string | undefined): { runId: string; partial: string } {
  mkdirSync(outRoot, { recursive: true });
  if (wanted) {
    const partial = path.join(outRoot, `.${wanted}.partial`);
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(partial);
    return { runId: wanted, partial };
  }
  const base = stamp();
  for (let n = 1; ; n++) {
    const runId = n === 1 ? base : `${base}-${n}`;
    const partial = path.join(outRoot, `.${runId}.partial`);
    try {
      mkdirSync(partial); // exclusive
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw e;
    }
    // checked after the reservation: a run that completed <id> before it cannot be overwritten now
    if (existsSync(path.join(outRoot, runId))) {
      rmSync(partial, { recursive: true, force: true });
      continue;
    }
    return { runId, partial };
  }
}

export async function run(o: RunOptions): Promise<RunOutcome> {
  const { runId, partial } = reserveRunDir(o.outRoot, o.runId);
  const finalDir = path.join(o.outRoot, runId);
  const work = mkdtempSync(path.join(os.tmpdir(), 'forkmatrix-'));
  removeOnExit(partial, work); // Ctrl-C exits from src/proc.ts's handler: no half-written results, no temp dir left
  const gdb = which('gdb');
  try {
    // Prove every environment's libc before anything forks: a mismatch is an error, never a column.
    const proofs = new Map<string, LibcProof>();
    const envs: Environment[] = [];
    for (const env of o.environments) {
      try {
        const p = await env.probe();
        if (p.name !== env.expect.libc || (env.expect.version && p.version !== env.expect.version))
          throw new Error(`asked for ${env.expect.libc}${env.expect.version ? ' ' + env.expect.version : ''} but ${p.path} is ${p.name} ${p.version}`);
        proofs.set(env.id, p);
        envs.push(env);
      } catch (e) {
        o.onProblem?.(`environment ${env.id}: ${(e as Error).message}; left out of this run`);
      }
    }
    const plan = planCells(o.cases, envs, o.shard, o.cacheDir);
    const results: (CellResult | null)[] = new Array(plan.length).fill(null);
    let next = 0;
    let done = 0;
    let round = 0;
    const total = plan.length;
    // --budget quick is adaptive (src/adaptive.ts): a cell stops at its first failure, and the time saved buys
    // more slices for the cells that have not failed yet.
    const adaptive = o.budget.kind === 'quick';
    const bank = new Bank();
    const inFlight = new Set<number>();
    let running = 0;
    let wake = () => {};
    let changed = new Promise<void>((r) => (wake = r));
    const runSlice = async (i: number, budget: ReturnType<typeof budgetFor>, seed: number): Promise<CellResult> => {
      running++;
      try {
        return await runSlice1(i, budget, seed);
      } finally {
        running--;
        wake();
        changed = new Promise<void>((r) => (wake = r));
      }
    };
    const runSlice1 = async (i: number, budget: ReturnType<typeof budgetFor>, seed: number): Promise<CellResult> => {
      const p = plan[i];
      const replay = `npx forkmatrix run --case ${p.c.key} --env ${p.env.id} --budget ${budget.forks}${o.replayExtra ?? ''}${p.rt && p.c.runtime !== 'libc' && !runners[p.c.runtime].builtOn ? ` --runtime ${p.c.runtime}=${p.rt.executable}` : ''}`;
      if (!p.rt) return skipCell(p, seed, replay, proofs.get(p.env.id) ?? null);
      return runCell(p.c, p.env, p.rt, runners[p.c.runtime], {
        budget, seed, failFast: o.failFast || adaptive, gdb, cacheDir: o.cacheDir, repoDir: o.repoDir, workDir: work,
        proof: proofs.get(p.env.id) ?? null, signal: o.signal, envCheck: o.envCheck, replay, maxDelayUs: o.maxDelayUs,
      });
    };
    const worker = async () => {
      while (!o.signal?.aborted) {
        if (next < plan.length) {
          const i = next++;
          const p = plan[i];
          const budget = budgetFor(p.c, o.budget);
          o.onCellStart?.({ n: i + 1, total, label: `${p.c.key} on ${p.env.id}` });
          const cell = await runSlice(i, budget, o.seed ?? randomInt(1, 2 ** 31 - 1));
          if (adaptive && cell.verdict === 'fail') bank.deposit(budget.seconds, cell.elapsed_ms); // stopped at its first failure
          results[i] = cell;
          done++;
          o.onCellDone?.({ n: i + 1, total, done, cell });
          continue;
        }
        if (!adaptive) return;
        // every first slice is taken: spend the bank on the most uncertain cell not being run right now
        const open = results.flatMap((cell, i) => (cell && !inFlight.has(i) && nextSlice(plan[i].c, cell) ? [{ i, cell }] : []));
        // cells short of the forks a pass needs are topped up first, unpaid; the bank pays for the rest
        const tops = open.filter((x) => nextSlice(plan[x.i].c, x.cell)!.topUp);
        const pick = mostUncertain(tops.length ? tops : open);
        const want = pick && nextSlice(plan[pick.i].c, pick.cell)!;
        const seconds = want ? (want.topUp ? want.seconds : bank.withdraw(want.seconds)) : 0;
        if (!pick || !want || !seconds) {
          if (!running) return;
          await changed; // a slice still running may fail early (more in the bank) or pass (one more candidate)
          continue;
        }
        inFlight.add(pick.i);
        const p = plan[pick.i];
        const budget = { forks: want.forks, seconds, timeoutMs: p.c.timeoutMs };
        const more = await runSlice(pick.i, budget, o.seed != null ? o.seed + ++round : randomInt(1, 2 ** 31 - 1));
        if (more.verdict === 'fail') bank.deposit(seconds, more.elapsed_ms);
        results[pick.i] = mergeRounds(p.c, results[pick.i]!, more);
        inFlight.delete(pick.i);
        o.onCellDone?.({ n: pick.i + 1, total, done, cell: results[pick.i]!, slice: results[pick.i]!.rounds?.length ?? 2 });
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.jobs, plan.length)) }, worker));
    if (o.signal?.aborted) throw new Error('interrupted');

    // One TAP stream per (environment, runtime instance), test points in plan order.
    const streams = new Map<string, { env: Environment; rt: RuntimeInstance | null; cells: CellResult[] }>();
    plan.forEach((p, i) => {
      const s = streams.get(p.stream) ?? { env: p.env, rt: p.rt, cells: [] };
      s.cells.push(results[i]!);
      streams.set(p.stream, s);
    });
    const files: string[] = [];
    for (const [name, s] of streams) {
      const proof = proofs.get(s.env.id);
      const text = writeStream(
        {
          tool: 'forkmatrix', run: runId, env: s.env.id, budget: budgetLabel(o.budget),
          proof: proof ? `proved ${proof.name} ${proof.version} at ${proof.path} (${proof.banner})` : 'not proved',
          runtime: s.rt ? `${s.rt.runtime} ${s.rt.version} ${s.rt.executable}` : 'missing',
          environment: s.env.env,
        },
        s.cells,
      );
      writeFileSync(path.join(partial, `${name}.tap`), text);
      files.push(path.join(finalDir, `${name}.tap`));
    }
    const cells = results.filter((c): c is CellResult => !!c);
    const matrix = buildMatrix(cells, files.map((f) => path.relative(o.outRoot, f)));
    matrix.census = censusSummary(o.allCases ?? o.cases);
    writeFileSync(path.join(partial, 'matrix.json'), toJSON(matrix));
    writeFileSync(path.join(partial, 'matrix.md'), toMarkdown(matrix));
    writeFileSync(path.join(partial, 'index.html'), toHTML(matrix));
    rmSync(finalDir, { recursive: true, force: true });
    renameSync(partial, finalDir);
    // `latest` is replaced atomically (a new link renamed over it): two runs finishing together never leave none
    const latest = path.join(o.outRoot, 'latest');
    const link = `${latest}.${process.pid}.${Date.now()}`;
    try {
      symlinkSync(runId, link);
      renameSync(link, latest);
    } catch {
      /* not fatal: the run's own directory is complete */
      try {
        unlinkSync(link);
      } catch {
        /* never made */
      }
    }
    return { dir: finalDir, matrix, cells, streams: files };
  } finally {
    rmSync(partial, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
}

function skipCell(p: PlannedCell, seed: number, replay: string, proof: LibcProof | null): CellResult {
  const c = p.c;
  return {
    case: c.key, title: c.title, family: c.family, cite: c.cite, file: c.file, source: c.source, env: p.env.id, libc: proof,
    runtime: c.runtime, runtime_version: 'missing', runtime_executable: '', verdict: 'skip', kind: null, level: c.level, known: null,
    reason: p.missing, forks: 0, failures: 0, counts: { ok: 0, hang: 0, crash: 0, wrong: 0 }, rate: 0, interval: [0, 1], missable: null,
    seed, elapsed_ms: 0, child_ms: null, first_failure: null, failures_seen: [], budget: { forks: 0, seconds: 0, timeout_ms: c.timeoutMs },
    clean_env: {}, replay: `${replay} --seed ${seed}`,
  };
}
