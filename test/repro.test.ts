// `forkmatrix repro`: for each runtime, the reproducer of a failing fixture case fails (exit 1, the "N of M" line,
// the same kind of failure the harness records for its cell) and that of a passing case passes (exit 0); bad input
// is one line and exit 2; a run's failing cells carry their repro command.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { main, REPO, UsageError } from '../src/cli.ts';
import { buildMatrix } from '../src/matrix.ts';
import { reproCommand } from '../src/repro/command.ts';
import { pyFunction } from '../src/repro/python.ts';
import { comment } from '../src/repro/common.ts';
import { libuvSources, sourceVersion } from '../runners/libuv/index.ts';
import { CACHE, HOST_ENV, runFixture } from './helpers.ts';
import { fakeCell, tmpDir } from './robust-helpers.ts';

const SUITES = 'test/fixtures/repro';
const LINE = /^(\d+) of (\d+) children failed \((\d+) hang, (\d+) crash, (\d+) wrong\)$/m;

/** Run `forkmatrix repro` in-process: its printed build and run lines, or the UsageError's message. */
async function repro(args: string[]): Promise<{ out: string; build: string[]; run: string; error?: string }> {
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  try {
    await main(['repro', '--suites', SUITES, ...args]);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    return { out, build: [], run: '', error: e.message };
  } finally {
    process.stdout.write = write;
  }
  const build = [...out.matchAll(/^build: (.*)$/gm)].map((m) => m[1]);
  const run = /^run: +(.*)$/m.exec(out)?.[1] ?? '';
  return { out, build, run };
}

/** Build and run a reproducer with `forks` forks: its exit status and counts. */
function buildAndRun(r: { build: string[]; run: string }, forks: number) {
  for (const b of r.build) {
    const cc = spawnSync('sh', ['-c', b], { encoding: 'utf8', timeout: 120_000 });
    if (cc.status !== 0) throw new Error(`${b}: ${cc.stderr}`);
  }
  const res = spawnSync('sh', ['-c', r.run.replace(/\)$/, ` ${forks})`)], { encoding: 'utf8', timeout: 240_000 });
  const m = LINE.exec(res.stdout);
  return { status: res.status, stdout: res.stdout + res.stderr, counts: m ? { failed: +m[1], forks: +m[2], hang: +m[3], crash: +m[4], wrong: +m[5] } : null };
}

const out = tmpDir('fm-repro-');
const kindOf = (c: { hang: number; crash: number; wrong: number } | null) => (!c ? null : c.hang ? 'hang' : c.crash ? 'crash' : c.wrong ? 'wrong' : null);

// [runtime, extra args, passing case, failing cases with the kind their cell records]
const RUNTIMES: [string, string[], string, [string, string][]][] = [
  ['libc', [], 'passes', [['hangs', 'hang'], ['crashes', 'crash'], ['wrong', 'wrong']]],
  ['python', [], 'passes', [['hangs', 'hang'], ['returns-false', 'wrong']]],
  ['ruby', [], 'passes', [['raises', 'wrong'], ['crashes', 'crash']]],
  ['node', [], 'passes', [['hangs', 'hang'], ['crashes', 'crash'], ['wrong', 'wrong']]],
];

for (const [rt, extra, passing, failing] of RUNTIMES) {
  t.test(`${rt}: the reproducer of a failing case fails as its cell does, that of a passing case passes`, async (t) => {
    const cells = await runFixture(SUITES, [rt], { budget: { kind: 'forks', forks: 2 } });
    for (const [id, kind] of failing) {
      const cell = cells.byId(id);
      t.match(cell, { verdict: 'fail', kind }, `the harness says ${id} is a ${kind}`);
      const r = await repro([`${rt}/repro/${id}`, '--env', HOST_ENV, '--out', path.join(out, rt), ...extra]);
      t.notOk(r.error, r.error ?? "no usage error");
      const res = buildAndRun(r, 3);
      t.equal(res.status, 1, `${id}: exit 1 on a failure`, { stdout: res.stdout });
      t.ok(res.counts && res.counts.failed > 0 && res.counts.failed === res.counts.forks, `${id}: every child failed`, { stdout: res.stdout });
      t.equal(kindOf(res.counts), kind, `${id}: a ${kind}, as its cell`);
    }
    const r = await repro([`${rt}/repro/${passing}`, '--env', HOST_ENV, '--out', path.join(out, rt), ...extra]);
    const res = buildAndRun(r, 12);
    t.equal(res.status, 0, 'passes: exit 0', { stdout: res.stdout });
    t.match(res.counts, { failed: 0, forks: 12 }, 'no child of 12 failed', { stdout: res.stdout });
    t.match(res.stdout, /pressure: 2 loop thread\(s\), [1-9]\d* iterations/, 'the loop threads worked while it forked');
  });
}

t.test('libc: a case that cannot run here exits 2; a case library is built from the same file', async (t) => {
  const skip = await repro(['libc/repro/skips', '--env', HOST_ENV, '--out', path.join(out, 'c2')]);
  const res = buildAndRun(skip, 3);
  t.equal(res.status, 2, res.stdout);
  t.match(res.stdout, /cannot run here: feature X is missing/);
  const lib = await repro(['libc/repro/library', '--env', HOST_ENV, '--out', path.join(out, 'c2')]);
  t.equal(lib.build.length, 2, 'the library, then the program');
  t.match(lib.build[0], /-shared -fPIC .*-DFM_LIBRARY_FXLIB library\.c -o libfxlib\.so/);
  t.equal(buildAndRun(lib, 5).status, 0, 'the child dlopens the library built beside the program');
  const src = readFileSync(path.join(out, 'c2', 'skips.c'), 'utf8');
  t.match(src, /^\/\*\n \* forkmatrix reproducer: libc\/repro\/skips/, 'the header comes first');
  t.match(src, /Build and run:\n \*   \S*cc .*skips\.c -o skips/, 'the header holds the build line');
});

t.test('node: a case that requires the addon gets its C file and a build line; the raw fork works', async (t) => {
  const r = await repro(['node/repro/raw-fork', '--env', HOST_ENV, '--out', path.join(out, 'node2')]);
  t.notOk(r.error, r.error ?? "no usage error");
  t.match(r.build[0], /^\(cd .* && cc -shared -fPIC .*-I \S+ raw-fork-addon\.c -o raw-fork-addon\.node\)$/);
  if (/NODE_PREFIX/.test(r.build[0])) {
    t.comment('no Node headers (include/node/node_api.h) here: the addon is not built');
    return;
  }
  const res = buildAndRun(r, 10);
  t.equal(res.status, 0, res.stdout);
  t.match(res.counts, { failed: 0, forks: 10 });
});

const noLibuv = libuvSources(CACHE).length ? false : `libuv is not provisioned in the test cache ${CACHE} (FORKMATRIX_CACHE=${CACHE} npx forkmatrix provision libuv)`;
t.test('libuv: the reproducer links the libuv the cell ran with', { skip: noLibuv }, async (t) => {
  for (const [id, status] of [['wrong', 1], ['passes', 0]] as const) {
    const r = await repro([`libuv/repro/${id}`, '--env', HOST_ENV, '--out', path.join(out, 'uv'), '--runtime-version', sourceVersion(libuvSources(CACHE)[0])]);
    t.notOk(r.error, r.error ?? "no usage error");
    t.match(r.build.at(-1), /libuv\.a/, 'linked with the libuv forkmatrix built');
    const res = buildAndRun(r, 5);
    t.equal(res.status, status, res.stdout);
    t.match(res.counts, { failed: status ? 5 : 0, forks: 5 }, res.stdout);
  }
});

t.test('the header: expectation, citations and the measured record with its backtrace', async (t) => {
  const results = tmpDir('fm-repro-res-');
  const cell = fakeCell({
    case: 'libc/repro/hangs', env: HOST_ENV, verdict: 'fail', kind: 'hang', failures: 3, forks: 300, rate: 0.01, interval: [0.0034, 0.029],
    counts: { ok: 297, hang: 3, crash: 0, wrong: 0 }, seed: 4242,
    first_failure: { kind: 'hang', iteration: 17, message: 'blocked: no thread runnable', diag: { gdb: 'noise\nThread 1 (LWP 22):\n#0  __lll_lock_wait () from libc.so.6\n#1  popen () from libc.so.6\n[Inferior 1 detached]' } },
  });
  const m = buildMatrix([cell]);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(path.join(results, 'matrix.json'), JSON.stringify(m));
  const r = await repro(['libc/repro/hangs', '--env', HOST_ENV, '--out', path.join(out, 'hdr'), '--results', results]);
  t.match(r.out, /measured: 3 of 300 children failed/);
  const src = readFileSync(path.join(out, 'hdr', 'hangs.c'), 'utf8');
  const head = src.slice(0, src.indexOf('*/'));
  t.match(head, /Expected: a child that never finishes\./);
  t.match(head, /Promise level: guaranteed/);
  t.match(head, /fail \(hang\): 3 of 300 children failed \(3 hang, 0 crash, 0 wrong\), rate 1\.0%, 95% interval 0\.34%-2\.9%/);
  t.match(head, /#0  __lll_lock_wait \(\) from libc\.so\.6\n \*     #1  popen/, 'the backtrace, without gdb\'s chatter');
  t.notMatch(head, /Inferior|noise/);
  t.match(src, /#define FM_SEED 4242ULL/, 'the recorded seed');
  t.equal((m.cells['libc/repro/hangs'] as Record<string, { repro?: string }>)[Object.keys(m.cells['libc/repro/hangs'])[0]].repro, `npx forkmatrix repro libc/repro/hangs --env ${HOST_ENV}`, 'matrix.json: a failing cell carries its repro command');
});

t.test('bad input: one line naming the fix, exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['libc/repro/no-such-case', '--env', HOST_ENV], /no case matches 'libc\/repro\/no-such-case'.*forkmatrix list/],
    [['libc/repro/*', '--env', HOST_ENV], /matches \d+ cases .*give one/],
    [['libc/repro/passes', '--env', 'glibc-0.1'], /--env glibc-0\.1: not available here; available: .*forkmatrix list/],
    [['libc/repro/passes'], /--env ENV is required/],
    [['--env', HOST_ENV], /give exactly one CASE/],
    [['python/repro/passes', '--env', HOST_ENV, '--runtime-version', '0.0'], /--runtime-version 0\.0: no such python/],
    [['libc/repro/passes', '--env', HOST_ENV, '--results', '/no/such/results'], /--results \/no\/such\/results: no such file/],
  ];
  for (const [args, re] of cases) {
    const r = await repro(args);
    t.match(r.error, re, args.join(' '));
    t.notMatch(r.error ?? '', /\n/, 'one line');
  }
  // a runtime the environment lacks: a libuv case where libuv is not provisioned says how to provision it
  if (!libuvSources(CACHE).length) {
    const r = await repro(['libuv/repro/passes', '--env', HOST_ENV]);
    t.match(r.error, /needs libuv, which is not provisioned: npx forkmatrix provision libuv/);
  }
  const cli = spawnSync(process.execPath, [path.join(REPO, 'bin/forkmatrix.mjs'), 'repro', 'nope', '--suites', SUITES, '--env', HOST_ENV], { encoding: 'utf8', env: { ...process.env } });
  t.equal(cli.status, 2, cli.stderr);
  t.match(cli.stderr, /^forkmatrix: repro: no case matches 'nope'/);
  t.equal(cli.stderr.trim().split('\n').length, 1, 'one line');
});

t.test('pure parts: the repro command, indentation-safe Python snippets, C comments', async (t) => {
  t.equal(reproCommand({ case: 'libc/popen/x', env: 'musl-1.2.5', runtime: 'libc', runtime_version: 'gcc 12.2.0' }), 'npx forkmatrix repro libc/popen/x --env musl-1.2.5');
  t.equal(reproCommand({ case: 'libuv/fork/y', env: 'glibc-2.36', runtime: 'libuv', runtime_version: '1.50.0 (gcc 12.2.0)' }), 'npx forkmatrix repro libuv/fork/y --env glibc-2.36 --runtime-version 1.50.0');
  t.equal(reproCommand({ case: 'python/import/z', env: 'glibc-2.36', runtime: 'python', runtime_version: '3.11.7' }), 'npx forkmatrix repro python/import/z --env glibc-2.36 --runtime-version 3.11.7');
  t.equal(pyFunction('_f', 'x = 1\nif x:\n    return False\n'), 'def _f():\n    x = 1\n    if x:\n        return False\n');
  t.equal(pyFunction('_f', ''), 'def _f():\n    pass\n');
  t.match(pyFunction('_f', 's = """a\nb"""\n'), /^_f = _fm_function\("_f", /, 'a multi-line string is not indented: compiled from a string');
  t.equal(comment(['a */ b'], 'c'), '/*\n * a * / b\n */\n');
});
