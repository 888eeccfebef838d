// The shard balancing (src/plan.ts) as pure functions on fixtures: costs from a recorded matrix, LPT and its
// improvement, the simulated makespan, what each shard must provision, and the plan file's checks.
import t from 'tap';
import { balance, cellSeconds, makePlan, OVERHEAD_S, planProblem, provisionFor, publishedPairs, simulate, SKIP_S, unitCosts, type Unit } from '../src/plan.ts';
import type { CellResult } from '../src/types.ts';

const unit = (key: string, seconds: number): Unit => ({ key: `libc/f/${key}@glibc-2.36`, case: `libc/f/${key}`, env: 'glibc-2.36', runtime: 'libc', seconds, estimated: false });
const loads = (bins: string[][], cost: Record<string, number>) => bins.map((b) => b.reduce((s, k) => s + cost[k], 0));

t.test('LPT puts the longest first onto the least loaded shard, deterministically', async (t) => {
  const us = [['a', 7], ['b', 5], ['c', 4], ['d', 3], ['e', 3], ['f', 2]].map(([k, s]) => ({ key: k as string, seconds: s as number }));
  const cost = Object.fromEntries(us.map((u) => [u.key, u.seconds]));
  const bins = balance(us, 2);
  t.same(loads(bins, cost).sort(), [12, 12], 'perfectly balanced: 24 s over 2 shards');
  t.same(balance([...us].reverse(), 2), bins, 'the input order does not matter');
  t.same(bins.flat().sort(), us.map((u) => u.key).sort(), 'every unit exactly once');
  for (const b of bins) t.same(b, [...b].sort((x, y) => cost[y] - cost[x] || x.localeCompare(y)), 'each shard runs longest first');
});

t.test('the improvement step beats plain LPT where LPT is known to lose', async (t) => {
  // Graham's worst case for m=2: 3,3,2,2,2 -> LPT gives 7 and 5; the optimum is 6 and 6
  const us = [3, 3, 2, 2, 2].map((s, i) => ({ key: `u${i}`, seconds: s }));
  const cost = Object.fromEntries(us.map((u) => [u.key, u.seconds]));
  t.same(loads(balance(us, 2), cost).sort(), [6, 6]);
  // more shards than units: empty shards, no unit split
  const few = balance(us.slice(0, 2), 4);
  t.equal(few.filter((b) => b.length).length, 2);
  t.equal(few.length, 4);
});

t.test('simulate: workers take the next unit when free (how src/run.ts schedules)', async (t) => {
  t.equal(simulate([5, 3, 3, 1], 2), 6);
  t.equal(simulate([5, 3, 3, 1], 1), 12);
  t.equal(simulate([], 2), 0);
  t.equal(simulate([10, 1, 1], 4), 10, 'one long unit bounds the shard');
});

const rec = (over: Partial<CellResult>): CellResult =>
  ({ case: 'libc/f/a', env: 'glibc-2.36', runtime: 'libc', verdict: 'pass', forks: 400, elapsed_ms: 3000, budget: { forks: 400, seconds: 3, timeout_ms: 1000 }, ...over }) as CellResult;

t.test('costs: recorded seconds, scaled to the budget; estimates from the case budget', async (t) => {
  t.equal(cellSeconds(rec({}), null), 3 + OVERHEAD_S.libc, 'quick: the recorded time as it is, plus the overhead');
  t.equal(cellSeconds(rec({}), { forks: 5000, seconds: 20 }), 20 + OVERHEAD_S.libc, 'full: capped by the case seconds');
  t.equal(cellSeconds(rec({}), { forks: 800, seconds: 20 }), 6 + OVERHEAD_S.libc, 'full: forks x the recorded time per fork');
  t.equal(cellSeconds(rec({ verdict: 'fail', forks: 1, elapsed_ms: 1100 }), { forks: 5000, seconds: 20 }), 20 + OVERHEAD_S.libc, 'a quick failure stopped at fork 1 runs its whole budget under full');
  t.equal(cellSeconds(rec({ verdict: 'skip', forks: 0, elapsed_ms: 0 }), { forks: 5000, seconds: 20 }), SKIP_S);
  const cases = [
    { key: 'libc/f/a', runtime: 'libc' as const, forks: 5000, seconds: 20, timeoutMs: 1000 },
    { key: 'libuv/g/b', runtime: 'libuv' as const, forks: 300, seconds: 10, timeoutMs: 1000 },
  ];
  const records = [rec({}), rec({ case: 'libuv/g/b', runtime: 'libuv', elapsed_ms: 2000 }), rec({ case: 'libuv/g/b', runtime: 'libuv', elapsed_ms: 4000 })];
  const us = unitCosts(cases.map((c) => ({ c, env: 'glibc-2.36' })), records, { kind: 'quick' });
  t.same(us.map((u) => [u.key, u.seconds, u.estimated]), [['libc/f/a@glibc-2.36', 3 + OVERHEAD_S.libc, false], ['libuv/g/b@glibc-2.36', 6 + 2 * OVERHEAD_S.libuv, false]], 'a unit sums its runtime instances (two libuv versions)');
  const est = unitCosts([{ c: cases[0], env: 'musl-1.2.5' }], records, { kind: 'full' });
  t.same([est[0].seconds, est[0].estimated], [20 + OVERHEAD_S.libc, true], 'no record: the case budget');
});

t.test('publishedPairs: today\'s cases where their runtime had a column', async (t) => {
  const cases = [{ key: 'libc/a', runtime: 'libc' as const }, { key: 'python/b', runtime: 'python' as const }];
  const cols = [{ env: 'glibc-2.36', runtime: 'libc' as const }, { env: 'glibc-2.36', runtime: 'python' as const }, { env: 'musl-1.2.5', runtime: 'libc' as const }];
  t.same(publishedPairs(cases, cols).map((p) => `${p.c.key}@${p.env}`), ['libc/a@glibc-2.36', 'python/b@glibc-2.36', 'libc/a@musl-1.2.5']);
});

t.test('provision: what each shard needs', async (t) => {
  t.same(provisionFor([{ env: 'glibc-2.36', runtime: 'libc' }]), ['host']);
  t.same(provisionFor([{ env: 'musl-1.2.5', runtime: 'python' }, { env: 'glibc-2.41+jemalloc', runtime: 'libuv' }, { env: 'glibc-2.31-bullseye', runtime: 'libc' }]).sort(), ['allocators', 'glibc', 'host', 'libuv', 'musl', 'musl-python', 'root-bullseye']);
});

t.test('makePlan: shards, makespan, lower bound and a CI matrix', async (t) => {
  const us = [unit('a', 30), unit('b', 20), unit('c', 20), unit('d', 10), unit('e', 10), unit('f', 10)];
  const p = makePlan(us, 2, { jobs: 2, budget: 'full', from: 'x', setupCost: {} });
  t.equal(p.total_s, 100);
  t.equal(p.lower_bound_s, 30, 'the longest unit bounds it (100 / 4 = 25 < 30)');
  t.ok(p.makespan_s >= p.lower_bound_s);
  t.equal(p.makespan_s, Math.max(...p.shards.map((s) => s.predicted_s)));
  t.same(p.shards.map((s) => s.load_s).sort(), [50, 50]);
  t.same(p.matrix.include, [{ shard: 1, provision: 'host' }, { shard: 2, provision: 'host' }]);
  t.equal(planProblem(JSON.parse(JSON.stringify(p))), null, 'a plan survives JSON');
  t.match(planProblem({ version: 99, shards: [] }), /version 99/);
  t.match(planProblem({ ...p, shards: [{ index: 1, cells: ['bad'] }] }), /shard 1 is damaged/);
  t.match(planProblem([]), /not a forkmatrix plan/);
});

t.test('on the published matrix shape: 20 shards finish near the lower bound', async (t) => {
  // 486 cells of 3-35 s each: LPT + improvement lands within a few per cent of total / (shards x jobs)
  let x = 7;
  const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const us = Array.from({ length: 486 }, (_, i) => unit(`c${i}`, 3 + Math.round(rnd() * 320) / 10));
  const p = makePlan(us, 20, { jobs: 2, budget: 'full', from: null });
  t.ok(p.makespan_s <= p.lower_bound_s * 1.1, `makespan ${p.makespan_s} s vs lower bound ${p.lower_bound_s} s`);
  const loads = p.shards.map((s) => s.load_s);
  t.ok(Math.max(...loads) - Math.min(...loads) <= 35, `shard loads within one unit of each other: ${Math.min(...loads)}..${Math.max(...loads)}`);
});

t.test('setup costs keep an environment on few shards unless spreading it pays', async (t) => {
  const mk = (env: string, i: number, seconds: number): Unit => ({ key: `libc/f/c${i}@${env}`, case: `libc/f/c${i}`, env, runtime: 'libc', seconds, estimated: false });
  const us = [...Array.from({ length: 6 }, (_, i) => mk('glibc-2.31-bullseye', i, 10)), ...Array.from({ length: 6 }, (_, i) => mk('musl-1.2.5', i, 10))];
  const cheap = makePlan(us, 2, { jobs: 1, budget: 'full', from: null, setupCost: {} });
  const dear = makePlan(us, 2, { jobs: 1, budget: 'full', from: null, setupCost: { 'root-bullseye': 600, musl: 600 } });
  t.same(dear.shards.map((s) => s.envs.length), [1, 1], 'with a 10-minute provision each, each shard gets one environment');
  t.same(dear.shards.map((s) => s.predicted_s), [660, 660]);
  t.equal(cheap.makespan_s, 60, 'without setup costs the balance is all that counts');
  const provisions = dear.shards.map((s) => s.provision.join(' ')).sort();
  t.same(provisions, ['host musl', 'host root-bullseye']);
});
