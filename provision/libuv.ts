// Provisioner `libuv` (runners/libuv): Debian's libuv1 sources, unpacked; the runner builds each with each
// environment's compiler. Two of them: bookworm's (1.44.2, what Debian 12 programs link), and the one closest to the
// libuv the host's Node bundles (process.versions.uv: Node 20.20 bundles 1.46.0; Debian has 1.40, 1.44, 1.50, 1.53:
// the smallest Debian version whose major.minor is not older than Node's, else the newest), each its own column
// ("libuv 1.50.0 (...)"). Writes <cache>/libuv/source/<pkg>-<version>/src/, current.json (bookworm's, what
// runners/libuv used first) and sources.json (both), <cache>/libuv/debsrc/; one provision at a time per cache (lock
// `provision-libuv`). adapters/musl-runtimes.ts reports its status.

import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isFile } from '../src/util.ts';
import { capture, cleanBaseEnv } from '../src/proc.ts';
import { lockFile, withLock } from '../src/lock.ts';
import { buildAtomically, PrivateApt } from '../adapters/apt.ts';
import {
  LIBUV_PROVISION_NAME, LIBUV_SOURCE, libuvMarker, libuvSourcesFile, SUITE, type LibuvSourceEntry,
} from '../adapters/musl-runtimes.ts';
import { debGreater, fetchSources, newestDsc, tail, unpackSource, type FetchedSource } from './debian-source.ts';
import type { Provisioner } from './provisioner.ts';

const upstreamOf = (debVersion: string) => debVersion.replace(/^\d+:/, '').replace(/-[^-]*$/, '').replace(/\+dfsg.*$/, '');
const majorMinor = (v: string) => v.split('.').slice(0, 2).map(Number);
const mmCompare = (a: string, b: string) => {
  const [x, y] = [majorMinor(a), majorMinor(b)];
  return x[0] - y[0] || x[1] - y[1];
};

/** The libuv1 source versions Debian's suites carry (apt-cache showsrc on the private lists). */
function debianLibuvVersions(cacheDir: string, log: (l: string) => void): string[] {
  new PrivateApt(cacheDir).update(log);
  const dir = path.join(cacheDir, 'apt');
  const r = capture('apt-cache', [
    '-o', `Dir::Etc::SourceList=${path.join(dir, 'sources.list')}`, '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', `Dir::State::Lists=${path.join(dir, 'lists')}`, '-o', `Dir::Cache=${path.join(dir, 'cache')}`,
    '-o', `Dir::State::status=${path.join(dir, 'status')}`, '-o', 'Dir::Cache::pkgcache=pkgcache.bin', '-o', 'Dir::Cache::srcpkgcache=srcpkgcache.bin',
    'showsrc', LIBUV_SOURCE.pkg,
  ], { env: cleanBaseEnv(), timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`apt-cache showsrc ${LIBUV_SOURCE.pkg} failed: ${tail(r.stderr || r.error || '', 2)}`);
  const out = new Set<string>();
  for (const stanza of r.stdout.split(/\n\s*\n/)) {
    if (!new RegExp(`^Package:\\s*${LIBUV_SOURCE.pkg}\\s*$`, 'm').test(stanza)) continue;
    const v = /^Version:\s*(\S+)/m.exec(stanza)?.[1];
    if (v) out.add(v);
  }
  return [...out].sort((a, b) => (debGreater(a, b) ? 1 : debGreater(b, a) ? -1 : 0));
}

/** The Debian libuv1 version closest to `nodeUv` (Node's bundled libuv): the oldest not older in major.minor, else the newest. */
export function closestLibuv(versions: string[], nodeUv: string): string | null {
  if (!versions.length) return null;
  return versions.find((v) => mmCompare(upstreamOf(v), nodeUv) >= 0) ?? versions[versions.length - 1];
}

async function provisionOneLibuv(cacheDir: string, s: FetchedSource, why: string, log: (l: string) => void): Promise<LibuvSourceEntry> {
  const root = path.join(cacheDir, 'libuv', 'source', `${s.pkg}-${s.version}`);
  const dir = path.join(root, 'src');
  if (!isFile(path.join(dir, 'include', 'uv.h'))) {
    rmSync(root, { recursive: true, force: true });
    await buildAtomically(root, (tmp) => unpackSource(s, path.join(tmp, 'src')));
    log(`libuv: ${s.pkg} ${s.version} unpacked in ${dir} (${why})`);
  } else log(`libuv: ${s.pkg} ${s.version} is provisioned (${dir}; ${why})`);
  return { package: s.pkg, version: s.version, dir, upstream: upstreamOf(s.version), why };
}

/**
 * Fetch and unpack libuv1 from Debian bookworm into <cache>/libuv/source/ (current.json, what runners/libuv used
 * first), and the Debian libuv1 closest to the host Node's bundled libuv (sources.json lists both).
 */
export async function provisionLibuvSource(cacheDir: string, log: (l: string) => void): Promise<{ package: string; version: string; dir: string }> {
  const [s] = fetchSources(cacheDir, [LIBUV_SOURCE], log);
  const first = await provisionOneLibuv(cacheDir, s, `Debian ${SUITE}`, log);
  const marker = { package: first.package, version: first.version, dir: first.dir };
  writeFileSync(libuvMarker(cacheDir) + '.tmp', JSON.stringify(marker, null, 1) + '\n');
  renameSync(libuvMarker(cacheDir) + '.tmp', libuvMarker(cacheDir));
  const entries = [first];
  const nodeUv = process.versions.uv;
  const want = closestLibuv(debianLibuvVersions(cacheDir, log), nodeUv);
  if (want && want !== s.version) {
    // its own download directory: fetchSources keeps one version per package
    const dl = path.join(cacheDir, 'libuv', 'debsrc', want.replace(/[^\w.+-]/g, '_'));
    mkdirSync(dl, { recursive: true });
    new PrivateApt(cacheDir).source(`${LIBUV_SOURCE.pkg}=${want}`, dl, log);
    const got = newestDsc(dl, LIBUV_SOURCE.pkg);
    if (!got) throw new Error(`apt-get source ${LIBUV_SOURCE.pkg}=${want} left no .dsc in ${dl}`);
    entries.push(await provisionOneLibuv(cacheDir, got, `the Debian libuv1 closest to the libuv ${nodeUv} that Node ${process.versions.node} bundles`, log));
  } else if (want) log(`libuv: Debian ${SUITE}'s libuv1 is also the one closest to Node ${process.versions.node}'s bundled libuv ${nodeUv}`);
  writeFileSync(libuvSourcesFile(cacheDir) + '.tmp', JSON.stringify(entries, null, 1) + '\n');
  renameSync(libuvSourcesFile(cacheDir) + '.tmp', libuvSourcesFile(cacheDir));
  return marker;
}

export const libuvProvisioner: Provisioner = {
  name: LIBUV_PROVISION_NAME,
  needs: 'a Debian mirror (http), apt-get, dpkg-source (else tar and patch)',
  writes: 'libuv/source/ (libuv1 of bookworm and the one closest to Node\'s bundled libuv; current.json, sources.json), libuv/debsrc/',
  accepts: (word) => word === LIBUV_PROVISION_NAME,
  check: () => null,
  async provision(_words, opts, log) {
    await withLock(lockFile(opts.cacheDir, 'provision-libuv'), 'provisioning the libuv source', log, () => provisionLibuvSource(opts.cacheDir, log));
  },
};
