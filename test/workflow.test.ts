// .github/workflows/matrix.yml: valid by the workflow schema (@action-validator/core), consistent (needs, outputs,
// matrix keys), and its own `run:` steps work: the plan job with 2 shards on a fixture suite, both shard jobs,
// the merge job's report, executed here in order with the artifacts passed as the actions would pass them. The
// merged matrix must hold the same cells as an unsharded run, and each shard must have run exactly its plan's.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { validateWorkflow } from '@action-validator/core';
import { REPO } from '../src/cli.ts';
import { HOST_ENV, tmp } from './helpers.ts';

const FILE = path.join(REPO, '.github/workflows/matrix.yml');
const SRC = readFileSync(FILE, 'utf8');

type Step = { id?: string; name?: string; run?: string; uses?: string; with?: Record<string, string>; if?: string };
type Job = { needs?: string | string[]; steps: Step[]; env?: Record<string, string>; outputs?: Record<string, string>; strategy?: { matrix: unknown } };
const wf = parse(SRC) as { env: Record<string, string>; jobs: Record<string, Job> };

t.test('the workflow passes the schema validator, and the validator catches a broken one', async (t) => {
  t.same(validateWorkflow(SRC).errors, [], 'matrix.yml is a valid workflow');
  const broken = SRC.replace(/^ {4}runs-on: ubuntu-latest\n/m, '').replace('steps:', 'stepz:');
  t.ok(validateWorkflow(broken).errors.length > 0, 'a job without runs-on and with an unknown key is refused');
});

t.test('jobs, needs, outputs and matrix keys fit together', async (t) => {
  const jobs = wf.jobs;
  for (const [name, j] of Object.entries(jobs)) for (const n of [j.needs ?? []].flat()) t.ok(jobs[n], `${name} needs ${n}, which exists`);
  t.match(jobs.plan.outputs?.matrix, /steps\.plan\.outputs\.matrix/);
  t.ok(jobs.plan.steps.some((s) => s.id === 'plan'), 'the plan step has the id the output reads');
  t.match(JSON.stringify(jobs.shard.strategy?.matrix), /fromJSON\(needs\.plan\.outputs\.matrix\)/);
  const used = new Set([...SRC.matchAll(/\$\{\{\s*matrix\.(\w+)\s*\}\}/g)].map((m) => m[1]));
  t.same([...used].sort(), ['provision', 'shard'], 'the shard job reads only the keys plan puts in each matrix entry');
});

/** The value of a `${{ }}` expression, for the few forms this workflow uses. */
function expr(e: string, ctx: Record<string, string>): string {
  const alts = e.split('||').map((x) => x.trim());
  for (const a of alts) {
    const lit = /^'(.*)'$/.exec(a);
    if (lit) return lit[1];
    if (a in ctx && ctx[a] !== '') return ctx[a];
  }
  if (alts.every((a) => /^inputs\./.test(a) || /^'/.test(a))) return '';
  throw new Error(`expression not known to this test: \${{ ${e} }}`);
}
const subst = (s: string, ctx: Record<string, string>) => s.replace(/\$\{\{\s*(.*?)\s*\}\}/g, (_, e) => expr(e, ctx));

t.test('the workflow\'s steps, run here: plan with 2 shards, 2 shard runs, 1 merge', async (t) => {
  const work = tmp();
  const artifacts = path.join(work, 'artifacts');
  const FM_OUT = path.join(work, 'fm-out');
  // the workflow's env, with what differs here: 2 shards, a fixture suite on this machine's libc, 4 forks a cell
  const env: Record<string, string> = {
    ...Object.fromEntries(Object.entries(wf.env).map(([k, v]) => [k, subst(String(v), {})])),
    SHARDS: '2', PLAN_ARGS: `--budget 4 --suites test/fixtures/verdicts --suite libc --env ${HOST_ENV}`, FM_OUT,
  };
  t.equal(wf.env.FM_OUT, 'fm-out');
  const runJob = (name: string, matrix: Record<string, string> = {}) => {
    const job = wf.jobs[name];
    const outputs = path.join(work, `${name}-${matrix.shard ?? 0}.out`);
    writeFileSync(outputs, '');
    const ctx: Record<string, string> = { ...Object.fromEntries(Object.entries(env).map(([k, v]) => [`env.${k}`, v])), ...Object.fromEntries(Object.entries(matrix).map(([k, v]) => [`matrix.${k}`, v])) };
    const jenv = { ...env, ...Object.fromEntries(Object.entries(job.env ?? {}).map(([k, v]) => [k, subst(String(v), ctx)])) };
    for (const [k, v] of Object.entries(jenv)) ctx[`env.${k}`] = v;
    const ran: string[] = [];
    for (const step of job.steps) {
      if (step.if && /vars\.FORKMATRIX_PAGES/.test(step.if)) continue; // Pages: not here
      const w = () => Object.fromEntries(Object.entries(step.with ?? {}).map(([k, v]) => [k, subst(String(v), ctx)]));
      const at = (p: string) => path.resolve(REPO, p);
      if (step.uses?.startsWith('actions/upload-artifact')) {
        const { name: an, path: ap } = w();
        const dst = path.join(artifacts, an);
        mkdirSync(dst, { recursive: true });
        const src = at(ap);
        cpSync(src, statSync(src).isDirectory() ? dst : path.join(dst, path.basename(src)), { recursive: true });
      } else if (step.uses?.startsWith('actions/download-artifact')) {
        const d = w();
        const names = d.name ? [d.name] : readdirSync(artifacts).filter((n) => new RegExp(`^${d.pattern.replace('*', '.*')}$`).test(n));
        for (const n of names) cpSync(path.join(artifacts, n), d.name ? at(d.path) : path.join(at(d.path), n), { recursive: true });
      } else if (step.run && !/^npm ci\b/.test(step.run)) {
        // npm ci is the checkout's install, done here already (it would replace the node_modules this test runs on)
        const r = spawnSync('bash', ['-eo', 'pipefail', '-c', subst(step.run, ctx)], { cwd: REPO, encoding: 'utf8', env: { ...process.env, ...jenv, GITHUB_OUTPUT: outputs }, timeout: 400_000 });
        t.equal(r.status, 0, `${name}${matrix.shard ? ` ${matrix.shard}` : ''}: ${step.name ?? step.run.split('\n')[0]}`) || t.comment(r.stderr.slice(-3000));
        if (r.status !== 0) throw new Error(`${name}: step failed`);
        ran.push(step.name ?? step.run);
      }
    }
    const outs = Object.fromEntries(readFileSync(outputs, 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    return { ran, outs };
  };

  const plan = runJob('plan');
  const m = JSON.parse(plan.outs.matrix);
  t.same(m.include.map((x: { shard: number }) => x.shard), [1, 2], 'the plan job\'s output is a 2-entry CI matrix');
  t.ok(m.include.every((x: { provision: string }) => /\bhost\b/.test(x.provision)));
  const planFile = JSON.parse(readFileSync(path.join(FM_OUT, 'plan.json'), 'utf8'));
  for (const entry of m.include) {
    runJob('shard', { shard: String(entry.shard), provision: entry.provision });
    const taps = readdirSync(path.join(FM_OUT, `tap-${entry.shard}`)).filter((f) => f.endsWith('.tap'));
    const ran = taps.flatMap((f) => [...readFileSync(path.join(FM_OUT, `tap-${entry.shard}`, f), 'utf8').matchAll(/^(?:not )?ok \d+ - (\S+)/gm)].map((x) => `${x[1]}@${HOST_ENV}`));
    t.same(ran.sort(), [...planFile.shards[entry.shard - 1].cells].sort(), `shard ${entry.shard} ran exactly its plan's cells`);
  }
  runJob('merge');
  const merged = JSON.parse(readFileSync(path.join(FM_OUT, 'site', 'matrix.json'), 'utf8'));
  t.ok(existsSync(path.join(artifacts, 'matrix', 'index.html')), 'the page is uploaded as the matrix artifact');
  t.ok(merged.changes, 'the page says what changed since the published matrix (--previous)');

  // the same cells, unsharded
  const whole = path.join(work, 'whole');
  const r = spawnSync(process.execPath, [path.join(REPO, 'bin/forkmatrix.mjs'), 'run', '--suites', 'test/fixtures/verdicts', '--suite', 'libc', '--env', HOST_ENV, '--budget', '4', '--out', whole, '--no-color'], { cwd: REPO, encoding: 'utf8', timeout: 400_000 });
  t.equal(r.status, 0, 'the unsharded run') || t.comment(r.stderr.slice(-2000));
  const one = JSON.parse(readFileSync(path.join(whole, 'latest', 'matrix.json'), 'utf8'));
  const cellSet = (x: { cells: Record<string, Record<string, { verdict: string; kind: string | null }>> }) =>
    Object.entries(x.cells).flatMap(([k, row]) => Object.entries(row).map(([col, c]) => `${k} | ${col} | ${c.verdict} ${c.kind ?? ''}`)).sort();
  t.same(cellSet(merged), cellSet(one), 'the merged shards hold the cells of an unsharded run, with the same verdicts');
});
