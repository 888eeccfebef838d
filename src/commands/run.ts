// forkmatrix run: the cases on the environments, the matrix on stdout and in results/<run>/.

import os from 'node:os';
import path from 'node:path';
import { selectCases } from '../cases.ts';
import { parseBudget } from '../budget.ts';
import { run } from '../run.ts';
import { toTerminal, summaryLine, cellLabel, columnId, findingsText } from '../matrix.ts';
import { reproCommand } from '../repro/command.ts';
import { readPlan, shardSelection } from '../plan-cmd.ts';
import { RUNTIMES, type RuntimeName } from '../types.ts';
import { REPO, UsageError, adapterOptions, list, loadValidSuite, parse, printHelp, usableDir } from './shared.ts';
import { allEnvironments, muslReleases } from './environments.ts';
import { atOut } from './machine-errors.ts';

export const usage = `Usage: forkmatrix run [options]

  --suite LIST       runtimes or runtime/family to run, comma separated (default: all): libc,python
  --case GLOB        case ids or runtime/family/id keys, * wildcards, comma separated
  --env LIST         environments to use (default: every one available; see 'forkmatrix list')
  --budget B         quick (default, adaptive: 400 forks / 3 s per cell, stop at the first failure, the time saved
                     buys more slices for cells still passing), full (the case's budget) or a fork count
  --jobs N           cells run in parallel (default: the number of cores, ${os.cpus().length} here)
  --seed S           seed of the fork-delay schedule (default: a random seed per cell, always recorded; a quick
                     cell's later slices get S+1, S+2, ...)
  --fail-fast        stop each cell at its first failure
  --max-delay-us N   the parent waits a seeded random 0..N us before each fork (default 20; 0: none)
  --out DIR          results root (default: results/)
  --runtime R=PATH   add an interpreter, e.g. --runtime python=/usr/bin/python3.11 (repeatable)
  --libc-git PATH    a musl git checkout ($FORKMATRIX_MUSL_GIT): --env musl-1.2.0 builds that release's tag into the
                     cache (column musl-1.2.0+git.<short>); --libc git:PATH@REV or a musl source tree: one commit
  --shard I/N        run the I-th of N slices of the cells, balanced by their seconds in results/published (CI matrices)
  --plan FILE        with --shard I/N: run exactly shard I of a plan ('forkmatrix plan --out FILE'); its budget and --suites
  --suites DIR       case files to use instead of suites/ (same layout: DIR/<runtime>/<family>.yaml)
  --cache DIR        where compiled cases and provisioned environments live (default: $FORKMATRIX_CACHE or ~/.cache/forkmatrix)
  --no-color         plain output`;

export async function main(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, {
    suite: { type: 'string' }, case: { type: 'string' }, env: { type: 'string' }, budget: { type: 'string' },
    jobs: { type: 'string' }, seed: { type: 'string' }, 'fail-fast': { type: 'boolean' }, out: { type: 'string' }, 'max-delay-us': { type: 'string' },
    shard: { type: 'string' }, 'no-color': { type: 'boolean' }, 'env-check': { type: 'boolean' }, plan: { type: 'string' },
  }, 'run');
  if (v.help) return printHelp(usage);
  let shard = null;
  if (v.shard) {
    const m = /^(\d+)\/(\d+)$/.exec(v.shard);
    if (!m || +m[1] < 1 || +m[1] > +m[2]) throw new UsageError(`--shard ${v.shard}: expected I/N with 1 <= I <= N, e.g. --shard 1/4`);
    shard = { index: +m[1], count: +m[2] };
  }
  const planned = v.plan ? readPlan(v.plan, shard) : null; // the plan decides the cells, the budget and --suites
  if (planned && (v.suite || v.case || v.env)) throw new UsageError(`--plan ${v.plan} decides the cells: drop --suite, --case and --env`);
  if (planned && v.budget && v.budget !== planned.plan.budget) throw new UsageError(`--budget ${v.budget}: the plan ${v.plan} was made for --budget ${planned.plan.budget}; drop --budget or make the plan again`);
  v.suites ??= planned?.plan.suites ?? undefined;
  const budget = parseBudget(v.budget ?? planned?.plan.budget ?? 'quick');
  if (!budget) throw new UsageError(`--budget ${v.budget}: expected quick, full or a number of forks`);
  const jobs = v.jobs ? Number(v.jobs) : os.cpus().length;
  if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`--jobs ${v.jobs}: expected a whole number >= 1`);
  const seed = v.seed != null ? Number(v.seed) : null;
  if (seed != null && (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 31)) throw new UsageError(`--seed ${v.seed}: expected a whole number from 0 to 2147483647`);
  const maxDelayUs = v['max-delay-us'] != null ? Number(v['max-delay-us']) : undefined;
  if (maxDelayUs != null && !(Number.isInteger(maxDelayUs) && maxDelayUs >= 0 && maxDelayUs <= 1_000_000))
    throw new UsageError(`--max-delay-us ${v['max-delay-us']}: expected a whole number of microseconds from 0 to 1000000`);
  const suite = await loadValidSuite(v.suites);
  const suites = list(v.suite);
  for (const s of suites ?? []) {
    const [rt, fam] = s.split('/');
    if (!RUNTIMES.includes(rt as RuntimeName)) throw new UsageError(`--suite ${s}: unknown runtime '${rt}'; use ${RUNTIMES.join(', ')} (or runtime/family)`);
    if (fam && !suite.cases.some((c) => c.runtime === rt && c.family === fam)) throw new UsageError(`--suite ${s}: no family '${fam}' in suites/${rt}/`);
  }
  let cases = selectCases(suite.cases, suites, list(v.case));
  if (!cases.length) throw new UsageError(`no case matches --suite ${v.suite ?? '(all)'} --case ${v.case ?? '(all)'}: see 'forkmatrix list'`);
  const aopts = adapterOptions(v);
  let envs = await allEnvironments(aopts);
  let wanted = list(v.env);
  ({ envs, wanted } = await muslReleases(wanted, envs, v['libc-git'], aopts));
  if (wanted) {
    const unknown = wanted.filter((w) => !envs.some((e) => e.id === w));
    if (unknown.length) throw new UsageError(`--env ${unknown.join(',')}: not available here; available: ${envs.map((e) => e.id).join(', ')} (see 'forkmatrix list')`);
    envs = envs.filter((e) => wanted.includes(e.id));
  }
  let cellOrder: { index: number; count: number; cells: string[] } | null = null;
  if (shard) {
    const sel = await shardSelection({ cases, envs, shard, budget, planned, planFile: v.plan });
    ({ cases, envs } = sel);
    cellOrder = { ...shard, cells: sel.cells };
  }
  const outRoot = usableDir(path.resolve(v.out ?? path.join(REPO, 'results')), '--out');
  const tty = process.stderr.isTTY;
  const color = tty && !v['no-color'] && !process.env.NO_COLOR;
  const t0 = performance.now();
  const ac = new AbortController();
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0)}s`;
  process.stderr.write(`forkmatrix: ${cases.length} case(s) x ${envs.length} environment(s), budget ${v.budget ?? 'quick'}, ${jobs} job(s)\n`);
  const outcome = await run({
    repoDir: REPO, cacheDir: aopts.cacheDir, outRoot, cases, allCases: suite.cases, environments: envs,
    budget, jobs, seed, failFast: !!v['fail-fast'], shard: cellOrder, maxDelayUs, envCheck: !!v['env-check'], signal: ac.signal,
    replayExtra: `${v.suites ? ` --suites ${v.suites}` : ''}${maxDelayUs != null ? ` --max-delay-us ${maxDelayUs}` : ''}`,
    onProblem: (l) => process.stderr.write(`forkmatrix: ${l}\n`),
    onCellDone: ({ done, total, cell, slice }) => {
      const line = `[${slice ? `slice ${slice}` : `${done}/${total}`} ${elapsed()}] ${cell.case} on ${columnId(cell)}: ${cellLabel(cell)}${cell.verdict === 'skip' || cell.verdict === 'error' ? ` (${(cell.reason ?? '').split('\n')[0].slice(0, 120)})` : ''}`;
      if (tty) process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns || 120) - 1)}`);
      else process.stderr.write(line + '\n');
    },
  }).catch(atOut(outRoot));
  if (tty) process.stderr.write('\r\x1b[2K');
  process.stdout.write(toTerminal(outcome.matrix, color));
  const by = (k: string) => outcome.cells.filter((c) => c.verdict === k).length;
  process.stdout.write(`\n${outcome.matrix.summary.map(summaryLine).join('\n')}\n${findingsText(outcome.matrix)}`);
  process.stdout.write(
    `\n${outcome.cells.length} cells in ${elapsed()}: ${by('pass')} pass, ${by('fail')} fail, ${by('inconclusive')} inconclusive, ${by('skip')} skip, ${by('error')} error. Results: ${path.relative(process.cwd(), outcome.dir) || '.'}/{*.tap,matrix.json,matrix.md,index.html}\n`,
  );
  const failing = outcome.cells.filter((c) => c.verdict === 'fail');
  process.stdout.write(failing.slice(0, 30).map((c) => `repro: ${reproCommand(c)}${v.suites ? ` --suites ${v.suites}` : ''}\n`).join('') + (failing.length > 30 ? `repro: ${failing.length - 30} more failing cells: matrix.json has each one's 'repro' command\n` : ''));
  return 0;
}
