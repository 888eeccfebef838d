// The Ruby harness on its own (runners/PROTOCOL.md): real forks of the ruby on PATH, one config per test, no driver.
// FM_RUBY_HARNESS=/path/to/other/harness.rb runs the same tests against another harness (e.g. an older one, to see
// which tests its defects fail).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { REPO } from '../src/cli.ts';
import { which } from '../adapters/host.ts';
import { processesMentioning, tmp } from './helpers.ts';

const HARNESS = process.env.FM_RUBY_HARNESS ?? path.join(REPO, 'runners/ruby/harness.rb');
const RUBY = which('ruby');
const skip = RUBY ? false : 'no ruby on PATH (apt-get install ruby)';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Result = Record<string, any>;

function harness(over: Record<string, unknown>): Result {
  const dir = tmp('fm-rb-');
  const cfg = {
    case: 'test', threads: 0, prelude: '', setup: '', loop: '', child: 'true\n', exit: '_exit', expect_output: null,
    forks: 3, seconds: 20, timeout_ms: 3000, seed: 1, max_delay_us: 20, warmup_ms: 0, fail_fast: false,
    diag: { gdb: null, max: 1 }, result: path.join(dir, 'result.json'), file: 'suites/ruby/test.yaml', lines: {}, addon: null,
    env_check: false, precondition: '', before_fork: '',
    hang_proof: { sample_ms: 100, early_min_ms: 200, early_factor: 20, hard_factor: 5 }, ...over,
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  const p = spawnSync(RUBY as string, [HARNESS, path.join(dir, 'config.json')], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (p.status !== 0) throw new Error(`harness exited ${p.status}: ${p.stderr}`);
  return JSON.parse(readFileSync(cfg.result, 'utf8')) as Result;
}

t.test('the child\'s own line is judged, however much inherited text comes before it (issue 13)', { skip }, async (t) => {
  // Ruby's write buffer holds up to 8 KiB of parent text that a child flushes before its own line.
  const r = harness({ child: '$stdout.write("p" * 6000 + "\\n")\n$stdout.puts "child-own-line"\n$stdout.flush\n', expect_output: '^child-own-line$' });
  t.match(r, { forks: 3, ok: 3, wrong: 0 }, JSON.stringify(r.first_failures));
  const big = harness({ forks: 1, child: '$stdout.write("x" * 2_000_000 + "\\n")\n$stdout.puts "after-two-mib"\n$stdout.flush\n', expect_output: '^after-two-mib$' });
  t.match(big, { ok: 1 }, 'beyond the cap the tail is kept');
  const no = harness({ forks: 1, child: '$stdout.write("y" * 2_000_000)\n$stdout.flush\n', expect_output: '^never-printed$' });
  t.match(no.first_failures[0].message, /output did not match \/\^never-printed\$\/ \(2000000 bytes\)/);
});

t.test('text the parent left in STDOUT\'s buffer is not written again by every child (issue 13)', { skip }, async (t) => {
  const r = harness({
    setup: 'STDOUT.write("PARENT-BUFFERED-TEXT\\n")\n$stdout = File.open(File::NULL, "w")\n', child: 'exit(3)\n', exit: 'exit',
  });
  t.match(r, { forks: 3, wrong: 3 });
  for (const f of r.first_failures) t.notMatch(f.message, /PARENT-BUFFERED-TEXT/, 'the child\'s output is its own');
});

t.test('the child runs with the SIGCHLD disposition of a plain Ruby process, not the harness\'s trap (issue 13)', { skip }, async (t) => {
  const r = harness({
    child: 'old = trap("CHLD", "DEFAULT")\nold == "DEFAULT" or raise "inherited SIGCHLD handler #{old.inspect}"\n' +
      '`/bin/true`\n$?.success? or raise "backticks: #{$?.inspect}"\n',
  });
  t.match(r, { forks: 3, ok: 3 }, JSON.stringify(r.first_failures));
});

t.test('pressure: counters around each loop iteration, inside() and iterations(), before_fork, precondition, mapped', { skip }, async (t) => {
  const r = harness({
    threads: 2, forks: 20, warmup_ms: 50,
    setup: '$m = Thread::Mutex.new\n',
    // the body yields the GVL while inside it, so a fork can land there
    loop: '$m.synchronize { sleep 0.0005 }\n',
    precondition: 'iterations() > 0 or raise "no iteration yet"\n',
    before_fork: 'Thread.pass until inside() > 0\n',
  });
  t.match(r, { forks: 20, ok: 20, error: null });
  t.equal(r.pressure.threads.length, 2);
  for (const th of r.pressure.threads) {
    t.ok(th.iterations > 0, 'iterations during the fork loop');
    t.ok(th.last_ms !== null && th.last_ms < r.pressure.window_ms, 'last_ms within the window');
    t.equal(th.error, null);
  }
  t.equal(r.pressure.forks_sampled, 20);
  t.equal(r.pressure.forks_inside, 20, 'before_fork waited for a thread inside its body at every fork');
  t.ok(r.mapped.some((m: string) => /libc\.so\.6|libc\.musl|ld-musl/.test(m)), 'libc is among the mapped objects');
  t.ok(r.mapped.some((m: string) => /libruby/.test(m)) || r.mapped.length > 0);
});

t.test('a raising loop body ends its thread and keeps the first error', { skip }, async (t) => {
  const r = harness({ threads: 2, forks: 5, warmup_ms: 100, loop: 'Thread.current[:n] = (Thread.current[:n] || 0) + 1\nraise ArgumentError, "boom #{Thread.current[:n]}" if Thread.current[:n] == 3\n' });
  t.equal(r.pressure.threads.length, 2);
  for (const th of r.pressure.threads) {
    t.match(th.error, /ArgumentError: boom 3/);
    t.equal(th.iterations, 0, 'no iteration during the fork loop: the thread ended before it');
  }
});

t.test('a failed precondition is an error without a fork, with libc, runtime and mapped', { skip }, async (t) => {
  const f = harness({ threads: 1, loop: 'Thread.pass\n', precondition: 'false\n' });
  t.match(f, { forks: 0, error: 'precondition failed: returned false', runtime: { name: 'ruby' }, libc: { path: /libc/ } });
  t.ok(f.mapped.length > 0);
  const g = harness({ precondition: 'raise "the lock is not contended"\n' });
  t.match(g, { forks: 0, error: /^precondition failed: RuntimeError: the lock is not contended/ });
  const b = harness({ before_fork: 'raise "before"\n' });
  t.match(b, { forks: 0, error: /^before_fork raised RuntimeError: before/ });
});

t.test('hang proof: a blocked child is a hang at the early look, with its samples, and its whole group is killed', { skip }, async (t) => {
  const marker = `299.${process.pid}`;
  const r = harness({
    forks: 8, timeout_ms: 20_000,
    setup: '$i = 0\n', before_fork: '$i += 1\n',
    child: `if $i > 6\n  Process.spawn("/bin/sleep", "${marker}")\n  sleep\nend\n`,
  });
  t.match(r, { forks: 8, ok: 6, hang: 2 });
  const h = r.first_failures[0];
  t.match(h, { kind: 'hang', iteration: 6, message: /^blocked \d+ ms after fork/, diag: { blocked: 'yes', proof: /^\+\d+ ms: cpu \d+ ms; \d+ S \[[S ]+\], \d+ S \[S\]\n\+\d+ ms: / } });
  t.ok(h.elapsed_ms !== undefined);
  const ms = Number(/^blocked (\d+) ms/.exec(h.message)?.[1]);
  t.ok(ms < 10_000, `proved at the early look (${ms} ms), long before the 20 s timeout`);
  t.ok(h.diag.children && /sleep/.test(h.diag.children), 'the diagnosis lists the process the child started');
  t.same(processesMentioning(marker), [], 'the grandchild in the child\'s process group was killed too');
});

t.test('hang proof: a slow child is waited for and counted; a spinning one is a hang that says running', { skip }, async (t) => {
  // 2 s of spinning: long past the 300 ms timeout and the two samples after it, even on a loaded machine
  const slow = harness({
    forks: 2, timeout_ms: 300, hang_proof: { sample_ms: 100, early_min_ms: 200, early_factor: 20, hard_factor: 20 },
    child: 't = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 2\nnil while Process.clock_gettime(Process::CLOCK_MONOTONIC) < t\n',
  });
  t.match(slow, { forks: 2, ok: 2, hang: 0, slow: 2, slow_examples: [{ iteration: 0 }, { iteration: 1 }] });
  t.ok(slow.slow_examples[0].ms >= 2000);
  const spin = harness({ forks: 1, timeout_ms: 200, hang_proof: { sample_ms: 50, early_min_ms: 200, early_factor: 20, hard_factor: 3 }, child: 'loop {}\n' });
  t.match(spin, { hang: 1, first_failures: [{ kind: 'hang', message: /^still running \d+ ms after fork \(3x the 200 ms timeout\)/, diag: { blocked: 'running', proof: / R/ } }] });
});

t.test('each child leads its own process group', { skip }, async (t) => {
  const r = harness({ child: 'Process.getpgrp == Process.pid or raise "pgrp #{Process.getpgrp}, pid #{Process.pid}"\n' });
  t.match(r, { ok: 3 }, JSON.stringify(r.first_failures));
});

t.test('Ruby cases give a child thread at least 5 s to finish (1 s join deadlines were flaky on two busy cores; issue 13)', async (t) => {
  const dir = path.join(REPO, 'suites/ruby');
  const short: string[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml'))) {
    const doc = YAML.parse(readFileSync(path.join(dir, f), 'utf8')) as { cases: Record<string, unknown>[] };
    for (const c of doc.cases) {
      const parent = (c.parent ?? {}) as Record<string, unknown>;
      const snippets = [c.child, parent.setup, parent.loop, parent.precondition, parent.before_fork].filter((s): s is string => typeof s === 'string');
      for (const s of snippets) {
        for (const m of s.matchAll(/\.join\(\s*([\d.]+)\s*\)/g)) if (Number(m[1]) < 5) short.push(`${f} ${String(c.id)}: ${m[0]}`);
      }
    }
  }
  t.same(short, [], 'no join deadline under 5 s in a snippet');
});
