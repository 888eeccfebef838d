// Several versions of one runtime in one environment are separate columns (grouped by runtime, then version, then
// libc), and `diff --from python-3.11.7 --to python-3.13.1` pairs those versions' columns per environment. Pure
// functions on synthetic cells; the CLI's one-line errors on a real (tiny) TAP stream.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { REPO } from '../src/cli.ts';
import { diffMatrices, pairColumns, parseRuntimeVersion, versionMatches } from '../src/diff.ts';
import { buildMatrix } from '../src/matrix.ts';
import { writeStream } from '../src/tap.ts';
import type { CellResult, RuntimeName, Verdict } from '../src/types.ts';

function cell(env: string, libc: string, runtime: RuntimeName, version: string, id: string, verdict: Verdict): CellResult {
  const [name, v] = libc.split(' ');
  return {
    case: `${runtime}/fam/${id}`, title: id, family: 'fam', cite: [], file: `suites/${runtime}/fam.yaml`, source: '', env,
    libc: { name: name as 'glibc' | 'musl', version: v, path: '/lib/libc.so.6', banner: '' },
    runtime, runtime_version: version, runtime_executable: `/x/${runtime}${version}`, verdict, kind: verdict === 'fail' ? 'hang' : null,
    level: 'guaranteed', known: null, reason: null, forks: 300, failures: verdict === 'fail' ? 3 : 0,
    counts: { ok: 300, hang: verdict === 'fail' ? 3 : 0, crash: 0, wrong: 0 }, rate: 0, interval: [0, 0.01], missable: 0.01, seed: 1,
    elapsed_ms: 1, child_ms: null, first_failure: null, failures_seen: [], budget: { forks: 300, seconds: 10, timeout_ms: 1000 },
    clean_env: {}, replay: '', processes: 3,
  };
}

const cells = [
  cell('glibc-2.36', 'glibc 2.36', 'python', '3.13.1', 'a', 'fail'),
  cell('glibc-2.36', 'glibc 2.36', 'python', '3.11.7', 'a', 'pass'),
  cell('glibc-2.36', 'glibc 2.36', 'python', '3.14.0t', 'a', 'fail'),
  cell('glibc-2.41', 'glibc 2.41', 'python', '3.11.7', 'a', 'pass'),
  cell('glibc-2.41', 'glibc 2.41', 'python', '3.13.1', 'a', 'pass'),
  cell('musl-1.2.5', 'musl 1.2.5', 'python', '3.11.2', 'a', 'pass'),
  cell('glibc-2.36', 'glibc 2.36', 'ruby', '3.1.2', 'r', 'pass'),
  cell('glibc-2.36', 'glibc 2.36', 'libc', 'gcc 12.2.0', 'c', 'pass'),
  cell('glibc-2.36', 'glibc 2.36', 'libuv', '1.44.2 (gcc 12.2.0)', 'u', 'pass'),
];
const m = buildMatrix(cells);

t.test('one column per runtime version in an environment, grouped by runtime, then version, then libc', async (t) => {
  t.same(m.columns.map((c) => c.id), [
    'glibc-2.36 · gcc 12.2.0',
    'musl-1.2.5 · python 3.11.2',
    'glibc-2.36 · python 3.11.7',
    'glibc-2.41 · python 3.11.7',
    'glibc-2.36 · python 3.13.1',
    'glibc-2.41 · python 3.13.1',
    'glibc-2.36 · python 3.14.0t',
    'glibc-2.36 · ruby 3.1.2',
    'glibc-2.36 · libuv 1.44.2 (gcc 12.2.0)',
  ]);
  t.equal(Object.keys(m.cells['python/fam/a']).length, 6, 'no two versions merged into one cell');
});

t.test('runtime-version names', async (t) => {
  t.same(parseRuntimeVersion('python-3.11.7'), { runtime: 'python', version: '3.11.7' });
  t.same(parseRuntimeVersion('node-20'), { runtime: 'node', version: '20' });
  t.equal(parseRuntimeVersion('musl-1.2.5'), null, 'not a runtime: a column id prefix');
  t.equal(parseRuntimeVersion('glibc-2.36 · python 3.11.7'), null);
  t.ok(versionMatches('3.11.7', '3.11'));
  t.notOk(versionMatches('3.11.7', '3.1'));
  t.notOk(versionMatches('3.14.0t', '3.14.0'), 'free-threaded is its own version');
  t.ok(versionMatches('3.14.0t', '3.14t'));
  t.ok(versionMatches('1.44.2 (gcc 12.2.0)', '1.44.2'));
});

t.test('--from python-3.11.7 --to python-3.13.1 pairs the versions per environment', async (t) => {
  const pairs = pairColumns(m, m, 'python-3.11.7', 'python-3.13.1');
  t.same(pairs, [['glibc-2.36 · python 3.11.7', 'glibc-2.36 · python 3.13.1'], ['glibc-2.41 · python 3.11.7', 'glibc-2.41 · python 3.13.1']]);
  const rows = diffMatrices(m, m, pairs as [string, string][]);
  t.same(rows.map((r) => [r.case, r.column, r.change]), [['python/fam/a', 'glibc-2.36 · python 3.13.1', 'broke']]);
  t.same(pairColumns(m, m, 'python-3.11.2', 'python-3.14t'), [['musl-1.2.5 · python 3.11.2', 'glibc-2.36 · python 3.14.0t']], 'no shared environment: the one column of each');
  t.same(pairColumns(m, m, 'glibc-2.36 · python 3.11', 'glibc-2.41 · python 3.11'), [['glibc-2.36 · python 3.11.7', 'glibc-2.41 · python 3.11.7']], 'column ids still work');
});

t.test('a name that matches no column, or two versions in one environment: one line naming the flag', async (t) => {
  const none = pairColumns(m, m, 'python-3.9', 'python-3.13.1');
  t.same(none, { error: '--from python-3.9: no column has python 3.9; python versions here: 3.11.2, 3.11.7, 3.13.1, 3.14.0t' });
  t.match(pairColumns(m, m, 'python-3.11.7', 'node-20'), { error: '--to node-20: no column has node 20; no node columns here' });
  t.match(pairColumns(m, m, 'python-3', 'python-3.13.1'), { error: /^--from python-3: matches python 3\.11\.7 and 3\.13\.1 in glibc-2\.36; name the version exactly$/ }, 'not 3.14.0t: a free-threaded build is named with its t');
  t.match(pairColumns(m, m, 'musl-9', 'musl-9'), { error: /^--from musl-9: no such column; columns: / });
});

t.test('the CLI: exit 2 and one line when a runtime version matches no column', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fm-diff-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'a.tap');
  const text = writeStream({ tool: 'forkmatrix', run: 'test', budget: 'full', env: 'glibc-2.36', proof: 'glibc 2.36', runtime: 'python' } as never, cells.filter((c) => c.env === 'glibc-2.36' && c.runtime === 'python'));
  writeFileSync(file, text);
  const r = spawnSync(process.execPath, [path.join(REPO, 'bin/forkmatrix.mjs'), 'diff', file, file, '--from', 'python-3.11.7', '--to', 'python-3.12'], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
  t.equal(r.status, 2, r.stderr);
  t.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.match(r.stderr, /^forkmatrix: --to python-3\.12: no column has python 3\.12; python versions here: 3\.11\.7, 3\.13\.1, 3\.14\.0t$/m);
  const ok = spawnSync(process.execPath, [path.join(REPO, 'bin/forkmatrix.mjs'), 'diff', file, file, '--from', 'python-3.11.7', '--to', 'python-3.13.1'], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, /\| python\/fam\/a \| glibc-2\.36 · python 3\.13\.1 \| .* \| broke \|/);
});
