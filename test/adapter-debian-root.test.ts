// The Debian roots adapter: bullseye (glibc 2.31) and trixie (glibc 2.41) debootstrap roots entered through
// private namespaces. Debootstrapping takes minutes, so a test never provisions: the tests that need a root run
// when it is cached (`npx forkmatrix provision roots`) and skip with that reason when it is not.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import t from 'tap';
import { CACHE, processesMentioning, tmp as mkTmp } from './helpers.ts';
import {
  bindDirs, cachedRoot, debianRootAdapter, enterCommand, libcInMaps, ROOT_PROVISION_NAMES, ROOT_SPECS, rootHandle, rootId, RUNNERS_DIR,
} from '../adapters/debian-root.ts';
import { loadSuite, selectCases } from '../src/cases.ts';
import { rootsProvisioner } from '../provision/roots.ts';
import { REPO } from '../src/cli.ts';
import { capture, cleanBaseEnv, runGrouped } from '../src/proc.ts';
import { run } from '../src/run.ts';
import type { AdapterOptions, CellResult, Environment } from '../src/types.ts';

t.setTimeout(600_000);

const made: string[] = [];
const tmp = (prefix: string) => {
  const d = mkTmp(prefix);
  made.push(d);
  return d;
};
t.teardown(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

const opts = (): AdapterOptions => ({ cacheDir: CACHE, extraRuntimes: [], preload: [], libc: [] });

/** Mounts of this (the host's) mount namespace that mention `marker`: a run must leave none. */
function mountsMentioning(marker: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(marker));
}

/** Wait until no process mentions `marker` (a SIGKILLed namespace takes a moment to be torn down). */
async function gone(marker: string, ms = 3000): Promise<string[]> {
  const until = Date.now() + ms;
  let left = processesMentioning(marker);
  while (left.length && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    left = processesMentioning(marker);
  }
  return left;
}

t.test('ids, provision names and status: every root is available, provisionable (with the command) or impossible (with why)', async (t) => {
  t.same(ROOT_PROVISION_NAMES, ['roots', 'root-bullseye', 'root-bookworm', 'root-trixie', 'root-sid']);
  t.equal(rootId('bullseye', '2.31'), 'glibc-2.31-bullseye');
  t.equal(rootId('trixie', '2.41'), 'glibc-2.41-trixie');
  const st = await debianRootAdapter.status(opts());
  t.same(st.map((s) => s.id.replace(/^glibc-[\d.]+-/, '')).sort(), ['bookworm', 'bullseye', 'sid', 'trixie'], 'sid is rolling: its id carries the glibc it proves');
  for (const s of st) {
    if (s.state === 'provisionable') t.match(s.detail, /npx forkmatrix provision root-(bullseye|bookworm|trixie|sid)/, `${s.id}: says how`);
    if (s.state === 'impossible') t.match(s.detail, /\w/, `${s.id}: says why`);
    if (s.state === 'available') t.match(s.detail, /runtimes: libc gcc /, `${s.id}: names its runtimes`);
  }
  // the roots provisioner (provision/roots.ts) takes its own names only, and does nothing for others
  t.same(['roots', 'root-trixie', 'musl', 'glibc', 'root-potato'].filter((w) => rootsProvisioner.accepts(w)), ['roots', 'root-trixie']);
  const log: string[] = [];
  await rootsProvisioner.provision(['musl', 'glibc'], opts(), (l) => log.push(l));
  t.same(log, []);
  t.notOk('provision' in debianRootAdapter, 'the adapter keeps discovery, proof and launch; provisioning is provision/roots.ts');
});

t.test('bind dirs: host paths at the same path inside, never over the root\'s own directories', async (t) => {
  const root = tmp('fm-root-');
  mkdirSync(path.join(root, 'usr', 'bin'), { recursive: true });
  mkdirSync(path.join(root, 'tmp'));
  const work = tmp('fm-work-');
  mkdirSync(path.join(work, 'cell', 'home'), { recursive: true });
  writeFileSync(path.join(work, 'cell', 'config.json'), '{}');
  const cfg = path.join(work, 'cell', 'config.json');
  const b = bindDirs(root, ['/usr/bin/python3', path.join(RUNNERS_DIR, 'python', 'harness.py'), cfg, 'relative', '/no/such/path'], [RUNNERS_DIR, work]);
  t.same(b, [RUNNERS_DIR, work].sort((x, y) => x.length - y.length), 'runners/ and the work dir; the config is under the work dir; /usr/bin is the root\'s');
  t.same(bindDirs(root, [cfg], []), [path.join(work, 'cell')], 'a file\'s directory');
  t.same(bindDirs(root, ['/tmp'], []), [], 'a directory the root has is never hidden');
  const loose = path.join(os.tmpdir(), `fm-bind-${process.pid}.json`);
  writeFileSync(loose, '{}');
  t.teardown(() => rmSync(loose, { force: true }));
  t.same(bindDirs(root, [loose], []), [loose], 'a file directly in such a directory is bound by itself');
  // the cell's private HOME/TMPDIR (a sibling of its config dir) is bound too: a harness's mkdtemp needs it inside
  const cache = tmp('fm-root-cache-');
  const home = path.join(work, 'cell', 'home');
  const p0 = path.join(work, 'cell', 'p0', 'config.json'); // src/cell.ts: each process's config beside, not above, home/
  mkdirSync(path.dirname(p0));
  writeFileSync(p0, '{}');
  const l = enterCommand(rootHandle(cache, 'test', path.join(cache, 'roots', 'test')), ['/usr/bin/python3', p0], { PATH: '/usr/bin', HOME: home, TMPDIR: home });
  const binds = l.args.slice(l.args.indexOf('/bin/sh'), l.args.indexOf('--'));
  t.ok(binds.includes(home), `TMPDIR ${home} is bound (${binds.join(' ')})`);
  t.equal(libcInMaps('7f0-7f1 r-xp 00000000 fd:00 12 /lib/x86_64-linux-gnu/libc-2.31.so\n'), '/lib/x86_64-linux-gnu/libc-2.31.so', 'glibc < 2.34 maps libc-2.NN.so');
  t.equal(libcInMaps('7f0-7f1 r-xp 00000000 fd:00 12 /usr/lib/x86_64-linux-gnu/libc.so.6\n'), '/usr/lib/x86_64-linux-gnu/libc.so.6');
});

async function runCases(suites: string[], ids: string[], envs: Environment[]) {
  const suite = await loadSuite(REPO, path.join(REPO, 'test/fixtures/verdicts'));
  const cases = selectCases(suite.cases, suites, ids);
  const out = tmp('fm-roots-');
  const problems: string[] = [];
  const r = await run({
    repoDir: REPO, cacheDir: CACHE, outRoot: out, cases, environments: envs, budget: { kind: 'full' }, jobs: 2, seed: 13, failFast: false,
    onProblem: (l) => problems.push(l),
  });
  const cell = (key: string) => r.cells.find((c) => c.case === key) as CellResult;
  return { ...r, cell, out, problems };
}

for (const spec of ROOT_SPECS) {
  const cached = cachedRoot(CACHE, spec.suite);
  const skip = cached
    ? false
    : `the ${spec.suite} root is not provisioned in ${CACHE} (npx forkmatrix provision root-${spec.suite}: a debootstrap of several minutes, too slow for a test)`;
  const id = rootId(spec.suite, spec.glibc);
  const envOf = async () => {
    const e = (await debianRootAdapter.environments(opts())).find((x) => x.id === id);
    if (!e) throw new Error(`${id} is cached but not offered`);
    return e;
  };

  t.test(`${spec.suite}: glibc ${spec.glibc} is proved inside the root and real cases run there`, { skip }, async (t) => {
    const env = await envOf();
    t.equal(env.root, cached!.h.root, 'environment.root is the root dir (the driver proves the harness\'s libc through it)');
    t.match(env.expect, { libc: 'glibc', version: spec.glibc });
    for (const rt of ['libc', 'python', 'ruby', 'node'] as const) t.ok(env.runtimes.some((r) => r.runtime === rt), `${spec.suite} has ${rt} (${JSON.stringify(env.missing)})`);
    const proof = await env.probe();
    t.match(proof, { name: 'glibc', version: spec.glibc, banner: new RegExp(`GNU C Library .*version ${spec.glibc.replace('.', '\\.')}`) });
    t.ok(existsSync(env.root + proof.path), `the proved file ${proof.path} is the root's`);

    const r = await runCases(['libc', 'python'], ['passes', 'hangs'], [env]);
    t.same(r.problems, [], 'the environment proved');
    const pass = r.cell('libc/verdicts/passes');
    t.match(pass, { verdict: 'pass', failures: 0, env: id }, pass.reason ?? pass.first_failure?.message ?? '');
    t.ok(pass.forks > 0 && pass.counts.ok === pass.forks, 'every fork was ok');
    t.match(pass.libc, { name: 'glibc', version: spec.glibc, path: proof.path });
    t.equal(pass.runtime_version, env.runtimes.find((x) => x.runtime === 'libc')!.version, 'compiled by the root\'s gcc');
    const hang = r.cell('libc/verdicts/hangs');
    t.match(hang, { verdict: 'fail', kind: 'hang' }, hang.reason ?? '');
    t.ok(hang.counts.hang >= 1);
    t.match(String(hang.first_failure?.diag?.wchan ?? '') + String(hang.first_failure?.diag?.gdb ?? ''), /\w/, 'wchan or gdb says where it hung');
    const py = r.cell('python/verdicts/passes');
    const pyrt = env.runtimes.find((x) => x.runtime === 'python')!;
    t.match(py, { verdict: 'pass', runtime_version: pyrt.version, runtime_executable: pyrt.executable }, py.reason ?? py.first_failure?.message ?? '');
    t.match(py.libc, { name: 'glibc', version: spec.glibc });
    t.same(await gone(r.out), [], 'no process of the run is left');
    t.same(await gone(cached!.h.root), [], 'no process inside the root is left');
    t.same(mountsMentioning(cached!.h.dir), [], 'nothing of the root is mounted in the host namespace');
  });

  t.test(`${spec.suite}: the program gets exactly the declared environment, the cell's files, and cannot change the root`, { skip }, async (t) => {
    const env = await envOf();
    const dir = tmp('fm-roots-cell-');
    writeFileSync(path.join(dir, 'in.txt'), 'hello from the host\n');
    // host paths reach the program as argv entries (the driver passes the cell's config file that way)
    const loose = path.join(os.tmpdir(), `fm-roots-loose-${process.pid}.txt`);
    writeFileSync(loose, 'a file directly in /tmp\n');
    t.teardown(() => rmSync(loose, { force: true }));
    const l = env.launch(['/bin/sh', '-c', 'cat "$1/in.txt" "$2"; env | sort; pwd; echo x > /etc/fm-write-test; echo out > "$1/out.txt"', 'fm', dir, loose], { PATH: '/usr/bin:/bin', FM_DECLARED: 'yes' });
    t.notOk('FM_LEAK' in l.env);
    const r = capture(l.command, l.args, { env: l.env, cwd: dir });
    t.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    t.equal(lines[0], 'hello from the host', 'a host file named in argv is visible at the same path');
    t.equal(lines[1], 'a file directly in /tmp', 'also one in a directory the root has (bound by itself)');
    // the shell itself adds PWD (and SHLVL in some shells); nothing else may appear
    const vars = lines.slice(2, -1).filter((x) => !/^(PWD|OLDPWD|SHLVL|_)=/.test(x));
    t.same(vars, ['FM_DECLARED=yes', 'PATH=/usr/bin:/bin'], 'exactly the declared variables');
    t.equal(lines.at(-1), dir, 'the working directory is the caller\'s');
    t.equal(readFileSync(path.join(dir, 'out.txt'), 'utf8'), 'out\n', 'writes to a bound directory reach the host');
    t.notOk(existsSync(path.join(env.root!, 'etc', 'fm-write-test')), 'writes elsewhere go to a throw-away overlay');
    t.same(mountsMentioning(cached!.h.dir), []);
  });

  t.test(`${spec.suite}: SIGKILL of the process group (the driver's timeout), or of unshare alone, ends everything inside`, { skip }, async (t) => {
    const env = await envOf();
    const dir = tmp('fm-roots-kill-');
    // a process that leaves the process group (setsid) and ignores SIGTERM, and one that stays in it
    const marker = `fm-${spec.suite}-${process.pid}`;
    const script = `trap '' TERM; setsid sh -c 'trap "" TERM; exec sleep 1000 # ${marker}-escaped' & exec sleep 1000 # ${marker}`;
    const l = env.launch(['/bin/sh', '-c', script, marker], cleanBaseEnv());
    const t0 = Date.now();
    const res = await runGrouped(l.command, l.args, { env: l.env, logFile: path.join(dir, 'log'), timeoutMs: 1500 });
    t.ok(res.timedOut, 'the limit was hit');
    t.ok(Date.now() - t0 < 5000, 'and the run ended right away');
    t.same(await gone(marker), [], 'no process inside the root survives, not even the one that left the group');
    t.same(mountsMentioning(cached!.h.dir), [], 'nothing stays mounted');

    // SIGKILL to the unshare process only: --kill-child takes the namespace's PID 1, and with it everything
    const l2 = env.launch(['/bin/sh', '-c', script, marker], cleanBaseEnv());
    const child = spawn(l2.command, l2.args, { env: l2.env, stdio: 'ignore', detached: true });
    const until = Date.now() + 10_000;
    while (processesMentioning(`${marker}-escaped`).length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    t.ok(processesMentioning(`${marker}-escaped`).length > 0, 'the escaped process started');
    process.kill(child.pid!, 'SIGKILL');
    // the kernel tears the namespace down asynchronously (PID 1 reaps everything first): on a loaded machine
    // that has taken over 3 s, so allow 15 s; what is left after that is a leak
    const left = await gone(marker, 15_000);
    if (left.length) process.kill(-child.pid!, 'SIGKILL'); // clean up for the next test, then fail
    t.same(left, [], 'killing unshare alone kills everything inside');
    t.same(mountsMentioning(cached!.h.dir), []);
  });
}
