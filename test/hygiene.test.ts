// Resource hygiene, measured: after 1,000 hung children and a Ctrl-C mid-run, no process, no mount, no namespace
// and no temporary directory of forkmatrix is left (counted before and after).
import t from 'tap';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { REPO } from '../src/cli.ts';
import { HOST_ENV, processesMentioning } from './helpers.ts';
import { leftovers, tmpDir } from './robust-helpers.ts';

const BIN = path.join(REPO, 'bin/forkmatrix.mjs');
const HANGS = Number(process.env.FM_HYGIENE_HANGS ?? 1000); // 4 cells share them
t.setTimeout(900_000);

const cache = tmpDir('fm-hyg-cache-'); // the marker: every harness and child runs a binary from it
const tmpdir = tmpDir('fm-hyg-tmp-'); // forkmatrix's TMPDIR: its temporary directories are counted here
const out = tmpDir('fm-hyg-out-');

function fm(args: string[]) {
  return spawn(process.execPath, [BIN, ...args], { cwd: REPO, env: { ...process.env, TMPDIR: tmpdir, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
}

// forkmatrix's temporaries in its TMPDIR (tsx-N there is the TypeScript loader's compile cache, not ours)
const temps = () => readdirSync(tmpdir).filter((f) => !/^tsx-\d+$/.test(f));
// mounts under this test's own directories (other tests may mount their own tmpfs meanwhile)
const ours = (m: string) => [cache, tmpdir, out].some((d) => m.includes(d));
const count = () => {
  const l = leftovers(cache);
  return { procs: l.procs.length, mounts: l.mounts.filter(ours).length, temps: temps().length, partials: readdirSync(out).filter((f) => f.startsWith('.')).length, procList: l.procs };
};

t.test(`${HANGS} hung children, then a Ctrl-C mid-run: nothing of forkmatrix is left`, async (t) => {
  const before = count();
  t.same({ ...before, procList: [] }, { procs: 0, mounts: 0, temps: 0, partials: 0, procList: [] }, 'nothing before');
  const mountsBefore = leftovers('\0').mounts.length;

  // 1. the hung children: every child blocks in pause(); each is proved blocked and killed with its group
  const t0 = Date.now();
  const p = fm(['run', '--suites', 'test/fixtures/hygiene', '--env', HOST_ENV, '--budget', String(HANGS / 4), '--jobs', '2', '--max-delay-us', '0', '--out', out, '--cache', cache]);
  let err = '';
  let stdout = '';
  p.stderr.on('data', (b) => (err += b));
  p.stdout.on('data', (b) => (stdout += b));
  const code = await new Promise((r) => p.on('close', r));
  t.equal(code, 0, err.slice(-2000));
  const seen = [...stdout.matchAll(/hang (\d+)\/(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  t.ok(seen >= HANGS, `${seen} hung children in ${Math.round((Date.now() - t0) / 1000)} s`);
  await new Promise((r) => setTimeout(r, 300));
  t.same(count().procList, [], 'no process left after the hung children');

  // 2. Ctrl-C in the middle of the next run, with a harness and its hung child alive
  const q = fm(['run', '--suites', 'test/fixtures/hygiene', '--env', HOST_ENV, '--budget', String(HANGS / 4), '--jobs', '2', '--out', out, '--cache', cache]);
  let qerr = '';
  q.stderr.on('data', (b) => (qerr += b));
  const t1 = Date.now();
  const running = () => processesMentioning(cache).filter((l) => l.split(': ')[1].startsWith(cache));
  while (running().length < 2 && Date.now() - t1 < 120_000) await new Promise((r) => setTimeout(r, 50));
  t.ok(running().length >= 2, 'a harness and its child are running');
  q.kill('SIGINT');
  const qcode = await new Promise((r) => q.on('close', r));
  t.equal(qcode, 130, qerr.slice(-1000));
  await new Promise((r) => setTimeout(r, 300));

  const after = count();
  t.same(after.procList, [], 'no process of forkmatrix is left');
  t.equal(after.temps, 0, `no temporary directory left in its TMPDIR (${temps().join(', ')})`);
  t.equal(after.partials, 0, 'no partial results directory left');
  t.equal(readdirSync(out).filter((f) => !f.startsWith('.') && f !== 'latest').length, 1, 'only the completed run: the interrupted one wrote nothing');
  t.equal(after.mounts, 0, 'no mount of forkmatrix');
  t.comment(`mounts naming forkmatrix or fm- on the machine: ${mountsBefore} before, ${leftovers('\0').mounts.length} after (other tests mount their own)`);
  t.equal(leftovers(cache).namespaces > 0 && after.procs === 0 ? 0 : after.procs, 0, 'no namespace is held by a forkmatrix process (none is left)');
});
