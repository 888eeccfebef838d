// The Node harness speaks PROTOCOL.md: pressure counters, before_fork, precondition, mapped, and the hang proof
// (a late iteration is a hang only when its processes, or with none the event loop, are sampled blocked; a slow
// one is counted as slow; one still running at hard_factor x timeout is a hang that says `running`). Real runs of
// runners/node/harness.mjs with a config file, no driver.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from '../src/cli.ts';
import { tmp } from './helpers.ts';

const HARNESS = path.join(REPO, 'runners', 'node', 'harness.mjs');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function runHarness(cfg: Record<string, unknown>): any {
  const dir = tmp('fm-node-harness-');
  const result = path.join(dir, 'result.json');
  const full = {
    case: 't', threads: 0, prelude: '', setup: '', loop: '', child: '', forks: 10, seconds: 30, timeout_ms: 2000, seed: 1,
    max_delay_us: 0, warmup_ms: 20, fail_fast: false, diag: { gdb: null, max: 1 }, result, file: 'test.yaml', lines: {}, addon: null,
    hang_proof: { sample_ms: 100, early_min_ms: 200, early_factor: 20, hard_factor: 5 }, ...cfg,
  };
  writeFileSync(path.join(dir, 'cfg.json'), JSON.stringify(full));
  const r = spawnSync(process.execPath, [HARNESS, path.join(dir, 'cfg.json')], { encoding: 'utf8', timeout: 120_000 });
  // exit 0, or (a main thread blocked for good, no addon to _exit with) SIGKILLed by its watchdog after the result
  if (r.status !== 0 && !(r.signal === 'SIGKILL' && existsSync(result))) throw new Error(`harness exit ${r.status ?? r.signal}: ${r.stderr}`);
  return { ...JSON.parse(readFileSync(result, 'utf8')), exit: r.status ?? r.signal };
}

t.test('pressure counters, inside()/iterations(), before_fork and mapped', async (t) => {
  const r = runHarness({
    threads: 2, forks: 20,
    prelude: "const cp = require('node:child_process');",
    loop: 'let s = 0; for (let k = 0; k < 20000; k++) s += k; globalThis.fmSink = s;',
    before_fork: 'globalThis.fmBefore = (globalThis.fmBefore ?? 0) + 1; while (inside() === 0) {}',
    child: "if (globalThis.fmBefore !== i + 1) throw new Error(`before_fork ran ${globalThis.fmBefore} times before iteration ${i}`);\n"
      + "if (iterations() < 1) throw new Error('no loop iteration counted');\n"
      + "expectExit(await exited(cp.spawn('/bin/true')), 0);",
  });
  t.equal(r.error, null);
  t.equal(r.ok, 20, JSON.stringify(r.first_failures));
  t.equal(r.pressure.threads.length, 2);
  for (const th of r.pressure.threads) {
    t.ok(th.iterations > 0, `a loop thread worked during the fork window (${th.iterations})`);
    t.equal(th.error, null);
    t.ok(th.last_ms !== null && th.last_ms < 1000, `last_ms ${th.last_ms}`);
  }
  t.equal(r.pressure.forks_sampled, 20);
  t.equal(r.pressure.forks_inside, 20, 'before_fork waited for a thread inside its body: every fork was inside');
  t.ok(r.pressure.window_ms > 0);
  t.ok(r.mapped.includes(r.libc.path), `mapped names the libc (${r.libc.path})`);
  t.ok(r.mapped.every((f: string) => f.startsWith('/')), 'file-backed objects only');
  t.equal(r.slow, 0);
});

t.test('a precondition that fails is an error with mapped, and nothing forks', async (t) => {
  const r = runHarness({ threads: 1, loop: 'globalThis.x = 1;', precondition: 'return iterations() < 0;', child: 'throw new Error("must not run")' });
  t.match(r.error, /^precondition failed: returned false/);
  t.equal(r.forks, 0);
  t.ok(Array.isArray(r.mapped) && r.mapped.length > 0);
  const r2 = runHarness({ precondition: "throw new Error('the lock is not there')", child: '' });
  t.match(r2.error, /^precondition failed: .*the lock is not there/);
});

t.test('a spawned child blocked for good (cat on a pipe never written) is proved blocked early: a hang with its proof', async (t) => {
  const r = runHarness({
    // early_factor 2: the early look comes at max(200 ms, 2 x median) even when a loaded machine makes spawns slow
    forks: 8, timeout_ms: 5000, hang_proof: { sample_ms: 100, early_min_ms: 200, early_factor: 2, hard_factor: 5 },
    prelude: "const cp = require('node:child_process');",
    child: "const c = i === 6 ? cp.spawn('/bin/cat', [], { stdio: ['pipe', 'ignore', 'ignore'] }) : cp.spawn('/bin/true'); expectExit(await exited(c), 0);",
  });
  t.equal(r.hang, 1);
  t.equal(r.ok, 7);
  const f = r.first_failures[0];
  t.equal(f.iteration, 6);
  t.equal(f.diag.blocked, 'yes');
  const lines = f.diag.proof.split('\n');
  t.equal(lines.length, 2, 'two samples');
  t.match(lines[0], /^\+\d+ ms: cpu \d+ ms; \d+ S/);
  const at = Number(/proved blocked at \+(\d+) ms/.exec(f.message)?.[1]);
  t.ok(at < 5000, `the early look proved it before the timeout (+${at} ms)`);
  t.match(f.diag.children, /cat/);
  t.match(f.message, /SIGKILLed/);
});

t.test('a sleeping child (a timed wait) is not blocked before the last look at hard_factor x timeout', async (t) => {
  const r = runHarness({
    forks: 1, timeout_ms: 500, hang_proof: { sample_ms: 100, early_min_ms: 200, early_factor: 20, hard_factor: 4 },
    prelude: "const cp = require('node:child_process');",
    child: "expectExit(await exited(cp.spawn('/bin/sleep', ['1000'])), 0);",
  });
  t.equal(r.hang, 1);
  const f = r.first_failures[0];
  t.equal(f.diag.blocked, 'yes');
  t.match(f.diag.proof, /S~/, 'the proof marks the timed wait');
  const at = Number(/proved blocked at \+(\d+) ms/.exec(f.message)?.[1]);
  t.ok(at >= 2000, `proved at the last look (+${at} ms), not at the timeout`);
});

t.test('an iteration with no live process that never settles: the hang is in the event loop', async (t) => {
  const r = runHarness({ forks: 3, timeout_ms: 600, child: 'if (i === 1) await new Promise(() => {});' });
  t.equal(r.hang, 1);
  const f = r.first_failures[0];
  t.equal(f.diag.blocked, 'yes');
  t.match(f.diag.proof, /no live process from this iteration: it waits in the harness's event loop/);
  t.match(f.message, /event loop/);
});

t.test('a busy child past the timeout is slow, not a hang; one still running at hard_factor x timeout is a hang (running)', async (t) => {
  const busy = (ms: number) => `cp.spawn(process.execPath, ['-e', 'const e = Date.now() + ${ms}; while (Date.now() < e);'])`;
  const slow = runHarness({
    // hard_factor 25: the busy child needs 1.2 s of wall time after Node's start-up, however loaded the machine is
    forks: 2, timeout_ms: 1000, hang_proof: { sample_ms: 50, early_min_ms: 200, early_factor: 20, hard_factor: 25 },
    prelude: "const cp = require('node:child_process');",
    child: `const c = i === 1 ? ${busy(3000)} : cp.spawn('/bin/true'); expectExit(await exited(c), 0);`,
  });
  t.equal(slow.hang, 0, JSON.stringify(slow.first_failures));
  t.equal(slow.ok, 2);
  t.ok(slow.slow >= 1, `slow ${slow.slow}`);
  t.ok(slow.slow_examples.some((e: { iteration: number; ms: number }) => e.iteration === 1 && e.ms >= 1000), JSON.stringify(slow.slow_examples));
  const running = runHarness({
    forks: 1, timeout_ms: 300, hang_proof: { sample_ms: 50, early_min_ms: 200, early_factor: 20, hard_factor: 3 },
    prelude: "const cp = require('node:child_process');",
    child: `expectExit(await exited(${busy(8000)}), 0);`,
  });
  t.equal(running.hang, 1);
  t.equal(running.first_failures[0].diag.blocked, 'running');
  t.match(running.first_failures[0].message, /still running at 3 x the timeout/);
});

t.test('a main thread blocked for good: the watchdog writes the result, with the pressure so far', async (t) => {
  const r = runHarness({
    threads: 1, forks: 3, timeout_ms: 300, loop: 'globalThis.x = (globalThis.x ?? 0) + 1;',
    child: 'if (i === 1) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);',
  });
  t.equal(r.hang, 1);
  t.equal(r.ok, 1);
  const f = r.first_failures.at(-1);
  t.match(f.message, /harness abandoned/);
  t.equal(f.diag.blocked, 'yes');
  t.match(f.diag.proof, /event loop/);
  t.equal(r.pressure.threads.length, 1);
  t.ok(r.pressure.threads[0].iterations > 0);
  t.equal(r.pressure.forks_sampled, 2);
  t.equal(r.exit, 'SIGKILL', 'without the addon the watchdog ends the process with SIGKILL, after writing the result');
});
