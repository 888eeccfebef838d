// Provisions under stress (npm run test:slow: they download): two provisions of the same thing at once with one
// cache (the second waits, saying so, then reuses the result), and a provision killed mid-way (the next one takes
// over the dead owner's lock, removes its temporaries and completes). Each uses its own cache seeded with the
// private apt state test/slow/prepare.mjs left in the test cache.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from '../../src/cli.ts';
import { ALLOCATORS, allocatorLib } from '../../adapters/preload.ts';
import { fm, seededCache } from '../robust-helpers.ts';

const BIN = path.join(REPO, 'bin/forkmatrix.mjs');
// a provision from a fresh cache first rebuilds apt's package cache: minutes on a loaded machine
t.setTimeout(900_000);
const NO_APT = 'no private apt state in the test cache to copy (npm run test:slow provisions it first: test/slow/prepare.mjs)';

const exited = (p: ChildProcess) => new Promise<void>((res) => (p.exitCode != null || p.signalCode ? res() : p.on('exit', () => res())));

const provCache = seededCache('concurrency');
t.test('two provisions of the same thing at once with one cache: one waits, then reuses', { skip: provCache ? false : NO_APT }, async (t) => {
  const cache = provCache!;
  const [a, b] = await Promise.all([fm(['provision', 'allocators', '--cache', cache]), fm(['provision', 'allocators', '--cache', cache])]);
  t.equal(a.code, 0, a.stderr);
  t.equal(b.code, 0, b.stderr);
  const both = a.stderr + b.stderr;
  t.match(both, /waiting: another forkmatrix \(pid \d+, since [^)]+\) is provisioning the allocators/, 'the second one says it waits, and for whom');
  for (const al of ALLOCATORS) {
    const got = allocatorLib(cache, al);
    t.ok(got && existsSync(got.lib), `${al.name}: complete (${got?.lib})`);
    t.equal((both.match(new RegExp(`allocators: downloading ${al.pkg}/`, 'g')) ?? []).length, 1, `${al.name}: downloaded once`);
    t.match(both, new RegExp(`allocators: ${al.name} \\S+ already in `), `${al.name}: the second provision reused the first one's`);
    const dirs = readdirSync(path.join(cache, 'allocators', al.name));
    t.same(dirs.filter((d) => d.includes('.tmp-')), [], `${al.name}: no temporary left`);
  }
  t.same(readdirSync(path.join(cache, 'locks')).filter((f) => f.endsWith('.lock')), [], 'no lock left behind');
});

const intCache = seededCache('interrupt');
t.test('SIGKILL of `provision allocators` mid-way, then provision again', { skip: intCache ? false : NO_APT }, async (t) => {
  const cache = intCache!;
  const base = path.join(cache, 'allocators');
  const p = spawn(process.execPath, [BIN, 'provision', 'allocators', '--cache', cache], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (b) => (err += b));
  // kill it as soon as it is in the middle of something: a download folder, an unpack temporary, or its second package
  const t0 = Date.now();
  const busy = () => {
    const all: string[] = [];
    for (const a of ALLOCATORS) all.push(...(existsSync(path.join(base, a.name)) ? readdirSync(path.join(base, a.name)) : []));
    return (existsSync(base) && readdirSync(base).some((f) => f.startsWith('.debs-'))) || all.some((f) => f.includes('.tmp-'));
  };
  while (!busy() && p.exitCode == null && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 5));
  p.kill('SIGKILL');
  await exited(p);
  t.equal(p.signalCode, 'SIGKILL', `killed mid-way (${Date.now() - t0} ms in)`);
  // nothing incomplete may look complete: every entry is whole (forkmatrix.json and its library) or absent
  for (const a of ALLOCATORS) {
    const d = path.join(base, a.name);
    for (const e of existsSync(d) ? readdirSync(d).filter((f) => !f.startsWith('.') && !f.includes('.tmp-')) : []) {
      const meta = JSON.parse(readFileSync(path.join(d, e, 'forkmatrix.json'), 'utf8'));
      t.ok(existsSync(path.join(d, e, meta.lib)), `${a.name}/${e} is complete`);
    }
  }
  const again = await new Promise<{ code: number | null; err: string }>((res) => {
    const q = spawn(process.execPath, [BIN, 'provision', 'allocators', '--cache', cache], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    let e = '';
    q.stderr!.on('data', (b) => (e += b));
    q.on('close', (code) => res({ code, err: e }));
  });
  t.equal(again.code, 0, again.err);
  for (const a of ALLOCATORS) {
    t.ok(allocatorLib(cache, a), `${a.name}: provisioned`);
    t.same(readdirSync(path.join(base, a.name)).filter((f) => f.includes('.tmp-')), [], `${a.name}: no dead temporary left`);
  }
});
