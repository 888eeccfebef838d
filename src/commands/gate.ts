// forkmatrix gate: the libc CI gate. Runs the cases under a candidate, compares with a baseline, confirms a failure
// by re-running it, prints TAP 14 and exits 1 on a regression.

import { existsSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { selectCases } from '../cases.ts';
import { parseBudget } from '../budget.ts';
import { run } from '../run.ts';
import { cellLabel } from '../matrix.ts';
import { preloadName } from '../../adapters/preload.ts';
import { bisectHint, confirmGate, gitSources } from '../gate-confirm.ts';
import { baselineFrom, compare, failsGate, readBaseline, readExpectations, withExpectations, writeBaseline, type GateCell } from '../gate.ts';
import { directive } from '../tap.ts';
import { REPO, UsageError, adapterOptions, list, loadValidSuite, parse, printHelp, usableDir } from './shared.ts';
import { allEnvironments, muslReleases } from './environments.ts';
import { atOut } from './machine-errors.ts';

export const usage = `Usage: forkmatrix gate (--libc PATH | --preload LIB.so | --env LIST) [--baseline FILE] [options]

Runs the cases under the candidate (a musl prefix or glibc build/install dir, an interposer, or named
environments), prints TAP 14 on stdout (one test point per cell, 'not ok' exactly for the cells that fail the
gate), writes the matrix to --out, and exits 1 when a cell regressed, 0 otherwise (2: usage error).

  --baseline FILE       the baseline to compare with (JSON written by --update-baseline)
  --update-baseline     write this run's cells as the new baseline to --baseline FILE
  --expectations FILE   known failures: a YAML list of { case, libc, versions?, verdict, cite }
  --suite, --case, --budget, --jobs, --seed, --fail-fast, --out, --runtime, --suites   as for run

--libc also takes a musl source tree or git:PATH@REV (built into the cache, keyed by commit; column
musl-<version>+git.<short>); --libc-git PATH with --env musl-X.Y.Z builds a release's tag.

A cell regresses when the baseline says pass and now any failure was seen (one hang is proof). A failure is
confirmed before it fails the gate: re-run with the same seed, then with a fresh budget; one that neither re-run
reproduces is reported as flaky and does not fail. For a regression of a libc built from git the gate prints the
'forkmatrix bisect' command that finds the commit. A cell with no baseline that fails is a regression too
unless it is expected. Expected failures (a case's known:, or
--expectations) never fail the gate; an expected failure that now passes is reported as fixed.`;

export async function main(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, {
    suite: { type: 'string' }, case: { type: 'string' }, env: { type: 'string' }, budget: { type: 'string' }, jobs: { type: 'string' },
    seed: { type: 'string' }, 'fail-fast': { type: 'boolean' }, out: { type: 'string' }, baseline: { type: 'string' },
    'update-baseline': { type: 'boolean' }, expectations: { type: 'string' },
  }, 'gate');
  if (v.help) return printHelp(usage);
  if (!v.libc?.length && !v.preload?.length && !v.env) throw new UsageError(`gate needs a candidate: --libc PATH, --preload LIB.so or --env LIST (see 'forkmatrix gate --help')`);
  if (v['update-baseline'] && !v.baseline) throw new UsageError('--update-baseline needs --baseline FILE (where to write it)');
  let baseline = null;
  if (v.baseline && !v['update-baseline']) {
    try {
      baseline = readBaseline(v.baseline);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  if (v.baseline && v['update-baseline']) {
    // find out now, not after the whole run, that the baseline cannot be written there
    const where = path.resolve(v.baseline);
    if (existsSync(where) && !statSync(where).isFile()) throw new UsageError(`--baseline ${v.baseline}: a directory, not a file: give the baseline file to write`);
    usableDir(path.dirname(where), `--baseline ${v.baseline}: its folder`);
  }
  const budget = parseBudget(v.budget ?? 'quick');
  if (!budget) throw new UsageError(`--budget ${v.budget}: expected quick, full or a number of forks`);
  const suite = await loadValidSuite(v.suites);
  let cases = selectCases(suite.cases, list(v.suite), list(v.case));
  if (!cases.length) throw new UsageError(`no case matches --suite ${v.suite ?? '(all)'} --case ${v.case ?? '(all)'}`);
  if (v.expectations) {
    try {
      cases = withExpectations(cases, readExpectations(v.expectations));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const aopts = adapterOptions(v);
  let all = await allEnvironments(aopts);
  let wanted = list(v.env);
  ({ envs: all, wanted } = await muslReleases(wanted, all, v['libc-git'], aopts));
  // The candidate environments: those made from --libc / --preload, or named with --env.
  const tags = [...(v.preload ?? []).map((p) => '+' + preloadName(p)), ...(v.libc?.length ? ['+local'] : [])];
  // --preload on its own means: on this machine's libc (not on every provisioned glibc)
  const hostId = all.find((e) => e.adapter === 'host')?.id;
  const envs = all.filter((e) =>
    wanted ? wanted.includes(e.id) : (v.libc?.length && /\+(git|src|deb)\.[\w.+-]+$/.test(e.id)) || (tags.some((t) => e.id.endsWith(t)) && (v.libc?.length || e.id === `${hostId}${tags.find((t) => e.id.endsWith(t))}`)));
  if (!envs.length) throw new UsageError(`gate: no environment could be made from ${[...(v.libc ?? []), ...(v.preload ?? []), ...(wanted ?? [])].join(', ')}; available: ${all.map((e) => e.id).join(', ')}`);
  if (wanted) {
    const unknown = wanted.filter((w) => !all.some((e) => e.id === w));
    if (unknown.length) throw new UsageError(`--env ${unknown.join(',')}: not available here (see 'forkmatrix list')`);
  }
  const jobs = v.jobs ? Number(v.jobs) : os.cpus().length;
  const outRoot = usableDir(path.resolve(v.out ?? path.join(REPO, 'results')), '--out');
  process.stderr.write(`forkmatrix gate: ${cases.length} case(s) under ${envs.map((e) => e.id).join(', ')}, budget ${v.budget ?? 'quick'}${baseline ? `, baseline ${v.baseline}` : ', no baseline'}\n`);
  const outcome = await run({
    repoDir: REPO, cacheDir: aopts.cacheDir, outRoot, cases, environments: envs, budget, jobs,
    seed: v.seed != null ? Number(v.seed) : null, failFast: !!v['fail-fast'], replayExtra: v.suites ? ` --suites ${v.suites}` : '',
    onProblem: (l) => process.stderr.write(`forkmatrix: ${l}\n`),
    onCellDone: ({ done, total, cell, slice }) => process.stderr.write(`[${slice ? `slice ${slice}` : `${done}/${total}`}] ${cell.case} on ${cell.env}: ${cellLabel(cell)}\n`),
  }).catch(atOut(outRoot));
  if (v['update-baseline']) {
    writeBaseline(v.baseline!, baselineFrom(outcome.cells, await gitSources(v.libc ?? [])));
    process.stderr.write(`forkmatrix gate: wrote the baseline (${outcome.cells.length} cells) to ${v.baseline}\n`);
  }
  const compared = compare(outcome.cells, v['update-baseline'] ? null : baseline, cases);
  // a failure of the quick run is re-run (same seed, then a fresh budget) before it fails the gate
  const gated = v['update-baseline'] ? compared : await confirmGate(compared, { cases, envs, baseline, cacheDir: aopts.cacheDir, repoDir: REPO, log: (l) => process.stderr.write(`forkmatrix ${l}\n`) });
  const candidateSources = await gitSources(v.libc ?? []);
  process.stdout.write(gateTap(gated));
  const bad = gated.filter((g) => failsGate(g.status));
  for (const s of ['regressed', 'new-fail', 'error', 'flaky', 'fixed', 'improved'] as const) {
    const xs = gated.filter((g) => g.status === s);
    if (xs.length) process.stderr.write(`${s}:\n${xs.map((g) => `  ${g.cell.case} on ${g.cell.env}: ${g.note}${g.cell.first_failure ? `\n    first failure: ${g.cell.first_failure.message.split('\n')[0].slice(0, 160)}` : ''}${s === 'regressed' || s === 'new-fail' ? ((h) => (h ? `\n    bisect: ${h}` : ''))(bisectHint(g, candidateSources, baseline, v.preload ?? [])) : ''}`).join('\n')}\n`);
  }
  const conf = gated.filter((g) => g.confirmations);
  if (conf.length) process.stderr.write(`forkmatrix gate: ${conf.length} failing cell(s) re-run before the verdict, ${conf.reduce((a, g) => a + (g.confirmations ?? 0), 0)} re-run(s) in all; ${conf.filter((g) => g.status === 'flaky').length} not reproduced (flaky)\n`);
  process.stderr.write(`forkmatrix gate: ${bad.length ? `FAILED: ${bad.length} cell(s) regressed${bad.every((g) => g.confirmations) ? ' (each confirmed by a re-run)' : ''}` : 'passed: no cell regressed'}; matrix in ${path.relative(process.cwd(), outcome.dir)}\n`);
  return v['update-baseline'] ? 0 : bad.length ? 1 : 0;
}

/** The gate's TAP 14 stream: 'not ok' exactly for the cells that fail the gate. */
function gateTap(gated: GateCell[]): string {
  let out = `TAP version 14\n1..${gated.length}\n`;
  gated.forEach((g, i) => {
    const c = g.cell;
    const ok = !failsGate(g.status);
    const dir = g.status === 'skipped' ? directive(c) : g.status === 'expected' ? ' # TODO expected failure' : '';
    const diag = stringify({ gate: g.status, note: g.note, ...(g.confirmations ? { confirmations: g.confirmations } : {}), baseline: g.baseline, verdict: c.verdict, kind: c.kind, forks: c.forks, failures: c.failures, interval: c.interval, missable: c.missable, env: c.env, libc: c.libc, seed: c.seed, replay: c.replay, first_failure: c.first_failure }, { lineWidth: 0, blockQuote: 'literal' });
    out += `${ok ? 'ok' : 'not ok'} ${i + 1} - ${c.case} on ${c.env}: ${g.status}${dir}\n  ---\n${diag.trimEnd().split('\n').map((l) => '  ' + l).join('\n')}\n  ...\n`;
  });
  return out;
}
