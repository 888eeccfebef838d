// The provisioned glibc 2.41 copy and the allocators (npm run test:slow: real downloads into the test cache), real
// forks, tiny budgets. The glibc adapter's checks that need no download are in test/adapter-glibc.test.ts.
import { mkdirSync, readdirSync, realpathSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { CACHE, runCases, passedOrShort, processesMentioning, tmp } from '../helpers.ts';
import { which } from '../../adapters/host.ts';
import { debianTrees, glibcAdapter, hostGlibc } from '../../adapters/glibc.ts';
import { preloadAdapter } from '../../adapters/preload.ts';
import { allocatorsProvisioner } from '../../provision/allocators.ts';
import { glibcProvisioner } from '../../provision/glibc.ts';
import { capture } from '../../src/proc.ts';
import type { AdapterOptions, CellResult } from '../../src/types.ts';

// a cold cache downloads the package lists once (minutes on a slow mirror); later runs take seconds
t.setTimeout(900_000);

const opts = (extra: Partial<AdapterOptions> = {}): AdapterOptions => ({ cacheDir: CACHE, extraRuntimes: [], preload: [], libc: [], ...extra });
const host = hostGlibc();



// Provisioning (downloads only; idempotent: a warm cache makes this a no-op)
const provisionLog: string[] = [];
async function provisionAll(): Promise<string | false> {
  if (!host) return 'the host libc is not glibc';
  if (host.version === '2.41') return 'this host runs glibc 2.41 itself: the host environment covers it';
  try {
    await glibcProvisioner.provision(['glibc'], opts(), (l) => provisionLog.push(l));
    await allocatorsProvisioner.provision(['allocators'], opts(), (l) => provisionLog.push(l));
  } catch (e) {
    return `could not provision glibc/allocators (Debian mirror unreachable?): ${(e as Error).message}`;
  }
  return debianTrees(CACHE).some((x) => x.version === '2.41') ? false : `glibc 2.41 did not provision: ${provisionLog.join('; ')}`;
}
const notProvisioned = await provisionAll();

t.test('provisioned: glibc 2.41 and allocators run real cases and prove what ran', { skip: notProvisioned }, async (t) => {
  t.comment(provisionLog.join('\n'));
  if (!host) return;
  const tree = debianTrees(CACHE).find((x) => x.version === '2.41')!;

  const [g241] = (await glibcAdapter.environments(opts())).filter((e) => e.id === 'glibc-2.41');
  t.ok(g241, 'glibc-2.41 is offered');
  const py = g241.runtimes.find((r) => r.runtime === 'python');
  t.ok(py, `glibc-2.41 has a python copy (${JSON.stringify(g241.missing)})`);
  t.match(py?.executable, new RegExp(`/glibc/2\\.41/runtimes/python-`), 'the python copy lives in the cache');
  const pe = await preloadAdapter.environments(opts());
  const jem = pe.find((e) => e.id === `glibc-${host.version}+jemalloc`)!;
  t.ok(jem, `glibc-${host.version}+jemalloc is offered`);
  t.match(jem.env, { LD_PRELOAD: /libjemalloc\.so\.2$/ });
  t.ok(pe.some((e) => e.id === 'glibc-2.41+mimalloc') && pe.some((e) => e.id === 'glibc-2.41+tcmalloc'), 'every glibc environment gets every allocator');

  const r = await runCases('test/fixtures/verdicts', ['libc'], ['passes', 'hangs'], [g241, jem]);
  t.same(r.problems, [], 'both environments proved');
  for (const env of ['glibc-2.41', jem.id]) {
    const pass = r.cell(env, 'libc/verdicts/passes');
    const p = passedOrShort(pass);
    t.ok(p.ok, `${env}: the passing case has no failure (${p.why})`);
    t.ok(pass.forks > 0 && pass.counts.ok === pass.forks, `${env}: every fork was ok`);
    const hang = r.cell(env, 'libc/verdicts/hangs');
    t.match(hang, { verdict: 'fail', kind: 'hang' }, `${env}: the hanging case hangs`);
    t.ok(hang.counts.hang >= 1);
    t.match(String(hang.first_failure?.diag?.wchan ?? '') + String(hang.first_failure?.diag?.gdb ?? ''), /\w/, `${env}: wchan or gdb says where it hung`);
  }
  const p241 = r.cell('glibc-2.41', 'libc/verdicts/passes').libc!;
  t.match(p241, { name: 'glibc', version: '2.41', banner: /GNU C Library .*version 2\.41/ });
  t.equal(realpathSync(p241.path), realpathSync(tree.libc), 'the proof is the unpacked libc.so.6');
  const gdb = String(r.cell('glibc-2.41', 'libc/verdicts/hangs').first_failure?.diag?.gdb ?? '');
  if (which('gdb')) t.match(gdb, /fm_child .*verdicts\.yaml:\d+/, 'gdb names the case\'s own frame (the program is a patched copy, not ld.so)');
  const pj = r.cell(jem.id, 'libc/verdicts/passes').libc as CellResult['libc'] & { preloaded?: string[] };
  t.match(pj, { name: 'glibc', version: host.version, banner: /\+ LD_PRELOAD .*libjemalloc\.so\.2 \(mapped\)/ });
  t.match(pj.preloaded, [/libjemalloc\.so\.2$/], 'the proof shows jemalloc mapped');

  const rp = await runCases('test/fixtures/verdicts', ['python'], ['passes'], [g241]);
  const pc = rp.cell('glibc-2.41', 'python/verdicts/passes');
  t.ok(passedOrShort(pc).ok, passedOrShort(pc).why);
  t.equal(pc.runtime_executable, py!.executable);
  t.match(pc.libc, { name: 'glibc', version: '2.41' });
  // the copy's children by sys.executable stay on 2.41
  const child = capture(py!.executable, ['-c', 'import os, subprocess, sys; print(subprocess.run([sys.executable, "-c", "import os; print(os.confstr(\'CS_GNU_LIBC_VERSION\'))"], capture_output=True, text=True).stdout.strip())'], {
    env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', ...g241.env },
  });
  t.equal(child.stdout.trim(), 'glibc 2.41', 'a child started by sys.executable runs on glibc 2.41 too');

  t.same(processesMentioning(r.out), [], 'no process of the runs is left');
  t.same(processesMentioning(rp.out), []);
});

t.test('--libc PATH: an install dir laid out from the 2.41 tree is glibc-2.41+local', { skip: notProvisioned }, async (t) => {
  const tree = debianTrees(CACHE).find((x) => x.version === '2.41')!;
  const pfx = tmp('fm-libc-inst-');
  mkdirSync(path.join(pfx, 'lib'));
  for (const f of readdirSync(tree.dirs[0])) symlinkSync(path.join(tree.dirs[0], f), path.join(pfx, 'lib', f));
  const envs = await glibcAdapter.environments(opts({ libc: [pfx] }));
  const local = envs.find((e) => e.id === 'glibc-2.41+local')!;
  t.ok(local, 'the install dir is an environment named by its proved version');
  t.match(await local.probe(), { name: 'glibc', version: '2.41' });
  const r = await runCases('test/fixtures/verdicts', ['libc'], ['passes'], [local]);
  const lp = r.cell('glibc-2.41+local', 'libc/verdicts/passes');
  t.ok(passedOrShort(lp).ok, passedOrShort(lp).why);
  t.match(lp, { libc: { version: '2.41' } });
  t.same(processesMentioning(r.out), []);
});
