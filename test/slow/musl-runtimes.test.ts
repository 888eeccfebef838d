// Python and Ruby linked against musl: the recipe's pieces without building anything heavy (the fetch plan and the
// versions it resolves, the CC wrapper, the toolchain's private include layout, the cache key, the libc proof), and,
// when `npx forkmatrix provision musl-python musl-ruby` has left builds in the cache, real cases on musl-1.2.5.
import t from 'tap';
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadSuite, selectCases } from '../../src/cases.ts';
import { REPO } from '../../src/cli.ts';
import { run } from '../../src/run.ts';
import type { AdapterOptions } from '../../src/types.ts';
import { installedVersions, muslAdapter, muslDir, muslRuntimeCandidates } from '../../adapters/musl.ts';
import {
  buildInfoFile, buildStatus, buildToolchain, DEPENDENCY_SOURCES, muslRuntimesAdapter, proveFromMaps, proveHarnessLibc, type BuildInfo,
  type BuildToolchain,
} from '../../adapters/musl-runtimes.ts';
import { fetchSources, quiltSeries } from '../../provision/debian-source.ts';
import { libuvProvisioner } from '../../provision/libuv.ts';
import { fetchPlan, fixPyexpat, muslRuntimesProvisioner, MUSL_RUNTIME_PROVISION_NAMES } from '../../provision/musl-runtimes.ts';
import { buildKey, ccWrapperText, keyHash, toolchainProblems } from '../../provision/musl-runtimes-build.ts';
import { symbolGaps } from '../../provision/musl-runtimes-smoke.ts';
import { ensureLibuv, libuvSource, uvHeaderVersion } from '../../runners/libuv/index.ts';
import { CACHE, processesMentioning, tmp } from '../helpers.ts';

t.setTimeout(600_000);

const opts = (extra: Partial<AdapterOptions> = {}): AdapterOptions => ({ cacheDir: CACHE, extraRuntimes: [], preload: [], libc: [], ...extra });
const musl = installedVersions(CACHE);
const has125 = musl.some((m) => m.version === '1.2.5');
const noMusl = musl.length ? false : 'no musl provisioned in the cache (npx forkmatrix provision musl)';

t.test('the source fetch plan: Debian bookworm sources, the dependencies first', async (t) => {
  t.same(MUSL_RUNTIME_PROVISION_NAMES, ['musl-python', 'musl-ruby', 'libuv']);
  t.same(fetchPlan('python'), ['zlib/bookworm', 'libffi/bookworm', 'python3.11/bookworm']);
  t.same(fetchPlan('ruby'), ['zlib/bookworm', 'libffi/bookworm', 'ruby3.1/bookworm']);
});

t.test('fetching a source resolves its Debian version (zlib: small)', { skip: noMusl || (existsSync(path.join(CACHE, 'apt', 'updated')) ? false : 'the private apt lists are not there yet (npx forkmatrix provision musl)') }, async (t) => {
  const [z] = fetchSources(CACHE, DEPENDENCY_SOURCES.filter((s) => s.pkg === 'zlib'), () => {});
  t.equal(z.pkg, 'zlib');
  t.match(z.version, /^1\.\d+\.\d+[\w.]*-\d+/, `zlib ${z.version}`);
  t.ok(existsSync(z.dsc), z.dsc);
  // and again: apt keeps what it has, the answer is the same
  const [again] = fetchSources(CACHE, DEPENDENCY_SOURCES.filter((s) => s.pkg === 'zlib'), () => {});
  t.same(again, z);
});

t.test('quilt series and the pyexpat fix', async (t) => {
  t.same(quiltSeries('# comment\na.diff\n\nb.patch -p0\nc.diff # why\n'), [
    { patch: 'a.diff', strip: 1 }, { patch: 'b.patch', strip: 0 }, { patch: 'c.diff', strip: 1 },
  ]);
  const src = tmp('fm-mr-py-');
  mkdirSync(path.join(src, 'Modules'));
  const f = path.join(src, 'Modules', 'pyexpat.c');
  writeFileSync(f, '#include "Python.h"\n#include "pycore_ceval.h"\n');
  t.equal(fixPyexpat(src), true);
  t.match(readFileSync(f, 'utf8'), /^#ifndef Py_BUILD_CORE_BUILTIN\n#  define Py_BUILD_CORE_MODULE 1\n#endif\n/);
  t.equal(fixPyexpat(src), false, 'only once');
});

t.test('the CC wrapper answers -print-multiarch and --print-multiarch with the musl triplet', async (t) => {
  const dir = tmp('fm-mr-cc-');
  const fakeCc = path.join(dir, 'musl-gcc');
  writeFileSync(fakeCc, '#!/bin/sh\necho "real cc: $*"\n');
  chmodSync(fakeCc, 0o755);
  const w = path.join(dir, 'cc');
  writeFileSync(w, ccWrapperText(fakeCc));
  chmodSync(w, 0o755);
  for (const a of ['-print-multiarch', '--print-multiarch']) t.equal(spawnSync(w, [a], { encoding: 'utf8' }).stdout, 'x86_64-linux-musl\n', a);
  t.equal(spawnSync(w, ['-c', 'x.c', '--print-multiarch'], { encoding: 'utf8' }).stdout, 'real cc: -c x.c --print-multiarch\n', 'anything else goes to the toolchain');
});

t.test('the toolchain: the oldest musl, musl headers plus a private kernel-include dir, never /usr/include', { skip: noMusl }, async (t) => {
  const tc = buildToolchain(CACHE)!;
  t.equal(tc.musl, musl[0].version, `built against the oldest musl (${tc.musl})`);
  t.match(tc.gcc, /^gcc \d+\.\d+/);
  t.same(toolchainProblems(tc), []);

  // a broken layout is named
  const dir = tmp('fm-mr-tc-');
  mkdirSync(path.join(dir, 'kernel-include'));
  symlinkSync('/usr/include/linux', path.join(dir, 'kernel-include', 'linux'));
  writeFileSync(path.join(dir, 'musl-gcc.specs'), '*cc1:\n-I/usr/include\n');
  const bad: BuildToolchain = { ...tc, dir };
  const problems = toolchainProblems(bad).join('\n');
  t.match(problems, /lacks -nostdinc/);
  t.match(problems, /puts \/usr\/include on the include path/);
  t.match(problems, /kernel-include\/asm-generic is not a symlink/);
  t.match(problems, /kernel-include\/asm is not a symlink/);
  t.notMatch(problems, /kernel-include\/linux is not/);
});

t.test('the cache key changes with the sources and with the toolchain, not with their order', async (t) => {
  const tc = { musl: '1.2.2', muslDev: '1.2.2-1', gcc: 'gcc 12.2.0' };
  const src = { zlib: '1.2.13.dfsg-1', libffi: '3.4.4-1', 'python3.11': '3.11.2-6+deb12u8' };
  const k = keyHash(buildKey('python', src, tc));
  t.equal(keyHash(buildKey('python', { 'python3.11': src['python3.11'], libffi: '3.4.4-1', zlib: src.zlib }, tc)), k, 'order does not matter');
  t.not(keyHash(buildKey('python', src, { ...tc, musl: '1.2.3', muslDev: '1.2.3-1' })), k, 'another musl');
  t.not(keyHash(buildKey('python', src, { ...tc, gcc: 'gcc 14.2.0' })), k, 'another gcc');
  t.not(keyHash(buildKey('python', { ...src, 'python3.11': '3.11.2-6+deb12u9' }, tc)), k, 'a new Debian revision');
  t.not(keyHash(buildKey('ruby', src, tc)), k, 'another runtime');

  // status: a build keyed with another toolchain is stale (provisionable), the same one available
  const cache = tmp('fm-mr-cache-');
  const buildDir = path.join(cache, 'musl-runtimes', 'builds', 'python-x');
  mkdirSync(path.join(buildDir, 'bin'), { recursive: true });
  writeFileSync(path.join(buildDir, 'bin', 'python3'), '');
  symlinkSync('builds/python-x', path.join(cache, 'musl-runtimes', 'python'));
  const info: BuildInfo = {
    runtime: 'python', key: buildKey('python', src, tc), hash: k, dir: buildDir, executable: path.join(buildDir, 'bin', 'python3'), version: '3.11.2',
    modules: { zlib: true, _ssl: false }, verified: { '1.2.2': '/x/libc.so' }, built: '', build_seconds: 1,
  };
  writeFileSync(buildInfoFile(cache, 'python'), JSON.stringify(info));
  t.equal(muslRuntimeCandidates(cache, 'python')[0], path.join(cache, 'musl-runtimes', 'python', 'bin', 'python3'), 'the layout the musl adapter looks for');
  const tcFull: BuildToolchain = { ...tc, cc: '/x/musl-gcc', dir: '/x', loader: '/x/lib/ld-musl-x86_64.so.1' };
  t.match(buildStatus(cache, 'python', tcFull), { id: 'musl-python', state: 'available', detail: /python 3\.11\.2 linked against musl 1\.2\.2 .*without _ssl/ });
  t.match(buildStatus(cache, 'python', { ...tcFull, musl: '1.2.3' }), { state: 'provisionable', detail: /stale: built with musl 1\.2\.2 .*now musl 1\.2\.3.*npx forkmatrix provision musl-python/ });
  t.match(buildStatus(cache, 'ruby', tcFull), { id: 'musl-ruby', state: 'provisionable', detail: /npx forkmatrix provision musl-ruby/ });
  t.match(buildStatus(tmp('fm-mr-empty-'), 'python', null), { state: 'provisionable', detail: /provisions musl first.*npx forkmatrix provision musl-python/ });
  t.same(await muslRuntimesAdapter.environments(opts()), [], 'no environments of its own');
});

t.test('the libc is proved from what the process mapped, never from a label', { skip: has125 ? false : 'musl 1.2.5 is not provisioned (npx forkmatrix provision musl)' }, async (t) => {
  const libc = path.join(muslDir(CACHE), '1.2.5', 'lib', 'libc.so');
  t.match(proveHarnessLibc({ libc: { path: libc, self_reported: null } }, '1.2.5'), { name: 'musl', version: '1.2.5', path: libc });
  t.throws(() => proveHarnessLibc({ libc: { path: libc } }, '1.2.2'), /musl 1\.2\.5, not 1\.2\.2/);
  t.throws(() => proveHarnessLibc({ libc: null }), /no libc path/);
  const glibc = ['/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/libc.so.6'].find((f) => existsSync(f));
  if (glibc) t.throws(() => proveHarnessLibc({ libc: { path: glibc } }), /glibc .*not musl/);
  const maps = `7f0000000000-7f0000001000 r-xp 00000000 fe:00 42 ${libc}\n`;
  t.match(proveFromMaps(maps), { name: 'musl', version: '1.2.5' });
  t.equal(proveFromMaps('7f0-7f1 r-xp 0 0:0 0 [vdso]\n'), null);
});

// ------------------------------------------------------------------------------------------------------------------
// with the builds in the cache

const built = (rt: 'python' | 'ruby') => existsSync(muslRuntimeCandidates(CACHE, rt)[0]) && existsSync(buildInfoFile(CACHE, rt));
const needBuilds = !has125
  ? 'musl 1.2.5 is not provisioned (npx forkmatrix provision musl)'
  : !built('python') || !built('ruby')
    ? `no musl-linked ${[!built('python') && 'python', !built('ruby') && 'ruby'].filter(Boolean).join(' and ')} in ${path.join(CACHE, 'musl-runtimes')} (npx forkmatrix provision musl-python musl-ruby: minutes of compiling, not done by the tests)`
    : false;

t.test('the cached builds: available, found by the musl adapter, a second provision builds nothing', { skip: needBuilds }, async (t) => {
  const st = await muslRuntimesAdapter.status(opts());
  t.match(st.slice(0, 2), [{ id: 'musl-python', state: 'available' }, { id: 'musl-ruby', state: 'available' }]);
  const [e] = (await muslAdapter.environments(opts())).filter((x) => x.id === 'musl-1.2.5');
  for (const rt of ['python', 'ruby'] as const) {
    const info = JSON.parse(readFileSync(buildInfoFile(CACHE, rt), 'utf8')) as BuildInfo;
    t.ok(Object.keys(info.verified).includes('1.2.5'), `${rt} was smoke-tested on musl 1.2.5`);
    const r = e.runtimes.find((x) => x.runtime === rt);
    t.match(r, { version: info.version }, `musl-1.2.5 offers ${rt} ${info.version}`);
    t.ok(r?.executable.startsWith(path.join(CACHE, 'musl-runtimes')), `${r?.executable} is the cached build`);
  }
  // the symbol check: Debian's musl 1.2.3 exports no crypt_r, so Python's _crypt cannot load there (and nothing else)
  const py = JSON.parse(readFileSync(buildInfoFile(CACHE, 'python'), 'utf8')) as BuildInfo;
  const libcs = Object.fromEntries(musl.map((m) => [m.version, m.loader]));
  const gaps = symbolGaps(py.dir, py.executable, libcs);
  for (const [v, files] of Object.entries(gaps)) t.notOk(Object.keys(files).some((f) => f.startsWith('bin/')), `python itself links on musl ${v}`);
  if (libcs['1.2.3']) t.match(gaps['1.2.3'] ?? {}, { 'lib/python3.11/lib-dynload/_crypt.cpython-311-x86_64-linux-musl.so': ['crypt_r'] }, 'Debian 1.2.3 lacks crypt_r');

  const lines: string[] = [];
  const t0 = Date.now();
  await muslRuntimesProvisioner.provision(['musl-python', 'musl-ruby'], opts(), (l) => lines.push(l));
  t.match(lines.join('\n'), /python .* is up to date[\s\S]*ruby .* is up to date/);
  t.notMatch(lines.join('\n'), /configure|make|smoke/);
  t.ok(Date.now() - t0 < 120_000, `checked in ${Date.now() - t0} ms`);
});

t.test('real python and ruby cases on musl-1.2.5: real verdicts, the libc proved from the harness', { skip: needBuilds }, async (t) => {
  const suite = await loadSuite(REPO);
  const cases = [
    ...selectCases(suite.cases, ['python'], ['enumerate-only-current-thread']),
    ...selectCases(suite.cases, ['ruby'], ['thread-list-only-current']),
  ];
  t.equal(cases.length, 2, 'the two cases exist');
  const envs = (await muslAdapter.environments(opts())).filter((e) => e.id === 'musl-1.2.5');
  const out = tmp('fm-mr-run-');
  const r = await run({ repoDir: REPO, cacheDir: CACHE, outRoot: out, cases, environments: envs, budget: { kind: 'forks', forks: 30 }, jobs: 2, seed: 3, failFast: false });
  t.equal(r.cells.length, 2);
  for (const c of r.cells) {
    t.match(c.verdict, /^(pass|fail|inconclusive)$/, `${c.case}: a real verdict (${c.verdict}${c.reason ? `: ${c.reason}` : ''})`);
    t.ok(c.forks > 0, `${c.case}: ${c.forks} forks`);
    t.match(c.libc, { name: 'musl', version: '1.2.5', path: path.join(muslDir(CACHE), '1.2.5', 'lib', 'libc.so') }, `${c.case}: the libc the harness mapped`);
    t.ok(c.runtime_executable.startsWith(path.join(CACHE, 'musl-runtimes')), `${c.case}: ran ${c.runtime_executable}`);
  }
  t.same(processesMentioning(out), [], 'no process of the run is left');
});

// ------------------------------------------------------------------------------------------------------------------
// libuv (runners/libuv): the source the `libuv` provision name leaves, and the runner's skip path

t.test('libuv: without the provisioned source the runner skips with the command that fixes it', async (t) => {
  const cache = tmp('fm-mr-uv-');
  t.equal(libuvSource(cache), null);
  t.same(await ensureLibuv({ cacheDir: cache, runtime: { runtime: 'libc', version: 'gcc', executable: '/usr/bin/gcc' } }), { skip: 'the libuv source is not provisioned (npx forkmatrix provision libuv)' });
  const src = libuvSource(CACHE);
  if (!src) return t.end();
  t.match(src, { package: 'libuv1', version: /^1\.\d+\.\d+/ }, `provisioned: ${src.dir}`);
  t.match(uvHeaderVersion(src.dir), /^1\.\d+\.\d+$/, 'the version uv.h declares');
  const st = await muslRuntimesAdapter.status(opts());
  t.match(st.find((s) => s.id === 'libuv'), { state: 'available' });
});

t.test('libuv cases are planned on the environment\'s C compiler, and missing where it is', async (t) => {
  const { planCells } = await import('../../src/run.ts');
  const suite = await loadSuite(REPO, path.join(REPO, 'suites'));
  const cases = selectCases(suite.cases, ['libuv'], null);
  t.ok(cases.length >= 4, 'the libuv suite is registered');
  const cc = { runtime: 'libc' as const, version: 'gcc 12.2.0', executable: '/usr/bin/gcc', cflags: ['-DX'] };
  const env = (runtimes: (typeof cc)[], missing: { runtime: 'libc'; reason: string }[] = []) =>
    ({ id: 'e', adapter: 'x', expect: { libc: 'glibc' as const }, env: {}, runtimes, missing, launch: () => ({ command: '', args: [], env: {} }), probe: async () => ({ name: 'glibc' as const, version: '', path: '', banner: '' }) });
  const [p] = planCells(cases, [env([cc])], null, tmp('fm-uv-plan-'));
  t.match(p.rt, { runtime: 'libuv', version: 'not provisioned (gcc 12.2.0)', executable: '/usr/bin/gcc', cflags: ['-DX'] }, 'the compiler, named for libuv');
  const [m] = planCells(cases, [env([], [{ runtime: 'libc', reason: 'no cc/gcc/clang on PATH' }])], null, CACHE);
  t.match(m, { rt: null, missing: 'no cc/gcc/clang on PATH' }, 'no compiler: the libc reason carries over');
});

t.test('libuv: a real case built with the host compiler and Debian\'s libuv source', async (t) => {
  if (!libuvSource(CACHE)) await libuvProvisioner.provision(['libuv'], opts(), (l) => t.comment(l));
  const src = libuvSource(CACHE);
  if (!src) return t.fail('provision libuv left no source');
  const suite = await loadSuite(REPO, path.join(REPO, 'suites'));
  const cases = selectCases(suite.cases, ['libuv/fork'], null).filter((c) => c.id === 'loop-fork-keeps-parent-loop-usable');
  const { hostEnvironment } = await import('../../adapters/host.ts');
  const env = hostEnvironment(opts());
  const out = await run({ repoDir: REPO, cacheDir: CACHE, outRoot: tmp(), cases, environments: [env], budget: { kind: 'forks', forks: 300 }, jobs: 1, seed: 3, failFast: false });
  const [c] = out.cells;
  if (c.verdict === 'skip' && /cmake/.test(c.reason ?? '')) return t.comment(`skipped: ${c.reason}`);
  t.match(c, { runtime: 'libuv', verdict: 'pass', forks: 300, runtime_version: new RegExp(`^${uvHeaderVersion(src.dir)!.replace(/\./g, '\\.')} \\(gcc `) }, c.reason ?? c.first_failure?.message ?? '');
  t.match(c.libc, { name: 'glibc' }, 'the harness proved the libc it loaded');
  t.notMatch(c.replay, /--runtime/, 'libuv is not an interpreter: replaying needs no --runtime');
  t.same(processesMentioning(out.dir), []);
});
