// The Debian roots adapter: a whole Debian release (its glibc AND its own python3, ruby, node and gcc) in a
// debootstrap root, entered per process with private namespaces. This is how a glibc older than the host's runs
// (bullseye's 2.31: the host's binaries need newer GLIBC_x.y symbols, so the glibc adapter cannot run them there),
// and how a newer release's runtimes run as Debian builds them.
//
// Roots (ROOT_SPECS): bullseye (glibc 2.31, Python 3.9, Ruby 2.7, Node 12), bookworm (2.36, Python 3.11, Ruby 3.1,
// Node 18), trixie (2.41, Python 3.13, Ruby 3.3, Node 20) and sid (rolling: its glibc is whatever it proves):
// `debootstrap --variant=minbase --include=netbase` from the mirror this machine's apt uses (netbase:
// getaddrinfo("localhost") needs it), then the root's own apt installs each runtime's Debian packages (the specs in
// runners/<rt>/index.ts: python3 ruby nodejs gcc libc6-dev) and gdb (--no-install-recommends: what `--include` would
// give, but resolved by apt; see provision/roots.ts provisionRoot).
//
// Environment ids are `glibc-<proved version>-<suite>` (glibc-2.31-bullseye, glibc-2.41-trixie): the libc first,
// like every other environment, and the release because a root also fixes the runtimes' versions and builds. They
// never collide with the glibc adapter's `glibc-<version>` (Debian's libc6 run under the host's own runtimes).
//
// Cache layout (`forkmatrix provision roots`, or one of `root-bullseye` ... `root-sid`; provision/roots.ts):
//   <cache>/roots/<suite>.tar.zst     root/ + forkmatrix.json (.tar.gz when zstd is absent; /dev left out, so
//                                     it unpacks without root: a CI cache can carry it)
//   <cache>/roots/<suite>/root/       the unpacked root (read-only in use: every run gets an overlay)
//   <cache>/roots/<suite>/forkmatrix.json   proved glibc, runtimes found, debootstrap and mirror used
//   <cache>/roots/<suite>/ns/         empty: a run's private tmpfs is mounted here (in its own namespace only)
//   <cache>/roots/<suite>/bin/cc-<checkout> the root's gcc, entered through the same namespaces (for the C runner, which
//                                     runs its compiler on the host side)
//   <cache>/roots/enter.sh            what runs inside the namespaces before the program (below)
//   <cache>/roots/debootstrap/        Debian's debootstrap package, unpacked (when none is on PATH)
//
// launch(argv): `unshare --mount --pid --fork --kill-child=SIGKILL [--user --map-root-user] sh enter.sh ...`:
// in a private mount namespace, a tmpfs on ns/ holds an overlay (root as the read-only lower layer) so a case can
// never change the cached root; /proc is a new proc for the new PID namespace, /dev and /sys are bound from the
// host, and the runners dir, the cache dir, the directories of argv's host paths and the cell's HOME and TMPDIR
// (its config, result and private temporary directory) are bound at the SAME absolute paths inside; then `chroot`.
// The shell stays PID 1 of the namespace (the program is its child), so SIGKILL to the driver's process group, or
// unshare dying, kills everything inside; nothing mounted outlives the run. `unshare --fork` ignores SIGTERM: kill
// with SIGKILL (the driver does).
//
// Nothing is taken from a label: probe() runs /bin/cat inside the root on its own /proc/self/maps, then runs the
// mapped libc file inside the root (its PT_INTERP is the root's loader) for its banner.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { which } from './host.ts';
import { capture, cleanBaseEnv } from '../src/proc.ts';
import { parseBanner } from '../src/probe.ts';
import { writeWhole } from '../src/util.ts';
import type {
  Adapter, AdapterStatus, Environment, LibcProof, MissingRuntime, RuntimeInstance, FoundRuntime,
} from '../src/types.ts';
import { parseQuery } from '../src/runtimes/spec.ts';
import { RUNTIME_SPECS } from '../src/runtimes/specs.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repo's runners/ (harness scripts, harness.c): bound into every root at the same path. */
export const RUNNERS_DIR = path.resolve(HERE, '..', 'runners');

export interface RootSpec {
  suite: 'bullseye' | 'bookworm' | 'trixie' | 'sid';
  /** what the release ships (labels for `list`; the environment's id and expectation come from the proof) */
  glibc: string;
  ships: string;
  /** a rolling release (sid): its glibc moves, so the proved version is not checked against `glibc` */
  rolling?: boolean;
}

export const ROOT_SPECS: RootSpec[] = [
  { suite: 'bullseye', glibc: '2.31', ships: 'Python 3.9, Ruby 2.7, Node 12, gcc 10' },
  { suite: 'bookworm', glibc: '2.36', ships: 'Python 3.11, Ruby 3.1, Node 18, gcc 12' },
  { suite: 'trixie', glibc: '2.41', ships: 'Python 3.13, Ruby 3.3, Node 20, gcc 14' },
  { suite: 'sid', glibc: '2.43', ships: "Debian's newest python3, ruby, nodejs and gcc (rolling)", rolling: true },
];

/** What `forkmatrix provision NAME` this adapter handles. */
export const ROOT_PROVISION_NAMES = ['roots', ...ROOT_SPECS.map((s) => `root-${s.suite}`)];

/** netbase (getaddrinfo("localhost")), each runtime's Debian packages (runners/<rt>/index.ts), gdb (hang proof) */
export const ROOT_PACKAGES = ['netbase', ...RUNTIME_SPECS.flatMap((s) => s.find?.debian.packages ?? []), 'gdb'];

const HOST_TOOLS_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
export const META_VERSION = 1;

export const rootId = (suite: string, glibcVersion: string) => `glibc-${glibcVersion}-${suite}`;
export const rootsDir = (cacheDir: string) => path.join(cacheDir, 'roots');
export const suiteDir = (cacheDir: string, suite: string) => path.join(rootsDir(cacheDir), suite);

/** Recorded in <cache>/roots/<suite>/forkmatrix.json. */
export interface RootMeta {
  meta: number;
  suite: string;
  mirror: string;
  debootstrap: string;
  created: string;
  libc: LibcProof;
  /** runtimes found inside (paths inside the root; libc: the root's gcc) */
  runtimes: RuntimeInstance[];
  missing: MissingRuntime[];
}

// ---------------------------------------------------------------------------------------------------------------
// Entering a root

/**
 * Runs inside `unshare --mount --pid --fork`: this shell is PID 1 of the new PID namespace, all mounts are private.
 * usage: enter.sh ROOT SCRATCH [BIND_PATH...] -- [NAME=VALUE...] PROGRAM [ARG...]
 */
export const ENTER_SH = `#!/bin/sh
# forkmatrix: run a program inside a Debian root. Started (with PATH only) as
#   unshare --mount --pid --fork --kill-child=SIGKILL [--user --map-root-user] \\
#     /bin/sh enter.sh ROOT SCRATCH [BIND_PATH...] -- [NAME=VALUE...] PROGRAM [ARG...]
# Every mount below lives in that private mount namespace and goes with it. This shell is PID 1 of the new PID
# namespace and PROGRAM is its child: when this shell dies (SIGKILL to the process group, or unshare dying) the
# kernel kills every process inside. PROGRAM gets exactly the NAME=VALUE list as its environment (env -i) and the
# caller's working directory when that is visible inside (else /).
set -e
PATH=/usr/sbin:/usr/bin:/sbin:/bin
root=$1 scratch=$2
shift 2
cwd=$PWD
mount -t tmpfs -o mode=0755 fm-scratch "$scratch"
mkdir "$scratch/upper" "$scratch/work" "$scratch/top"
top=$scratch/top
# the cached root is the read-only lower layer: a case's writes go to this run's tmpfs
if ! mount -t overlay -o "lowerdir=$root,upperdir=$scratch/upper,workdir=$scratch/work" fm-root "$top" 2>/dev/null; then
  echo "forkmatrix enter.sh: no overlayfs here; running in the root itself" >&2
  mount --bind "$root" "$top"
fi
mount -t proc proc "$top/proc"
mount --rbind /dev "$top/dev"
mount --rbind /sys "$top/sys" 2>/dev/null || true
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
  if [ -d "$1" ]; then
    mkdir -p "$top$1"
  else
    mkdir -p "$top\${1%/*}"
    : > "$top$1"
  fi
  mount --bind "$1" "$top$1"
  shift
done
shift
[ -d "$top$cwd" ] || cwd=/
rc=0
chroot "$top" /usr/bin/env -i -C "$cwd" "$@" || rc=$?
exit $rc
`;

/** The unshare flags: a private mount namespace, a PID namespace whose PID 1 takes everything with it. */
export function unshareArgs(): string[] {
  const args = ['--mount', '--pid', '--fork', '--kill-child=SIGKILL'];
  if (process.getuid?.() !== 0) args.push('--user', '--map-root-user');
  return args;
}

/** Write <cache>/roots/enter.sh when absent or different (atomically: concurrent runs may read it). */
export function ensureEnterScript(cacheDir: string): string {
  const file = path.join(rootsDir(cacheDir), 'enter.sh');
  writeWhole(file, ENTER_SH, { mode: 0o755, ifChanged: true });
  return file;
}

const SYSTEM_DIRS = ['/usr', '/lib', '/lib32', '/lib64', '/libx32', '/bin', '/sbin', '/etc', '/proc', '/sys', '/dev', '/var/lib', '/boot'];

function isUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : dir + '/');
}

/**
 * Host paths to bind at the same path inside the root: `always` (runners/, the cache) and, for each absolute
 * argv entry that exists on the host but not in the root, its directory (a file's parent; the file alone when its
 * directory is one the root has, e.g. /tmp/x.json). A path the root has itself (/usr/bin/python3) is the root's and
 * never shadowed.
 */
export function bindDirs(root: string, argv: string[], always: string[]): string[] {
  const cands: { p: string; file?: string }[] = always.map((p) => ({ p }));
  for (const a of argv) {
    if (!path.isAbsolute(a) || existsSync(root + a)) continue;
    try {
      cands.push(statSync(a).isDirectory() ? { p: a } : { p: path.dirname(a), file: a });
    } catch {
      /* not a host path */
    }
  }
  const out: string[] = [];
  for (const c of cands.map((x) => ({ ...x, p: path.resolve(x.p) })).sort((a, b) => a.p.length - b.p.length)) {
    if (out.some((o) => isUnder(c.file ?? c.p, o))) continue;
    if (!existsSync(c.p)) continue;
    if (c.p === '/' || existsSync(root + c.p)) {
      // never hide the root's own directories: a file directly in one (/tmp/x.json) is bound by itself, except
      // in the system's directories (a host program or library must never stand in for the root's)
      if (c.file && !SYSTEM_DIRS.some((d) => isUnder(c.file!, d)) && !out.includes(c.file)) out.push(path.resolve(c.file));
      continue;
    }
    out.push(c.p);
  }
  return out;
}

export interface RootHandle {
  suite: string;
  /** <cache>/roots/<suite> */
  dir: string;
  /** the root file system (dir/root) */
  root: string;
  cacheDir: string;
}

export function rootHandle(cacheDir: string, suite: string, dir = suiteDir(cacheDir, suite)): RootHandle {
  return { suite, dir, root: path.join(dir, 'root'), cacheDir };
}

/** The command that runs argv inside the root with exactly `env` (the caller's process.env is never used). */
export function enterCommand(h: RootHandle, argv: string[], env: Record<string, string>, unshare = which('unshare') ?? '/usr/bin/unshare') {
  const enter = ensureEnterScript(h.cacheDir);
  mkdirSync(path.join(h.dir, 'ns'), { recursive: true });
  // the program itself is the root's (or under the cache: a compiled case); its arguments may be host paths, and
  // so may the cell's private HOME and TMPDIR (a harness's mkdtemp needs TMPDIR to exist inside)
  const homes = [env.TMPDIR, env.HOME].filter((d): d is string => !!d && path.isAbsolute(d));
  const binds = bindDirs(h.root, [...argv.slice(1), ...homes], [RUNNERS_DIR, h.cacheDir]);
  if (!argv.length || argv[0].includes('=')) throw new Error(`cannot run ${JSON.stringify(argv[0])} in a root: a program path must not contain '='`);
  const vars = Object.entries(env).map(([k, v]) => {
    if (!k || k.includes('=')) throw new Error(`bad environment variable name ${JSON.stringify(k)}`);
    return `${k}=${v}`;
  });
  return {
    command: unshare,
    args: [...unshareArgs(), '/bin/sh', enter, h.root, path.join(h.dir, 'ns'), ...binds, '--', ...vars, ...argv],
    // unshare, mount and chroot run on the host side with a fixed PATH; the program gets exactly `env` (env -i)
    env: { PATH: HOST_TOOLS_PATH },
  };
}

/** Run argv inside the root and wait (short commands: probes, version queries). */
export function runInRoot(h: RootHandle, argv: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}) {
  const l = enterCommand(h, argv, opts.env ?? cleanBaseEnv());
  return capture(l.command, l.args, { env: l.env, timeoutMs: opts.timeoutMs ?? 30_000, cwd: '/' });
}

// glibc before 2.34 maps libc-2.NN.so (libc.so.6 is a symlink to it)
const ROOT_LIBC_RE = /\/(libc\.so\.6|libc-\d+\.\d+(\.\d+)?\.so)$/;

export function libcInMaps(maps: string): string | null {
  for (const line of maps.split('\n')) {
    const f = line.trim().split(/\s+/).slice(5).join(' ');
    if (f && ROOT_LIBC_RE.test(f)) return f;
  }
  return null;
}

/** The libc a program inside the root really maps, proved by running that file inside the root. */
export function probeRoot(h: RootHandle): LibcProof {
  const r = runInRoot(h, ['/bin/cat', '/proc/self/maps']);
  const file = libcInMaps(r.stdout);
  if (r.code !== 0 || !file) throw new Error(`could not read the libc of /bin/cat inside ${h.root}: ${(r.stderr || r.error || 'no output').trim().slice(-400)}`);
  const b = runInRoot(h, [file], { env: { PATH: '/usr/bin:/bin' } });
  const banner = (b.stdout + b.stderr).trim();
  const { name, version } = parseBanner(banner);
  if (name === 'unknown') throw new Error(`${file} inside ${h.root} printed no libc banner: ${banner.slice(0, 300) || b.error || `exit ${b.code}`}`);
  return { name, version, path: file, banner: banner.split('\n').slice(0, 2).join(' ') };
}

/** The root's own runtimes (executables as paths inside the root; libc: the root's gcc). */
export function identifyRootRuntimes(h: RootHandle, suite: string): { runtimes: RuntimeInstance[]; missing: MissingRuntime[] } {
  const runtimes: RuntimeInstance[] = [];
  const missing: MissingRuntime[] = [];
  for (const spec of RUNTIME_SPECS) {
    if (!spec.find) continue;
    const rt = spec.runtime as FoundRuntime;
    const q = { exe: spec.find.debian.exe, args: spec.find.query };
    const pkg = spec.find.debian.packages[0];
    if (!existsSync(h.root + q.exe)) {
      missing.push({ runtime: rt, reason: `no ${q.exe} in the ${suite} root (re-provision: rm -r ${h.dir}* && npx forkmatrix provision root-${suite}; it installs ${pkg})` });
      continue;
    }
    const r = runInRoot(h, [q.exe, ...q.args]);
    if (r.code !== 0) {
      missing.push({ runtime: rt, reason: `${q.exe} in the ${suite} root did not answer: ${(r.stderr || r.error || '').trim().split('\n').pop()?.slice(0, 200)}` });
      continue;
    }
    const id = parseQuery(spec, q.exe, r.stdout);
    if ('reason' in id) missing.push({ runtime: rt, reason: `in the ${suite} root: ${id.reason}` });
    else runtimes.push(id);
  }
  return { runtimes, missing };
}

/**
 * The C runner compiles on the host side (`capture(cc, ...)`), so the root's gcc is reached through a wrapper
 * that enters the root the same way (binding runners/ and the cache: the sources and the output live there).
 * The binary is linked against the root's glibc and runs inside the root.
 */
export function ensureCcWrapper(h: RootHandle, unshare: string): string {
  const enter = ensureEnterScript(h.cacheDir);
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const binds = bindDirs(h.root, [], [RUNNERS_DIR, h.cacheDir]);
  const text = [
    '#!/bin/sh',
    `# forkmatrix: gcc of the Debian ${h.suite} root, run inside it (programs link against the root's own glibc)`,
    `exec env -i PATH=${HOST_TOOLS_PATH} ${[unshare, ...unshareArgs(), '/bin/sh', enter, h.root, path.join(h.dir, 'ns'), ...binds, '--', 'PATH=/usr/bin:/bin', 'LANG=C.UTF-8', '/usr/bin/gcc'].map(q).join(' ')} "$@"`,
    '',
  ].join('\n');
  // one wrapper per checkout: it binds this checkout's runners/, and two checkouts (worktrees) may share one cache;
  // a single bin/cc rewritten by each would make the other's compiles miss their harness.c
  const file = path.join(h.dir, 'bin', `cc-${createHash('sha256').update(RUNNERS_DIR).digest('hex').slice(0, 12)}`);
  writeWhole(file, text, { mode: 0o755, ifChanged: true });
  mkdirSync(path.join(h.dir, 'ns'), { recursive: true });
  return file;
}

// ---------------------------------------------------------------------------------------------------------------
// The cache

export function readMeta(dir: string): RootMeta | null {
  try {
    const m = JSON.parse(readFileSync(path.join(dir, 'forkmatrix.json'), 'utf8')) as RootMeta;
    return m.meta === META_VERSION && m.libc?.version && Array.isArray(m.runtimes) ? m : null;
  } catch {
    return null;
  }
}

/** A provisioned root: its unpacked dir with a valid record. */
export function cachedRoot(cacheDir: string, suite: string): { h: RootHandle; meta: RootMeta } | null {
  const h = rootHandle(cacheDir, suite);
  const meta = readMeta(h.dir);
  if (!meta || !existsSync(path.join(h.root, 'usr', 'bin')) || !existsSync(path.join(h.root, 'proc'))) return null;
  return { h, meta };
}

export function tarballOf(cacheDir: string, suite: string): string | null {
  for (const ext of ['tar.zst', 'tar.gz']) {
    const f = path.join(rootsDir(cacheDir), `${suite}.${ext}`);
    if (existsSync(f)) return f;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// Environments

export function rootEnvironment(h: RootHandle, meta: RootMeta, unshare: string): Environment {
  const cc = ensureCcWrapper(h, unshare);
  const runtimes = meta.runtimes
    .filter((r) => existsSync(h.root + r.executable))
    .map((r) => (r.runtime === 'libc' ? { ...r, executable: cc } : { ...r }));
  const missing = [
    ...meta.missing,
    ...meta.runtimes.filter((r) => !existsSync(h.root + r.executable)).map((r) => ({ runtime: r.runtime, reason: `${r.executable} is gone from ${h.root} (re-provision root-${h.suite})` })),
  ];
  const env: Environment = {
    id: rootId(h.suite, meta.libc.version),
    adapter: 'debian-root',
    expect: { libc: 'glibc', version: meta.libc.version },
    env: {},
    runtimes,
    missing,
    root: h.root,
    launch: (argv, e) => enterCommand(h, argv, { ...e, ...env.env }, unshare),
    probe: async () => probeRoot(h),
  };
  return env;
}

function summary(meta: RootMeta): string {
  return `runtimes: ${meta.runtimes.map((r) => `${r.runtime} ${r.version}`).join(', ') || 'none'}${meta.missing.length ? '; missing: ' + meta.missing.map((m) => `${m.runtime} (${m.reason})`).join('; ') : ''}`;
}

export const debianRootAdapter: Adapter = {
  name: 'debian-root',

  async environments(opts) {
    const unshare = which('unshare');
    if (!unshare || !which('chroot')) return [];
    const out: Environment[] = [];
    for (const s of ROOT_SPECS) {
      const c = cachedRoot(opts.cacheDir, s.suite);
      if (c) out.push(rootEnvironment(c.h, c.meta, unshare));
    }
    return out;
  },

  async status(opts) {
    const out: AdapterStatus[] = [];
    const lacks = ['unshare', 'chroot', 'tar'].filter((t) => !which(t));
    for (const s of ROOT_SPECS) {
      const c = cachedRoot(opts.cacheDir, s.suite);
      const label = rootId(s.suite, c?.meta.libc.version ?? s.glibc);
      if (c) {
        out.push({ id: label, state: lacks.length ? 'impossible' : 'available', detail: lacks.length ? `no ${lacks.join(', ')} to enter the root` : `Debian ${s.suite} root in ${c.h.root}; ${summary(c.meta)}` });
        continue;
      }
      const cmd = `npx forkmatrix provision root-${s.suite}`;
      const tarball = tarballOf(opts.cacheDir, s.suite);
      if (process.arch !== 'x64') out.push({ id: label, state: 'impossible', detail: `amd64 roots only; this machine is ${process.arch}` });
      else if (lacks.length) out.push({ id: label, state: 'impossible', detail: `no ${lacks.join(', ')} (util-linux, coreutils, tar)` });
      else if (tarball) out.push({ id: label, state: 'provisionable', detail: `${cmd} (unpacks ${tarball}, no root needed)` });
      else if (process.getuid?.() !== 0)
        out.push({ id: label, state: 'impossible', detail: `debootstrap needs root: as root, ${cmd} (or put a ${s.suite}.tar.zst from another machine's cache in ${rootsDir(opts.cacheDir)})` });
      else out.push({ id: label, state: 'provisionable', detail: `${cmd} (or 'roots' for all): debootstrap minbase of Debian ${s.suite} (glibc ${s.glibc}; ${s.ships}), a few minutes (11 min measured on a loaded 2-core machine), ~400 MB` });
    }
    return out;
  },
};
