// Running one cell: case x environment x runtime. The runner prepares a harness invocation, the environment
// says how to launch it, the harness forks in a loop and writes one JSON result; this module turns that into a
// verdict. Nothing here parses free text.

import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { capture, runGrouped, cleanBaseEnv } from './proc.ts';
import { isFile } from './util.ts';
import { knownApplies } from './schema.ts';
import { ruleOfThree, wilson } from './stats.ts';
import { proveLibcFile, sameFile } from './probe.ts';
import type {
  CaseDef, CellResult, Environment, FailureRecord, HarnessConfig, HarnessResult, Known, LibcProof, Runner, RuntimeInstance,
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

export async function runCell(c: CaseDef, env: Environment, rt: RuntimeInstance, runner: Runner, o: CellOptions): Promise<CellResult> {
  const base = {
    case: c.key, title: c.title, family: c.family, cite: c.cite, file: c.file, source: c.source, env: env.id, libc: o.proof, runtime: c.runtime, runtime_version: rt.version, runtime_executable: rt.executable,
    level: c.level, seed: o.seed, budget: { forks: o.budget.forks, seconds: o.budget.seconds, timeout_ms: o.budget.timeoutMs },
    replay: `${o.replay} --seed ${o.seed}`,
  };
  const cellDir = path.join(o.workDir, `${env.id}__${rt.runtime}-${rt.version}__${c.family}__${c.id}`.replace(/[^A-Za-z0-9._+-]/g, '_'));
  mkdirSync(cellDir, { recursive: true });
  const home = path.join(cellDir, 'home');
  mkdirSync(home, { recursive: true });
  const clean = cellEnv(c, env, home);
  const finish = (r: Partial<CellResult> & Pick<CellResult, 'verdict'>): CellResult => ({
    kind: null, known: null, reason: null, ...base, forks: 0, failures: 0, counts: { ok: 0, hang: 0, crash: 0, wrong: 0 },
    rate: 0, interval: [0, 1], missable: null, elapsed_ms: 0, child_ms: null, first_failure: null, failures_seen: [],
    clean_env: clean, ...r,
  });

  let prepared;
  try {
    prepared = await runner.prepare(c, { env, runtime: rt, cacheDir: o.cacheDir, repoDir: o.repoDir });
  } catch (e) {
    return finish({ verdict: 'error', reason: `runner failed to prepare the case: ${(e as Error).message}` });
  }
  if ('skip' in prepared) return finish({ verdict: 'skip', reason: prepared.skip });
  if ('error' in prepared) return finish({ verdict: 'error', reason: prepared.error });

  const resultFile = path.join(cellDir, 'result.json');
  const cfgFile = path.join(cellDir, 'config.json');
  const logFile = path.join(cellDir, 'harness.log');
  rmSync(resultFile, { force: true });
  const cfg: HarnessConfig = {
    case: c.id, file: c.file, lines: c.lines, threads: c.threads, prelude: c.prelude, setup: c.setup, loop: c.loop, child: c.child,
    exit: c.exit, expect_output: c.expectOutput, forks: o.budget.forks, seconds: o.budget.seconds, timeout_ms: o.budget.timeoutMs,
    seed: o.seed, max_delay_us: o.maxDelayUs ?? DEFAULT_MAX_DELAY_US, warmup_ms: 20, fail_fast: o.failFast, diag: { gdb: o.gdb, max: 1 },
    result: resultFile, env_check: !!o.envCheck, addon: null, ...prepared.config,
  };
  writeFileSync(cfgFile, JSON.stringify(cfg, null, 1));
  const launcher = env.launch([...prepared.argv, cfgFile], clean);
  // The harness ends by itself after its budget; this limit only catches a harness that is itself stuck
  // (its threads wedged the parent): budget + every child's timeout that could still be pending + gdb time.
  const hardLimit = o.budget.seconds * 1000 + o.budget.timeoutMs * 3 + 60_000;
  const run = await runGrouped(launcher.command, launcher.args, { env: launcher.env, cwd: launcher.cwd ?? home, logFile, timeoutMs: hardLimit, signal: o.signal });
  const logTail = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-1500).trim() : '');
  if (o.signal?.aborted) return finish({ verdict: 'error', reason: 'interrupted' });
  if (run.timedOut) return finish({ verdict: 'error', reason: `the harness itself did not finish within ${Math.round(hardLimit / 1000)} s and was killed (the parent process is stuck, not a child): ${logTail()}` });
  let res: HarnessResult;
  try {
    res = JSON.parse(readFileSync(resultFile, 'utf8')) as HarnessResult;
  } catch {
    const how = run.signal ? `was killed by ${run.signal}` : `exited with status ${run.code}`;
    return finish({ verdict: 'error', reason: `the harness ${how} without writing a result: ${logTail() || '(no output)'}` });
  }
  rmSync(home, { recursive: true, force: true });

  // The proof: the libc the harness really mapped must be the one the environment proved.
  let libc = o.proof;
  if (res.libc?.path) {
    const root = env.root ?? '';
    // same file as the environment proved: done; else prove what it is (a different file may still be the same libc)
    if (!o.proof || !sameFile(root + res.libc.path, root + o.proof.path)) {
      const seen = proveLibcFile(res.libc.path, root);
      if (o.proof && (seen.name !== o.proof.name || seen.version !== o.proof.version))
        return finish({ verdict: 'error', reason: `libc mismatch: environment ${env.id} proved ${o.proof.name} ${o.proof.version} but the harness loaded ${res.libc.path} (${seen.name} ${seen.version})` });
      libc = o.proof ?? seen;
    }
  }
  const rtv = rt.version; // the instance found by the adapter names the column; the harness only confirms it
  const common = { libc, runtime_version: rtv, runtime_executable: rt.executable };
  if (res.error) return finish({ ...common, verdict: 'error', reason: `the case's setup failed: ${res.error}` });
  if (res.skipped) return finish({ ...common, verdict: 'skip', reason: res.skipped });
  if (!res.forks) return finish({ ...common, verdict: 'error', reason: `no fork ran: ${logTail()}` });

  const failures = res.hang + res.crash + res.wrong;
  for (const f of res.first_failures ?? []) if (f.kind === 'crash') symbolizeFault(f, env.root ?? '');
  const first: FailureRecord | null = res.first_failures?.[0] ?? null;
  const kind = failures ? (first?.kind ?? (res.hang ? 'hang' : res.crash ? 'crash' : 'wrong')) : null;
  let known: Known | null = null;
  if (failures && libc) known = c.known.find((k) => knownApplies(k, libc!) && (k.verdict === 'fail' || k.verdict === kind)) ?? null;
  return finish({
    ...common,
    verdict: failures ? 'fail' : 'pass',
    kind, known, forks: res.forks, failures,
    counts: { ok: res.ok, hang: res.hang, crash: res.crash, wrong: res.wrong },
    rate: failures / res.forks, interval: wilson(failures, res.forks), missable: failures ? null : ruleOfThree(res.forks),
    elapsed_ms: res.elapsed_ms, child_ms: res.child_ms ?? null, first_failure: first, failures_seen: res.first_failures ?? [],
    ...(o.envCheck ? { clean_env: res.environ ?? clean } : {}),
  });
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
