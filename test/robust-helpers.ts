// Shared by the robustness tests (issue 14): synthetic cells, and counting what a run may leave behind.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { REPO } from '../src/cli.ts';
import { removeOnExit } from '../src/util.ts';
import os from 'node:os';
import path from 'node:path';
import type { CellResult } from '../src/types.ts';

/** A complete cell as a run writes it (for TAP streams the readers must accept). */
export function fakeCell(o: Partial<CellResult> = {}): CellResult {
  return {
    case: 'libc/a/one', title: 'a case', family: 'a', cite: ['test fixture'], file: 'suites/libc/a.yaml', source: 'id: one\n', env: 'glibc-2.36',
    libc: { name: 'glibc', version: '2.36', path: '/lib/x86_64-linux-gnu/libc.so.6', banner: 'GNU C Library 2.36' } as CellResult['libc'],
    runtime: 'libc', runtime_version: 'gcc 12.2.0', runtime_executable: '/usr/bin/gcc', verdict: 'pass', kind: null, level: 'guaranteed', known: null,
    reason: null, forks: 30, failures: 0, counts: { ok: 30, hang: 0, crash: 0, wrong: 0 }, rate: 0, interval: [0, 0.11], missable: 0.1, seed: 7,
    elapsed_ms: 100, child_ms: { median: 1, p99: 2 }, first_failure: null, failures_seen: [], budget: { forks: 30, seconds: 5, timeout_ms: 2000 },
    clean_env: { PATH: '/usr/bin' }, replay: 'npx forkmatrix run --case libc/a/one', ...o,
  };
}

/** What forkmatrix may leave on the machine, counted: processes mentioning `marker`, mounts, mount namespaces, temp dirs. */
export function leftovers(marker: string) {
  const procs: string[] = [];
  const ns = new Set<string>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(marker)) procs.push(`${pid}: ${cmd.slice(0, 200)}`);
      ns.add(readlinkSync(`/proc/${pid}/ns/mnt`));
      ns.add(readlinkSync(`/proc/${pid}/ns/pid`));
    } catch {
      /* gone, or not ours to read */
    }
  }
  let mounts: string[] = [];
  try {
    mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => /forkmatrix|fm-/.test(l));
  } catch {
    /* none */
  }
  const temps = readdirSync(os.tmpdir()).filter((f) => f.startsWith('forkmatrix-'));
  return { procs, mounts, namespaces: ns.size, temps };
}

/**
 * A cache for provisioning tests, `$TMPDIR/fm-robust-<name>-cache`, emptied of everything but its private apt
 * state, which is copied once from the default cache's (read, never written). It keeps its path from one test run
 * to the next because apt's binary package cache names the list files by path: the first run rebuilds it (minutes
 * on a loaded machine), later runs download only the packages. Null when there is no apt state to copy.
 */
export function seededCache(name: string): string | null {
  const from = path.join(process.env.FORKMATRIX_CACHE!, 'apt');
  const cache = path.join(process.env.FORKMATRIX_CACHE!, 'test-robust', name);
  const apt = path.join(cache, 'apt');
  for (const f of existsSync(cache) ? readdirSync(cache) : []) if (f !== 'apt') rmSync(path.join(cache, f), { recursive: true, force: true });
  if (existsSync(path.join(apt, 'updated'))) return cache;
  if (!existsSync(path.join(from, 'updated')) || !existsSync(path.join(from, 'lists'))) return null;
  mkdirSync(path.join(apt, 'cache'), { recursive: true });
  for (const f of ['sources.list', 'status', 'lists', 'updated']) cpSync(path.join(from, f), path.join(apt, f), { recursive: true, preserveTimestamps: true });
  return cache;
}

/** A temporary directory removed when the test process exits (tests leave nothing in $TMPDIR). */
export function tmpDir(prefix = 'fm-test-'): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  removeOnExit(d);
  return d;
}

/** Run the forkmatrix CLI (no colour) and collect its exit code and output. */
export function fm(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(REPO, 'bin/forkmatrix.mjs'), ...args], { cwd: REPO, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b) => (stdout += b));
    p.stderr.on('data', (b) => (stderr += b));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
