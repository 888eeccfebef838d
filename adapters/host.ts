// The host adapter: this machine's own libc and the runtimes on its PATH. Nothing is taken from a label: the
// libc is read from a real process's mappings and proved by running it.

import { accessSync, constants, realpathSync } from 'node:fs';
import path from 'node:path';
import { capture, cleanBaseEnv } from '../src/proc.ts';
import { libcFromMaps, proveLibcFile } from '../src/probe.ts';
import type { Adapter, AdapterOptions, Environment, LibcProof, MissingRuntime, RuntimeInstance, FoundRuntime } from '../src/types.ts';

const HOST_PATH = cleanBaseEnv().PATH;

/** Find an executable by name on the caller's PATH (what they would type), then the standard directories. */
export function which(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), ...HOST_PATH.split(':')].filter(Boolean);
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

/** Ask an interpreter for its version and its real executable (pyenv shims resolve to the real binary). */
export function identifyRuntime(runtime: FoundRuntime, exe: string): RuntimeInstance | { reason: string } {
  const env = { ...cleanBaseEnv(), ...(exe.includes('/.pyenv/shims/') ? { PYENV_ROOT: process.env.PYENV_ROOT ?? path.resolve(exe, '../..') } : {}) };
  const q: Record<FoundRuntime, string[]> = {
    libc: ['-dumpfullversion'],
    python: ['-c', 'import sys,platform;print(platform.python_version());print(sys.executable)'],
    ruby: ['-e', 'require "rbconfig"; puts RUBY_VERSION; puts RbConfig.ruby'],
    node: ['-e', 'console.log(process.versions.node);console.log(process.execPath)'],
  };
  const r = capture(exe, q[runtime], { env, timeoutMs: 20_000 });
  if (r.code !== 0) return { reason: `${exe} did not answer (${(r.error ?? r.stderr.trim().split('\n').pop() ?? '').slice(0, 200)})` };
  const [version, real] = r.stdout.trim().split('\n');
  if (runtime === 'libc') {
    const name = path.basename(exe).includes('clang') ? 'clang' : 'gcc';
    return { runtime, version: `${name} ${version.trim()}`, executable: exe };
  }
  let executable = real?.trim() || exe;
  try {
    executable = realpathSync(executable);
  } catch {
    /* keep */
  }
  return { runtime, version: version.trim(), executable };
}

const DEFAULT_NAMES: Record<FoundRuntime, string[]> = {
  libc: ['cc', 'gcc', 'clang'],
  python: ['python3'],
  ruby: ['ruby'],
  node: ['node'],
};

const INSTALL_HINT: Record<FoundRuntime, string> = {
  libc: 'apt-get install gcc',
  python: 'apt-get install python3',
  ruby: 'apt-get install ruby',
  node: 'apt-get install nodejs',
};

/** The runtimes on this host: the default names on PATH plus --runtime additions. */
export function hostRuntimes(extra: AdapterOptions['extraRuntimes']): { runtimes: RuntimeInstance[]; missing: MissingRuntime[] } {
  const runtimes: RuntimeInstance[] = [];
  const missing: MissingRuntime[] = [];
  for (const rt of Object.keys(DEFAULT_NAMES) as FoundRuntime[]) {
    const exe = DEFAULT_NAMES[rt].map(which).find(Boolean);
    if (!exe) {
      missing.push({ runtime: rt, reason: `no ${DEFAULT_NAMES[rt].join('/')} on PATH (${INSTALL_HINT[rt]}, or --runtime ${rt}=/path)` });
      continue;
    }
    const id = identifyRuntime(rt, exe);
    if ('reason' in id) missing.push({ runtime: rt, reason: id.reason });
    else runtimes.push(id);
  }
  for (const x of extra) {
    const id = identifyRuntime(x.runtime, x.path);
    if ('reason' in id) missing.push({ runtime: x.runtime, reason: `--runtime ${x.runtime}=${x.path}: ${id.reason}` });
    else if (!runtimes.some((r) => r.runtime === id.runtime && r.executable === id.executable)) runtimes.push(id);
  }
  return { runtimes, missing };
}

/** The libc a host program really loads: a dynamically linked /bin/cat reading its own maps. */
export function probeHost(env: Record<string, string> = {}): LibcProof {
  const r = capture('/bin/cat', ['/proc/self/maps'], { env: { ...cleanBaseEnv(), ...env } });
  const file = libcFromMaps(r.stdout);
  if (!file) throw new Error(`could not find a libc in /bin/cat's mappings (${r.stderr.trim() || r.error || 'no output'})`);
  return proveLibcFile(file);
}

export function hostEnvironment(opts: AdapterOptions, id?: string, extraEnv: Record<string, string> = {}): Environment {
  const proof = probeHost();
  const { runtimes, missing } = hostRuntimes(opts.extraRuntimes);
  return {
    id: id ?? `${proof.name}-${proof.version}`,
    adapter: 'host',
    expect: { libc: proof.name === 'musl' ? 'musl' : 'glibc', version: proof.version },
    env: extraEnv,
    runtimes,
    missing,
    launch: (argv, env) => ({ command: argv[0], args: argv.slice(1), env }),
    probe: async () => probeHost(extraEnv),
  };
}

/** Debian packages that give the host its runtimes and the hang diagnosis. */
// cmake builds libuv for the libuv cases
export const HOST_PACKAGES: Record<string, string> = { ruby: 'ruby', python3: 'python3', gdb: 'gdb', cc: 'gcc', node: 'nodejs', cmake: 'cmake' };

export const hostAdapter: Adapter = {
  name: 'host',
  async provision(what, _opts, log) {
    if (!what.includes('host')) return;
    const need = Object.entries(HOST_PACKAGES).filter(([exe]) => !which(exe)).map(([, pkg]) => pkg);
    if (!need.length) return log(`host: ${Object.keys(HOST_PACKAGES).join(', ')} are all present`);
    if (process.getuid?.() !== 0) throw new Error(`host: missing ${need.join(', ')}; as root run: apt-get install -y ${need.join(' ')}`);
    log(`host: apt-get install ${need.join(' ')}`);
    const env = { ...cleanBaseEnv(), DEBIAN_FRONTEND: 'noninteractive' };
    // a second provision (or any apt) at the same time: wait for dpkg's lock instead of failing on it
    const wait = ['-o', 'DPkg::Lock::Timeout=600'];
    let r = capture('apt-get', [...wait, 'install', '-y', '-q', ...need], { env, timeoutMs: 900_000 });
    if (r.code !== 0) {
      capture('apt-get', [...wait, 'update', '-q'], { env, timeoutMs: 600_000 });
      r = capture('apt-get', [...wait, 'install', '-y', '-q', ...need], { env, timeoutMs: 900_000 });
    }
    if (r.code !== 0) throw new Error(`host: apt-get install ${need.join(' ')} failed: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
  },
  async environments(opts) {
    return [hostEnvironment(opts)];
  },
  async status(opts) {
    const e = hostEnvironment(opts);
    const rts = e.runtimes.map((r) => `${r.runtime} ${r.version}`).join(', ');
    return [{ id: e.id, state: 'available', detail: `this machine's libc; runtimes: ${rts}${e.missing.length ? '; missing: ' + e.missing.map((m) => m.runtime).join(', ') : ''}` }];
  },
};
