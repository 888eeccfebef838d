// The verdict as a pure function (src/verdict.ts) of the case, the harness processes' results and the proof:
// every rule on fixtures, without a fork. The real-fork tests (verdicts.test.ts, harness-*.test.ts) show the
// harnesses produce such results.
import t from 'tap';
import { addEvidence, emptyEvidence, evidenceOf, MIN_PASS_FORKS, MIN_PASS_PROCESSES, verdict, type Evidence } from '../src/verdict.ts';
import type { HarnessResult, Known, Found } from '../src/types.ts';

const glibc = { name: 'glibc', version: '2.36' };
const musl = { name: 'musl', version: '1.2.5' };
const kase = (over: { threads?: number; known?: Known[]; found?: Found[] } = {}) => ({ threads: 2, known: [], found: [], ...over });
const pressure = (its = [500, 700], last = [1, 2], inside = 120, sampled = 134) => ({
  window_ms: 1000, threads: its.map((n, i) => ({ iterations: n, last_ms: last[i] ?? 0, error: null })), forks_inside: inside, forks_sampled: sampled,
});
const proc = (over: Partial<HarnessResult> = {}): HarnessResult => ({
  forks: 134, ok: 134, hang: 0, crash: 0, wrong: 0, elapsed_ms: 1000, first_failures: [], pressure: pressure(), mapped: ['/usr/lib/x86_64-linux-gnu/libc.so.6'], ...over,
});
const spread = (n: number, over: Partial<HarnessResult> = {}, preloads: string[] = [], threads = 2): Evidence =>
  Array.from({ length: n }, (_, i) => evidenceOf(proc(over), threads, preloads, i + 1)).reduce(addEvidence, emptyEvidence());

t.test('a pass needs enough forks over enough fresh processes, else it is inconclusive', async (t) => {
  t.equal(MIN_PASS_FORKS, 300);
  t.equal(MIN_PASS_PROCESSES, 3);
  t.match(verdict(kase(), spread(3), glibc, '3.11.7'), { verdict: 'pass', reason: null });
  const one = evidenceOf(proc({ forks: 1000, ok: 1000 }), 2);
  t.match(verdict(kase(), one, glibc, ''), { verdict: 'inconclusive', reason: /1000 forks over 1 harness process: a pass needs at least 300 forks over 3/ }, 'many forks in one process are not enough');
  t.match(verdict(kase(), spread(3, { forks: 14, ok: 14 }), glibc, ''), { verdict: 'inconclusive', reason: /42 forks over 3 harness processes/ }, 'allocator columns showed "pass 0/14"');
});

t.test('no pressure is an error, never a pass', async (t) => {
  const idle = spread(3, { pressure: pressure([0, 700]) });
  t.match(verdict(kase(), idle, glibc, ''), { verdict: 'error', reason: /^no pressure: loop thread 0 finished no iteration in 3 harness processes \(3000 ms of forking\)/ });
  const slowBody = addEvidence(spread(2, { pressure: pressure([0, 700]) }), evidenceOf(proc({ pressure: pressure([1, 700]) }), 2, [], 3));
  t.match(verdict(kase(), slowBody, glibc, ''), { verdict: 'pass' }, 'a body slower than one process\'s window still works over the cell');
  const raised = spread(3, { pressure: { ...pressure(), threads: [{ iterations: 3, last_ms: 990, error: 'ValueError: boom' }, { iterations: 9, last_ms: 0, error: null }] } });
  t.match(verdict(kase(), raised, glibc, ''), { verdict: 'error', reason: /loop thread 0 raised: ValueError: boom/ });
  const busy = spread(3, { pressure: { ...pressure([500, 700], [1, 2000]), window_ms: 3000 } });
  t.match(verdict(kase(), busy, glibc, ''), { verdict: 'pass' }, 'a thread whose last iteration ended 2 s before the end of a 3 s window may be slow, not stalled');
  const stalled3 = spread(3, { pressure: { ...pressure([500, 700], [1, 8000]), window_ms: 10000 } });
  t.match(verdict(kase(), stalled3, glibc, ''), { verdict: 'error', reason: /loop thread 1 stalled: no iteration finished in the last 8000 ms/ });
  const missing = spread(3, { pressure: undefined });
  t.match(verdict(kase(), missing, glibc, ''), { verdict: 'error', reason: /no pressure: process 1: the harness reported no pressure counters/ });
  const fewer = spread(3, { pressure: pressure([5]) });
  t.match(verdict(kase(), fewer, glibc, ''), { verdict: 'error', reason: /1 of 2 loop threads reported nothing/ });
  const outside = spread(3, { pressure: pressure([500, 700], [1, 1], 0, 134) });
  t.match(verdict(kase(), outside, glibc, ''), { verdict: 'inconclusive', reason: /none of 402 forks found a loop thread inside its loop body/ });
  t.match(verdict(kase({ threads: 0 }), spread(3, { pressure: undefined }, [], 0), glibc, ''), { verdict: 'pass' }, 'a case without threads needs no pressure');
});

t.test('a failure is evidence whatever the pressure; a hang must carry the harness proof', async (t) => {
  const hang = { kind: 'hang' as const, iteration: 3, message: 'blocked', diag: { proof: '+2000 ms: cpu 0 ms; 12 S [S]\n+2100 ms: cpu 0 ms; 12 S [S]', blocked: 'yes' } };
  const e = spread(1, { forks: 4, ok: 3, hang: 1, first_failures: [hang], pressure: pressure([0, 0]) });
  t.match(verdict(kase(), e, glibc, ''), { verdict: 'fail', kind: 'hang', known: null, found: null });
  const bare = spread(1, { forks: 4, ok: 3, hang: 1, first_failures: [{ kind: 'hang', iteration: 3, message: 'no exit after 2000 ms' }] });
  t.match(verdict(kase(), bare, glibc, ''), { verdict: 'error', reason: /carries no proof that it was blocked/ });
  const crash = spread(1, { forks: 2, ok: 1, crash: 1, first_failures: [{ kind: 'crash', iteration: 1, message: 'killed by SIGSEGV', signame: 'SIGSEGV' }] });
  t.match(verdict(kase(), crash, glibc, ''), { verdict: 'fail', kind: 'crash' });
});

t.test('known needs the scope to match: libc, libc versions, runtime versions, fixed in', async (t) => {
  const wrong = spread(3, { forks: 100, ok: 99, wrong: 1, first_failures: [{ kind: 'wrong', iteration: 7, message: 'x' }] });
  const k = (over: Partial<Known>): Known => ({ verdict: 'fail', cite: 'https://bugs.example.org/1', ...over });
  t.match(verdict(kase({ known: [k({ libc: 'glibc' })] }), wrong, glibc, ''), { known: { libc: 'glibc' } });
  t.match(verdict(kase({ known: [k({ libc: 'glibc' })] }), wrong, musl, ''), { known: null }, 'a glibc bug does not explain musl');
  t.match(verdict(kase({ known: [k({ libc: 'glibc', versions: '<2.36' })] }), wrong, glibc, ''), { known: null });
  t.match(verdict(kase({ known: [k({ libc: 'glibc', verdict: 'hang' })] }), wrong, glibc, ''), { known: null }, 'a known hang does not explain a wrong');
  const rt = kase({ known: [k({ runtime_versions: '<3.2', fixed_in: '3.2' })] });
  t.match(verdict(rt, wrong, musl, '3.1.2'), { known: { fixed_in: '3.2' } }, 'a runtime bug applies on every libc');
  t.match(verdict(rt, wrong, glibc, '3.3.5'), { verdict: 'fail', known: null }, 'at or after the fix it is a regression');
  t.match(verdict(kase({ known: [k({ fixed_in: '3.2' })] }), wrong, glibc, '3.1.2'), { known: { fixed_in: '3.2' } }, 'fixed_in alone means: before it');
  t.match(verdict(kase({ known: [k({ fixed_in: '3.2' })] }), wrong, glibc, '3.2.0'), { known: null });
  t.match(verdict(kase({ known: [k({ runtime_versions: '>=3.12' })] }), wrong, glibc, '1.44.2 (gcc 12.2.0)'), { known: null }, 'compared on the leading version number');
});

t.test('found (measured here) is told apart from known (upstream)', async (t) => {
  const hang = { kind: 'hang' as const, iteration: 0, message: 'blocked', diag: { proof: 'p', blocked: 'yes' } };
  const e = spread(3, { forks: 10, ok: 9, hang: 1, first_failures: [hang] });
  const found: Found = { libc: 'glibc', verdict: 'hang', measured: 'glibc 2.36: 3 of 400' };
  t.match(verdict(kase({ found: [found] }), e, glibc, ''), { verdict: 'fail', known: null, found: { measured: 'glibc 2.36: 3 of 400' } });
  t.match(verdict(kase({ found: [found], known: [{ libc: 'glibc', verdict: 'fail', cite: 'bug 1234' }] }), e, glibc, ''), { known: { cite: 'bug 1234' }, found: null }, 'an upstream source wins');
});

t.test('every kind of failure in a cell must be explained before it reads known or found', async (t) => {
  const hang = { kind: 'hang' as const, iteration: 0, message: 'blocked', diag: { proof: 'p', blocked: 'yes' } };
  const mixed = spread(3, { forks: 100, ok: 96, hang: 3, crash: 1, first_failures: [hang] });
  const knownHang: Known = { libc: 'glibc', verdict: 'hang', cite: 'glibc x.c:1' };
  const foundCrash: Found = { libc: 'glibc', verdict: 'crash', measured: 'crashes here' };
  t.match(verdict(kase({ known: [knownHang] }), mixed, glibc, ''), { verdict: 'fail', kind: 'hang', known: null, found: null }, 'a known hang beside an unexplained crash is unexplained');
  t.match(verdict(kase({ known: [knownHang], found: [foundCrash] }), mixed, glibc, ''), { verdict: 'fail', known: null, found: { measured: 'crashes here' } }, 'a finding beside a known failure makes the cell a finding');
  t.match(verdict(kase({ known: [knownHang, { libc: 'glibc', verdict: 'crash', cite: 'bug 2' }] }), mixed, glibc, ''), { known: { cite: 'glibc x.c:1' }, found: null }, 'known when every kind is known');
  t.match(verdict(kase({ known: [{ libc: 'glibc', verdict: 'fail', cite: 'bug 3' }] }), mixed, glibc, ''), { known: { cite: 'bug 3' } }, 'a known "fail" covers every kind');
});

t.test('an allocator column must show its allocator mapped in every process', async (t) => {
  const pre = ['/cache/alloc/libjemalloc.so.2'];
  const mapped = ['/usr/lib/x86_64-linux-gnu/libc.so.6', '/cache/alloc/libjemalloc.so.2'];
  t.match(verdict(kase(), spread(3, { mapped }, pre), glibc, ''), { verdict: 'pass' });
  t.match(verdict(kase(), spread(3, {}, pre), glibc, ''), { verdict: 'error', reason: /interposer was not mapped into the harness: \/cache\/alloc\/libjemalloc.so.2 \(process 1\)/ });
});

t.test('harness errors and skips decide before counts', async (t) => {
  t.match(verdict(kase(), spread(1, { error: 'precondition failed: libfmlib.so already mapped', forks: 0 }), glibc, ''), { verdict: 'error', reason: /precondition failed/ });
  t.match(verdict(kase(), spread(1, { skipped: 'no IPv6', forks: 0 }), glibc, ''), { verdict: 'skip', reason: 'no IPv6' });
  t.match(verdict(kase(), emptyEvidence(), glibc, ''), { verdict: 'error', reason: 'no fork ran' });
});
