// Proof, with real forks: a pass needs threads that worked (pressure), a hang needs a child proved blocked, and a
// child that was only slow, or had already exited, is judged by how it ended.
import t from 'tap';
import { processesMentioning, runFixture } from './helpers.ts';

for (const runtime of ['libc', 'python'] as const) {
  t.test(`${runtime}: pressure and hang proof decide the verdict`, async (t) => {
    const r = await runFixture('test/fixtures/proof', [runtime], { jobs: 2 });
    const idle = r.byId('idle-threads');
    t.match(idle, { verdict: 'error', reason: /^no pressure: loop thread \d finished no iteration in 3 harness processes/ }, 'threads that never entered their loop body are no pressure');

    const slow = r.byId('slow-child');
    t.match(slow, { verdict: 'inconclusive', failures: 0, counts: { ok: 2, hang: 0 } }, `a slow child is not a hang: ${slow.reason}`);
    t.equal(slow.slow, 2, 'both children were slow: alive at the timeout, not blocked, then finished');

    const blocked = r.byId('blocked-child');
    t.match(blocked, { verdict: 'fail', kind: 'hang', counts: { hang: 1 } });
    t.match(blocked.first_failure?.diag?.blocked, 'yes');
    t.match(blocked.first_failure?.diag?.proof, /cpu[\s\S]*\n[\s\S]*cpu/, 'two samples of the child kept as proof');

    if (runtime === 'libc') {
      const working = r.byId('working-threads');
      t.match(working, { verdict: 'pass', processes: 3 }, working.reason ?? '');
      t.ok(working.pressure && working.pressure.iterations.every((n) => n > 0), 'every loop thread iterated');
      t.ok(working.pressure!.forks_inside > 0, 'some forks found a thread inside its loop body');

      const late = r.byId('exits-late-wrong');
      t.match(late, { verdict: 'fail', kind: 'wrong', counts: { wrong: 2, hang: 0 } }, 'a child that exited late is judged by its status');

      t.match(r.byId('precondition-fails'), { verdict: 'error', reason: /precondition failed: the library is already mapped/ });
      const lib = r.byId('own-library');
      t.match(lib, { verdict: 'pass' }, lib.reason ?? lib.first_failure?.message ?? '');
      t.match(lib.clean_env.FM_LIB_FMPROBE, /\/lib\/[0-9a-f]+\/libfmprobe\.so$/);
    } else {
      t.match(r.byId('raising-thread'), { verdict: 'error', reason: /loop thread 0 raised: [\s\S]*ValueError: the loop is broken/ });
    }
    t.same(processesMentioning(r.out), [], 'no process of the run is left');
  });
}
