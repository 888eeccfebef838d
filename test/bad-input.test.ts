// Every command refuses bad input with one line and exit 2: never an internal error (exit 3), never a stack trace.
// A table of bad inputs (missing path, a directory where a file is expected and the reverse, empty files, binary
// garbage, truncated JSON/TAP/YAML, another tool's TAP stream, a baseline of a newer format, ...) over every command.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { main, REPO, UsageError } from '../src/cli.ts';
import { writeStream } from '../src/tap.ts';
import { HOST_ENV } from './helpers.ts';
import { fakeCell, tmpDir } from './robust-helpers.ts';

const BIN = path.join(REPO, 'bin/forkmatrix.mjs');
const d = tmpDir('fm-bad-');
const cache = tmpDir('fm-bad-cache-'); // empty: no provisioned environment to probe, and ~/.cache is never written
const f = (name: string, text: string | Buffer) => {
  const p = path.join(d, name);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, text);
  return p;
};
const dir = (name: string) => {
  const p = path.join(d, name);
  mkdirSync(p, { recursive: true });
  return p;
};

// inputs
const missing = path.join(d, 'no-such-thing');
const emptyDir = dir('empty-dir');
const empty = f('empty', '');
const garbage = f('garbage.bin', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256)));
const text = f('text.txt', 'root:x:0:0:root:/root:/bin/bash\nhello, world\n');
const good = writeStream({ tool: 'forkmatrix', run: 'r', env: HOST_ENV, proof: 'proved', runtime: 'libc gcc', budget: '30', environment: {} }, [fakeCell({ case: 'libc/a/one' }), fakeCell({ case: 'libc/a/two', verdict: 'fail', kind: 'hang', failures: 1, counts: { ok: 29, hang: 1, crash: 0, wrong: 0 } })]);
const goodTap = f('good/good.tap', good);
const otherTap = f('other.tap', 'TAP version 14\n1..3\nok 1 - parses\nnot ok 2 - renders\n  ---\n  found: 1\n  wanted: 2\n  ...\nok 3 - # SKIP later\n');
const cutYaml = f('cut-yaml.tap', good.slice(0, good.indexOf('verdict:') + 4));
const noPlan = f('no-plan.tap', good.replace(/^1\.\.2\n/m, ''));
const shortPlan = f('short.tap', good.slice(0, good.lastIndexOf('not ok 2')));
const bailout = f('bailout.tap', good.replace(/^not ok 2[\s\S]*$/m, 'Bail out! the machine rebooted\n'));
const newerVerdict = f('newer.tap', good.replace(/verdict: pass/g, 'verdict: maybe'));
const emptyTapDir = dir('dir-of-garbage');
f('dir-of-garbage/x.tap', 'just some words\n');
const baselineNewer = f('baseline-newer.json', JSON.stringify({ forkmatrix_baseline: 2, recorded: 'x', environments: [], cells: {} }));
const baselineCut = f('baseline-cut.json', '{"forkmatrix_baseline": 1, "cells": {"libc/a/one": {"verdict": "pa');
const baselineArray = f('baseline-array.json', '[1, 2, 3]');
const baselineBadCell = f('baseline-bad-cell.json', JSON.stringify({ forkmatrix_baseline: 1, recorded: 'x', environments: [], cells: { 'libc/a/one': null } }));
const baselineNoCells = f('baseline-no-cells.json', JSON.stringify({ forkmatrix_baseline: 1 }));
const expCut = f('exp-cut.yaml', '- case: libc/verdicts/passes\n  libc: glibc\n  verdict: [hang\n');
const expMap = f('exp-map.yaml', 'case: libc/verdicts/passes\nlibc: glibc\n');
const expNoCite = f('exp-nocite.yaml', '- case: libc/verdicts/passes\n  libc: glibc\n  verdict: hang\n');
const expBadLibc = f('exp-badlibc.yaml', '- { case: libc/verdicts/passes, libc: uclibc, verdict: hang, cite: "bug 1" }\n');
const expNull = f('exp-null.yaml', '-\n- 3\n');
const suitesGarbage = dir('suites-garbage/libc');
writeFileSync(path.join(suitesGarbage, 'x.yaml'), Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x3a, 0x0a, 0x09, 0x5b]));
const suitesCut = dir('suites-cut/libc');
writeFileSync(path.join(suitesCut, 'x.yaml'), 'runtime: libc\nfamily: x\ncases:\n  - id: a\n    title: "unterminated\n');
const suitesEmpty = dir('suites-emptyfile/libc');
writeFileSync(path.join(suitesEmpty, 'x.yaml'), '');
const outFile = f('out-is-a-file', 'x');

const S = ['--suites', 'test/fixtures/verdicts', '--suite', 'libc', '--case', 'passes', '--env', HOST_ENV, '--budget', '1', '--cache', cache];
const G = ['--suites', 'test/fixtures/verdicts', '--suite', 'libc', '--case', 'passes', '--env', HOST_ENV, '--budget', '1', '--cache', cache];

// [what, args, the line must match, exit code (2 unless said)]
type Row = [string, string[], RegExp, number?];
const table: Row[] = [
  // gate: baselines
  ['gate: baseline missing', ['gate', '--env', HOST_ENV, '--baseline', missing], /--baseline .*no-such-thing: no such file; record one with --update-baseline/],
  ['gate: baseline is a directory', ['gate', '--env', HOST_ENV, '--baseline', emptyDir], /--baseline .*empty-dir: a directory, not a baseline file/],
  ['gate: baseline empty', ['gate', '--env', HOST_ENV, '--baseline', empty], /--baseline .*empty: empty, not a forkmatrix baseline/],
  ['gate: baseline binary', ['gate', '--env', HOST_ENV, '--baseline', garbage], /--baseline .*garbage\.bin: (binary data|.*not JSON)/],
  ['gate: baseline /etc/passwd-like text', ['gate', '--env', HOST_ENV, '--baseline', text], /--baseline .*text\.txt:1:1: not a forkmatrix baseline \(not JSON/],
  ['gate: baseline truncated JSON', ['gate', '--env', HOST_ENV, '--baseline', baselineCut], /--baseline .*baseline-cut\.json:1:\d+: not a forkmatrix baseline \(not JSON/],
  ['gate: baseline of a newer format', ['gate', '--env', HOST_ENV, '--baseline', baselineNewer], /written by a newer forkmatrix \(baseline format 2; this one reads 1\)/],
  ['gate: baseline is a JSON array', ['gate', '--env', HOST_ENV, '--baseline', baselineArray], /not a forkmatrix baseline \(no "forkmatrix_baseline" key\)/],
  ['gate: baseline with a broken cell', ['gate', '--env', HOST_ENV, '--baseline', baselineBadCell], /cells\["libc\/a\/one"\]: not an object/],
  ['gate: baseline without cells', ['gate', '--env', HOST_ENV, '--baseline', baselineNoCells], /"cells" must be an object/],
  ['gate: --update-baseline into a directory', ['gate', ...G, '--baseline', emptyDir, '--update-baseline'], /--baseline .*empty-dir: a directory, not a file/],
  ['gate: no candidate', ['gate', '--baseline', goodTap], /gate needs a candidate: --libc PATH, --preload LIB\.so or --env LIST/],
  ['gate: --libc missing', ['gate', ...G, '--env', HOST_ENV, '--libc', missing], /--libc .*no-such-thing: no such directory/],
  // gate: expectations
  ['gate: expectations missing', ['gate', ...G, '--expectations', missing], /--expectations .*no-such-thing: no such file/],
  ['gate: expectations is a directory', ['gate', ...G, '--expectations', emptyDir], /--expectations .*empty-dir: a directory, not a YAML file/],
  ['gate: expectations empty', ['gate', ...G, '--expectations', empty], /empty:1:1: expected a YAML list of \{ case, libc/],
  ['gate: expectations binary', ['gate', ...G, '--expectations', garbage], /garbage\.bin:\d+:\d+: (binary data|YAML)/],
  ['gate: expectations truncated YAML', ['gate', ...G, '--expectations', expCut], /exp-cut\.yaml:\d+:\d+: YAML: /],
  ['gate: expectations a mapping, not a list', ['gate', ...G, '--expectations', expMap], /exp-map\.yaml:1:1: expected a YAML list/],
  ['gate: expectations entry without cite', ['gate', ...G, '--expectations', expNoCite], /exp-nocite\.yaml:1:3: \[0\]: missing cite/],
  ['gate: expectations with an unknown libc', ['gate', ...G, '--expectations', expBadLibc], /exp-badlibc\.yaml:1:3: \[0\]\.libc: expected glibc or musl/],
  ['gate: expectations with empty entries', ['gate', ...G, '--expectations', expNull], /exp-null\.yaml:\d+:\d+: \[0\]: expected a YAML list/],
  // report
  ['report: missing path', ['report', missing], /report: .*no-such-thing: no such file or directory/],
  ['report: a directory without streams', ['report', emptyDir], /report: .*empty-dir: not a forkmatrix results directory \(no \.tap stream/],
  ['report: an empty file', ['report', empty, '--out', emptyDir], /report: .*empty: empty, not a TAP stream/],
  ['report: binary garbage', ['report', garbage, '--out', emptyDir], /report: .*garbage\.bin: binary data, not a TAP stream/],
  ['report: a text file (/etc/passwd)', ['report', text], /report: .*text\.txt: not a TAP stream/],
  ['report: another tool\'s TAP stream', ['report', otherTap, '--out', emptyDir], /report: .*other\.tap: none of its 3 test point\(s\) carries forkmatrix diagnostics/],
  ['report: TAP cut inside a YAML block', ['report', cutYaml, '--out', emptyDir], /report: .*cut-yaml\.tap: none of its 1 test point/],
  ['report: TAP without its plan', ['report', noPlan, '--out', emptyDir], /report: .*no-plan\.tap:\d+: truncated: no plan/],
  ['report: TAP with fewer test points than planned', ['report', shortPlan, '--out', emptyDir], /report: .*short\.tap:\d+: truncated: the plan says 1\.\.2 but 1 test point/],
  ['report: a stream that bailed out', ['report', bailout, '--out', emptyDir], /report: .*bailout\.tap: the stream bailed out \("the machine rebooted"\)/],
  ['report: a stream of a newer forkmatrix (unknown verdict)', ['report', newerVerdict, '--out', emptyDir], /report: .*newer\.tap:\d+: test point 1 \(libc\/a\/one\): diagnostics verdict: 'maybe' is not one of .*: a damaged stream, or one of a newer forkmatrix/],
  ['report: a directory whose .tap is garbage', ['report', emptyTapDir], /report: .*x\.tap: not a TAP stream/],
  ['report: --out is a file', ['report', goodTap, '--out', outFile], /--out .*out-is-a-file: a file, not a directory/],
  ['report: nothing given', ['report'], /report needs at least one results directory or \.tap file/],
  // diff
  ['diff: one path', ['diff', goodTap], /diff needs two result sets/],
  ['diff: missing path', ['diff', goodTap, missing], /diff: .*no-such-thing: no such file or directory/],
  ['diff: a directory without streams', ['diff', emptyDir, goodTap], /diff: .*empty-dir: not a forkmatrix results directory/],
  ['diff: a text file', ['diff', goodTap, text], /diff: .*text\.txt: not a TAP stream/],
  ['diff: binary garbage', ['diff', garbage, goodTap], /diff: .*garbage\.bin: binary data/],
  ['diff: --from without --to', ['diff', goodTap, goodTap, '--from', 'x'], /--from and --to go together/],
  ['diff: no such column', ['diff', goodTap, goodTap, '--from', 'musl-9', '--to', 'musl-9'], /--from musl-9: no such column; columns: /],
  // run: environments, runtimes, directories, case files
  ['run: --libc a file', ['run', ...S, '--libc', text], /--libc .*text\.txt: expected a glibc build tree or install directory, not a file/],
  ['run: --libc an empty directory', ['run', ...S, '--libc', emptyDir], /--libc .*empty-dir: not a glibc build tree/],
  ['run: --libc missing', ['run', ...S, '--libc', missing], /--libc .*no-such-thing: no such directory/],
  ['run: --preload binary garbage', ['run', ...S, '--preload', garbage], /--preload .*garbage\.bin: not a loadable shared object/],
  ['run: --preload missing', ['run', ...S, '--preload', missing], /--preload .*no-such-thing: no such file/],
  ['run: --preload a directory', ['run', ...S, '--preload', emptyDir], /--preload .*empty-dir: not a file/],
  ['run: --preload a program', ['run', ...S, '--preload', '/bin/true'], /--preload \/bin\/true: (a program|an ELF file, but not a shared object)/],
  ['run: --runtime not executable', ['run', ...S, '--runtime', `python=${text}`], /--runtime python=.*text\.txt: not executable/],
  ['run: --runtime a directory', ['run', ...S, '--runtime', `python=${emptyDir}`], /--runtime python=.*empty-dir: a directory, not a program/],
  ['run: --runtime missing', ['run', ...S, '--runtime', `ruby=${missing}`], /--runtime ruby=.*no-such-thing: no such file/],
  ['run: --runtime without a path', ['run', ...S, '--runtime', 'python'], /--runtime python: expected NAME=PATH/],
  ['run: --out is a file', ['run', ...S, '--out', outFile], /--out .*out-is-a-file: a file, not a directory/],
  ['run: --cache is a file', ['run', ...S.slice(0, -2), '--cache', outFile], /--cache .*out-is-a-file: a file, not a directory/],
  ['run: --suites is a file', ['run', ...S.slice(2), '--suites', text], /text\.txt: a file, not a directory of case files/],
  ['run: --suites has no case files', ['run', '--suites', emptyDir], /empty-dir: no case files in it/],
  ['run: --suites missing', ['run', '--suites', missing], /no-such-thing: no such directory/],
  ['run: a binary case file', ['run', '--suites', path.dirname(suitesGarbage), '--cache', cache], /suites-garbage\/libc\/x\.yaml:\d+:\d+: /],
  ['run: a truncated case file', ['run', '--suites', path.dirname(suitesCut), '--cache', cache], /suites-cut\/libc\/x\.yaml:\d+:\d+: /],
  ['run: an empty case file', ['run', '--suites', path.dirname(suitesEmpty), '--cache', cache], /suites-emptyfile\/libc\/x\.yaml:\d+:\d+: /],
  ['run: --budget nonsense', ['run', ...S.slice(0, -4), '--budget', 'lots'], /--budget lots: expected quick, full or a number of forks/],
  ['run: --jobs 0', ['run', ...S, '--jobs', '0'], /--jobs 0: expected a whole number >= 1/],
  ['run: --shard 3/2', ['run', ...S, '--shard', '3/2'], /--shard 3\/2: expected I\/N/],
  // validate, list, provision, unknown command
  ['validate: a file', ['validate', text], /text\.txt: a file, not a directory of case files/],
  ['validate: an empty directory', ['validate', emptyDir], /empty-dir: no case files in it/],
  ['validate: a binary case file', ['validate', path.dirname(suitesGarbage)], /suites-garbage\/libc\/x\.yaml:\d+:\d+: /, 1],
  ['list: --runtime missing', ['list', '--runtime', `node=${missing}`, '--cache', cache], /--runtime node=.*no-such-thing: no such file/],
  ['list: --cache is a file', ['list', '--cache', outFile], /--cache .*out-is-a-file: a file, not a directory/],
  ['provision: unknown name', ['provision', 'frobnicator', '--cache', cache], /provision: unknown frobnicator; use /],
  ['provision: nothing named', ['provision', '--cache', cache], /provision needs what to provision/],
  ['provision: --cache is a file', ['provision', 'allocators', '--cache', outFile], /--cache .*out-is-a-file: a file, not a directory/],
  ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
];

type Outcome = { code: number | null; stdout: string; stderr: string };

/** The command in this process, exactly as bin/forkmatrix.mjs runs it (a node start costs seconds on a loaded machine). */
async function fmHere(args: string[]): Promise<Outcome> {
  let stderr = '';
  const write = process.stderr.write;
  process.stderr.write = ((s: string | Uint8Array) => ((stderr += String(s)), true)) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(args);
  } catch (e) {
    if (e instanceof UsageError) {
      stderr += `forkmatrix: ${e.message}\n`;
      code = 2;
    } else {
      stderr += `forkmatrix: internal error: ${(e as Error)?.stack ?? e}\n`;
      code = 3;
    }
  } finally {
    process.stderr.write = write;
  }
  return { code, stdout: '', stderr };
}

/** The real command line, for a few rows: bin/forkmatrix.mjs's own formatting of the error. */
function fm(args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env: { ...process.env, FORKMATRIX_CACHE: cache, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b) => (stdout += b));
    p.stderr.on('data', (b) => (stderr += b));
    const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function check(t: Test, [what, , re, code = 2]: Row, r: Outcome) {
  const lines = r.stderr.trimEnd().split('\n');
  const caseFile = /a (binary|truncated|empty) case file/.test(what);
  t.equal(r.code, code, `${what}: exit ${code}${r.code !== code ? `\n${r.stderr}` : ''}`);
  t.match(r.stderr, re, `${what}: says what and where`);
  t.notMatch(r.stderr, /internal error|\n\s+at |Error: /, `${what}: no stack trace`);
  if (caseFile) t.ok(lines.every((l) => /^(forkmatrix: )?\S+:\d+:\d+: |^\d+ problem\(s\)/.test(l)), `${what}: every line names file:line:col`);
  else if (code === 2) t.equal(lines.length, 1, `${what}: one line (${lines.length}: ${lines.slice(0, 3).join(' | ')})`);
}

t.test(`${table.length} bad inputs over every command: exit 2 (validate: 1), one line, no stack trace`, async (t) => {
  t.ok(table.length >= 40, `at least 40 inputs (${table.length})`);
  const commands = new Set(table.map(([, a]) => a[0]));
  for (const c of ['run', 'list', 'validate', 'report', 'provision', 'gate', 'diff']) t.ok(commands.has(c), `the table covers ${c}`);
  process.env.FORKMATRIX_CACHE = cache;
  for (const row of table) check(t, row, await fmHere(row[1]));
});

t.test('the real command line formats them the same: one line, exit 2', async (t) => {
  const rows = [4, 26, table.length - 1].map((i) => table[i]);
  const out = await Promise.all(rows.map((r) => fm(r[1])));
  rows.forEach((row, i) => check(t, row, out[i]));
});
