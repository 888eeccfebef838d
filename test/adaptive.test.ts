// Adaptive quick budgets (src/adaptive.ts): a failed cell stops at its first failure, the seconds it saved buy
// more slices for the cells still passing, and the slices merge into one honest cell.
import t from 'tap';
import { Bank, mergeRounds, mostUncertain, nextSlice } from '../src/adaptive.ts';
import type { CaseDef, CellResult } from '../src/types.ts';
import { processesMentioning, runFixture } from './helpers.ts';

const cell = (over: Partial<CellResult>): CellResult =>
  ({
    case: 'libc/f/x', verdict: 'pass', kind: null, known: null, forks: 100, failures: 0, counts: { ok: 100, hang: 0, crash: 0, wrong: 0 },
    rate: 0, interval: [0, 0.037], missable: 0.03, seed: 1, elapsed_ms: 1000, child_ms: { median: 1, p99: 2 }, first_failure: null,
    failures_seen: [], budget: { forks: 400, seconds: 3, timeout_ms: 2000 }, replay: 'r --seed 1', ...over,
  }) as CellResult;
const kase = { forks: 2000, seconds: 10, threads: 0, known: [], found: [] } as unknown as CaseDef;

t.test('the bank holds saved seconds and gives no slice shorter than a second', async (t) => {
  const b = new Bank();
  b.deposit(3, 200);
  t.equal(b.seconds, 2.8);
  t.equal(b.withdraw(3), 2.8);
  b.deposit(3, 2500);
  t.equal(b.withdraw(3), 0, 'half a second is not worth a harness start');
});

t.test('only a passing cell with budget left gets another slice; the fewest forks go first', async (t) => {
  t.same(nextSlice(kase, cell({})), { forks: 400, seconds: 3, topUp: false });
  t.same(nextSlice(kase, cell({ forks: 1900, elapsed_ms: 8500 })), { forks: 100, seconds: 1.5, topUp: false });
  const short = cell({ verdict: 'inconclusive', forks: 90, elapsed_ms: 3000, reason: 'no failure in 90 forks over 3 harness processes: a pass needs at least 300 forks over 3' });
  t.match(nextSlice(kase, short), { forks: 240, topUp: true }, 'a cell short of the forks a pass needs is topped up, unpaid');
  t.ok(nextSlice(kase, short)!.seconds >= 6.9, 'with the time its measured fork rate needs, within the case budget');
  t.equal(nextSlice(kase, cell({ verdict: 'inconclusive', reason: 'no pressure at the forks: ...' })), null, 'no top-up for a cell that lacks pressure, not forks');
  t.equal(nextSlice(kase, cell({ verdict: 'fail', failures: 1 })), null, 'a failure decided the verdict');
  t.equal(nextSlice(kase, cell({ forks: 2000 })), null, 'the case budget is spent');
  t.equal(nextSlice(kase, cell({ elapsed_ms: 9500 })), null);
  t.equal(mostUncertain([{ cell: cell({ forks: 300 }) }, { cell: cell({ forks: 40 }) }])?.cell.forks, 40);
});

t.test('two slices merge: counts add, the failing slice names the seed and the replay', async (t) => {
  const a = cell({});
  const ff = { kind: 'hang' as const, iteration: 5, elapsed_ms: 120, message: 'no exit', diag: { proof: '+2000 ms: cpu 0 ms; 1 S [S]', blocked: 'yes' } };
  const b = cell({ verdict: 'fail', kind: 'hang', forks: 50, failures: 1, counts: { ok: 49, hang: 1, crash: 0, wrong: 0 }, seed: 99, replay: 'r --seed 99', first_failure: ff, failures_seen: [ff] });
  const m = mergeRounds(kase, a, b);
  t.match(m, { verdict: 'fail', kind: 'hang', forks: 150, failures: 1, counts: { ok: 149, hang: 1 }, seed: 99, replay: 'r --seed 99', missable: null });
  t.equal(m.first_failure?.elapsed_ms, 1120, 'time to the first failure counts the earlier slices');
  t.same(m.rounds, [{ seed: 1, forks: 100, failures: 0, elapsed_ms: 1000 }, { seed: 99, forks: 50, failures: 1, elapsed_ms: 1000 }]);
  t.ok(m.interval[0] > 0 && m.interval[1] < 0.05);
  t.equal(mergeRounds(kase, a, cell({ verdict: 'skip', forks: 0 })), a, 'a slice that could not run changes nothing');
});

t.test('a real quick run: the failing cell stops at once, the passing one gets the time it saved', async (t) => {
  const r = await runFixture('test/fixtures/adaptive', ['libc'], { budget: { kind: 'quick' }, jobs: 1, seed: 5 });
  const fail = r.byId('fails-at-once');
  const pass = r.byId('always-passes');
  t.match(fail, { verdict: 'fail', kind: 'wrong', forks: 1, failures: 1 }, 'decided by its first fork');
  t.equal(pass.verdict, 'pass');
  t.ok((pass.rounds?.length ?? 1) >= 2, `the passing cell got more slices (${JSON.stringify(pass.rounds)})`);
  t.equal(pass.forks, pass.rounds!.reduce((n, x) => n + x.forks, 0), 'its forks are the sum of its slices');
  t.ok(pass.forks > pass.rounds![0].forks, `the later slices added forks (${pass.forks} in all, ${pass.rounds![0].forks} in the first)`);
  t.ok(pass.forks >= 300, 'a quick pass rests on at least the forks a pass needs (topped up on a slow machine)');
  // a slice ends at its deadline with the child in flight: it may overrun by at most one child's timeout (2 s)
  t.ok(pass.elapsed_ms / 1000 <= 10 + 2, `no more time than the case's own budget, plus one child's timeout (${pass.elapsed_ms} ms)`);
  t.same(pass.rounds!.map((x) => x.seed), [5, 6, 7, 8, 9, 10].slice(0, pass.rounds!.length), 'each slice has its own seed, derived from --seed');
  t.same(processesMentioning(r.out), []);
});
