// `forkmatrix repro CASE --env ENV [--out DIR]`: a self-contained reproducer for one cell of the matrix (one C file
// for libc and libuv cases, one script for Python and Ruby, one script plus the raw-fork addon's C file for Node
// cases that require it), with a bug-report header. See src/repro/README.md.

import { existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadSuite, formatProblems, selectCases } from '../cases.ts';
import { adapters, runners } from '../registry.ts';
import { FOUND_RUNTIMES, type CaseDef, type Environment, type FoundRuntime, type RuntimeInstance } from '../types.ts';
import { sh, type Generated, type GenInput } from './common.ts';
import { findRecord, matrixFiles } from './record.ts';
import { cRepro } from './c.ts';
import { pythonRepro } from './python.ts';
import { rubyRepro } from './ruby.ts';
import { nodeRepro } from './node.ts';

export { reproCommand } from './command.ts';

export const REPRO_HELP = `Usage: forkmatrix repro CASE --env ENV [--out DIR] [--runtime-version V] [--results PATH]

Writes a self-contained reproducer of one cell: CASE as 'run --case' takes it (an id or runtime/family/id, one
case), ENV an environment id from 'forkmatrix list'. libc and libuv cases: one C file (its build line is in its
header); python and ruby: one script; node: one script (plus the raw-fork addon's C file when the case needs it).
It forks like the harness does, prints 'N of M children failed (H hang, C crash, W wrong)' and exits 1 on a
failure, 0 otherwise. Its header says what was expected (title, promise level, citations) and, when
results/latest or results/published (or --results PATH: a results dir or matrix.json) has this cell, what
forkmatrix measured and the first backtrace.

  --out DIR             where to write (default: the current directory)
  --runtime-version V   the runtime version, when ENV has several (e.g. libuv 1.50.0)
  --results PATH        the results to take the measured rates from
  --suites DIR          case files to use instead of suites/
  --runtime R=PATH      add an interpreter, as for run
  --cache DIR           as for run`;

export interface ReproIO {
  repo: string;
  /** throws the CLI's UsageError (one line, exit 2) */
  usage(msg: string): never;
  cacheDir(flag?: string): string;
}

const GENERATORS: Record<string, (g: GenInput) => Promise<Generated> | Generated> = {
  libc: cRepro,
  libuv: cRepro,
  python: pythonRepro,
  ruby: rubyRepro,
  node: nodeRepro,
};

export async function cmdRepro(argv: string[], io: ReproIO): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: {
        env: { type: 'string' }, out: { type: 'string' }, 'runtime-version': { type: 'string' }, results: { type: 'string' },
        suites: { type: 'string' }, runtime: { type: 'string', multiple: true }, cache: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    return io.usage(`${(e as Error).message.replace(/\. To specify.*$/s, '')} (see 'forkmatrix repro --help')`);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    process.stdout.write(REPRO_HELP + '\n');
    return 0;
  }
  if (positionals.length !== 1) io.usage(`repro: give exactly one CASE (an id or runtime/family/id, see 'forkmatrix list'), e.g. forkmatrix repro libc/popen/popen-in-child-while-threads-popen --env glibc-2.36`);
  if (!v.env) io.usage(`repro: --env ENV is required (an environment id from 'forkmatrix list', e.g. --env glibc-2.36)`);
  const c = await findCase(positionals[0], v.suites, io);
  const cacheDir = io.cacheDir(v.cache);
  const extraRuntimes = (v.runtime ?? []).map((s) => {
    const m = /^([a-z]+)=(.+)$/.exec(s);
    if (!m || !FOUND_RUNTIMES.includes(m[1] as FoundRuntime)) io.usage(`--runtime ${s}: expected NAME=PATH with NAME one of ${FOUND_RUNTIMES.join(', ')}`);
    return { runtime: m![1] as FoundRuntime, path: path.resolve(m![2]) };
  });
  const env = await findEnv(v.env!, { cacheDir, extraRuntimes, preload: [], libc: [] }, io);
  const rt = pickRuntime(c, env, cacheDir, v['runtime-version'], io);
  if (v.results && !existsSync(v.results)) io.usage(`--results ${v.results}: no such file or directory (give a results directory or its matrix.json)`);
  const record = findRecord(matrixFiles(io.repo, v.results), c, env, rt);
  const outDir = path.resolve(v.out ?? '.');
  if (existsSync(outDir) && !statSync(outDir).isDirectory()) io.usage(`--out ${v.out}: a file, not a directory: give a directory`);
  const g: GenInput = {
    c, env, rt, record, cacheDir, repo: io.repo, seed: record?.cell.seed ?? 1, name: c.id,
    runLine: (a) => runLine(env, a, c.env),
  };
  const out = await GENERATORS[c.runtime](g);
  mkdirSync(outDir, { recursive: true });
  for (const f of out.files) {
    const dest = path.join(outDir, f.name);
    mkdirSync(path.dirname(dest), { recursive: true });
    const tmp = `${dest}.tmp-${process.pid}`;
    writeFileSync(tmp, f.text, { mode: f.mode ?? 0o644 });
    renameSync(tmp, dest);
  }
  const rel0 = path.relative(process.cwd(), outDir) || '.';
  const rel = rel0.startsWith('..') ? outDir : rel0;
  process.stdout.write(`wrote ${out.files.map((f) => path.join(rel, f.name)).join(', ')}\n`);
  for (const b of out.build) process.stdout.write(`build: (cd ${sh(rel)} && ${b})\n`);
  process.stdout.write(`run:   (cd ${sh(rel)} && ${out.run})\n`);
  if (record) process.stdout.write(`measured: ${record.cell.failures} of ${record.cell.forks} children failed (${path.relative(io.repo, record.source)})\n`);
  return 0;
}

async function findCase(want: string, suites: string | undefined, io: ReproIO): Promise<CaseDef> {
  const dir = suites ? path.resolve(suites) : undefined;
  if (dir && !existsSync(dir)) io.usage(`--suites ${suites}: no such directory`);
  const suite = await loadSuite(io.repo, dir);
  if (suite.problems.length) io.usage(`${formatProblems(suite.problems).split('\n')[0]} (fix the case files first: forkmatrix validate)`);
  const hits = selectCases(suite.cases, null, [want]);
  if (!hits.length) io.usage(`repro: no case matches '${want}' (give a case id or runtime/family/id; see 'forkmatrix list')`);
  if (hits.length > 1) io.usage(`repro: '${want}' matches ${hits.length} cases (${hits.slice(0, 4).map((x) => x.key).join(', ')}${hits.length > 4 ? ', ...' : ''}): give one`);
  return hits[0];
}

async function findEnv(id: string, opts: Parameters<(typeof adapters)[number]['environments']>[0], io: ReproIO): Promise<Environment> {
  const all: Environment[] = [];
  for (const a of adapters) {
    try {
      all.push(...(await a.environments(opts)));
    } catch (e) {
      io.usage((e as Error).message);
    }
    const hit = all.find((e) => e.id === id);
    if (hit) return hit;
  }
  return io.usage(`--env ${id}: not available here; available: ${all.map((e) => e.id).join(', ')} (see 'forkmatrix list')`);
}

/** The runtime instance the case runs on in `env` (libuv: made from the C compiler), one of several by --runtime-version. */
function pickRuntime(c: CaseDef, env: Environment, cacheDir: string, version: string | undefined, io: ReproIO): RuntimeInstance {
  const on = runners[c.runtime]?.builtOn;
  const base = on?.runtime ?? c.runtime;
  const all = env.runtimes.filter((r) => r.runtime === base).flatMap((r) => (on ? on.instance(r, cacheDir) : [r]));
  if (!all.length) {
    const why = env.missing.find((m) => m.runtime === base)?.reason ?? `no ${base}`;
    return io.usage(`--env ${env.id}: ${c.key} needs ${base === c.runtime ? c.runtime : `${base} (for ${c.runtime})`}, which ${env.id} does not have: ${why}`);
  }
  if (c.runtime === 'libuv' && all.every((r) => r.version.startsWith('not provisioned')))
    return io.usage(`--env ${env.id}: ${c.key} needs libuv, which is not provisioned: npx forkmatrix provision libuv`);
  if (version) {
    const hits = all.filter((r) => r.version === version || r.version.startsWith(version));
    if (hits.length !== 1) io.usage(`--runtime-version ${version}: ${hits.length ? 'matches several' : 'no such'} ${c.runtime} in ${env.id}; there: ${all.map((r) => r.version).join(', ')}`);
    return hits[0];
  }
  if (all.length > 1) io.usage(`--env ${env.id} has ${all.length} ${c.runtime} versions (${all.map((r) => r.version).join(', ')}): pick one with --runtime-version`);
  return all[0];
}

/** argv as one shell line in the environment: its launcher (a loader, a chroot), its variables, the case's. */
export function runLine(env: Environment, argv: string[], caseEnv: Record<string, string> = {}): string {
  if (env.adapter === 'debian-root') {
    const root = env.root ? ` (${env.root})` : '';
    return `inside the Debian root of ${env.id}${root}, e.g. sudo chroot ROOT sh -c 'cd /tmp/repro && ${[...Object.entries(caseEnv).map(([k, x]) => `${k}=${x}`), ...argv].join(' ')}' with the files copied to ROOT/tmp/repro`;
  }
  const l = env.launch(argv, {});
  const vars = { ...l.env, ...caseEnv };
  return [...Object.entries(vars).map(([k, x]) => `${k}=${sh(x)}`), l.command, ...l.args].map((s, i, a) => (i >= a.length - l.args.length - 1 ? sh(s) : s)).join(' ');
}
