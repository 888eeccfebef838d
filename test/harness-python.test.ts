// The Python harness on its own (runners/PROTOCOL.md): real forks, tiny budgets, no driver in between, so each
// protocol rule is checked where it is implemented: the hang proof, slow children, pressure, precondition.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { REPO } from '../src/cli.ts';
import type { HarnessResult } from '../src/types.ts';
import { processesMentioning, tmp } from './helpers.ts';

const HARNESS = path.join(REPO, 'runners/python/harness.py');
const PYTHON = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout?.trim();

type Extra = HarnessResult & { pressure: NonNullable<HarnessResult['pressure']> };

function run(name: string, cfg: Record<string, unknown>): Extra {
  const dir = tmp('fm-hp-');
  const result = path.join(dir, 'result.json');
  const config = {
    case: name, file: `<${name}>`, threads: 1, prelude: 'import threading, time', loop: 'time.sleep(0.001)', child: 'return True',
    forks: 3, seconds: 20, timeout_ms: 500, seed: 1, max_delay_us: 0, warmup_ms: 30, fail_fast: false,
    diag: { gdb: null, max: 1 }, result, hang_proof: { sample_ms: 100, early_min_ms: 200, early_factor: 20, hard_factor: 5 },
    ...cfg,
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  const r = spawnSync(PYTHON!, [HARNESS, path.join(dir, 'config.json')], { encoding: 'utf8', timeout: 60_000, env: { PATH: '/usr/bin:/bin' } });
  if (r.status !== 0) throw new Error(`harness exited ${r.status}: ${r.stderr}`);
  return JSON.parse(readFileSync(result, 'utf8')) as Extra;
}

t.test('python harness', { skip: PYTHON ? false : 'no python3 on PATH' }, async (t) => {
  t.test('a slow child (busy 1.5x the timeout, then exits 0) is ok and counted slow, not a hang', async (t) => {
    const r = run('slow', { forks: 2, child: 't0 = time.perf_counter()\nwhile time.perf_counter() - t0 < 0.75:\n    pass' });
    t.match(r, { forks: 2, ok: 2, hang: 0, slow: 2 });
    t.ok(r.slow_examples!.every((s) => s.ms >= 700), 'its time is kept');
  });

  t.test('a blocked child is a hang with the proof: two samples, nothing running, no CPU', async (t) => {
    const r = run('blocked', { forks: 2, child: 'l = threading.Lock()\nl.acquire()\nl.acquire()' });
    t.match(r, { forks: 2, ok: 0, hang: 2, slow: 0 });
    const f = r.first_failures[0];
    t.match(f, { kind: 'hang', message: /^blocked/, diag: { blocked: 'yes' } });
    const proof = String(f.diag?.proof).split('\n');
    t.equal(proof.length, 2, 'two samples');
    t.match(proof[0], /^\+\d+ ms: cpu \d+ ms; \d+ S \[S\]$/);
    t.ok(f.diag?.wchan !== undefined, 'the first hang is also diagnosed');
    t.same(processesMentioning(HARNESS), [], 'nothing left behind');
  });

  t.test('early look: once 5 children were ok, a blocked one is a hang long before the timeout', async (t) => {
    const r = run('early', { forks: 8, timeout_ms: 10_000, child: 'import os\nif FORKS[0] >= 6:\n    threading.Event().wait()', prelude: 'import threading, time\nFORKS = [0]', before_fork: 'FORKS[0] += 1' });
    t.match(r, { forks: 8, ok: 5, hang: 3 });
    for (const f of r.first_failures) {
      const at = Number(/at \+(\d+) ms/.exec(f.message)?.[1]);
      t.ok(at < 10_000, `proved blocked at +${at} ms, before the 10 s timeout`);
    }
  });

  t.test('a spinning child is a hang only at hard_factor x timeout, marked running', async (t) => {
    const r = run('spin', { forks: 1, timeout_ms: 300, hang_proof: { sample_ms: 50, early_min_ms: 200, early_factor: 20, hard_factor: 3 }, child: 'while True:\n    pass' });
    t.match(r, { hang: 1, slow: 0 });
    t.match(r.first_failures[0], { message: /^still running after \d+ ms/, diag: { blocked: 'running' } });
    t.ok(r.elapsed_ms >= 900, `held until 3 x 300 ms (${r.elapsed_ms} ms)`);
  });

  t.test('a child polling with timed sleeps is not blocked before hard_factor x timeout (timed waits marked ~)', async (t) => {
    const r = run('poller', { forks: 1, timeout_ms: 400, hang_proof: { sample_ms: 100, early_min_ms: 200, early_factor: 20, hard_factor: 3 }, child: 'while True:\n    time.sleep(0.3)' });
    t.match(r, { hang: 1 });
    const f = r.first_failures[0];
    t.match(f.diag?.proof, /S~/, 'the sleeping thread is marked as in a timed wait');
    t.ok(Number(/\+(\d+) ms: [^\n]*$/.exec(String(f.diag?.proof))?.[1]) >= 1200, 'judged only at the last look');
  });

  t.test('pressure: iterations during the fork window, forks with a thread inside, mapped objects', async (t) => {
    const r = run('pressure', { threads: 2, forks: 20 });
    t.equal(r.pressure.threads.length, 2);
    t.ok(r.pressure.threads.every((x) => x.iterations > 0 && x.error === null && x.last_ms !== null), JSON.stringify(r.pressure));
    t.equal(r.pressure.forks_sampled, 20);
    t.ok(r.pressure.forks_inside > 0);
    t.ok(r.mapped!.some((m) => /libc[.-]/.test(path.basename(m))), 'libc is among the mapped objects');
  });

  t.test('a loop that never finishes an iteration reports 0; one that raises ends with its error', async (t) => {
    const never = run('never', { forks: 3, loop: 'threading.Event().wait()' });
    t.match(never.pressure.threads, [{ iterations: 0, last_ms: null, error: null }]);
    t.equal(never.pressure.forks_inside, 3, 'it is inside at every fork');
    const raising = run('raising', { forks: 3, loop: 'raise ValueError("boom")', file: 'suites/x.yaml', lines: { loop: 7 } });
    t.match(raising.pressure.threads, [{ iterations: 0, error: /suites\/x\.yaml", line 7, in loop[\s\S]*ValueError: boom/ }]);
  });

  t.test('before_fork runs before every fork and times it into the body; inside() and iterations() work', async (t) => {
    const r = run('before', {
      threads: 2, forks: 10, prelude: 'import threading, time\nGATE = threading.Event()\nN = [0]',
      loop: 'GATE.wait()\ntime.sleep(0.002)', before_fork: 'N[0] += 1\nGATE.set()\nwhile inside() == 0:\n    time.sleep(0)',
      precondition: 'return iterations() >= 0', child: 'return N[0] > 0',
    });
    t.match(r, { forks: 10, ok: 10, error: null });
    t.equal(r.pressure.forks_inside, 10);
  });

  t.test('a failed precondition is an error without forks; the traceback names the YAML line', async (t) => {
    const f = run('pre-false', { precondition: 'return False' });
    t.match(f, { forks: 0, error: 'precondition failed: returned False' });
    t.ok(f.mapped!.length > 0, 'mapped is reported with the error');
    const e = run('pre-raise', { file: 'suites/p.yaml', lines: { precondition: 12 }, precondition: 'raise RuntimeError("no pressure")' });
    t.match(e, { forks: 0, error: /^precondition failed: [\s\S]*suites\/p\.yaml", line 12, in precondition[\s\S]*RuntimeError: no pressure/ });
  });
});
