// The command line as a user meets it: exit codes, one-line errors, Ctrl-C.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { REPO } from '../src/cli.ts';
import { HOST_ENV, processesMentioning, tmp } from './helpers.ts';

const BIN = path.join(REPO, 'bin/forkmatrix.mjs');
const fm = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [BIN, ...args], { cwd: REPO, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });

t.test('usage errors: one line naming the fix, exit 2, no stack trace', async (t) => {
  for (const [args, re] of [
    [['frobnicate'], /unknown command 'frobnicate': use one of run, list, validate, report/],
    [['run', '--budget', 'lots'], /--budget lots: expected quick, full or a number of forks/],
    [['run', '--suite', 'cobol'], /--suite cobol: unknown runtime 'cobol'/],
    [['run', '--env', 'musl-9.9'], /--env musl-9\.9: not available here; available: glibc-/],
    [['run', '--frob'], /Unknown option '--frob'/],
    [['run', '--runtime', 'python'], /--runtime python: expected NAME=PATH/],
    [['run', '--runtime', 'libuv=/usr/bin/gcc'], /--runtime libuv=\/usr\/bin\/gcc: expected NAME=PATH with NAME one of libc, python, ruby, node/],
    [['run', '--max-delay-us', 'soon'], /--max-delay-us soon: expected a whole number of microseconds from 0 to 1000000/],
    [['report', 'no/such/dir'], /report: no\/such\/dir: no such file or directory \(give results directories/],
  ] as [string[], RegExp][]) {
    const r = fm(args);
    t.equal(r.status, 2, args.join(' '));
    t.match(r.stderr, re);
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

t.test('validate: exit 1 with file:line:col on a broken suite, 0 on the shipped one', async (t) => {
  const bad = fm(['validate', 'test/fixtures/broken']);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /^test\/fixtures\/broken\/python\/stdio\.yaml:11:5: cases\[1\]\.child: missing required key 'child'$/m);
  t.match(bad.stderr, /5 problem\(s\) in 1 file\(s\)/);
  const good = fm(['validate']);
  t.equal(good.status, 0, good.stderr);
  t.match(good.stdout, /\d+ cases in \d+ files: all valid/);
  const run = fm(['run', '--suites', 'test/fixtures/broken']);
  t.equal(run.status, 2, 'run refuses a broken suite before anything forks');
  t.match(run.stderr, /nothing was run/);
});

t.test('run exits 0 whatever the verdicts and writes the results', async (t) => {
  const out = tmp();
  const r = fm(['run', '--suites', 'test/fixtures/verdicts', '--suite', 'libc', '--case', 'wrong,passes', '--env', HOST_ENV, '--out', out]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /verdicts\/wrong\s+wrong 1\/1/, 'the default budget, quick, stops a cell at its first failure');
  t.match(r.stdout, /2 cells in \d+s: 1 pass, 1 fail, 0 inconclusive, 0 skip, 0 error/);
  const runs = readdirSync(out).filter((d) => d !== 'latest');
  t.equal(runs.length, 1);
  const files = readdirSync(path.join(out, runs[0])).sort();
  t.same(files.filter((f) => !f.endsWith('.tap')), ['index.html', 'matrix.json', 'matrix.md']);
  t.match(files.filter((f) => f.endsWith('.tap')), [new RegExp(`^${HOST_ENV}__libc-gcc_[\\d.]+\\.tap$`)], 'one TAP stream for the one environment and runtime');
});

t.test('Ctrl-C in the middle of a run kills every child and leaves no half-written results', async (t) => {
  const out = tmp();
  const cache = tmp('fm-cache-');
  const p = spawn(process.execPath, [BIN, 'run', '--suites', 'test/fixtures/sigint', '--env', HOST_ENV, '--out', out, '--cache', cache], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  // wait until the harness (compiled into the private cache) has forked its hanging child
  const t0 = Date.now();
  // (argv[0] is the case binary itself: the compiler's processes also mention the cache, but do not start with it)
  const harnessAndChildren = () => processesMentioning(cache).filter((l) => l.split(': ')[1].startsWith(cache));
  // the subject is what Ctrl-C leaves, not how fast a loaded machine compiles and starts the harness: wait long
  while (harnessAndChildren().length < 2 && Date.now() - t0 < 240_000) await new Promise((r) => setTimeout(r, 100));
  t.ok(harnessAndChildren().length >= 2, 'the harness and its child are running');
  p.kill('SIGINT');
  const code = await new Promise((r) => p.on('exit', (c) => r(c)));
  t.equal(code, 130, err);
  t.match(err, /SIGINT: stopped; every child process was killed/);
  await new Promise((r) => setTimeout(r, 200));
  t.same(processesMentioning(cache), [], 'no harness or child survives');
  t.same(readdirSync(out).filter((f) => !f.startsWith('.')), [], 'no results directory');
  t.notOk(existsSync(path.join(out, 'latest')));
});
