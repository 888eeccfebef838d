// Free-threaded CPython builds in the tests' cache: a build takes far more than this file's 5 minutes (tens of
// minutes on 2 shared cores), so nothing is built here. When `provision python-ft` / `musl-python-ft` has left a
// build in the cache (FORKMATRIX_TEST_CACHE may name one that has), discovery finds it, it names itself with the
// "t" suffix, and a harness run on it forks with the GIL really off (result.runtime.gil === false). Otherwise each
// test skips with the command that provisions it.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { installedVersions } from '../../adapters/musl.ts';
import { ftProvisionCmd } from '../../provision/python-ft.ts';
import { ftCandidates, pythonFtSource } from '../../src/runtimes/python-ft.ts';
import { CACHE, tmp } from '../helpers.ts';

t.setTimeout(300_000);
const REPO = path.resolve(import.meta.dirname, '..', '..');
const VERSION_QUERY = "import sys,platform,sysconfig;print(platform.python_version()+('t' if sysconfig.get_config_var('Py_GIL_DISABLED') else ''))";

/** A few forks with 4 busy threads, through the real harness; returns its result. */
function harnessRun(argv: string[]) {
  const dir = tmp('fm-ft-slow-');
  const result = path.join(dir, 'result.json');
  const cfg = {
    case: 'ft-smoke', file: 'test/slow/python-ft.test.ts', lines: { prelude: 0, setup: 0, loop: 0, child: 0 }, threads: 4,
    // threads allocate objects of their own (nothing shared: a dict they contend for hangs children, see
    // findings/python-ft-object-lock-held-at-fork.md); the child allocates too
    prelude: '', setup: '', loop: 'x = {k: [k] for k in range(32)}\n',
    child: 'd = {k: str(k) for k in range(100)}\nreturn len(d) == 100\n', exit: '_exit', expect_output: null, forks: 20, seconds: 60,
    timeout_ms: 5000, seed: 1, max_delay_us: 20, warmup_ms: 50, fail_fast: false, diag: { gdb: null, max: 0 }, result,
    before_fork: '', precondition: '', hang_proof: { sample_ms: 100, early_min_ms: 200, early_factor: 20, hard_factor: 5 },
  };
  writeFileSync(path.join(dir, 'cfg.json'), JSON.stringify(cfg));
  const r = spawnSync(argv[0], [...argv.slice(1), path.join(REPO, 'runners/python/harness.py'), path.join(dir, 'cfg.json')], {
    env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: dir }, encoding: 'utf8', timeout: 240_000,
  });
  if (r.status !== 0) throw new Error(`harness exit ${r.status}: ${r.stderr}`);
  return JSON.parse(readFileSync(result, 'utf8'));
}

const glibc = ftCandidates(CACHE, 'glibc');
t.test('a glibc build: found by the python-ft source, named 3.X.Yt, runs the harness without the GIL', { skip: glibc.length ? false : `no free-threaded build in ${CACHE} (FORKMATRIX_CACHE=${CACHE} ${ftProvisionCmd('glibc')})` }, async (t) => {
  const cands = pythonFtSource.candidates({ cacheDir: CACHE });
  t.same(cands.map((c) => c.path), glibc.map((c) => c.path));
  for (const c of glibc) {
    const v = spawnSync(c.path, ['-c', VERSION_QUERY], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    t.match(v.stdout.trim(), new RegExp(`^${c.minor.replace('.', '\\.')}\\.\\d+t$`), `${c.path} says ${v.stdout.trim()}`);
    const res = harnessRun([c.path]);
    t.equal(res.runtime.gil, false, 'sys._is_gil_enabled() is False in the harness');
    t.equal(res.ok, res.forks, `${res.ok} of ${res.forks} children ok`);
  }
});

const musl = ftCandidates(CACHE, 'musl');
const loaders = installedVersions(CACHE);
t.test('a musl build: runs the harness through each musl loader without the GIL', { skip: musl.length && loaders.length ? false : `no musl free-threaded build in ${CACHE} (FORKMATRIX_CACHE=${CACHE} ${ftProvisionCmd('musl')})` }, async (t) => {
  for (const c of musl) {
    for (const m of loaders) {
      const res = harnessRun([m.loader, c.path]);
      t.equal(res.runtime.gil, false, `musl ${m.version}: the GIL is off`);
      t.match(res.libc.path, /musl|libc\.so$/, `musl ${m.version}: ${res.libc.path}`);
      t.equal(res.ok, res.forks, `musl ${m.version}: ${res.ok} of ${res.forks} children ok`);
    }
  }
});
