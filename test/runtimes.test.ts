// Ruby and Node runners: the same verdicts as C and Python, from real forks and real spawns.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { REPO } from '../src/cli.ts';
import { which } from '../adapters/host.ts';
import { HOST_ENV, processesMentioning, runFixture, tmp } from './helpers.ts';

t.test('ruby: hang, crash, wrong and pass', { skip: which('ruby') ? false : 'no ruby on PATH (apt-get install ruby)' }, async (t) => {
  const r = await runFixture('test/fixtures/verdicts', ['ruby']);
  t.match(r.byId('passes'), { verdict: 'pass', failures: 0 });
  t.match(r.byId('hangs'), { verdict: 'fail', kind: 'hang', counts: { hang: 2 } });
  t.ok(r.byId('hangs').first_failure?.diag, 'the hang was diagnosed');
  t.match(r.byId('crashes'), { verdict: 'fail', kind: 'crash', first_failure: { signame: /SIG(SEGV|ABRT)/ } }, 'Ruby turns SIGSEGV into its bug report and abort()');
  t.match(r.byId('wrong'), { verdict: 'fail', kind: 'wrong', first_failure: { message: /ArgumentError.*expected 1, got 42/ } });
  t.same(processesMentioning(r.out), []);
});

t.test('node: a stuck spawn is a hang and is killed; a wrong exit status is wrong', async (t) => {
  const r = await runFixture('test/fixtures/verdicts', ['node']);
  t.match(r.byId('passes'), { verdict: 'pass' });
  t.ok(r.byId('passes').child_ms?.median != null, 'spawn latency is measured');
  t.match(r.byId('hangs'), { verdict: 'fail', kind: 'hang' });
  t.match(r.byId('wrong'), { verdict: 'fail', kind: 'wrong' });
  t.same(processesMentioning('/bin/sleep 300'), [], 'the stuck program was killed');
});

t.test('node: where the addon cannot be built, its cases are skipped with the compiler\'s reason', async (t) => {
  const cache = tmp('fm-cache-');
  const r = spawnSync(process.execPath, [path.join(REPO, 'bin/forkmatrix.mjs'), 'run', '--suites', 'test/fixtures/verdicts', '--suite', 'node', '--case', 'raw-fork', '--env', HOST_ENV, '--cache', cache, '--out', tmp()], {
    cwd: REPO, encoding: 'utf8', env: { ...process.env, CC: '/bin/false', CXX: '/bin/false' }, timeout: 180_000,
  });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /verdicts\/raw-fork\s+skip/);
  t.match(r.stderr, /raw-fork.*skip \(the raw-fork addon could not be built/);
});
