// provision libuv keeps two sources (Debian bookworm's and the one closest to the libuv Node bundles); the runner
// lists them, labels each instance with its own libuv version, and FORKMATRIX_LIBUV picks one. No network: a fake
// cache with two unpacked sources.
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { closestLibuv } from '../provision/libuv.ts';
import { libuvInstances, libuvSources, selectedLibuvSources } from '../runners/libuv/index.ts';
import { tmp } from './helpers.ts';

t.test('the Debian libuv1 closest to Node\'s bundled libuv: the oldest not older in major.minor, else the newest', async (t) => {
  const debian = ['1.40.0-2+deb11u1', '1.44.2-1+deb12u1', '1.50.0-2', '1.53.0-1'];
  t.equal(closestLibuv(debian, '1.46.0'), '1.50.0-2', 'Node 20.20 bundles 1.46.0: trixie');
  t.equal(closestLibuv(debian, '1.44.2'), '1.44.2-1+deb12u1');
  t.equal(closestLibuv(debian, '1.51.0'), '1.53.0-1');
  t.equal(closestLibuv(debian, '1.60.0'), '1.53.0-1', 'newer than anything Debian has: the newest');
  t.equal(closestLibuv([], '1.46.0'), null);
});

function fakeSource(cache: string, deb: string, [ma, mi, pa]: number[]): { package: string; version: string; dir: string } {
  const dir = path.join(cache, 'libuv', 'source', `libuv1-${deb}`, 'src');
  mkdirSync(path.join(dir, 'include', 'uv'), { recursive: true });
  writeFileSync(path.join(dir, 'include', 'uv.h'), '');
  writeFileSync(path.join(dir, 'CMakeLists.txt'), '');
  writeFileSync(path.join(dir, 'include', 'uv', 'version.h'), `#define UV_VERSION_MAJOR ${ma}\n#define UV_VERSION_MINOR ${mi}\n#define UV_VERSION_PATCH ${pa}\n`);
  return { package: 'libuv1', version: deb, dir };
}

t.test('every provisioned source is a column of its own; FORKMATRIX_LIBUV picks', async (t) => {
  const cache = tmp('fm-libuv-');
  const a = fakeSource(cache, '1.44.2-1+deb12u1', [1, 44, 2]);
  const b = fakeSource(cache, '1.50.0-2', [1, 50, 0]);
  writeFileSync(path.join(cache, 'libuv', 'source', 'current.json'), JSON.stringify(a));
  t.same(libuvSources(cache).map((s) => s.version), ['1.44.2-1+deb12u1'], 'an older provision: current.json alone');
  writeFileSync(path.join(cache, 'libuv', 'source', 'sources.json'), JSON.stringify([{ ...a, upstream: '1.44.2' }, { ...b, upstream: '1.50.0' }]));
  t.same(libuvSources(cache).map((s) => s.version), ['1.44.2-1+deb12u1', '1.50.0-2']);
  const cc = { runtime: 'libc' as const, version: 'gcc 12.2.0', executable: '/usr/bin/gcc' };
  const saved = process.env.FORKMATRIX_LIBUV;
  t.teardown(() => { if (saved === undefined) delete process.env.FORKMATRIX_LIBUV; else process.env.FORKMATRIX_LIBUV = saved; });
  delete process.env.FORKMATRIX_LIBUV;
  t.same(libuvInstances(cc, cache).map((i) => i.version), ['1.44.2 (gcc 12.2.0)', '1.50.0 (gcc 12.2.0)']);
  t.same(selectedLibuvSources(cache, '1.50').map((s) => s.version), ['1.50.0-2']);
  t.same(selectedLibuvSources(cache, 'node').map((s) => s.version), ['1.50.0-2'], 'node: the one closest to Node\'s');
  process.env.FORKMATRIX_LIBUV = '1.50';
  t.same(libuvInstances(cc, cache).map((i) => [i.runtime, i.version]), [['libuv', '1.50.0 (gcc 12.2.0)']]);
  t.same(libuvInstances(cc, tmp('fm-libuv-none-')).map((i) => i.version), ['not provisioned (gcc 12.2.0)']);
});
