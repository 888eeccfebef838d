// Running one cell: case x environment x runtime. The runner prepares a harness invocation, the environment
// says how to launch it, the harness forks in a loop and writes one JSON result; this module turns that into a
// verdict. Nothing here parses free text.

import { mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { capture, runGrouped, cleanBaseEnv } from './proc.ts';
import { isFile } from './util.ts';
import { buildLibraries } from './library.ts';
import { MIN_PASS_PROCESSES, addEvidence, emptyEvidence, evidenceOf, failuresOf, verdict, type Evidence } from './verdict.ts';
import { ruleOfThree, wilson } from './stats.ts';
import { proveLibcFile, sameFile } from './probe.ts';
import type {
  CaseDef, CellResult, Environment, FailureRecord, HarnessConfig, HarnessResult, LibcProof, PreparedCell, Runner, RuntimeInstance,
} from './types.ts';

export interface CellOptions {
  budget: { forks: number; seconds: number; timeoutMs: number };
  seed: number;
  failFast: boolean;
  gdb: string | null;
  cacheDir: string;
  repoDir: string;
  workDir: string; // scratch for configs/results/logs of this run
  proof: LibcProof | null; // the environment's proved libc
  signal?: AbortSignal;
  maxDelayUs?: number;
  envCheck?: boolean;
  replay: string; // the command that reproduces the cell (without --seed)
  /** harness processes to spread the budget over (default PROCESSES) */
  processes?: number;
}

/** The clean, declared environment a harness starts with: base + case + adapter. Nothing inherited. */
export function cellEnv(c: CaseDef, env: Environment, home: string): Record<string, string> {
  return { ...cleanBaseEnv({ HOME: home, TMPDIR: home }), ...c.env, ...env.env };
}

/**
 * The seeded random delay before each fork, 0..N us. It keeps forks from falling into step with the parent's loops
 * and makes the seed mean something; bench/delay.ts found no detection difference between 0 and 200 us, while 200
 * (a real sleep per fork) cost 20-25% of the forks, so the default is short enough to spin (harnesses spin <= 50 us).
 */
export const DEFAULT_MAX_DELAY_US = 20;

/** Harness processes a cell's forks are spread over (src/verdict.ts: a pass needs MIN_PASS_PROCESSES). */
export const PROCESSES = MIN_PASS_PROCESSES;
/** How often a harness that crashed (no result, killed by a signal) is re-run before its error is published. */
export const RERUNS = 3;
export const DEFAULT_HANG_PROOF = { sample_ms: 100, early_min_ms: 200, early_factor: 20, hard_factor: 5 };

/** The interposers an environment preloads (LD_PRELOAD), which every harness process must show mapped. */
export function preloadsOf(env: Environment): string[] {
  const root = env.root ?? '';
  // /proc/PID/maps names the file a link points to (libtcmalloc_minimal.so.4 -> libtcmalloc_minimal.so.4.5.16)
  return (env.env.LD_PRELOAD ?? '').split(/[:\s]+/).filter(Boolean).map((p) => {
    try {
      return realpathSync(root + p).slice(root.length);
    } catch {
      return p;
    }
  });
}

type ProcessOutcome = { result: HarnessResult } | { crash: string };

export async function runCell(c: CaseDef, env: Environment, rt: RuntimeInstance, runner: Runner, o: CellOptions): Promise<CellResult> {
  const base = {
    case: c.key, title: c.title, family: c.family, cite: c.cite, file: c.file, source: c.source, env: env.id, libc: o.proof, runtime: c.runtime, runtime_version: rt.version, runtime_executable: rt.executable,
    level: c.level, seed: o.seed, budget: { forks: o.budget.forks, seconds: o.budget.seconds, timeout_ms: o.budget.timeoutMs },
    replay: `${o.replay} --seed ${o.seed}`,
  };
  const cellDir = path.join(o.workDir, `${env.id}__${rt.runtime}-${rt.version}__${c.family}__${c.id}__${o.seed}`.replace(/[^A-Za-z0-9._+-]/g, '_'));
  mkdirSync(cellDir, { recursive: true });
  const home = path.join(cellDir, 'home');
  mkdirSync(home, { recursive: true });
  let clean = cellEnv(c, env, home);
  const finish = (r: Partial<CellResult> & Pick<CellResult, 'verdict'>): CellResult => ({
    kind: null, known: null, found: null, reason: null, ...base, forks: 0, failures: 0, counts: { ok: 0, hang: 0, crash: 0, wrong: 0 },
    rate: 0, interval: [0, 1], missable: null, elapsed_ms: 0, child_ms: null, first_failure: null, failures_seen: [],
    clean_env: clean, ...r,
  });

  let prepared;
  try {
    const lib = await buildLibraries(c, env, o.cacheDir);
    if ('skip' in lib) return finish({ verdict: 'skip', reason: lib.skip });
    if ('error' in lib) return finish({ verdict: 'error', reason: lib.error });
    clean = { ...clean, ...lib.env };
    prepared = await runner.prepare(c, { env, runtime: rt, cacheDir: o.cacheDir, repoDir: o.repoDir });
  } catch (e) {
    return finish({ verdict: 'error', reason: `runner failed to prepare the case: ${(e as Error).message}` });
  }
  if ('skip' in prepared) return finish({ verdict: 'skip', reason: prepared.skip });
  if ('error' in prepared) return finish({ verdict: 'error', reason: prepared.error });

  // The budget is spread over fresh harness processes, each with its own seed (seed, seed+1, ...), so that a
  // condition fixed per process (an fd number, which thread started first) cannot decide the cell.
  const procs = Math.max(1, Math.min(o.processes ?? PROCESSES, o.budget.forks));
  const share = (i: number) => ({ forks: Math.floor(o.budget.forks / procs) + (i < o.budget.forks % procs ? 1 : 0), seconds: o.budget.seconds / procs });
  let ev = emptyEvidence();
  let childMs: CellResult['child_ms'] = null;
  let libcPath: string | null = null;
  const reruns: string[] = [];
  const preloads = preloadsOf(env);
  for (let i = 0; i < procs; i++) {
    let out: ProcessOutcome | null = null;
    for (let attempt = 0; attempt <= RERUNS; attempt++) {
      if (o.signal?.aborted) return finish({ verdict: 'error', reason: 'interrupted' });
      out = await runProcess(c, env, prepared, clean, home, path.join(cellDir, `p${i}${attempt ? `-rerun${attempt}` : ''}`), { ...o, budget: { ...o.budget, ...share(i) }, seed: o.seed + i });
      if ('result' in out) break;
      reruns.push(`process ${i + 1}${attempt ? ` (re-run ${attempt})` : ''}: ${out.crash}`);
    }
    if (!out || 'crash' in out) {
      rmSync(home, { recursive: true, force: true });
      return finish({ verdict: 'error', reason: `${out && 'crash' in out ? out.crash : 'no result'} (reproduced in ${RERUNS} of ${RERUNS} re-runs)`, reruns, processes: i + 1 });
    }
    const res = out.result;
    libcPath ??= res.libc?.path ?? null;
    if (res.libc?.path && o.proof) {
      const bad = checkLibc(res.libc.path, env, o.proof);
      if (bad) return finish({ verdict: 'error', reason: bad });
    }
    if (res.first_failures) for (const f of res.first_failures) {
      if (f.kind === 'crash') symbolizeFault(f, env.root ?? '');
      if (i > 0 && f.elapsed_ms != null) f.elapsed_ms += ev.elapsed_ms;
    }
    if (res.child_ms) childMs = res.child_ms;
    ev = addEvidence(ev, evidenceOf(res, c.threads, preloads, i + 1));
    if (o.envCheck && res.environ) clean = res.environ;
    if (res.error || res.skipped || (failuresOf(ev) && o.failFast)) break;
  }
  rmSync(home, { recursive: true, force: true });
  const libc = o.proof ?? (libcPath ? proveLibcFile(libcPath, env.root ?? '') : null);
  return cellFromEvidence(c, { ...base, libc, clean_env: clean }, ev, libc, rt.version, { child_ms: childMs, reruns });
}

/** A CellResult from a case, the fields it shares with every cell of its column, and its evidence. */
export function cellFromEvidence(
  c: Pick<CaseDef, 'threads' | 'known' | 'found'>,
  base: Omit<CellResult, 'verdict' | 'kind' | 'known' | 'found' | 'reason' | 'forks' | 'failures' | 'counts' | 'rate' | 'interval' | 'missable' | 'elapsed_ms' | 'child_ms' | 'first_failure' | 'failures_seen'>,
  ev: Evidence,
  libc: { name: string; version: string } | null,
  runtimeVersion: string,
  extra: { child_ms?: CellResult['child_ms']; reruns?: string[] } = {},
): CellResult {
  const j = verdict(c, ev, libc, runtimeVersion);
  const failures = failuresOf(ev);
  return {
    ...base,
    verdict: j.verdict, kind: j.kind, known: j.known, found: j.found, reason: j.reason,
    forks: ev.forks, failures, counts: { ...ev.counts },
    rate: ev.forks ? failures / ev.forks : 0, interval: ev.forks ? wilson(failures, ev.forks) : [0, 1],
    missable: !failures && ev.forks ? ruleOfThree(ev.forks) : null,
    elapsed_ms: ev.elapsed_ms, child_ms: extra.child_ms ?? null,
    first_failure: ev.first_failures[0] ?? null, failures_seen: ev.first_failures,
    processes: ev.processes, slow: ev.slow, pressure: ev.pressure,
    ...(extra.reruns?.length ? { reruns: extra.reruns } : {}),
  };
}

/** The evidence a finished cell carries (for merging the slices of an adaptive budget). */
export function evidenceOfCell(cell: CellResult): Evidence {
  return {
    ...emptyEvidence(),
    processes: cell.processes ?? 1, forks: cell.forks, counts: { ...cell.counts }, slow: cell.slow ?? 0, elapsed_ms: cell.elapsed_ms,
    first_failures: cell.failures_seen ?? [], pressure: cell.pressure ?? null,
    errors: cell.verdict === 'error' && cell.reason ? [cell.reason] : [], skipped: cell.verdict === 'skip' ? cell.reason : null,
  };
}

/** A harness's libc must be the one the environment proved (the same file, or a file proved to be the same libc). */
function checkLibc(seenPath: string, env: Environment, proof: LibcProof): string | null {
  const root = env.root ?? '';
  if (sameFile(root + seenPath, root + proof.path)) return null;
  const seen = proveLibcFile(seenPath, root);
  if (seen.name !== proof.name || seen.version !== proof.version)
    return `libc mismatch: environment ${env.id} proved ${proof.name} ${proof.version} but the harness loaded ${seenPath} (${seen.name} ${seen.version})`;
  return null;
}

/** One harness process: its result, or why it gave none (a crash of the harness itself, to be re-run). */
async function runProcess(
  c: CaseDef, env: Environment, prepared: PreparedCell, clean: Record<string, string>, home: string, dir: string, o: CellOptions,
): Promise<ProcessOutcome> {
  mkdirSync(dir, { recursive: true });
  const resultFile = path.join(dir, 'result.json');
  const cfgFile = path.join(dir, 'config.json');
  const logFile = path.join(dir, 'harness.log');
  const cfg: HarnessConfig = {
    case: c.id, file: c.file, lines: c.lines, threads: c.threads, prelude: c.prelude, setup: c.setup, loop: c.loop, child: c.child,
    exit: c.exit, expect_output: c.expectOutput, forks: o.budget.forks, seconds: o.budget.seconds, timeout_ms: o.budget.timeoutMs,
    seed: o.seed, max_delay_us: o.maxDelayUs ?? DEFAULT_MAX_DELAY_US, warmup_ms: 20, fail_fast: o.failFast, diag: { gdb: o.gdb, max: 1 },
    result: resultFile, env_check: !!o.envCheck, addon: null, precondition: c.precondition, before_fork: c.beforeFork,
    hang_proof: DEFAULT_HANG_PROOF, ...prepared.config,
  };
  writeFileSync(cfgFile, JSON.stringify(cfg, null, 1));
  const launcher = env.launch([...prepared.argv, cfgFile], clean);
  // The harness ends by itself after its budget; this limit only catches a harness that is itself stuck (its
  // threads wedged the parent): budget + the longest a slow child may be waited for + gdb time.
  const hardLimit = o.budget.seconds * 1000 + o.budget.timeoutMs * (DEFAULT_HANG_PROOF.hard_factor + 2) + 60_000;
  const run = await runGrouped(launcher.command, launcher.args, { env: launcher.env, cwd: launcher.cwd ?? home, logFile, timeoutMs: hardLimit, signal: o.signal });
  const logTail = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-1500).trim() : '');
  if (run.timedOut) return { crash: `the harness itself did not finish within ${Math.round(hardLimit / 1000)} s and was killed (the parent process is stuck, not a child): ${logTail()}` };
  try {
    return { result: JSON.parse(readFileSync(resultFile, 'utf8')) as HarnessResult };
  } catch {
    const how = run.signal ? `was killed by ${run.signal}` : `exited with status ${run.code}`;
    return { crash: `the harness ${how} without writing a result: ${logTail() || '(no output)'}` };
  }
}

const FAULT_RE = /forkmatrix: (SIG\w+) at address (0x[0-9a-f]+), pc (0x[0-9a-f]+) in (\S+)\+(0x[0-9a-f]+)/;

/**
 * A C harness's fault line ("forkmatrix: SIGSEGV at address 0x0, pc 0x7f.. in /lib/libc.so.6+0x9a1b3", written by
 * the child's fault handler) into diag.fault: the file+offset and, where the file has debug info (a case binary,
 * whose #line directives point into the YAML), the function and source line from addr2line.
 */
export function symbolizeFault(f: FailureRecord, root = ''): void {
  const m = FAULT_RE.exec(f.message);
  if (!m) return;
  const [, sig, addr, pc, file, off] = m;
  let where = `${path.basename(file)}+${off}`;
  if (file.startsWith('/') && isFile(root + file)) {
    const r = capture('addr2line', ['-f', '-C', '-e', root + file, off], { env: cleanBaseEnv(), timeoutMs: 20_000 });
    const [fn, loc] = r.code === 0 ? r.stdout.trim().split('\n') : [];
    if (fn && fn !== '??') where += ` (${fn}${loc && !loc.startsWith('??') ? ` at ${loc}` : ''})`;
  }
  f.diag = { ...(f.diag ?? {}), fault: `${sig} at address ${addr}, pc ${pc} in ${where}` };
}
