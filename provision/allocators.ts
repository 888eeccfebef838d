// Provisioner `allocators`: Debian bookworm's libjemalloc2 (5.3), libtcmalloc-minimal4 (2.10) and libmimalloc2.0
// (2.0.9), each downloaded with the private apt state and unpacked into <cache>/allocators/<name>/<deb version>/
// (forkmatrix.json names the library), built in a temporary and renamed when whole (adapters/apt.ts
// buildAtomically) under the cache lock `provision-allocators`. adapters/preload.ts finds them (allocatorLib) and
// preloads each into every glibc environment. `provision glibc` brings them along (src/cli.ts).

import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildAtomically, debVersion, PrivateApt, unpackDeb } from '../adapters/apt.ts';
import { ALLOCATOR_SUITE, ALLOCATORS, allocatorLib, type AllocMeta } from '../adapters/preload.ts';
import { lockFile, withLock } from '../src/lock.ts';
import type { Provisioner } from './provisioner.ts';

function findFile(dir: string, name: string): string | null {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.name === name && (e.isFile() || e.isSymbolicLink())) return p;
    if (e.isDirectory()) {
      const hit = findFile(p, name);
      if (hit) return hit;
    }
  }
  return null;
}

export async function provisionAllocators(cacheDir: string, log: (l: string) => void): Promise<void> {
  const apt = new PrivateApt(cacheDir);
  for (const a of ALLOCATORS) {
    const have = allocatorLib(cacheDir, a);
    if (have) {
      log(`allocators: ${a.name} ${have.meta.debVersion} already in ${path.dirname(have.lib)}`);
      continue;
    }
    const tmpDebs = path.join(cacheDir, 'allocators', `.debs-${process.pid}`);
    try {
      log(`allocators: downloading ${a.pkg}/${ALLOCATOR_SUITE}`);
      const [deb] = apt.download([`${a.pkg}/${ALLOCATOR_SUITE}`], tmpDebs, log);
      const dir = path.join(cacheDir, 'allocators', a.name, debVersion(deb));
      await buildAtomically(dir, (tmp) => {
        unpackDeb(deb, tmp);
        const lib = findFile(tmp, a.lib);
        if (!lib) throw new Error(`${path.basename(deb)} has no ${a.lib}`);
        const meta: AllocMeta = { name: a.name, pkg: a.pkg, suite: ALLOCATOR_SUITE, debVersion: debVersion(deb), lib: path.relative(tmp, lib) };
        writeFileSync(path.join(tmp, 'forkmatrix.json'), JSON.stringify(meta, null, 1));
      });
      log(`allocators: ${a.name} ${debVersion(deb)} in ${dir}`);
    } finally {
      rmSync(tmpDebs, { recursive: true, force: true });
    }
  }
}

export const allocatorsProvisioner: Provisioner = {
  name: 'allocators',
  needs: 'a Debian mirror (http), dpkg-deb',
  writes: 'allocators/<name>/<version>/ (jemalloc, tcmalloc, mimalloc)',
  accepts: (word) => word === 'allocators',
  check: () => null,
  async provision(_words, opts, log) {
    await withLock(lockFile(opts.cacheDir, 'provision-allocators'), 'provisioning the allocators', log, () => provisionAllocators(opts.cacheDir, log));
  },
};
