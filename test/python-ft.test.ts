// Free-threaded CPython builds (provision/python-ft.ts): the provision words, the Debian source version chosen, the
// cache key, and where discovery finds a build. Pure functions on fixtures plus a fake cache tree: no network, no
// compiler (the build itself: test/slow/python-ft.test.ts).
import t from 'tap';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  configureArgs, ftKey, ftKeyHash, FT_PROVISION_NAMES, parseFtWord, parseMadison, sourceOrder, staleReason, upstreamVersion,
  type FtToolchain,
} from '../provision/python-ft.ts';
import { ftCandidates, pythonFtSource } from '../src/runtimes/python-ft.ts';
import { pythonFtProvisioners } from '../provision/python-ft-build.ts';
import { tmp } from './helpers.ts';

t.test('provision words: python-ft tries the newest first, @3.13 builds exactly that one', async (t) => {
  t.same(parseFtWord('python-ft')?.versions.map((v) => v.minor), ['3.14', '3.13']);
  t.equal(parseFtWord('python-ft')?.all, false, 'without a version: the first one whose source the mirror delivers');
  t.same(parseFtWord('musl-python-ft@3.13'), { libc: 'musl', versions: [{ minor: '3.13', pkg: 'python3.13' }], all: true });
  t.equal(parseFtWord('python-ft@3.12'), null, 'no free-threaded 3.12');
  t.equal(parseFtWord('musl-python'), null, 'not ours');
  for (const w of ['python-ft', 'musl-python-ft', 'python-ft@3.14', 'musl-python-ft@3.13']) {
    t.ok(FT_PROVISION_NAMES.includes(w), w);
    const p = pythonFtProvisioners.filter((x) => x.accepts(w));
    t.equal(p.length, 1, `${w}: one provisioner takes it`);
    t.equal(p[0].check(w), null);
  }
  const glibc = pythonFtProvisioners.find((x) => x.accepts('python-ft'))!;
  t.notOk(glibc.accepts('musl-python-ft'), 'python-ft does not take the musl words');
  t.match(glibc.check('python-ft@3.12'), /^provision python-ft@3\.12: no such free-threaded CPython; use python-ft .* python-ft@3\.14, python-ft@3\.13$/, 'one line naming the word and the fix');
});

// `apt-cache madison python3.14 python3.13` on this machine's private lists (2026-11-30): sid lists two 3.14 versions
const MADISON = `python3.14 |   3.14.9-1 | http://deb.debian.org/debian sid/main Sources
python3.14 |  3.14.10-1 | http://deb.debian.org/debian sid/main Sources
python3.14 |  3.14.10-1 | http://deb.debian.org/debian sid/main amd64 Packages
python3.13 | 3.13.5-2+deb13u5 | http://deb.debian.org/debian trixie/main Sources
python3.13 |  3.13.15-1 | http://deb.debian.org/debian sid/main Sources
python3.13 |  3.13.18-1 | http://deb.debian.org/debian sid/main Sources
`;

/** Debian order for the fixture versions (dpkg --compare-versions agrees): numeric per upstream part, then revision. */
const gt = (a: string, b: string) => {
  const key = (v: string) => upstreamVersion(v).split(/[.~+-]/).map(Number).concat([Number(/-(\d+)/.exec(v)?.[1] ?? 0)]);
  const [x, y] = [key(a), key(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  return false;
};

t.test('source versions: Sources lines only, the wanted minor, newest first (older ones are the fallback)', async (t) => {
  t.same(parseMadison(MADISON, 'python3.14'), [{ version: '3.14.9-1', suite: 'sid' }, { version: '3.14.10-1', suite: 'sid' }], 'binary Packages lines left out');
  t.same(sourceOrder(parseMadison(MADISON, 'python3.14'), '3.14', gt).map((e) => e.version), ['3.14.10-1', '3.14.9-1'], '3.14.10 > 3.14.9 (not string order)');
  t.same(sourceOrder(parseMadison(MADISON, 'python3.13'), '3.13', gt).map((e) => `${e.version}@${e.suite}`), ['3.13.18-1@sid', '3.13.15-1@sid', '3.13.5-2+deb13u5@trixie']);
  t.same(sourceOrder([{ version: '3.14.0-1', suite: 'sid' }], '3.13', gt), [], 'another minor is never built under this name');
  t.equal(upstreamVersion('1:3.14.0~rc1-1'), '3.14.0~rc1');
});

const glibcTc: FtToolchain = { libc: 'glibc', gcc: 'gcc 12.2.0', libcVersion: '2.36', libcDev: null };

t.test('the cache key: the same inputs give the same hash; a source, toolchain or libc change is named', async (t) => {
  const a = ftKey('3.13', { 'python3.13': '3.13.5-2+deb13u5' }, glibcTc);
  t.equal(ftKeyHash(a), ftKeyHash(ftKey('3.13', { 'python3.13': '3.13.5-2+deb13u5' }, { ...glibcTc })), 'stable');
  t.equal(staleReason(a, a), null);
  const newer = ftKey('3.13', { 'python3.13': '3.13.18-1' }, glibcTc);
  t.not(ftKeyHash(newer), ftKeyHash(a));
  t.match(staleReason(a, newer), /python3\.13 3\.13\.5-2\+deb13u5 -> 3\.13\.18-1/);
  const gcc = ftKey('3.13', { 'python3.13': '3.13.5-2+deb13u5' }, { ...glibcTc, gcc: 'gcc 14.2.0' });
  t.match(staleReason(a, gcc), /gcc 12\.2\.0 .*gcc 14\.2\.0/);
  const musl = ftKey('3.13', { 'python3.13': '3.13.5-2+deb13u5', zlib: '1:1.2.13', libffi: '3.4.4-1' }, { libc: 'musl', gcc: 'gcc 12.2.0', libcVersion: '1.2.2', libcDev: '1.2.2-1' });
  t.not(ftKeyHash(musl), ftKeyHash(a), 'musl and glibc builds never share a key');
  t.same(Object.keys(musl.sources), ['libffi', 'python3.13', 'zlib'], 'sources sorted: the key does not depend on fetch order');
});

t.test('configure: --disable-gil, no pip, no test modules; musl uses the libffi built for it', async (t) => {
  const g = configureArgs('/c/python-ft/glibc/builds/3.13t-x', 'glibc');
  t.ok(g.includes('--disable-gil'));
  t.ok(g.includes('--disable-test-modules') && g.includes('--without-ensurepip'));
  t.notOk(g.some((a) => /pgo|lto/i.test(a)), 'no PGO/LTO: minutes matter on 2 shared cores');
  t.ok(configureArgs('/p', 'musl').includes('--with-system-ffi'));
});

t.test('discovery: each <minor>t link with a python3, newest first; dangling links and other names ignored', async (t) => {
  const cache = tmp('fm-ft-');
  const mk = (libc: string, name: string) => {
    const d = path.join(cache, 'python-ft', libc, 'builds', name, 'bin');
    mkdirSync(d, { recursive: true });
    writeFileSync(path.join(d, 'python3'), '#!/bin/sh\n');
    return path.join('builds', name);
  };
  symlinkSync(mk('glibc', '3.13t-aaa'), path.join(cache, 'python-ft', 'glibc', '3.13t'));
  symlinkSync(mk('glibc', '3.14t-bbb'), path.join(cache, 'python-ft', 'glibc', '3.14t'));
  symlinkSync('builds/3.15t-gone', path.join(cache, 'python-ft', 'glibc', '3.15t'));
  writeFileSync(path.join(cache, 'python-ft', 'glibc', '3.13t.json'), '{}');
  t.same(ftCandidates(cache, 'glibc').map((c) => c.minor), ['3.14', '3.13']);
  t.same(ftCandidates(cache, 'musl'), [], 'no musl builds');
  const c = pythonFtSource.candidates({ cacheDir: cache });
  t.equal(pythonFtSource.libc, 'glibc', 'offered to glibc environments only (linked against the host glibc)');
  t.same(c.map((x) => [x.runtime, path.relative(cache, x.path)]), [['python', 'python-ft/glibc/3.14t/bin/python3'], ['python', 'python-ft/glibc/3.13t/bin/python3']]);
  t.same(pythonFtSource.candidates({ cacheDir: tmp('fm-ft-empty-') }), [], 'an empty cache: nothing');
});
