// The decisions of bisect and of the gate's confirmation, on numbers (src/bisect.ts, src/gate-confirm.ts), and
// what a --libc source argument is (src/libc-src/tree.ts).
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { behaviourOf, MIN_FORKS, MIN_PROCESSES, nextStep, outcomeOf, stepBudget, type Behaviour } from '../src/bisect.ts';
import { confirmation } from '../src/gate-confirm.ts';
import { parseGitSpec, treeKind, SourceError } from '../src/libc-src/tree.ts';
import type { CellResult } from '../src/types.ts';
import { tmp } from './helpers.ts';

t.test('step budget: a miss of a commit failing at the lower rate bound stays under 1%', async (t) => {
  const rare = stepBudget(10, 3000); // a rare failure: ~10 in 3000
  t.ok(rare.forks > 1000, `a rare failure needs many forks (${rare.forks})`);
  t.ok(rare.miss < 0.01, `miss ${rare.miss}`);
  t.ok(rare.processes >= MIN_PROCESSES && rare.processes > 3, 'a big budget is spread over more processes');
  t.match(rare.why, /95% lower bound .* chance of showing no failure/);
  const often = stepBudget(12, 12);
  t.equal(often.forks, MIN_FORKS, 'a failure at every fork still gets the floor');
  t.equal(often.processes, MIN_PROCESSES);
  const mid = stepBudget(4, 100);
  t.ok(Math.pow(1 - mid.rate, mid.forks) < 0.01 && Math.pow(1 - mid.rate, mid.forks - 1) >= 0.01, 'the smallest budget that does it');
  const capped = stepBudget(1, 100000);
  t.match(capped.why, /capped at/, 'a budget that would be absurd says it is capped and what the miss is then');
  t.throws(() => stepBudget(0, 300), /must show a failure/);
});

t.test('behaviour: regression and fix mode map fails/passes onto the old and new ends', async (t) => {
  t.equal(behaviourOf('fails', 'regression'), 'new');
  t.equal(behaviourOf('passes', 'regression'), 'old');
  t.equal(behaviourOf('fails', 'fix'), 'old');
  t.equal(behaviourOf('passes', 'fix'), 'new');
  t.equal(behaviourOf('skip', 'fix'), 'skip');
});

t.test('nextStep bisects, passes over skipped commits, and names them when they are in the way', async (t) => {
  const marks: (Behaviour | undefined)[] = new Array(9).fill(undefined);
  marks[0] = 'old';
  marks[8] = 'new';
  t.same(nextStep(marks), { test: 4 });
  marks[4] = 'new';
  t.same(nextStep(marks), { test: 2 });
  marks[2] = 'old';
  t.same(nextStep(marks), { test: 3 });
  marks[3] = 'skip';
  t.same(nextStep(marks), { firstNew: 4, skipped: [3] }, 'only a skipped commit between old and new: ambiguous');
  const m2: (Behaviour | undefined)[] = ['old', undefined, 'skip', undefined, 'new'];
  t.same(nextStep(m2), { test: 1 }, 'the untested commit nearest the middle, not the skipped one');
  t.same(nextStep(['old', 'new']), { firstNew: 1, skipped: [] }, 'adjacent ends: the new end is the answer');
  // a single flaky "new" verdict older than an "old" one: the window is after the last old
  t.same(nextStep(['old', 'new', 'old', undefined, 'new']), { test: 3 });
});

const cell = (o: Partial<CellResult>): CellResult => ({ verdict: 'pass', failures: 0, forks: 300, processes: 3, kind: null, ...o } as CellResult);

t.test('outcomeOf: any failure fails, a pass needs the whole budget over its processes', async (t) => {
  const b = { forks: 100, processes: 3 };
  t.equal(outcomeOf(cell({ verdict: 'fail', failures: 1, forks: 5 }), b), 'fails');
  t.equal(outcomeOf(cell({ verdict: 'inconclusive', forks: 100 }), b), 'passes', 'inconclusive for the matrix (no pressure proof) is still no failure in the budget');
  t.equal(outcomeOf(cell({ forks: 60 }), b), 'short');
  t.equal(outcomeOf(cell({ forks: 100, processes: 1 }), b), 'short');
  t.equal(outcomeOf(cell({ verdict: 'error', forks: 0 }), b), 'skip');
});

t.test('gate confirmation: a failure seen again confirms; none in both re-runs is flaky', async (t) => {
  const first = cell({ verdict: 'fail', kind: 'hang', failures: 1, forks: 40 });
  const c1 = confirmation(first, [cell({ verdict: 'fail', kind: 'hang', failures: 1, forks: 12 })]);
  t.ok(c1.confirmed);
  t.match(c1.note, /confirmed by re-run 1 \(same seed: hang 1\/12\)/);
  const c2 = confirmation(first, [cell({ forks: 40 }), cell({ verdict: 'fail', kind: 'crash', failures: 2, forks: 300 })]);
  t.ok(c2.confirmed);
  t.match(c2.note, /re-run 2 \(fresh budget/);
  const c3 = confirmation(first, [cell({ forks: 40 }), cell({ forks: 300 })]);
  t.notOk(c3.confirmed);
  t.match(c3.note, /flaky: the quick run saw hang 1\/40; not reproduced by the same seed \(0\/40\) nor the fresh budget \(0\/300\)/);
});

t.test('--libc sources: git:PATH@REV and what a tree is', async (t) => {
  t.same(parseGitSpec('git:../musl@v1.2.1'), { repo: '../musl', rev: 'v1.2.1' });
  t.same(parseGitSpec('git:/a@b@HEAD~2'), { repo: '/a@b', rev: 'HEAD~2' });
  t.equal(parseGitSpec('/usr/local/musl'), null);
  t.ok((() => {
    try {
      parseGitSpec('git:../musl');
    } catch (e) {
      return e instanceof SourceError;
    }
    return false;
  })(), 'no @REV: a SourceError');
  t.throws(() => parseGitSpec('git:@v1'), /expected git:PATH@REV/);
  const d = tmp();
  const musl = path.join(d, 'musl');
  for (const dir of ['arch/x86_64', 'src/thread', 'include']) mkdirSync(path.join(musl, dir), { recursive: true });
  for (const f of ['VERSION', 'configure', 'include/stdio.h']) writeFileSync(path.join(musl, f), '1.2.9\n');
  t.equal(treeKind(musl), 'musl');
  const glibc = path.join(d, 'glibc');
  for (const dir of ['nptl', 'csu']) mkdirSync(path.join(glibc, dir), { recursive: true });
  for (const f of ['version.h', 'configure']) writeFileSync(path.join(glibc, f), '');
  t.equal(treeKind(glibc), 'glibc');
  t.equal(treeKind(d), 'none');
  t.equal(treeKind(path.join(d, 'nope')), 'none');
});

t.test('pruneStaleDeps: an object depending on a file this commit lacks is rebuilt; phony header rules go', async (t) => {
  const { pruneStaleDeps } = await import('../src/libc-src/worktree.ts');
  const src = tmp();
  mkdirSync(path.join(src, 'obj/src/a'), { recursive: true });
  mkdirSync(path.join(src, 'src/a'), { recursive: true });
  writeFileSync(path.join(src, 'src/a/x.c'), '');
  writeFileSync(path.join(src, 'src/a/here.h'), '');
  writeFileSync(path.join(src, 'obj/src/a/x.lo'), '');
  writeFileSync(path.join(src, 'obj/src/a/x.d'), 'obj/src/a/x.lo: src/a/x.c \\\n src/a/here.h\nsrc/a/here.h:\n');
  writeFileSync(path.join(src, 'obj/src/a/y.lo'), '');
  writeFileSync(path.join(src, 'obj/src/a/y.d'), 'obj/src/a/y.lo: src/a/y.c src/a/gone.h\n');
  t.equal(pruneStaleDeps(src), 1);
  const { existsSync, readFileSync } = await import('node:fs');
  t.notOk(existsSync(path.join(src, 'obj/src/a/y.lo')), 'stale object removed');
  t.notOk(existsSync(path.join(src, 'obj/src/a/y.d')));
  t.ok(existsSync(path.join(src, 'obj/src/a/x.lo')), 'the rest kept');
  t.equal(readFileSync(path.join(src, 'obj/src/a/x.d'), 'utf8'), 'obj/src/a/x.lo: src/a/x.c   src/a/here.h\n', 'only the object rule is left');
});
