// `forkmatrix bisect`: the first commit of a musl checkout (--libc-git) or an interposer repository (--preload-git)
// where a case's behaviour changed, told apart statistically (src/bisect.ts decides, this module builds and runs).
// TAP 14 on stdout (one test point per step, with its evidence and replay line), a short report on stderr.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { behaviourOf, maxSteps, nextStep, outcomeOf, stepBudget, type Behaviour } from './bisect.ts';
import { commitEnvironment } from './bisect-build.ts';
import { loadSuite, formatProblems, selectCases } from './cases.ts';
import { runCell } from './cell.ts';
import { planCells } from './run.ts';
import { adapters, runners } from './registry.ts';
import { fmtRate } from './stats.ts';
import { commitLine, commitsBetween, isAncestor, resolveRev, tagOf } from './libc-src/tree.ts';
import { preloadName } from '../adapters/preload.ts';
import { hostEnvironment } from '../adapters/host.ts';
import { removeOnExit } from './util.ts';
import type { AdapterOptions, CellResult, Environment } from './types.ts';

export const BISECT_HELP = `Usage: forkmatrix bisect (--libc-git PATH | --preload-git PATH) --good REV --bad REV --case ID [options]

Finds the first commit where the case's behaviour changed. --good: a commit where the case passes; --bad: one where
it fails. When --bad is the older one (an ancestor of --good), the search is for the commit that FIXED it (said
so; --fixed asks for that mode explicitly). Each step builds the commit (cached: a musl tree into the cache with
-O2 -g, an interposer with its build.sh or make) and runs the case. The failing end is measured first; a step's
budget is then the forks that leave a commit failing at that end's 95% lower rate bound a <1% chance of showing
no failure, spread over >= 3 fresh harness processes. A commit that does not build is skipped.

  --libc-git PATH     a musl git checkout: each commit is built and the case runs on it
  --preload-git PATH  an interposer repository: each commit's .so is preloaded into --env (default: the host)
  --good REV, --bad REV   commits, tags or branches of that repository
  --case ID           one case (id or runtime/family/id key)
  --env BASE          the environment an interposer is preloaded into (--preload-git only)
  --fixed             insist that --bad is the older end (bisect a fix)
  --seed S            first seed (default: random, recorded per step)
  --suites DIR, --cache DIR   as for run

Exit: 0 the commit was found, 1 no single commit could be named (skipped commits in the way, or the ends do
not differ), 2 a usage error.`;

export class BisectUsage extends Error {}

interface Step {
  n: number;
  index: number;
  sha: string;
  line: string;
  role: string;
  outcome: 'fails' | 'passes' | 'skip';
  behaviour: Behaviour;
  cell: CellResult | null;
  reason: string | null;
  build: string;
  replay: string | null;
}

export async function cmdBisect(argv: string[], o: { repo: string; adapterOptions: (v: { cache?: string }) => AdapterOptions; log: (l: string) => void }): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args: argv, strict: true, allowPositionals: false, options: {
        help: { type: 'boolean', short: 'h' }, 'libc-git': { type: 'string' }, 'preload-git': { type: 'string' }, good: { type: 'string' }, bad: { type: 'string' },
        case: { type: 'string' }, env: { type: 'string' }, fixed: { type: 'boolean' }, seed: { type: 'string' }, suites: { type: 'string' }, cache: { type: 'string' },
      },
    }).values;
  } catch (e) {
    throw new BisectUsage(`${(e as Error).message.replace(/\. To specify.*$/s, '')} (see 'forkmatrix bisect --help')`);
  }
  if (v.help) {
    process.stdout.write(BISECT_HELP + '\n');
    return 0;
  }
  const repoFlag = v['libc-git'] ? '--libc-git' : '--preload-git';
  const repoArg = v['libc-git'] ?? v['preload-git'];
  if (!repoArg || (v['libc-git'] && v['preload-git'])) throw new BisectUsage(`bisect needs one repository: --libc-git PATH (a musl checkout) or --preload-git PATH (an interposer's) (see 'forkmatrix bisect --help')`);
  for (const f of ['good', 'bad', 'case'] as const) if (!v[f]) throw new BisectUsage(`bisect needs --${f} ${f === 'case' ? 'ID' : 'REV'} (see 'forkmatrix bisect --help')`);
  if (v.env && v['libc-git']) throw new BisectUsage(`--env ${v.env}: only for --preload-git (with --libc-git each commit's own musl is the environment)`);
  const seed0 = v.seed != null ? Number(v.seed) : 1 + Math.floor(Math.random() * 2 ** 30);
  if (!Number.isInteger(seed0) || seed0 < 0 || seed0 >= 2 ** 31) throw new BisectUsage(`--seed ${v.seed}: expected a whole number from 0 to 2147483647`);
  const repo = path.resolve(repoArg);
  let good: string, bad: string;
  try {
    good = resolveRev(repo, v.good!, `--good ${v.good}: ${repoFlag}`);
    bad = resolveRev(repo, v.bad!, `--bad ${v.bad}: ${repoFlag}`);
  } catch (e) {
    throw new BisectUsage((e as Error).message);
  }
  if (good === bad) throw new BisectUsage(`--good ${v.good} and --bad ${v.bad} are the same commit ${good.slice(0, 12)}`);
  const mode = isAncestor(repo, good, bad) ? 'regression' : isAncestor(repo, bad, good) ? 'fix' : null;
  if (!mode) throw new BisectUsage(`--good ${v.good} and --bad ${v.bad}: neither is an ancestor of the other in ${repo}; give two commits of one line of history`);
  if (v.fixed && mode !== 'fix') throw new BisectUsage(`--fixed: --bad ${v.bad} must be the older commit (an ancestor of --good ${v.good}); here it is the newer one (drop --fixed to bisect the regression)`);
  const [oldSha, newSha] = mode === 'regression' ? [good, bad] : [bad, good];
  const commits = [oldSha, ...commitsBetween(repo, oldSha, newSha)];
  if (commits[commits.length - 1] !== newSha) throw new BisectUsage(`${newSha.slice(0, 12)} is not on the first-parent line from ${oldSha.slice(0, 12)}: give commits of one line of history`);

  const suite = await loadSuite(o.repo, v.suites ? path.resolve(v.suites) : undefined);
  if (suite.problems.length) throw new BisectUsage(`${formatProblems(suite.problems.slice(0, 1))} (fix the case files; nothing was run)`);
  const cs = selectCases(suite.cases, null, [v.case!]);
  if (cs.length !== 1) throw new BisectUsage(`--case ${v.case}: ${cs.length ? `matches ${cs.length} cases (${cs.slice(0, 3).map((c) => c.key).join(', ')}...); give one` : 'no such case'} (see 'forkmatrix list')`);
  const c = cs[0];
  const aopts = o.adapterOptions(v);
  const base = v['preload-git'] ? await baseEnvironment(aopts, v.env) : null;
  const how = v['libc-git'] ? { libcGit: repo } : { preloadGit: repo, base: base!, name: preloadName(path.basename(repo)) + '-bisect' };

  const t0 = Date.now();
  const work = mkdtempSync(path.join(os.tmpdir(), 'forkmatrix-bisect-'));
  const forget = removeOnExit(work);
  const steps: Step[] = [];
  const marks: (Behaviour | undefined)[] = new Array(commits.length).fill(undefined);
  let seed = seed0;
  let tap = 'TAP version 14\n';
  const emit = (s: Step) => {
    const cell = s.cell;
    const diag = stringify({
      commit: s.sha, subject: s.line.replace(/^\S+ /, ''), role: s.role, outcome: s.outcome, behaves_like: s.behaviour === 'skip' ? 'skipped' : s.behaviour === 'new' ? 'the new end' : 'the old end',
      ...(cell ? { forks: cell.forks, failures: cell.failures, kind: cell.kind, interval: cell.interval.map((x) => fmtRate(x)).join(' - '), processes: cell.processes, seed: cell.seed, first_failure: cell.first_failure?.message.split('\n')[0] ?? null } : {}),
      ...(s.reason ? { reason: s.reason } : {}), build: s.build, replay: s.replay,
    }, { lineWidth: 0 });
    const line = `ok ${s.n} - ${s.role}: ${s.line}: ${s.outcome === 'skip' ? 'skip' : s.outcome}${cell && s.outcome !== 'skip' ? ` (${cell.failures}/${cell.forks} forks)` : ''}${s.outcome === 'skip' ? ` # SKIP ${(s.reason ?? '').slice(0, 120)}` : ''}\n  ---\n${diag.trimEnd().split('\n').map((l) => '  ' + l).join('\n')}\n  ...\n`;
    tap += line;
    process.stdout.write(line);
  };
  process.stdout.write(tap);
  o.log(`bisect ${c.key}: ${mode === 'regression' ? `regression: ${v.good} passes, ${v.bad} fails` : `fix (old behaviour = failing): ${v.bad} fails, ${v.good} passes`}; ${commits.length - 1} commit(s) after ${oldSha.slice(0, 12)}, at most ~${maxSteps(commits.length - 1)} steps`);

  // run the case on commit i with budget b; fail-fast unless measuring
  const runOn = async (i: number, b: { forks: number; processes: number; seconds: number }, failFast: boolean, role: string): Promise<Step> => {
    const sha = commits[i];
    const line = commitLine(repo, sha);
    const built = await commitEnvironment(how, sha, aopts, (l) => o.log(l));
    const step: Step = { n: steps.length + 1, index: i, sha, line, role, outcome: 'skip', behaviour: 'skip', cell: null, reason: null, build: '', replay: null };
    if ('skip' in built) {
      step.reason = built.skip;
      step.build = 'does not build';
      return step;
    }
    step.build = built.built ? `built in ${built.seconds.toFixed(0)} s` : 'cached';
    const env = built.env;
    let proof;
    try {
      proof = await env.probe();
    } catch (e) {
      step.reason = `the environment does not run: ${(e as Error).message}`;
      return step;
    }
    const plan = planCells([c], [env], null, aopts.cacheDir)[0];
    if (!plan?.rt) {
      step.reason = plan?.missing ?? `no runtime for ${c.runtime} in ${env.id}`;
      return step;
    }
    const s = seed;
    seed += b.processes + 1;
    const replay = v['libc-git']
      ? `npx forkmatrix run --case ${c.key} --libc git:${repo}@${sha.slice(0, 12)} --env ${env.id} --budget ${b.forks}${v.suites ? ` --suites ${v.suites}` : ''}`
      : `npx forkmatrix run --case ${c.key} --preload ${env.env.LD_PRELOAD} --env ${env.id} --budget ${b.forks}${v.suites ? ` --suites ${v.suites}` : ''}`;
    const cell = await runCell(c, env, plan.rt, runners[c.runtime], {
      budget: { forks: b.forks, seconds: b.seconds, timeoutMs: c.timeoutMs }, seed: s, failFast, gdb: null, cacheDir: aopts.cacheDir, repoDir: o.repo,
      workDir: work, proof, replay, processes: b.processes,
    });
    step.cell = cell;
    step.replay = cell.replay;
    return step;
  };
  const record = (s: Step) => {
    s.n = steps.length + 1;
    steps.push(s);
    if (s.behaviour !== 'skip' || marks[s.index] === undefined) marks[s.index] = s.behaviour;
    emit(s);
  };
  const seconds = (forks: number) => Math.max(30, Math.ceil(forks * 0.25));

  try {
    // 1. the failing end, measured (no fail-fast) in growing rounds until it has failed a few times
    const failIdx = mode === 'regression' ? commits.length - 1 : 0;
    const passIdx = mode === 'regression' ? 0 : commits.length - 1;
    let fails = 0;
    let forks = 0;
    for (const n of [12, 48, 192, 768]) {
      const s = await runOn(failIdx, { forks: n, processes: 3, seconds: seconds(n) }, false, `measure the failing end (${mode === 'regression' ? '--bad' : '--bad, the old end'})`);
      if (!s.cell) throw new BisectUsage(`the failing end ${s.line} cannot be run: ${s.reason}`);
      s.outcome = s.cell.failures ? 'fails' : 'passes';
      s.behaviour = s.cell.failures ? behaviourOf('fails', mode) : 'skip';
      record(s);
      fails += s.cell.failures;
      forks += s.cell.forks;
      if (fails >= 3) break;
    }
    if (!fails) return finish(1, `the failing end ${commitLine(repo, commits[failIdx])} showed no failure in ${forks} forks: nothing to bisect (is the failure that rare? run the case there with a bigger --budget first)`);
    const budget = stepBudget(fails, forks);
    o.log(`budget per step: ${budget.why}`);
    tap += `# budget: ${budget.why}\n`;
    process.stdout.write(`# budget: ${budget.why}\n`);

    const judge = async (i: number, role: string): Promise<Step> => {
      let s = await runOn(i, { forks: budget.forks, processes: budget.processes, seconds: seconds(budget.forks) }, true, role);
      let out = s.cell ? outcomeOf(s.cell, budget) : 'skip';
      if (out === 'short') {
        // ran out of time before the budget: once more with twice the time
        const again = await runOn(i, { forks: budget.forks, processes: budget.processes, seconds: 2 * seconds(budget.forks) }, true, `${role} (again: the first run gave ${s.cell!.forks} of ${budget.forks} forks in its time)`);
        s = again;
        out = s.cell ? outcomeOf(s.cell, budget) : 'skip';
        if (out === 'short') s.reason = `only ${s.cell!.forks} of ${budget.forks} forks in ${seconds(budget.forks) * 2} s`;
      }
      const outcome = out === 'short' ? 'skip' : out;
      s.outcome = outcome;
      s.behaviour = behaviourOf(outcome, mode);
      if (outcome === 'skip' && !s.reason) s.reason = s.cell?.reason ?? 'no verdict';
      record(s);
      return s;
    };
    // 2. the passing end must pass with that budget
    const p = await judge(passIdx, `check the passing end (${mode === 'regression' ? '--good' : '--good, the new end'})`);
    if (p.outcome !== 'passes') return finish(1, `the passing end ${p.line} ${p.outcome === 'fails' ? `fails too (${p.cell!.failures}/${p.cell!.forks})` : `could not be judged (${p.reason})`}: the two ends do not differ in this case`);
    // 3. bisect
    for (;;) {
      const nx = nextStep(marks);
      if ('firstNew' in nx) {
        const sha = commits[nx.firstNew];
        const ev = steps.filter((s) => s.index === nx.firstNew && s.cell);
        const what = mode === 'regression' ? 'first bad commit' : 'first fixed commit';
        const amb = nx.skipped.length ? `; or any of ${nx.skipped.length} skipped commit(s) before it: ${nx.skipped.map((i) => commits[i].slice(0, 12)).join(', ')}` : '';
        return finish(nx.skipped.length ? 1 : 0, `${what}: ${commitLine(repo, sha)}${tagOf(repo, sha) ? ` (${tagOf(repo, sha)})` : ''}${amb}`, { sha, ev });
      }
      const left = commits.length - 1;
      await judge(nx.test, `step (${nx.test} of ${left} commits after ${oldSha.slice(0, 7)})`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
    forget();
  }

  function finish(code: number, verdict: string, found?: { sha: string; ev: Step[] }): number {
    const secs = Math.round((Date.now() - t0) / 1000);
    const built = steps.filter((s) => s.build.startsWith('built')).length;
    const tail = `${code === 0 ? 'ok' : 'not ok'} ${steps.length + 1} - ${verdict}\n  ---\n${stringify({ mode, case: c.key, repository: repo, old: commitLine(repo, oldSha), new: commitLine(repo, newSha), steps: steps.length, built, seconds: secs, found: found?.sha ?? null }, { lineWidth: 0 }).trimEnd().split('\n').map((l) => '  ' + l).join('\n')}\n  ...\n1..${steps.length + 1}\n`;
    process.stdout.write(tail);
    const lines = [
      `forkmatrix bisect: ${verdict}`,
      ...(found ? found.ev.map((s) => `  evidence: ${s.cell!.failures}/${s.cell!.forks} forks failed (${s.cell!.kind ?? 'none'}, 95% interval ${s.cell!.interval.map(fmtRate).join('-')}); replay: ${s.replay}`) : []),
      ...steps.filter((s) => s.cell && s.sha !== found?.sha).slice(-3).map((s) => `  ${s.outcome}: ${s.line.slice(0, 70)} (${s.cell!.failures}/${s.cell!.forks})`),
      `  ${steps.length} step(s) (${built} built, ${steps.filter((s) => s.outcome === 'skip').length} skipped) in ${secs} s`,
    ];
    o.log(lines.join('\n'));
    return code;
  }
}

/** --env BASE for an interposer (default: the host's environment). */
async function baseEnvironment(aopts: AdapterOptions, id: string | undefined): Promise<Environment> {
  if (!id) return hostEnvironment(aopts);
  const all: Environment[] = [];
  for (const a of adapters) all.push(...(await a.environments(aopts).catch(() => [] as Environment[])));
  const e = all.find((x) => x.id === id);
  if (!e) throw new BisectUsage(`--env ${id}: not available here; available: ${all.map((x) => x.id).join(', ')}`);
  return e;
}

