// The musl adapter for real: Debian's musl 1.2.2/1.2.3/1.2.5 unpacked without root into the shared cache, C cases
// compiled once against 1.2.2 and run through each version's loader, every cell's libc proved from the harness's
// own mappings; --libc PATH for a musl prefix; a non-musl PATH refused.
import t from 'tap';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadSuite, selectCases } from '../../src/cases.ts';
import { REPO } from '../../src/cli.ts';
import { run } from '../../src/run.ts';
import type { AdapterOptions, CaseDef, Environment } from '../../src/types.ts';
import { debugBuild, debugMuslDir, elfInterpreter, installedVersions, muslAdapter, muslDir, muslPrefix, type MuslInfo } from '../../adapters/musl.ts';
import { muslDebugCompare } from '../../provision/musl-debug.ts';
import { muslProvisioner } from '../../provision/musl.ts';
import { backtraceSummary } from '../../src/matrix.ts';
import { capture } from '../../src/proc.ts';
import { CACHE, processesMentioning, tmp } from '../helpers.ts';

// A fresh cache updates the private apt lists (about a minute) before the downloads; then each version's -g build
// (measured 5-15 min on a loaded 2-core machine, once per cache).
t.setTimeout(900_000);

const opts = (extra: Partial<AdapterOptions> = {}): AdapterOptions => ({ cacheDir: CACHE, extraRuntimes: [], preload: [], libc: [], ...extra });

// Why the tests that need the provisioned versions skip (false: they run).
const notProvisioned: string | false = await muslProvisioner
  .provision(['musl'], opts(), () => {})
  .then(() => false as const)
  .catch((e: Error) => `musl could not be provisioned here: ${e.message}`);
const needs = { skip: notProvisioned };
// the -g builds take 6-14 min per version: built by `provision musl-debug`, never by the tests
const noDebug: string | false = notProvisioned || (installedVersions(CACHE).some((m) => ['1.2.2', '1.2.3', '1.2.5'].includes(m.version) && !debugBuild(CACHE, m))
  ? 'no -g builds of musl in the cache (npx forkmatrix provision musl-debug: 6-14 min per version on 2 cores)' : false);
const needsDebug = { skip: noDebug };
/** The loader a version's environment runs: its -g build when there is one, else Debian's. */
const loaderDir = (v: string) => (installedVersions(CACHE).some((m) => m.version === v && debugBuild(CACHE, m)) ? debugMuslDir(CACHE, v) : path.join(muslDir(CACHE), v));

async function cases(dir: string, ids: string[]): Promise<CaseDef[]> {
  const suite = await loadSuite(REPO, path.join(REPO, dir));
  return selectCases(suite.cases, ['libc'], ids).filter((c) => !suite.problems.some((p) => p.file === c.file));
}

/** The control case of suites/libc (qsort/strtod), or any control case there is. */
async function controlCase(): Promise<CaseDef | null> {
  const suite = await loadSuite(REPO);
  const ok = suite.cases.filter((c) => c.runtime === 'libc' && !suite.problems.some((p) => p.file === c.file));
  return ok.find((c) => c.id === 'control-qsort-strtod') ?? ok.find((c) => c.id.startsWith('control-')) ?? null;
}

t.test('provision musl: three versions, each named and proved by its own loader', needs, async (t) => {
  const installs = installedVersions(CACHE);
  const versions = installs.map((m) => m.version);
  for (const v of ['1.2.2', '1.2.3', '1.2.5']) t.ok(versions.includes(v), `musl ${v} is in ${muslDir(CACHE)}`);
  for (const m of installs.filter((x) => ['1.2.2', '1.2.3', '1.2.5'].includes(x.version))) {
    const info = JSON.parse(readFileSync(path.join(muslDir(CACHE), m.version, 'info.json'), 'utf8')) as MuslInfo;
    t.match(info, { version: m.version, banner: new RegExp(`musl libc.*Version ${m.version.replace(/\./g, '\\.')}`), packages: { musl: /^\d/, 'musl-dev': /^\d/ } });
  }

  const envs = await muslAdapter.environments(opts());
  const ids = envs.map((e) => e.id);
  for (const v of ['1.2.2', '1.2.3', '1.2.5']) t.ok(ids.includes(`musl-${v}`), `environment musl-${v}`);
  for (const e of envs.filter((x) => !x.id.includes('+'))) {
    const p = await e.probe();
    t.match(p, { name: 'musl', version: e.expect.version }, `${e.id}: the probe mapped ${p.path}`);
    t.ok(p.path.startsWith(muslDir(CACHE)), `${e.id}: the libc is the cache's, not the host's`);
    const cc = e.runtimes.find((r) => r.runtime === 'libc');
    t.match(cc, { version: /^gcc \d+\.\d+\.\d+ \+ musl 1\.2\.2 headers$/, executable: path.join(muslDir(CACHE), '1.2.2', 'bin', 'musl-gcc') }, `${e.id}: compiled against the oldest musl`);
    // a musl-linked python is either built (provision musl-python) and used, or missing with the command that builds it
    const py = e.runtimes.find((r) => r.runtime === 'python');
    if (py) t.match(py.executable, /musl-(runtimes|python)/, `${e.id}: the musl-linked python is used`);
    else t.match(e.missing.find((m) => m.runtime === 'python')?.reason, /no musl-linked python \(npx forkmatrix provision musl-python\)/);
    t.match(e.missing.find((m) => m.runtime === 'node')?.reason, /no musl-linked node \(pass --runtime node=PATH/);
    const l = e.launch(['/bin/true', 'x'], { A: '1' });
    t.same(l, { command: path.join(loaderDir(e.expect.version!), 'lib', 'ld-musl-x86_64.so.1'), args: ['/bin/true', 'x'], env: { A: '1' } }, `${e.id}: launched through the loader of its -g build (else Debian's) with exactly the env given`);
  }

  // the toolchain uses a private kernel-header dir, never /usr/include itself
  const specs = readFileSync(path.join(muslDir(CACHE), '1.2.2', 'musl-gcc.specs'), 'utf8');
  t.match(specs, /-nostdinc /);
  t.notMatch(specs, /-I\s*\/usr\/include|-isystem \/usr\/include\b/);
  t.same(readdirSync(path.join(muslDir(CACHE), '1.2.2', 'kernel-include')).sort(), ['asm', 'asm-generic', 'linux']);

  // idempotent: a second provision downloads nothing
  const again: string[] = [];
  const t0 = Date.now();
  await muslProvisioner.provision(['musl'], opts(), (l) => again.push(l));
  t.ok(again.every((l) => !/downloading/.test(l)), `nothing downloaded again: ${again.join(' / ')}`);
  t.ok(Date.now() - t0 < 5000, 'and it is quick');
  const st = await muslAdapter.status(opts());
  for (const v of ['1.2.2', '1.2.3', '1.2.5']) t.match(st.find((s) => s.id === `musl-${v}`), { state: 'available' });
});

t.test('real cases under musl 1.2.2 and 1.2.5: real verdicts, each cell proved musl of its version', needs, async (t) => {
  const control = await controlCase();
  const fixture = await cases('test/fixtures/verdicts', ['passes', 'hangs']);
  const all = [...(control ? [control] : []), ...fixture];
  const envs = (await muslAdapter.environments(opts())).filter((e) => e.id === 'musl-1.2.2' || e.id === 'musl-1.2.5');
  t.equal(envs.length, 2);
  const out = tmp('fm-musl-');
  const r = await run({ repoDir: REPO, cacheDir: CACHE, outRoot: out, cases: all, environments: envs, budget: { kind: 'quick' }, jobs: 2, seed: 11, failFast: false });
  for (const e of envs) {
    const cell = (id: string) => r.cells.find((c) => c.env === e.id && c.case.endsWith('/' + id))!;
    if (control) {
      const c = cell(control.id);
      t.match(c, { verdict: 'pass', failures: 0 }, `${e.id}: ${control.key} passes (${c.reason ?? c.first_failure?.message ?? ''})`);
      t.ok(c.forks > 0, `${e.id}: ${c.forks} real forks`);
    } else t.comment('suites/libc has no control case yet: only the fixture cases ran');
    t.match(cell('passes'), { verdict: 'pass' }, `${e.id}: passes`);
    t.ok(cell('passes').counts.ok >= 300, `${e.id}: after ${cell('passes').counts.ok} forks (a pass needs 300)`);
    const hang = cell('hangs');
    t.match(hang, { verdict: 'fail', kind: 'hang', counts: { hang: 1 }, forks: 1 }, `${e.id}: hangs (a quick cell stops at its first failure)`);
    t.match(String(hang.first_failure?.diag?.wchan ?? '') + String(hang.first_failure?.diag?.gdb ?? ''), /\w/, `${e.id}: the hang was diagnosed`);
    for (const c of r.cells.filter((x) => x.env === e.id))
      t.match(c.libc, { name: 'musl', version: e.expect.version, path: new RegExp(`^${loaderDir(e.expect.version!)}/lib/libc\\.so$`) }, `${e.id} ${c.case}: libc proved (the -g build when there is one)`);
  }
  t.same(processesMentioning(out), [], 'no process of the run is left');
});

t.test('provision musl-debug builds each version from its Debian source with -g, and the environments run on that build', needsDebug, async (t) => {
  const st = await muslAdapter.status(opts());
  for (const m of installedVersions(CACHE).filter((x) => ['1.2.2', '1.2.3', '1.2.5'].includes(x.version))) {
    const dbg = debugBuild(CACHE, m);
    if (!dbg) {
      t.fail(`musl ${m.version}: no -g build in ${debugMuslDir(CACHE, m.version)}`);
      continue;
    }
    t.match(dbg.info, { version: m.version, debian: m.info!.packages.musl, cflags: '-O2 -g', banner: new RegExp(`Version ${m.version.replace(/\./g, '\\.')}`) }, `musl ${m.version}: built from Debian's ${dbg.info.debian} source (${dbg.info.source}) in ${dbg.info.build_seconds} s`);
    const libc = path.join(path.dirname(dbg.loader), 'libc.so');
    t.match(capture('readelf', ['-S', '-W', libc]).stdout, /\.debug_info/, `musl ${m.version}: the built libc.so has debug info`);
    t.notMatch(capture('readelf', ['-S', '-W', path.join(muslDir(CACHE), m.version, 'lib', 'libc.so')]).stdout, /\.debug_info/, `musl ${m.version}: Debian's is stripped`);
    // why the columns run on the build rather than lend its symbols to Debian's binary: not the same code
    const cmp = muslDebugCompare(path.join(muslDir(CACHE), m.version, 'lib', 'libc.so'), libc);
    t.notOk(cmp.same, `musl ${m.version}: .text differs (Debian ${cmp.debian} bytes, built here ${cmp.built})`);
    // ...but it is the same library: Debian's source with Debian's changes exports exactly what Debian's binary does
    t.same({ onlyDebian: cmp.onlyDebian, onlyBuilt: cmp.onlyBuilt }, { onlyDebian: [], onlyBuilt: [] }, `musl ${m.version}: the same exported symbols`);
    t.match(st.find((s) => s.id === `musl-${m.version}`)?.detail, /built here from Debian's source .* with -O2 -g/);
  }
});

// A child blocked inside musl: a normal mutex locked twice by the same thread waits forever in musl's futex wait.
const BLOCKS_IN_MUSL = `runtime: libc
family: musl-symbols
cases:
  - id: child-blocks-in-musl
    title: a child that locks a normal mutex twice (blocks inside musl's pthread_mutex_timedlock)
    promise: { level: guaranteed, cite: "test fixture" }
    parent:
      threads: 1
      loop: |
        usleep(100);
    child: |
      static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
      pthread_mutex_lock(&m);
      pthread_mutex_lock(&m);
      return 0;
    budget: { forks: 2, seconds: 5 }
    timeout: 300ms
`;

t.test('a musl hang is diagnosed with musl function names, not ?? ()', needsDebug, async (t) => {
  const gdb = capture('sh', ['-c', 'command -v gdb']).stdout.trim();
  if (!gdb) {
    t.comment('no gdb here (apt-get install gdb): nothing to check');
    return;
  }
  const dir = tmp('fm-musl-sym-');
  mkdirSync(path.join(dir, 'libc'));
  writeFileSync(path.join(dir, 'libc', 'musl-symbols.yaml'), BLOCKS_IN_MUSL);
  const suite = await loadSuite(REPO, dir);
  t.same(suite.problems, [], 'the fixture case is valid');
  const envs = (await muslAdapter.environments(opts())).filter((e) => e.id === 'musl-1.2.2' || e.id === 'musl-1.2.5');
  const out = tmp('fm-musl-');
  const r = await run({ repoDir: REPO, cacheDir: CACHE, outRoot: out, cases: suite.cases, environments: envs, budget: { kind: 'quick' }, jobs: 1, seed: 3, failFast: false });
  for (const e of envs) {
    const c = r.cells.find((x) => x.env === e.id)!;
    t.match(c, { verdict: 'fail', kind: 'hang', libc: { name: 'musl', version: e.expect.version } }, `${e.id}: hangs`);
    const bt = String(c.first_failure?.diag?.gdb ?? '');
    const stuck = bt.split(/^(?=Thread \d+ )/m).find((b) => /\bfm_child\b/.test(b)) ?? bt;
    t.match(stuck, /\b(__timedwait(_cp)?|__pthread_mutex_timedlock|pthread_mutex_timedlock)\b/, `${e.id}: gdb names musl's functions:\n${stuck.slice(0, 1200)}`);
    // the innermost frames are libc's: each named, with its musl source line (the case's own frame beyond them may
    // read ?? (): gdb cannot see a program that musl's loader, run as the command, mapped)
    const frames = stuck.split('\n').filter((l) => /^#\d+ /.test(l));
    const inLibc = frames.slice(0, frames.findIndex((l) => / in \?\? \(/.test(l)) >>> 0);
    t.ok(inLibc.length >= 3, `${e.id}: ${inLibc.length} named frames before any ?? ()`);
    t.match(inLibc.join('\n'), /pthread_mutex_timedlock \(.*\) at src\/thread\/pthread_mutex_timedlock\.c:\d+/, `${e.id}: with musl's source lines`);
    t.match(backtraceSummary(c), /__timedwait|pthread_mutex_timedlock/, `${e.id}: stuck in: ${backtraceSummary(c)}`);
  }
  t.same(processesMentioning(out), [], 'no process of the run is left');
});

t.test('--libc PATH: a musl install prefix (symlinks to the 1.2.5 tree) is musl-1.2.5+local', needs, async (t) => {
  const src = path.join(muslDir(CACHE), '1.2.5');
  const prefix = path.join(tmp('fm-musl-prefix-'), 'prefix');
  mkdirSync(path.join(prefix, 'lib'), { recursive: true });
  for (const f of readdirSync(path.join(src, 'lib'))) symlinkSync(path.join(src, 'lib', f), path.join(prefix, 'lib', f));
  symlinkSync(path.join(src, 'include'), path.join(prefix, 'include'));

  t.match(muslPrefix(prefix), { version: '1.2.5', kind: 'prefix', libc: path.join(prefix, 'lib', 'libc.so') });
  const envs = await muslAdapter.environments(opts({ libc: [prefix] }));
  const local = envs.find((e) => e.id === 'musl-1.2.5+local') as Environment;
  t.ok(local, `environment musl-1.2.5+local among ${envs.map((e) => e.id).join(', ')}`);
  t.same(local.launch(['/bin/true'], {}).command, path.join(prefix, 'lib', 'libc.so'), 'programs run through PATH/lib/libc.so');
  const cc = local.runtimes.find((r) => r.runtime === 'libc')!;
  // the toolchain made for this temporary prefix is of no use after the test
  t.teardown(() => rmSync(path.dirname(path.dirname(cc.executable)), { recursive: true, force: true }));
  t.match(cc.version, new RegExp(`\\+ musl 1\\.2\\.5 headers from ${prefix}$`), 'compiled against the prefix');
  const specs = readFileSync(path.join(path.dirname(path.dirname(cc.executable)), 'musl-gcc.specs'), 'utf8');
  t.match(specs, `-isystem ${path.join(prefix, 'include')}`);
  t.match(specs, `-dynamic-linker ${path.join(prefix, 'lib', 'libc.so')}`);
  t.match(await local.probe(), { name: 'musl', version: '1.2.5' });

  const out = tmp('fm-musl-');
  const r = await run({
    repoDir: REPO, cacheDir: CACHE, outRoot: out, cases: await cases('test/fixtures/verdicts', ['passes', 'hangs']), environments: [local],
    budget: { kind: 'quick' }, jobs: 2, seed: 5, failFast: false,
  });
  t.match(r.cells.find((c) => c.case.endsWith('/passes')), { env: 'musl-1.2.5+local', verdict: 'pass', libc: { name: 'musl', version: '1.2.5' } });
  t.match(r.cells.find((c) => c.case.endsWith('/hangs')), { env: 'musl-1.2.5+local', verdict: 'fail', kind: 'hang', libc: { name: 'musl', version: '1.2.5' } });
  t.same(processesMentioning(out), [], 'no process of the run is left');
});

t.test('a --libc PATH that is not musl is refused with a clear message; a glibc dir is left to its adapter', async (t) => {
  const base = tmp('fm-musl-notmusl-');
  const empty = path.join(base, 'empty');
  mkdirSync(empty);
  await t.rejects(muslAdapter.environments(opts({ libc: [empty] })), /--libc .*empty: not a musl prefix: .*lib\/libc\.so does not exist; expected a musl install prefix/);

  const fake = path.join(base, 'fake');
  mkdirSync(path.join(fake, 'lib'), { recursive: true });
  mkdirSync(path.join(fake, 'include'));
  writeFileSync(path.join(fake, 'lib', 'libc.so'), '#!/bin/sh\necho "I am some other libc"\n');
  chmodSync(path.join(fake, 'lib', 'libc.so'), 0o755);
  await t.rejects(muslAdapter.environments(opts({ libc: [fake] })), /not a musl prefix: .*libc\.so is not musl's loader \(run, it said: "I am some other libc"\)/);
  t.throws(() => muslPrefix(path.join(base, 'nowhere')), /no such directory/);
  const st = await muslAdapter.status(opts({ libc: [fake] }));
  t.match(st.find((s) => s.id === 'musl+local'), { state: 'impossible', detail: /not a musl prefix/ });

  // a glibc install dir is the glibc adapter's business: no error, no musl environment
  const glibc = path.join(base, 'glibc');
  mkdirSync(path.join(glibc, 'lib'), { recursive: true });
  const hostLibc = ['/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/libc.so.6', '/lib64/libc.so.6'].find((f) => existsSync(f));
  if (!hostLibc) return t.end();
  symlinkSync(hostLibc, path.join(glibc, 'lib', 'libc.so.6'));
  const envs = await muslAdapter.environments(opts({ libc: [glibc] }));
  t.notOk(envs.some((e) => e.id.endsWith('+local')), 'no +local environment from a glibc dir');
});

t.test('--runtime node=PATH: a glibc-linked node is named as such, not used', async (t) => {
  t.match(elfInterpreter('/bin/sh'), /ld-linux/, 'PT_INTERP read from the ELF headers');
  t.equal(elfInterpreter(path.join(REPO, 'package.json')), null, 'no ELF, no interpreter');
  if (notProvisioned) return t.end();
  const node = process.execPath;
  const [e] = (await muslAdapter.environments(opts({ extraRuntimes: [{ runtime: 'node', path: node }] }))).filter((x) => x.id === 'musl-1.2.5');
  t.notOk(e.runtimes.some((r) => r.runtime === 'node'), 'no node runtime');
  t.match(e.missing.find((m) => m.runtime === 'node')?.reason, new RegExp(`no musl-linked node: ${node} is linked for .*ld-linux`));
});
