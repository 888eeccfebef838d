// Sharding: two shards run separately and merged must equal one unsharded run (same cells, same counts); a plan
// file is checked before anything runs. The plan's own flow (plan, shards, report) is test/workflow.test.ts.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from '../src/cli.ts';
import { matrixFromTap } from '../src/matrix.ts';
import { HOST_ENV, tmp } from './helpers.ts';

const BIN = path.join(REPO, 'bin/forkmatrix.mjs');
const runInto = (out: string, extra: string[]) => {
  const r = spawnSync(process.execPath, [BIN, 'run', '--suites', 'test/fixtures/verdicts', '--suite', 'libc', '--budget', '4', '--seed', '11', '--env', HOST_ENV, '--out', out, ...extra], { cwd: REPO, encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(r.stderr);
  return path.join(out, readdirSync(out).find((d) => d !== 'latest' && !d.startsWith('.'))!);
};

t.test('shard 1/2 + shard 2/2, merged, equal the unsharded run', async (t) => {
  const whole = runInto(tmp(), []);
  const s1 = runInto(tmp(), ['--shard', '1/2']);
  const s2 = runInto(tmp(), ['--shard', '2/2']);
  const [mw, m1, m2, merged] = await Promise.all([matrixFromTap([whole]), matrixFromTap([s1]), matrixFromTap([s2]), matrixFromTap([s1, s2])]);
  t.ok(m1.rows.length > 0 && m2.rows.length > 0, 'each shard ran some cells');
  const cells = (m: typeof mw) => Object.values(m.cells).reduce((n, row) => n + Object.keys(row).length, 0);
  t.equal(cells(m1) + cells(m2), cells(mw), 'the shards are disjoint and cover the run');
  t.same(merged.rows.map((r) => r.key), mw.rows.map((r) => r.key));
  t.same(merged.columns.map((c) => c.id), mw.columns.map((c) => c.id));
  const summary = (m: typeof mw) =>
    Object.fromEntries(Object.entries(m.cells).map(([k, row]) => [k, Object.fromEntries(Object.entries(row).map(([col, c]) => [col, [c.verdict, c.kind, c.forks, c.failures]]))]));
  t.same(summary(merged), summary(mw), 'same verdicts, forks and failures per cell');
  // without --plan, --shard I/N takes shard I of what 'plan' predicts for the same cells
  const p = spawnSync(process.execPath, [BIN, 'plan', '--shards', '2', '--json', '--suites', 'test/fixtures/verdicts', '--suite', 'libc', '--budget', '4', '--env', HOST_ENV], { cwd: REPO, encoding: 'utf8' });
  const shards = JSON.parse(p.stdout).shards as { cells: string[] }[];
  const ran = (m: typeof mw) => Object.entries(m.cells).flatMap(([k, row]) => Object.values(row).map((c) => `${k}@${c.env}`)).sort();
  t.same([ran(m1), ran(m2)], shards.map((s) => [...s.cells].sort()), 'each shard ran the cells plan gives it');
});

t.test('--shard is validated', async (t) => {
  const r = spawnSync(process.execPath, [BIN, 'run', '--shard', '3/2'], { cwd: REPO, encoding: 'utf8' });
  t.equal(r.status, 2);
  t.match(r.stderr, /--shard 3\/2: expected I\/N with 1 <= I <= N/);
});

t.test('--plan is checked before anything runs: one line naming the file and the fix, exit 2', async (t) => {
  const dir = tmp();
  const plan = path.join(dir, 'plan.json');
  const mk = spawnSync(process.execPath, [BIN, 'plan', '--shards', '2', '--suites', 'test/fixtures/verdicts', '--suite', 'libc', '--env', HOST_ENV, '--budget', '4', '--out', plan], { cwd: REPO, encoding: 'utf8' });
  t.equal(mk.status, 0, mk.stderr);
  t.match(mk.stdout, /predicted makespan for 2 shards: /);
  const p = JSON.parse(readFileSync(plan, 'utf8'));
  t.same(p.shards.flatMap((s: { cells: string[] }) => s.cells).sort(), ['crashes', 'faults', 'hangs', 'passes', 'skips', 'wrong'].map((id) => `libc/verdicts/${id}@${HOST_ENV}`));
  const bad = path.join(dir, 'bad.json');
  writeFileSync(bad, '{"version":1,"shards":[]}');
  const cases: [string[], RegExp][] = [
    [['--plan', plan], /--plan .*plan\.json needs --shard I\/2/],
    [['--plan', plan, '--shard', '1/3'], /the plan .* has 2 shards; use --shard I\/2/],
    [['--plan', plan, '--shard', '1/2', '--suite', 'libc'], /decides the cells: drop --suite/],
    [['--plan', plan, '--shard', '1/2', '--budget', 'full'], /made for --budget 4/],
    [['--plan', path.join(dir, 'none.json'), '--shard', '1/2'], /cannot read it \(ENOENT\)/],
    [['--plan', bad, '--shard', '1/2'], /no shards in it/],
  ];
  for (const [args, re] of cases) {
    const r = spawnSync(process.execPath, [BIN, 'run', ...args], { cwd: REPO, encoding: 'utf8' });
    t.equal(r.status, 2, args.join(' '));
    t.match(r.stderr, re);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
  const r = spawnSync(process.execPath, [BIN, 'plan', '--shards', '0'], { cwd: REPO, encoding: 'utf8' });
  t.equal(r.status, 2);
  t.match(r.stderr, /--shards 0: expected a whole number/);
});
