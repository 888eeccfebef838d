// bisect on a synthetic interposer repository made here: 8 commits, the 5th adds a lock nothing resets at fork,
// so from there on a child forked while a thread holds it hangs. The bisect must name commit 5, with evidence and
// a replay line per step, as TAP; bad inputs are one line and exit 2.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from '../src/cli.ts';
import { tmp } from './helpers.ts';

const BIN = path.join(REPO, 'bin/forkmatrix.mjs');
const CASE = 'libc/synthetic/interposed-op-while-threads-call-it';
const fm = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: REPO, encoding: 'utf8', timeout: 400_000 });
const git = (dir: string, args: string[]) => {
  const r = spawnSync('git', ['-C', dir, ...args], { encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

/** The interposer at commit n (1-based): a ~20 us operation; from commit 5 on under a mutex with no atfork reset. */
function source(n: number): string {
  const locked = n >= 5;
  return `/* synthetic interposer, commit ${n} */
#include <pthread.h>
${locked ? 'static pthread_mutex_t op_lock = PTHREAD_MUTEX_INITIALIZER;' : ''}
static volatile unsigned long op_state;
void fm_synthetic_op(void) {
  ${locked ? 'pthread_mutex_lock(&op_lock);' : ''}
  for (int i = 0; i < 2000; i++) op_state += i;
  ${locked ? 'pthread_mutex_unlock(&op_lock);' : ''}
}
const char *fm_synthetic_version(void) { return "${n}"; }
`;
}

function makeRepo(): { dir: string; shas: string[] } {
  const dir = tmp('fm-bisect-repo-');
  git(dir, ['init', '-q']);
  writeFileSync(path.join(dir, 'build.sh'), 'cc -shared -fPIC -O1 -o libsynth.so synth.c -lpthread\n');
  const shas: string[] = [];
  for (let n = 1; n <= 8; n++) {
    writeFileSync(path.join(dir, 'synth.c'), source(n));
    git(dir, ['add', '.']);
    git(dir, ['commit', '-q', '-m', n === 5 ? 'commit 5: guard the operation with a lock' : `commit ${n}`]);
    shas.push(git(dir, ['rev-parse', 'HEAD']));
  }
  return { dir, shas };
}

t.test('bisect finds the commit that added the lock (5 of 8)', async (t) => {
  const { dir, shas } = makeRepo();
  const r = fm(['bisect', '--preload-git', dir, '--good', shas[0], '--bad', shas[7], '--case', CASE, '--suites', 'test/fixtures/bisect', '--seed', '11']);
  t.equal(r.status, 0, r.stderr.slice(-1500));
  t.match(r.stdout, /^TAP version 14$/m);
  t.match(r.stdout, new RegExp(`^ok \\d+ - first bad commit: ${shas[4].slice(0, 7)}\\w* commit 5: guard the operation with a lock`, 'm'));
  t.match(r.stdout, /# budget: the failing end failed \d+ of \d+ forks .* chance of showing no failure/, 'says how the budget keeps a miss under 1%');
  t.match(r.stdout, /replay: npx forkmatrix run --case libc\/synthetic\/interposed-op-while-threads-call-it --preload \S+libsynth\.so/);
  t.match(r.stdout, /outcome: passes/);
  t.match(r.stdout, /outcome: fails/);
  t.match(r.stderr, /first bad commit: .*commit 5/);
  t.match(r.stderr, /evidence: \d+\/\d+ forks failed \(hang/);
  // the same two ends the other way round: the lock's introduction read as a "fix" is refused with --fixed
  const f = fm(['bisect', '--preload-git', dir, '--good', shas[0], '--bad', shas[7], '--case', CASE, '--suites', 'test/fixtures/bisect', '--fixed']);
  t.equal(f.status, 2);
  t.match(f.stderr, /--fixed: --bad \S+ must be the older commit/);
});

t.test('bisect: bad inputs are one line and exit 2', async (t) => {
  const { dir, shas } = makeRepo();
  const cases: [string[], RegExp][] = [
    [['--preload-git', dir, '--good', 'nosuchrev', '--bad', shas[7], '--case', CASE], /--good nosuchrev: --preload-git \S+@nosuchrev: no such commit, tag or branch/],
    [['--preload-git', '/nonexistent', '--good', 'a', '--bad', 'b', '--case', CASE], /no such directory/],
    [['--preload-git', REPO + '/suites', '--good', 'a', '--bad', 'b', '--case', CASE], /not a git repository|no such commit/],
    [['--preload-git', dir, '--good', shas[2], '--bad', shas[2], '--case', CASE], /are the same commit/],
    [['--preload-git', dir, '--good', shas[0], '--bad', shas[7]], /bisect needs --case ID/],
    [['--good', shas[0], '--bad', shas[7], '--case', CASE], /bisect needs one repository/],
    [['--preload-git', dir, '--good', shas[0], '--bad', shas[7], '--case', 'no-such-case', '--suites', 'test/fixtures/bisect'], /--case no-such-case: no such case/],
    [['--libc-git', dir, '--env', 'x', '--good', shas[0], '--bad', shas[7], '--case', CASE], /--env x: only for --preload-git/],
  ];
  for (const [args, re] of cases) {
    const r = fm(['bisect', ...args]);
    t.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    t.match(r.stderr, re);
    t.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }
});
