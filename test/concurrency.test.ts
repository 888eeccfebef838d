// Runs started at the same time in one checkout or with one cache never corrupt each other: three runs at once (in
// one process, so they start in the same second, and as three commands). Two provisions of the same thing at once
// are in test/slow/provision-robust.test.ts (they download).
import t, { type Test } from 'tap';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { loadSuite, selectCases } from '../src/cases.ts';
import { REPO } from '../src/cli.ts';
import { run } from '../src/run.ts';
import { readStream } from '../src/tap.ts';
import { hostEnvironment } from '../adapters/host.ts';
import { HOST_ENV } from './helpers.ts';
import { fm, tmpDir } from './robust-helpers.ts';

// a provision from a fresh test cache first rebuilds apt's package cache: minutes on a loaded machine
t.setTimeout(900_000);


/** Every run directory under `out` is complete: its streams read back whole, its matrix is JSON. */
async function checkRuns(t: Test, out: string, n: number) {
  const runs = readdirSync(out).filter((d) => d !== 'latest');
  t.equal(runs.filter((d) => d.startsWith('.')).length, 0, 'no partial directory is left');
  t.equal(new Set(runs).size, n, `${n} distinct run directories: ${runs.join(', ')}`);
  for (const r of runs) {
    const files = readdirSync(path.join(out, r));
    const taps = files.filter((f) => f.endsWith('.tap'));
    t.ok(taps.length >= 1 && ['matrix.json', 'matrix.md', 'index.html'].every((f) => files.includes(f)), `${r}: streams, matrix.json, matrix.md, index.html`);
    for (const f of taps) {
      const s = await readStream(path.join(out, r, f));
      t.equal(s.refusal, null, `${r}/${f} reads back whole`);
      t.ok(s.cells.length >= 1, `${r}/${f} has its cells`);
    }
    t.doesNotThrow(() => JSON.parse(readFileSync(path.join(out, r, 'matrix.json'), 'utf8')), `${r}/matrix.json is JSON`);
  }
  t.ok(runs.includes(readlinkSync(path.join(out, 'latest'))), 'latest points at one of them');
}

t.test('three runs at once in one results directory and one cache: three complete, distinct results', async (t) => {
  const cache = tmpDir('fm-conc-cache-'); // one cache: the three compile the same case into it at the same time
  const suite = await loadSuite(REPO, path.join(REPO, 'test/fixtures/verdicts'));
  const cases = selectCases(suite.cases, ['libc'], ['passes', 'wrong']);
  const env = hostEnvironment({ cacheDir: cache, extraRuntimes: [], preload: [], libc: [] });
  const out = tmpDir('fm-conc-out-');
  const outcomes = await Promise.all([1, 2, 3].map((seed) =>
    run({ repoDir: REPO, cacheDir: cache, outRoot: out, cases, environments: [env], budget: { kind: 'forks', forks: 10 }, jobs: 1, seed, failFast: false })));
  t.equal(new Set(outcomes.map((o) => o.dir)).size, 3, 'started in the same second, each got its own directory');
  for (const o of outcomes) t.equal(o.cells.length, 2, `${path.basename(o.dir)}: both cells`);
  t.ok(outcomes.every((o) => o.cells.find((c) => c.case.endsWith('/wrong'))?.verdict === 'fail'), 'every run saw the failing case fail');
  await checkRuns(t, out, 3);
});

t.test('three run commands at once in one checkout', async (t) => {
  const cache = tmpDir('fm-conc-cache-');
  const out = tmpDir('fm-conc-out-');
  const args = ['run', '--suites', 'test/fixtures/verdicts', '--suite', 'libc', '--case', 'passes', '--env', HOST_ENV, '--budget', '10', '--jobs', '1', '--out', out, '--cache', cache];
  const rs = await Promise.all([1, 2, 3].map((s) => fm([...args, '--seed', String(s)])));
  rs.forEach((r, i) => t.equal(r.code, 0, `run ${i + 1} exits 0${r.code ? `: ${r.stderr}` : ''}`));
  await checkRuns(t, out, 3);
});
