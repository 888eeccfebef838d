// Provisioner `musl`, `musl-<version>` (one Debian suite each: MUSL_SUITES) and `musl-debug`: Debian's musl and
// musl-dev of bullseye (1.2.2), bookworm (1.2.3) and trixie (1.2.5), downloaded with the private apt state, unpacked
// without root into <cache>/musl/<version>/ (lib/libc.so and its loader name, crt files, include/, etc/, info.json)
// with the toolchain of provision/musl-toolchain.ts (bin/musl-gcc, musl-gcc.specs, kernel-include/), and
// <cache>/musl/by-suite/<suite>.json naming the version each suite gave. The version is what the unpacked libc says
// about itself, and the toolchain must build a probe that maps that very libc before the version is kept.
// `musl-debug` also builds each version from its Debian source with -g (provision/musl-debug.ts). One provision of
// musl at a time per cache (lock `provision-musl`); each entry is built in a temporary and renamed when whole
// (adapters/apt.ts buildAtomically). The adapter (adapters/musl.ts) keeps discovery, proof and launch.

import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isDir, isFile, readJson } from '../src/util.ts';
import { capture } from '../src/proc.ts';
import { parseBanner } from '../src/probe.ts';
import type { AdapterOptions } from '../src/types.ts';
import { buildAtomically, debVersion, PrivateApt, unpackDeb, type DebianSuite } from '../adapters/apt.ts';
import { lockFile, withLock } from '../src/lock.ts';
import {
  hostGcc, installedVersions, LOADER, muslDir, MUSL_SUITES, probeMusl, suiteMarker, type MuslInfo,
} from '../adapters/musl.ts';
import { buildDebugMusl } from './musl-debug.ts';
import { kernelHeaders, TRIPLE, writeToolchain } from './musl-toolchain.ts';
import { adapterOptionsOf, type Provisioner } from './provisioner.ts';

/** What `forkmatrix provision NAME` this provisioner handles. */
export const MUSL_PROVISION_NAMES = ['musl', ...MUSL_SUITES.map((s) => `musl-${s.label}`), 'musl-debug'];

/** Download, unpack, prove and lay out one Debian suite's musl. Returns the proved version. */
async function provisionSuite(suite: DebianSuite, opts: AdapterOptions, log: (l: string) => void): Promise<string> {
  const root = muslDir(opts.cacheDir);
  const marker = suiteMarker(opts.cacheDir, suite);
  const have = readJson<{ version: string }>(marker);
  if (have && installedVersions(opts.cacheDir).some((m) => m.version === have.version)) {
    log(`musl: ${suite} is provisioned (musl ${have.version} in ${path.join(root, have.version)})`);
    return have.version;
  }
  const gcc = hostGcc();
  if (!gcc) throw new Error('musl: no gcc to build the musl toolchain with (as root: apt-get install gcc)');
  const k = await kernelHeaders(opts.cacheDir, log, true);
  if (!k) throw new Error('musl: no kernel headers (apt-get install linux-libc-dev)');

  mkdirSync(root, { recursive: true });
  const stage = path.join(root, `.stage-${suite}-${process.pid}`);
  rmSync(stage, { recursive: true, force: true });
  try {
    log(`musl: downloading musl and musl-dev from Debian ${suite}`);
    const debs = new PrivateApt(opts.cacheDir).download([`musl/${suite}`, `musl-dev/${suite}`], path.join(stage, 'debs'), log);
    const unpacked = path.join(stage, 'root');
    for (const d of debs) unpackDeb(d, unpacked);
    const packages = { musl: debVersion(debs[0]), 'musl-dev': debVersion(debs[1]) };
    const libc = [`usr/lib/${TRIPLE}/libc.so`, `lib/${TRIPLE}/libc.so`].map((p) => path.join(unpacked, p)).find(isFile);
    const devLib = path.join(unpacked, 'usr/lib', TRIPLE);
    const include = path.join(unpacked, 'usr/include', TRIPLE);
    if (!libc || !isFile(path.join(devLib, 'crt1.o')) || !isDir(include))
      throw new Error(`musl: the ${suite} packages (musl ${packages.musl}) do not have the expected layout (libc.so, crt1.o, include/${TRIPLE})`);
    // The version is what the unpacked libc says about itself, not the package's label.
    const r = capture(libc, [], { env: { PATH: '/usr/bin:/bin' }, timeoutMs: 10_000 });
    const banner = (r.stdout + r.stderr).trim();
    const proved = parseBanner(banner);
    if (proved.name !== 'musl') throw new Error(`musl: ${libc} from Debian ${suite} (musl ${packages.musl}) did not say it is musl: ${banner.slice(0, 200)}`);
    const version = proved.version;
    log(`musl: Debian ${suite} musl ${packages.musl} is musl ${version}`);
    const final = path.join(root, version);
    if (!existsSync(final)) {
      try {
        await buildAtomically(final, (tmp) => {
          const lib = path.join(tmp, 'lib');
          mkdirSync(lib, { recursive: true });
          // libc.so as a real file in lib/, the loader name beside it: the loader's prefix (dirname of lib/) is
          // then this directory, and musl reads its library path from <prefix>/etc/ld-musl-x86_64.path.
          copyFileSync(libc, path.join(lib, 'libc.so'));
          chmodSync(path.join(lib, 'libc.so'), 0o755);
          symlinkSync('libc.so', path.join(lib, LOADER));
          for (const f of readdirSync(devLib)) if (/\.(o|a)$/.test(f)) copyFileSync(path.join(devLib, f), path.join(lib, f));
          renameSync(include, path.join(tmp, 'include'));
          mkdirSync(path.join(tmp, 'etc'), { recursive: true });
          writeFileSync(path.join(tmp, 'etc', `ld-musl-x86_64.path`), `${path.join(final, 'lib')}\n`);
          writeToolchain(tmp, final, { includes: [path.join(final, 'include')], lib: path.join(final, 'lib'), loader: path.join(final, 'lib', LOADER) }, k, gcc, `musl ${version} (Debian ${suite} ${packages['musl-dev']})`);
          const info: MuslInfo = { version, banner: banner.split('\n').slice(0, 2).join(' '), suite, packages, gcc, provisioned: new Date().toISOString() };
          writeFileSync(path.join(tmp, 'info.json'), JSON.stringify(info, null, 1) + '\n');
        });
      } catch (e) {
        if (!existsSync(final)) throw e; // else: a concurrent provision won the rename
      }
      // The specs name the final paths, so the toolchain can only be tried once it is in place.
      const m = installedVersions(opts.cacheDir).find((x) => x.version === version);
      try {
        if (!m) throw new Error(`${final} is incomplete`);
        const p = await probeMusl(m);
        if (p.name !== 'musl' || p.version !== version) throw new Error(`the probe loaded ${p.path}: ${p.name} ${p.version}`);
      } catch (e) {
        rmSync(final, { recursive: true, force: true });
        throw new Error(`musl ${version}: the toolchain does not work: ${(e as Error).message}`);
      }
    } else log(`musl: musl ${version} is already in ${final}`);
    mkdirSync(path.dirname(marker), { recursive: true });
    writeFileSync(marker, JSON.stringify({ version, packages }) + '\n');
    log(`musl: musl ${version} ready in ${final}`);
    return version;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

export const muslProvisioner: Provisioner = {
  name: 'musl',
  needs: 'x86_64, a Debian mirror (http), dpkg-deb, gcc; kernel headers (else Debian\'s linux-libc-dev, downloaded); musl-debug: make',
  writes: 'musl/<version>/ (Debian musl + musl-dev, bin/musl-gcc), musl/by-suite/, musl/kernel-headers/; musl-debug: musl/debug/<version>/, musl/sources/',
  accepts: (word) => MUSL_PROVISION_NAMES.includes(word),
  check: () => null,
  async provision(what, o, log) {
    const opts = adapterOptionsOf(o);
    // `musl-debug`: also build each provisioned version from its Debian source with -g (6-14 min each on 2 cores),
    // so hung children's backtraces name musl's functions; the columns then run on that build
    const debug = what.includes('musl-debug');
    const wanted = MUSL_SUITES.filter((s) => what.includes('musl') || debug || what.includes(`musl-${s.label}`));
    if (!wanted.length) return;
    if (process.arch !== 'x64') throw new Error(`musl: this adapter knows x86_64 only (${LOADER}); this machine is ${process.arch}`);
    // one provision of musl at a time per cache: a second one waits, then finds the versions built and reuses them
    await withLock(lockFile(opts.cacheDir, 'provision-musl'), 'provisioning musl', log, async () => {
      for (const s of wanted) {
        const version = await provisionSuite(s.suite, opts, log);
        const m = installedVersions(opts.cacheDir).find((x) => x.version === version);
        if (!m?.info) throw new Error(`musl ${version}: ${path.join(muslDir(opts.cacheDir), version)} is incomplete`);
        // the libc the environment runs on, when asked for: Debian's source of this very package version, built with -g
        if (debug) await buildDebugMusl(opts.cacheDir, s.suite, version, m.info.packages.musl, log);
      }
    });
  },
};
