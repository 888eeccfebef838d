// The glibc adapter (Debian's trixie/sid glibc run on this host, --libc PATH), allocators and --preload: real
// downloads (Debian packages, seconds with fresh package lists), real forks, tiny budgets.
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { CACHE, runCases, tmp } from './helpers.ts';
import { which } from '../adapters/host.ts';
import { classifyLocal, compareVersions, glibcAdapter, glibcNeeds, hostGlibc, refuseOlder } from '../adapters/glibc.ts';
import { checkPreload, preloadAdapter, preloadName } from '../adapters/preload.ts';
import { capture } from '../src/proc.ts';
import type { AdapterOptions } from '../src/types.ts';

// a cold cache downloads the package lists once (minutes on a slow mirror); later runs take seconds
t.setTimeout(900_000);

const opts = (extra: Partial<AdapterOptions> = {}): AdapterOptions => ({ cacheDir: CACHE, extraRuntimes: [], preload: [], libc: [], ...extra });
const host = hostGlibc();


t.test('version needs: a glibc older than a binary\'s newest GLIBC_x.y is refused with the reason', async (t) => {
  const need = glibcNeeds(['/bin/cat']);
  t.match(need.newest, /^2\.\d+$/, '/bin/cat asks for GLIBC_2.x symbol versions');
  const [maj, min] = need.newest!.split('.').map(Number);
  const older = `${maj}.${min - 1}`;
  t.match(refuseOlder(['/bin/cat'], older, "this host's binaries"), new RegExp(`glibc ${older} is older than this host's binaries: /bin/cat needs GLIBC_${need.newest}`));
  t.equal(refuseOlder(['/bin/cat'], need.newest!), null, 'the version it needs is enough');
  t.equal(refuseOlder(['/bin/cat'], '9.99'), null, 'a newer glibc is enough');
  if (host && compareVersions(host.version, '2.34') >= 0) {
    // bullseye's 2.31 cannot run binaries built on glibc >= 2.34 (__libc_start_main@GLIBC_2.34)
    const st = await glibcAdapter.status(opts());
    t.match(st.find((s) => s.id === 'glibc-2.31'), { state: 'impossible', detail: /older than this host's binaries: .* needs GLIBC_2\.3\d/ });
  }
});

t.test('--preload: a missing file, a non-library and a library that does not load are refused', async (t) => {
  const dir = tmp('fm-preload-');
  await t.rejects(preloadAdapter.environments(opts({ preload: [path.join(dir, 'nope.so')] })), /--preload .*nope\.so: no such file/);
  writeFileSync(path.join(dir, 'libjunk.so'), 'not a library\n');
  await t.rejects(preloadAdapter.environments(opts({ preload: [path.join(dir, 'libjunk.so')] })), /not a loadable shared object \(not an ELF file\)/);
  t.throws(() => checkPreload('/bin/cat'), /a program \(position-independent executable\), not a shared library/);
  t.equal(preloadName('/x/libjemalloc.so.2'), 'jemalloc');
  t.equal(preloadName('/x/hook.so'), 'hook');
});

const cc = which('cc') ?? which('gcc');
t.test('--preload: a library that does not load fails its proof and is left out', { skip: !cc || !host ? 'no C compiler or no glibc host to build a library with a missing dependency' : false }, async (t) => {
  if (!cc || !host) return;
  const dir = tmp('fm-preload-');
  // an ELF shared object that is fine on disk but cannot load: its dependency is gone
  writeFileSync(path.join(dir, 'dep.c'), 'int fm_dep(void) { return 1; }\n');
  writeFileSync(path.join(dir, 'hook.c'), 'int fm_dep(void); int fm_hook(void) { return fm_dep(); }\n');
  t.equal(capture(cc, ['-shared', '-fPIC', path.join(dir, 'dep.c'), '-o', path.join(dir, 'libfmdep.so')]).code, 0);
  t.equal(capture(cc, ['-shared', '-fPIC', path.join(dir, 'hook.c'), `-L${dir}`, '-lfmdep', '-o', path.join(dir, 'libfmhook.so')]).code, 0);
  capture('rm', [path.join(dir, 'libfmdep.so')]);
  const envs = await preloadAdapter.environments(opts({ preload: [path.join(dir, 'libfmhook.so')] }));
  const e = envs.find((x) => x.id === `glibc-${host.version}+fmhook`)!;
  t.ok(e, 'the environment is offered');
  await t.rejects(e.probe(), /libfmdep\.so: cannot open shared object file/, 'its probe fails with the loader\'s words');
  // and run() leaves it out with that error instead of making a wrong column
  const r = await runCases('test/fixtures/verdicts', ['libc'], ['passes'], [e]);
  t.equal(r.cells.length, 0, 'no cell ran in it');
  t.match(r.problems.join('\n'), /environment glibc-[\d.]+\+fmhook: .*libfmdep\.so/);
});

t.test('--libc: a path that is neither glibc nor musl is refused', async (t) => {
  const dir = tmp('fm-libc-');
  await t.rejects(glibcAdapter.environments(opts({ libc: [dir] })), /--libc .*: not a glibc build tree .* nor a glibc install dir/);
  await t.rejects(glibcAdapter.environments(opts({ libc: [path.join(dir, 'absent')] })), /no such directory/);
});

const musl = '/lib/x86_64-linux-musl/libc.so';
t.test('--libc: a musl prefix is left to the musl adapter', { skip: existsSync(musl) ? false : `no ${musl} on this host to lay out a musl prefix (apt-get install musl)` }, async (t) => {
  const dir = tmp('fm-libc-');
  const pfx = path.join(dir, 'musl');
  mkdirSync(path.join(pfx, 'lib'), { recursive: true });
  mkdirSync(path.join(pfx, 'include'));
  symlinkSync(musl, path.join(pfx, 'lib', 'libc.so'));
  t.match(classifyLocal(pfx, CACHE), { kind: 'musl' });
  t.same(await glibcAdapter.environments(opts({ libc: [pfx] })).then((es) => es.filter((e) => e.id.endsWith('+local'))), []);
});
