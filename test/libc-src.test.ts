// --libc sources and `provision libc-src`: bad inputs are one line and exit 2; a tree that fails to build says the
// compiler's last lines and leaves nothing half-built in the cache (the real musl builds take minutes: the gate's
// done-when is measured by hand, see the report).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from '../src/cli.ts';
import { CACHE, tmp } from './helpers.ts';

const BIN = path.join(REPO, 'bin/forkmatrix.mjs');
const fm = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: REPO, encoding: 'utf8', timeout: 200_000 });
const git = (dir: string, args: string[]) => {
  const r = spawnSync('git', ['-C', dir, ...args], { encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

/** A tree that looks like musl but whose configure fails like a compiler would. */
function fakeMusl(): string {
  const dir = tmp('fm-fake-musl-');
  for (const d of ['arch/x86_64', 'src/thread', 'include']) mkdirSync(path.join(dir, d), { recursive: true });
  writeFileSync(path.join(dir, 'VERSION'), '1.2.9\n');
  writeFileSync(path.join(dir, 'include/stdio.h'), '/* fake */\n');
  writeFileSync(path.join(dir, 'src/thread/pthread_create.c'), '/* fake */\n');
  writeFileSync(path.join(dir, 'configure'), '#!/bin/sh\necho "checking for C compiler... gcc"\necho "src/thread/pthread_create.c:1:1: error: fake tree: nothing to build" >&2\nexit 1\n');
  chmodSync(path.join(dir, 'configure'), 0o755);
  git(dir, ['init', '-q']);
  git(dir, ['add', '.']);
  git(dir, ['commit', '-q', '-m', 'fake musl']);
  return dir;
}

t.test('bad --libc sources: one line, exit 2', async (t) => {
  const d = tmp();
  const glibc = path.join(d, 'glibc');
  for (const x of ['nptl', 'csu']) mkdirSync(path.join(glibc, x), { recursive: true });
  for (const f of ['version.h', 'configure']) writeFileSync(path.join(glibc, f), '');
  const repo = fakeMusl();
  const cases: [string[], RegExp][] = [
    [['provision', 'libc-src'], /provision libc-src needs the source/],
    [['provision', 'libc-src', d], /not a musl source tree/],
    [['provision', 'libc-src', glibc], /a glibc source tree: forkmatrix builds musl trees only/],
    [['provision', 'libc-src', `git:${repo}@nosuchtag`], /no such commit, tag or branch/],
    [['provision', 'libc-src', `git:${d}@HEAD`], /not a git repository/],
    [['provision', 'libc-src', `git:${repo}`], /expected git:PATH@REV/],
    [['run', '--libc', `git:${repo}@v9`, '--case', 'nothing-matches-this'], /no such commit|no case matches/],
  ];
  for (const [args, re] of cases) {
    const r = fm(args);
    t.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    t.match(r.stderr, re, args.join(' '));
    t.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }
});

t.test('a tree that does not build: the compiler\'s last lines, exit 2, nothing half-built in the cache', async (t) => {
  const repo = fakeMusl();
  const r = fm(['provision', 'libc-src', `git:${repo}@HEAD`]);
  t.equal(r.status, 2, r.stderr);
  t.match(r.stderr, /musl-1\.2\.9\+git\.\w+: \.\/configure failed: .*error: fake tree: nothing to build/);
  const root = path.join(CACHE, 'musl', 'src');
  const left = existsSync(root) ? readdirSync(root).filter((f) => f.startsWith('1.2.9-')) : [];
  t.same(left, [], 'no prefix and no temporary of it left in the cache');
  const again = fm(['provision', 'libc-src', `git:${repo}@HEAD`]);
  t.equal(again.status, 2);
  t.match(again.stderr, /does not build \(recorded .*\.failed/, 'the failure is remembered: not rebuilt');
  // the same tree given as a path is keyed by its (clean) commit: the same recorded failure
  const asTree = fm(['provision', 'libc-src', repo]);
  t.equal(asTree.status, 2);
  t.match(asTree.stderr, /does not build/);
});

t.test('--env musl-X.Y.Z from a checkout: a release that does not build is left out with its reason; no tag or no checkout: exit 2', async (t) => {
  const repo = fakeMusl();
  git(repo, ['tag', 'v1.2.9']);
  const c = 'libc/malloc/free-a-block-another-thread-allocated';
  const out = tmp();
  const r = fm(['run', '--libc-git', repo, '--env', 'musl-1.2.9', '--case', c, '--out', out]);
  t.equal(r.status, 0, 'the run goes on');
  t.match(r.stderr, /environment musl-1\.2\.9\+git\.\w+: does not build: .*\.\/configure failed: .*error: fake tree/);
  const tag = fm(['run', '--libc-git', repo, '--env', 'musl-1.2.7', '--case', c, '--out', out]);
  t.equal(tag.status, 2);
  t.match(tag.stderr, /--env musl-1\.2\.7: the musl checkout \S+@v1\.2\.7: no such commit, tag or branch/);
  const none = fm(['run', '--env', 'musl-1.1.24', '--case', c, '--out', out]);
  t.equal(none.status, 2);
  t.match(none.stderr, /--env musl-1\.1\.24: not provisioned here; .* give --libc-git PATH or set FORKMATRIX_MUSL_GIT/);
});
