// Starting processes that can never outlive forkmatrix: each harness gets its own process group, and the whole
// group is SIGKILLed on timeout, on error and on Ctrl-C (the forked children live in the same group).

import { spawn, spawnSync } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';

const live = new Set<number>(); // process group ids
let handlersInstalled = false;

function killGroup(pgid: number) {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/** Kill every process group still running (Ctrl-C, fatal error). */
export function killAll(): void {
  for (const g of live) killGroup(g);
  live.clear();
}

function installHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      killAll();
      process.stderr.write(`\nforkmatrix: ${sig}: stopped; every child process was killed\n`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  process.on('exit', killAll);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  ms: number;
}

/**
 * Run a command in its own process group with stdout+stderr to `logFile`; SIGKILL the whole group after
 * `timeoutMs` or when `signal` aborts. Resolves when the leader has exited; the group is killed in any case so no
 * grandchild survives.
 */
export function runGrouped(
  command: string,
  args: string[],
  opts: { env: Record<string, string>; cwd?: string; logFile: string; timeoutMs: number; signal?: AbortSignal },
): Promise<RunResult> {
  installHandlers();
  const t0 = performance.now();
  const fd = openSync(opts.logFile, 'w');
  return new Promise((resolve) => {
    let timedOut = false;
    let child;
    try {
      child = spawn(command, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', fd, fd], detached: true });
    } catch (e) {
      closeSync(fd);
      resolve({ code: 127, signal: null, timedOut: false, ms: 0 });
      return;
    }
    const pgid = child.pid;
    if (pgid) live.add(pgid);
    const timer = setTimeout(() => {
      timedOut = true;
      if (pgid) killGroup(pgid);
    }, opts.timeoutMs);
    const onAbort = () => pgid && killGroup(pgid);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (code: number | null, sig: NodeJS.Signals | null) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (pgid) {
        killGroup(pgid); // children the harness failed to reap, if any
        live.delete(pgid);
      }
      closeSync(fd);
      resolve({ code, signal: sig, timedOut, ms: performance.now() - t0 });
    };
    child.on('error', () => done(127, null));
    child.on('exit', done);
  });
}

/** A short synchronous command (probes, version queries). Never throws. */
export function capture(command: string, args: string[], opts: { env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {}) {
  const r = spawnSync(command, args, {
    env: opts.env ?? cleanBaseEnv(),
    cwd: opts.cwd,
    timeout: opts.timeoutMs ?? 20_000,
    killSignal: 'SIGKILL',
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error?.message ?? null };
}

/** The environment every runtime starts with, before the case's and the adapter's additions. */
export function cleanBaseEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    ...extra,
  };
}
