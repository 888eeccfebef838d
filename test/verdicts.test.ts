// Real forks with tiny budgets: each fixture case must become exactly its verdict, and nothing may survive.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { processesMentioning, runFixture } from './helpers.ts';

for (const runtime of ['libc', 'python'] as const) {
  t.test(`${runtime}: hang, crash, wrong, pass and skip are told apart`, async (t) => {
    const r = await runFixture('test/fixtures/verdicts', [runtime]);
    const pass = r.byId('passes');
    t.match(pass, { verdict: 'pass', failures: 0, kind: null });
    t.ok(pass.forks > 0 && pass.counts.ok === pass.forks, 'every fork of the passing case was ok');
    t.ok(pass.missable! > 0 && pass.interval[1] > 0, 'a pass carries what it could have missed');

    const hang = r.byId('hangs');
    t.match(hang, { verdict: 'fail', kind: 'hang', counts: { hang: 2 } });
    t.match(hang.first_failure, { kind: 'hang', iteration: 0 });
    t.ok(hang.first_failure?.diag, 'the first hang was diagnosed before the kill');
    t.match(String(hang.first_failure?.diag?.wchan ?? '') + String(hang.first_failure?.diag?.gdb ?? ''), /\w/, 'wchan or gdb says where it hung');

    const crash = r.byId('crashes');
    t.match(crash, { verdict: 'fail', kind: 'crash' });
    t.match(crash.first_failure, { signame: runtime === 'libc' ? 'SIGSEGV' : 'SIGABRT' });

    if (runtime === 'libc') {
      // the fault handler names the address, and addr2line the snippet line through the #line directives
      const fault = r.byId('faults');
      t.match(fault, { verdict: 'fail', kind: 'crash', counts: { crash: 2 } });
      t.match(fault.first_failure, { signame: 'SIGSEGV' });
      const line = 1 + readFileSync('test/fixtures/verdicts/libc/verdicts.yaml', 'utf8').split('\n').indexOf('      *p = 1;');
      t.match(fault.first_failure?.diag?.fault, new RegExp(`^SIGSEGV at address 0x0, pc 0x[0-9a-f]+ in case\\.bin\\+0x[0-9a-f]+ \\(fm_child at \\S*test/fixtures/verdicts/libc/verdicts\\.yaml:${line}`));
      t.notOk(crash.first_failure?.diag?.fault, 'raise(SIGSEGV) is a sent signal, not a fault: no address to name');
    }

    const wrong = r.byId('wrong');
    t.match(wrong, { verdict: 'fail', kind: 'wrong' });
    t.match(wrong.first_failure?.message, /expected 1, got 42/, 'the child\'s message is kept');

    if (runtime === 'libc') t.match(r.byId('skips'), { verdict: 'skip', reason: /feature X is missing/ });
    t.same(processesMentioning(r.out), [], 'no process of the run is left');
  });
}

t.test('the runtime starts with a clean, declared environment whatever this machine exports', async (t) => {
  const saved = { ...process.env };
  Object.assign(process.env, { PYTHONUNBUFFERED: '1', TZ: 'Asia/Tokyo', FM_LEAK: 'x' });
  t.teardown(() => {
    for (const k of ['PYTHONUNBUFFERED', 'TZ', 'FM_LEAK']) if (!(k in saved)) delete process.env[k];
  });
  const r = await runFixture('test/fixtures/verdicts', ['python'], { envCheck: true });
  const c = r.byId('env');
  t.match(c, { verdict: 'inconclusive', failures: 0, forks: 2 }, c.first_failure?.message ?? c.reason ?? ''); // 2 forks: no failure, too few for a pass
  t.match(c.clean_env, { FM_DECLARED: 'yes', LANG: 'C.UTF-8' });
  t.notOk('FM_LEAK' in c.clean_env || 'PYTHONUNBUFFERED' in c.clean_env || 'TZ' in c.clean_env, 'the recorded environment is the declared one');
});
