// Provisioner `roots` (all four) and `root-<suite>` (one): a Debian root per suite in <cache>/roots/<suite>/
// (root/ + forkmatrix.json), made by debootstrap --variant=minbase (needs root) and the root's own apt-get for
// ROOT_PACKAGES, or unpacked without root from a <suite>.tar.zst / .tar.gz made elsewhere; each new root is also
// written as that tarball. debootstrap is the system's, else Debian trixie's, unpacked into <cache>/roots/debootstrap/.
// Each root is built in a temporary and renamed when whole (adapters/apt.ts buildAtomically) under the lock
// `provision-root-<suite>`; debootstrap and apt run in private namespaces (unshare), so their mounts and processes
// go away with them. The adapter (adapters/debian-root.ts) keeps discovery, proof and launch.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { $ } from 'zx';
import { buildAtomically, debianMirror, debVersion, PrivateApt, unpackDeb } from '../adapters/apt.ts';
import {
  cachedRoot, identifyRootRuntimes, META_VERSION, probeRoot, readMeta, ROOT_PACKAGES, ROOT_PROVISION_NAMES, ROOT_SPECS, rootHandle, rootsDir,
  suiteDir, tarballOf, unshareArgs, type RootHandle, type RootMeta, type RootSpec,
} from '../adapters/debian-root.ts';
import { which } from '../adapters/host.ts';
import { lockFile, withLock } from '../src/lock.ts';
import { capture, cleanBaseEnv } from '../src/proc.ts';
import type { AdapterOptions } from '../src/types.ts';
import { adapterOptionsOf, type Provisioner } from './provisioner.ts';

const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
/** tar and the like: quiet, a clean environment, the exit status and stderr kept for the error line (SHLVL: bash
 * fed by a socket, as zx's is, otherwise reads ~/.bashrc) */
const sh = $({ quiet: true, nothrow: true, env: { ...cleanBaseEnv(), SHLVL: '1' } });

const compressor = (file: string) => (file.endsWith('.zst') ? ['-I', 'zstd -T0 -10'] : ['-z']);
const decompressor = (file: string) => (file.endsWith('.zst') ? ['-I', 'zstd -d'] : ['-z']);

/** Run a long command (debootstrap) with its lines logged; the whole process group is SIGKILLed on timeout. */
function runLogged(command: string, args: string[], env: Record<string, string>, timeoutMs: number, onLine: (l: string) => void): Promise<{ code: number | null; tail: string[] }> {
  return new Promise((resolve) => {
    const tail: string[] = [];
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true, cwd: '/' });
    const kill = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    };
    const timer = setTimeout(kill, timeoutMs);
    process.once('exit', kill);
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trimEnd();
        buf = buf.slice(i + 1);
        tail.push(line);
        if (tail.length > 30) tail.shift();
        onLine(line);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('error', (e) => {
      tail.push(e.message);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      process.removeListener('exit', kill);
      kill();
      resolve({ code, tail });
    });
  });
}

/** debootstrap: the one on PATH, else Debian's package unpacked into the cache (no root needed for that). */
async function ensureDebootstrap(cacheDir: string, log: (l: string) => void): Promise<{ cmd: string; env: Record<string, string>; version: string }> {
  const onPath = which('debootstrap');
  if (onPath) {
    const v = capture('dpkg-query', ['-W', '-f=${Version}', 'debootstrap'], { env: cleanBaseEnv() });
    return { cmd: onPath, env: {}, version: v.code === 0 ? v.stdout.trim() : '?' };
  }
  const dir = path.join(rootsDir(cacheDir), 'debootstrap');
  await buildAtomically(dir, (tmp) => {
    // trixie's debootstrap knows bullseye to sid; it is a shell script (arch: all) that runs on any Debian
    log('roots: fetching Debian trixie\'s debootstrap package into the cache (private apt state)');
    const [deb] = new PrivateApt(cacheDir).download(['debootstrap/trixie'], path.join(tmp, 'debs'), log);
    unpackDeb(deb, path.join(tmp, 'pkg'));
    writeFileSync(path.join(tmp, 'version'), debVersion(deb));
    rmSync(path.join(tmp, 'debs'), { recursive: true, force: true });
  });
  return {
    cmd: path.join(dir, 'pkg', 'usr', 'sbin', 'debootstrap'),
    env: { DEBOOTSTRAP_DIR: path.join(dir, 'pkg', 'usr', 'share', 'debootstrap') },
    version: readFileSync(path.join(dir, 'version'), 'utf8').trim(),
  };
}

/** Check a freshly built or unpacked root and write its record: the proved glibc and the runtimes inside. */
function recordRoot(h: RootHandle, extra: { mirror: string; debootstrap: string; created?: string }): RootMeta {
  const libc = probeRoot(h);
  const spec = ROOT_SPECS.find((s) => s.suite === h.suite);
  if (libc.name !== 'glibc') throw new Error(`the ${h.suite} root's libc is ${libc.name} ${libc.version}, not glibc`);
  if (spec && !spec.rolling && libc.version !== spec.glibc) throw new Error(`the ${h.suite} root runs glibc ${libc.version}, expected ${spec.glibc} (a different mirror snapshot?)`);
  const { runtimes, missing } = identifyRootRuntimes(h, h.suite);
  const meta: RootMeta = { meta: META_VERSION, suite: h.suite, mirror: extra.mirror, debootstrap: extra.debootstrap, created: extra.created ?? new Date().toISOString(), libc, runtimes, missing };
  writeFileSync(path.join(h.dir, 'forkmatrix.json'), JSON.stringify(meta, null, 1));
  return meta;
}

async function provisionRoot(spec: RootSpec, opts: AdapterOptions, log: (l: string) => void): Promise<void> {
  const dir = suiteDir(opts.cacheDir, spec.suite);
  if (!which('unshare') || !which('chroot')) throw new Error('roots: needs unshare and chroot (util-linux, coreutils)');
  const have = cachedRoot(opts.cacheDir, spec.suite);
  if (have) {
    log(`roots: ${spec.suite}: glibc ${have.meta.libc.version} in ${have.h.root} (cached)`);
  } else {
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true }); // an invalid leftover
    const tarball = tarballOf(opts.cacheDir, spec.suite);
    if (tarball) {
      log(`roots: ${spec.suite}: unpacking ${tarball}`);
      await buildAtomically(dir, async (tmp) => {
        const r = await sh({ timeout: '10m' })`tar --numeric-owner ${decompressor(tarball)} -xpf ${tarball} -C ${tmp}`;
        if (r.exitCode !== 0) throw new Error(`tar -x ${tarball} failed: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
        const old = readMeta(tmp);
        mkdirSync(path.join(tmp, 'root', 'dev'), { recursive: true });
        recordRoot(rootHandle(opts.cacheDir, spec.suite, tmp), { mirror: old?.mirror ?? '?', debootstrap: old?.debootstrap ?? '?', created: old?.created });
      });
    } else {
      if (process.getuid?.() !== 0)
        throw new Error(`roots: ${spec.suite}: debootstrap needs root (as root: npx forkmatrix provision root-${spec.suite}); the cached root then runs without root, and a ${spec.suite}.tar.zst made elsewhere unpacks without root into ${rootsDir(opts.cacheDir)}`);
      if (!which('wget')) throw new Error('roots: debootstrap downloads with wget (apt-get install wget)');
      const mirror = debianMirror();
      const ds = await ensureDebootstrap(opts.cacheDir, log);
      // Two steps: debootstrap's own resolver cannot follow virtual packages (bullseye's gdb ->
      // libsource-highlight4v5 -> libboost-regex1.74.0-icu67, provided by libboost-regex1.74.0, is left unconfigured
      // with --include), so it lays down minbase + netbase and the root's own apt installs the runtimes.
      // Downloaded .debs are kept in <cache>/roots/debs/<suite> until the root is built, so a retry reuses them.
      const debs = path.join(rootsDir(opts.cacheDir), 'debs', spec.suite);
      mkdirSync(path.join(debs, 'partial'), { recursive: true });
      const failLog = path.join(rootsDir(opts.cacheDir), `${spec.suite}.failed.log`);
      rmSync(failLog, { force: true });
      log(`roots: ${spec.suite}: debootstrap ${ds.version} --variant=minbase --include=netbase from ${mirror}, then apt-get install ${ROOT_PACKAGES.filter((p) => p !== 'netbase').join(' ')} inside (a few minutes, ~400 MB)`);
      await buildAtomically(dir, async (tmp) => {
        const root = path.join(tmp, 'root');
        const fail = (what: string, tail: string[]): never => {
          let dlog = '';
          try {
            dlog = readFileSync(path.join(root, 'debootstrap', 'debootstrap.log'), 'utf8');
          } catch {
            /* none */
          }
          writeFileSync(failLog, `${dlog}\n--- last output ---\n${tail.join('\n')}\n`);
          throw new Error(`${what} failed: ${tail.slice(-4).join(' | ')} (full log: ${failLog})`);
        };
        // one line per phase, not one per package
        const phases = new Set<string>();
        const quiet = /^(?:I: (Retrieving|Validating|Extracting|Unpacking|Configuring) \S+( \S+)?|(Get):\d+ .*|(Selecting) previously .*|(Preparing) to unpack .*|(Unpacking) .*|(Setting up) .*|(Processing) triggers .*|\(Reading database .*)$/;
        const onLine = (l: string) => {
          const q = quiet.exec(l);
          const k = q ? (q.slice(1).find(Boolean) ?? 'Reading') : null;
          if (k && phases.has(k)) return;
          if (k) phases.add(k);
          if (l.trim()) log(`roots: ${spec.suite}: ${k ? `${k} ...` : l}`);
        };
        const env = { ...cleanBaseEnv(), ...ds.env, DEBIAN_FRONTEND: 'noninteractive' };
        // in private namespaces: the proc/sys mounts made in the target, and any process left, go away with them
        // even when a step fails or is killed
        const r1 = await runLogged(which('unshare')!, [
          ...unshareArgs(), ds.cmd, '--variant=minbase', '--include=netbase', `--cache-dir=${debs}`,
          ...(existsSync(KEYRING) ? [`--keyring=${KEYRING}`] : []), spec.suite, root, mirror,
        ], env, 1_800_000, onLine);
        if (r1.code !== 0) fail(`debootstrap ${spec.suite} (exit ${r1.code})`, r1.tail);
        const aptScript = [
          'set -e', 'r=$1 debs=$2', 'shift 2',
          'mount -t proc proc "$r/proc"', 'mount --rbind /dev "$r/dev"', 'mount --rbind /sys "$r/sys" 2>/dev/null || true',
          'mount --bind "$debs" "$r/var/cache/apt/archives"',
          'cp -L /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true',
          'run() { chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }',
          // the mirror may serve a Release file older than this machine's clock (a snapshot, or sid's short
          // Valid-Until): its signature is still checked, only the expiry is not
          'run apt-get -q -o Dpkg::Use-Pty=0 -o Acquire::Check-Valid-Until=false update',
          'run apt-get -q -y -o Dpkg::Use-Pty=0 install --no-install-recommends "$@"',
        ].join('\n');
        const r2 = await runLogged(which('unshare')!, [...unshareArgs(), '/bin/sh', '-c', aptScript, 'fm-apt', root, debs, ...ROOT_PACKAGES.filter((p) => p !== 'netbase')], env, 1_800_000, onLine);
        if (r2.code !== 0) fail(`apt-get install in the ${spec.suite} root (exit ${r2.code})`, r2.tail);
        // slim: package caches and docs (the root is a test bed, not a system to upgrade)
        for (const p of ['var/cache/apt/archives', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man', 'usr/share/info']) {
          const full = path.join(root, p);
          capture('find', [full, '-mindepth', '1', '-not', '-name', 'lock', '-not', '-name', 'partial', '-delete'], { env: cleanBaseEnv(), timeoutMs: 120_000 });
        }
        for (const f of ['var/cache/apt/pkgcache.bin', 'var/cache/apt/srcpkgcache.bin']) rmSync(path.join(root, f), { force: true });
        recordRoot(rootHandle(opts.cacheDir, spec.suite, tmp), { mirror, debootstrap: ds.version });
      });
      rmSync(debs, { recursive: true, force: true });
      try {
        rmdirSync(path.dirname(debs)); // when no other suite's download is pending
      } catch {
        /* not empty */
      }
    }
    const m = readMeta(dir)!;
    log(`roots: ${spec.suite}: glibc ${m.libc.version}; ${m.runtimes.map((r) => `${r.runtime} ${r.version}`).join(', ')}${m.missing.length ? `; missing: ${m.missing.map((x) => x.runtime).join(', ')}` : ''}`);
  }
  if (!tarballOf(opts.cacheDir, spec.suite)) {
    const ext = which('zstd') ? 'tar.zst' : 'tar.gz';
    const file = path.join(rootsDir(opts.cacheDir), `${spec.suite}.${ext}`);
    const tmp = `${file}.tmp-${process.pid}`;
    log(`roots: ${spec.suite}: writing ${file}`);
    // /dev is left out (device nodes need root to unpack; every run binds the host's /dev anyway)
    const r = await sh({ timeout: '15m' })`tar --numeric-owner ${'--exclude=./root/dev/*'} ${compressor(file)} -cf ${tmp} -C ${dir} ./root ./forkmatrix.json`;
    if (r.exitCode !== 0) {
      rmSync(tmp, { force: true });
      throw new Error(`tar -c ${file} failed: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
    }
    renameSync(tmp, file);
    log(`roots: ${spec.suite}: ${file} (${Math.round(statSync(file).size / 1e6)} MB)`);
  }
}

export const rootsProvisioner: Provisioner = {
  name: 'roots',
  needs: 'root (debootstrap; not to unpack a <suite>.tar.zst), unshare, chroot, wget, a Debian mirror; x86_64',
  writes: 'roots/<suite>/ (root/, forkmatrix.json), roots/<suite>.tar.zst, roots/debootstrap/',
  accepts: (word) => ROOT_PROVISION_NAMES.includes(word),
  check: () => null,
  async provision(words, o, log) {
    const opts = adapterOptionsOf(o);
    const wanted = ROOT_SPECS.filter((s) => words.includes('roots') || words.includes(`root-${s.suite}`));
    if (!wanted.length) return;
    if (process.arch !== 'x64') throw new Error(`roots: x86_64 only (amd64 roots); this machine is ${process.arch}`);
    for (const s of wanted) await withLock(lockFile(opts.cacheDir, `provision-root-${s.suite}`), `provisioning the ${s.suite} root`, log, () => provisionRoot(s, opts, log));
  },
};
