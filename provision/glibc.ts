// Provisioner `glibc`: Debian's libc6 from trixie (2.41) and sid (the newest), downloaded with the private apt state,
// unpacked into <cache>/glibc/<version>/ (forkmatrix.json: suites, deb, banner) once its loader has run a host
// program with its libc; then a patchelf'd, checked copy of each host runtime for every tree (and --libc trees),
// in <cache>/glibc/<version>/runtimes/ (provision/glibc-copies.ts). patchelf is the system's, else Debian's, unpacked
// into <cache>/tools/patchelf-<version>/. One provision of glibc at a time per cache (lock `provision-glibc`); each
// entry is built in a temporary and renamed when whole (adapters/apt.ts buildAtomically). The adapter
// (adapters/glibc.ts) keeps discovery, proof and launch.

import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildAtomically, debVersion, PrivateApt, unpackDeb } from '../adapters/apt.ts';
import {
  bannerOf, cachedPatchelf, debianTree, debianTrees, DEBIAN_GLIBC, findLoaderDir, hostCodename, hostGlibc, hostRuntimesOnce, localTrees,
  probeFloor, refuseOlder, runtimeFiles, type DebMeta, type GlibcTree,
} from '../adapters/glibc.ts';
import { which } from '../adapters/host.ts';
import { makeCopy, notForGlibc, readCopy } from './glibc-copies.ts';
import { lockFile, withLock } from '../src/lock.ts';
import { capture, cleanBaseEnv } from '../src/proc.ts';
import { libcFromMaps, sameFile } from '../src/probe.ts';
import type { AdapterOptions } from '../src/types.ts';
import { adapterOptionsOf, type Provisioner } from './provisioner.ts';

// ---------------------------------------------------------------------------------------------------------------
// patchelf (Debian's): on PATH, else downloaded into the cache (no root)

export async function ensurePatchelf(cacheDir: string, log: (l: string) => void = () => {}, preferSystem = true): Promise<string> {
  const sys = preferSystem ? which('patchelf') : null;
  if (sys && capture(sys, ['--version']).code === 0) return sys;
  const cached = cachedPatchelf(cacheDir);
  if (cached) return cached;
  const suite = hostCodename();
  log(`glibc: patchelf is not on PATH: downloading Debian's patchelf/${suite} into the cache`);
  const apt = new PrivateApt(cacheDir);
  const tmpDebs = path.join(cacheDir, 'tools', `.debs-${process.pid}`);
  try {
    const [deb] = apt.download([`patchelf/${suite}`], tmpDebs, log);
    const dir = path.join(cacheDir, 'tools', `patchelf-${debVersion(deb)}`);
    await buildAtomically(dir, (tmp) => {
      unpackDeb(deb, tmp);
      const r = capture(path.join(tmp, 'usr/bin/patchelf'), ['--version']);
      if (r.code !== 0) throw new Error(`the downloaded patchelf does not run here: ${(r.stderr || r.error || '').trim()}`);
    });
    return path.join(dir, 'usr/bin/patchelf');
  } finally {
    rmSync(tmpDebs, { recursive: true, force: true });
  }
}


async function provisionDebian(opts: AdapterOptions, log: (l: string) => void): Promise<GlibcTree[]> {
  const host = hostGlibc();
  const have = debianTrees(opts.cacheDir);
  const metaOf = (t: GlibcTree) => JSON.parse(readFileSync(path.join(t.root, 'forkmatrix.json'), 'utf8')) as DebMeta;
  const apt = new PrivateApt(opts.cacheDir);
  for (const target of DEBIAN_GLIBC.filter((d) => d.provision)) {
    const present = have.find((t) => metaOf(t).suite.includes(target.suite));
    if (present) {
      log(`glibc: ${target.suite}: glibc ${present.version} already in ${present.root}`);
      continue;
    }
    if (host && target.version && target.version === host.version) {
      log(`glibc: ${target.suite} ships glibc ${target.version}, this host's own: the host environment covers it`);
      continue;
    }
    const tmpDebs = path.join(opts.cacheDir, 'glibc', `.debs-${process.pid}`);
    try {
      log(`glibc: downloading libc6/${target.suite}`);
      const [deb] = apt.download([`libc6/${target.suite}`], tmpDebs, log);
      const stage = path.join(tmpDebs, 'x');
      unpackDeb(deb, stage);
      const lib = findLoaderDir(stage);
      if (!lib) throw new Error(`libc6/${target.suite} (${path.basename(deb)}) has no ld-linux-x86-64.so.2 + libc.so.6 in usr/lib or lib/x86_64-linux-gnu`);
      const proof = bannerOf(path.join(lib, 'libc.so.6'), path.join(lib, 'ld-linux-x86-64.so.2'));
      if (proof.name !== 'glibc') throw new Error(`libc6/${target.suite}: its libc.so.6 does not say it is glibc: ${proof.banner}`);
      if (host && proof.version === host.version) {
        log(`glibc: ${target.suite} ships glibc ${proof.version}, this host's own: the host environment covers it`);
        continue;
      }
      const floor = probeFloor(opts.cacheDir, proof.version);
      if (floor) {
        log(`glibc: ${target.suite}: ${floor}; skipped`);
        continue;
      }
      const dir = path.join(opts.cacheDir, 'glibc', proof.version);
      if (existsSync(dir)) {
        // the same upstream version from another suite: remember the suite too
        const meta = JSON.parse(readFileSync(path.join(dir, 'forkmatrix.json'), 'utf8')) as DebMeta;
        if (!meta.suite.includes(target.suite)) meta.suite.push(target.suite);
        writeFileSync(path.join(dir, 'forkmatrix.json'), JSON.stringify(meta, null, 1));
        continue;
      }
      await buildAtomically(dir, (tmp) => {
        unpackDeb(deb, tmp);
        const meta: DebMeta = { suite: [target.suite], deb: path.basename(deb), debVersion: debVersion(deb), version: proof.version, banner: proof.banner };
        writeFileSync(path.join(tmp, 'forkmatrix.json'), JSON.stringify(meta, null, 1));
        // the loader must run a host program with this libc before the copy is kept
        const t = debianTree(tmp)!;
        const probe = capture(t.loader, ['--library-path', t.dirs.join(':'), '/bin/cat', '/proc/self/maps'], { env: cleanBaseEnv() });
        const got = libcFromMaps(probe.stdout);
        if (probe.code !== 0 || !got || !sameFile(got, t.libc)) throw new Error(`the unpacked loader cannot run /bin/cat with its libc: ${(probe.stderr || probe.error || '').trim()}`);
      });
      log(`glibc: glibc ${proof.version} (Debian ${target.suite} ${debVersion(deb)}) in ${dir}`);
    } finally {
      rmSync(tmpDebs, { recursive: true, force: true });
    }
  }
  return debianTrees(opts.cacheDir).filter((t) => !host || t.version !== host.version);
}

async function provisionCopies(trees: GlibcTree[], opts: AdapterOptions, log: (l: string) => void): Promise<void> {
  const patchelf = await ensurePatchelf(opts.cacheDir, log);
  const { runtimes } = hostRuntimesOnce(opts);
  for (const tree of trees) {
    for (const rt of runtimes.filter((r) => r.runtime !== 'libc')) {
      const refuse = notForGlibc(rt) ?? refuseOlder(runtimeFiles(rt.executable), tree.version, `${rt.runtime} ${rt.version}`);
      if (refuse) {
        log(`glibc: ${tree.id}: no ${rt.runtime} copy: ${refuse}`);
        continue;
      }
      const before = readCopy(tree, rt);
      if (before?.ok) continue;
      log(`glibc: ${tree.id}: making a patchelf'd copy of ${rt.executable}`);
      const rec = await makeCopy(tree, rt, patchelf);
      log(rec.ok ? `glibc: ${tree.id}: ${rt.runtime} ${rt.version} -> ${rec.executable}` : `glibc: ${tree.id}: ${rt.runtime} ${rt.version}: ${rec.reason}`);
    }
  }
}

export const glibcProvisioner: Provisioner = {
  name: 'glibc',
  needs: 'a Debian mirror (http), dpkg-deb; patchelf (else Debian\'s, downloaded)',
  writes: 'glibc/<version>/ (Debian libc6, runtimes/: checked copies of the host runtimes), tools/patchelf-<version>/',
  accepts: (word) => word === 'glibc',
  check: () => null,
  async provision(_words, o, log) {
    const opts = adapterOptionsOf(o);
    // one provision of glibc at a time per cache: a second one waits, then finds it built and reuses it
    await withLock(lockFile(opts.cacheDir, 'provision-glibc'), 'provisioning glibc', log, async () => {
      const trees = await provisionDebian(opts, log);
      await provisionCopies([...trees, ...localTrees(opts)], opts, log);
    });
  },
};
