// The libc CI gate against a deliberately broken malloc interposer: recorded without it the malloc case passes;
// with it the gate must fail, name the malloc case and show a backtrace into the wrapper; without it, pass.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { REPO } from '../src/cli.ts';
import { hostEnvironment } from '../adapters/host.ts';
import { tmp, CACHE } from './helpers.ts';

const BIN = path.join(REPO, 'bin/forkmatrix.mjs');
const CASE = 'libc/malloc/malloc-free-all-sizes-while-threads-allocate';
const fm = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: REPO, encoding: 'utf8', timeout: 240_000 });

t.test('gate: a broken interposer is a regression with a backtrace into it; the clean libc passes', async (t) => {
  const dir = tmp();
  const so = path.join(dir, 'libbadmalloc.so');
  const cc = spawnSync('cc', ['-shared', '-fPIC', '-O1', '-g', '-o', so, path.join(REPO, 'test/fixtures/interposer/badmalloc.c'), '-lpthread'], { encoding: 'utf8' });
  t.equal(cc.status, 0, cc.stderr);
  const host = hostEnvironment({ cacheDir: CACHE, extraRuntimes: [], preload: [], libc: [] }).id;
  const baseline = path.join(dir, 'baseline.json');
  const out = path.join(dir, 'results');
  const common = ['--case', CASE, '--budget', '300', '--out', out, '--jobs', '1'];

  const rec = fm(['gate', '--env', host, '--baseline', baseline, '--update-baseline', ...common]);
  t.equal(rec.status, 0, rec.stderr);
  t.match(rec.stderr, /wrote the baseline \(1 cells\)/);

  const bad = fm(['gate', '--preload', so, '--baseline', baseline, '--fail-fast', ...common]);
  t.equal(bad.status, 1, `the gate fails: ${bad.stderr.slice(-600)}`);
  t.match(bad.stdout, /^TAP version 14$/m);
  t.match(bad.stdout, new RegExp(`^not ok 1 - ${CASE} on ${host}\\+badmalloc: regressed$`, 'm'));
  t.match(bad.stdout, /gate: regressed/);
  t.match(bad.stdout, /badmalloc_enter|badmalloc\.c/, 'the hung child\'s backtrace goes into the wrapper');
  t.match(bad.stderr, /FAILED: 1 cell\(s\) regressed/);

  const good = fm(['gate', '--env', host, '--baseline', baseline, ...common]);
  t.equal(good.status, 0, good.stderr.slice(-600));
  t.match(good.stdout, new RegExp(`^ok 1 - ${CASE} on ${host}: unchanged$`, 'm'));
  t.match(good.stdout, /missable: /, 'a pass says what it could have missed');
});

t.test('gate usage errors', async (t) => {
  const r = fm(['gate']);
  t.equal(r.status, 2);
  t.match(r.stderr, /gate needs a candidate: --libc PATH, --preload LIB\.so or --env LIST/);
  const b = fm(['gate', '--env', 'x', '--baseline', '/nonexistent/b.json']);
  t.equal(b.status, 2);
  t.match(b.stderr, /--baseline \/nonexistent\/b\.json: no such file; record one with --update-baseline/);
});
