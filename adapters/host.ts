// The host adapter: this machine's own libc and the runtimes its sources find (src/runtimes: PATH, version managers). Nothing is taken from a label: the
// libc is read from a real process's mappings and proved by running it.

import { accessSync, closeSync, constants, existsSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { capture, cleanBaseEnv } from '../src/proc.ts';
import { readJson, writeWhole } from '../src/util.ts';
import { libcFromMaps, proveLibcFile } from '../src/probe.ts';
import { discover, sources } from '../src/runtimes/index.ts';
import { parseQuery } from '../src/runtimes/spec.ts';
import { findOf, RUNTIME_SPECS, specOf } from '../src/runtimes/specs.ts';
import type { SourceOptions } from '../src/runtimes/source.ts';
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

const identified = new Map<string, RuntimeInstance | { reason: string }>();

/**
 * Ask an interpreter (or compiler) for its version and its real executable with its runtime's query
 * (runners/<rt>/index.ts), in the clean environment (pyenv shims resolve to the real binary). Once per file and
 * process; with `cacheDir`, an ELF program's answer is also kept in <cache>/runtimes/identified.json by its path,
 * size, mtime and the query (a dozen interpreters cost seconds to ask on a loaded machine). Failures are not kept.
 */
export function identifyRuntime(runtime: FoundRuntime, exe: string, cacheDir?: string): RuntimeInstance | { reason: string } {
  let stamp = '';
  try {
    const st = statSync(exe);
    stamp = `${st.size}\0${st.mtimeMs}`;
  } catch {
    return { reason: `${exe}: no such file` };
  }
  const key = `${runtime}\0${exe}\0${stamp}\0${findOf(runtime).query.join(' ')}`;
  if (identified.has(key)) return identified.get(key)!;
  const disk = cacheDir && isElf(exe) ? path.join(cacheDir, 'runtimes', 'identified.json') : null;
  const known = disk ? readJson<Record<string, RuntimeInstance>>(disk) : null;
  const hit = known?.[key];
  const id = hit && typeof hit.version === 'string' && existsSync(hit.executable) ? hit : identifyNow(runtime, exe);
  identified.set(key, id);
  if (disk && !hit && !('reason' in id)) {
    try {
      writeWhole(disk, JSON.stringify({ ...(readJson<object>(disk) ?? {}), [key]: id }, null, 1) + '\n');
    } catch {
      /* a read-only cache: ask again next time */
    }
  }
  return id;
}

function isElf(file: string): boolean {
  try {
    const fd = openSync(file, 'r');
    try {
      const b = Buffer.alloc(4);
      return readSync(fd, b, 0, 4, 0) === 4 && b.toString('latin1') === '\x7fELF';
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

function identifyNow(runtime: FoundRuntime, exe: string): RuntimeInstance | { reason: string } {
  const env = { ...cleanBaseEnv(), ...(exe.includes('/.pyenv/shims/') ? { PYENV_ROOT: process.env.PYENV_ROOT ?? path.resolve(exe, '../..') } : {}) };
  const r = capture(exe, findOf(runtime).query, { env, timeoutMs: 20_000 });
  if (r.code !== 0) {
    const why = r.error ?? (r.stderr.trim().split('\n').pop() || (r.signal ? `killed by ${r.signal}` : `exit ${r.code}, no output`));
    return { reason: `${exe} did not answer ${runtime}'s version query (${why.slice(0, 200)})` };
  }
  const id = parseQuery(specOf(runtime), exe, r.stdout);
  if ('reason' in id) return id;
  let executable = id.executable;
  try {
    executable = realpathSync(executable);
  } catch {
    /* keep */
  }
  return { ...id, executable: findOf(runtime).selfReports === false ? exe : executable };
}

/** This host's libc and, for glibc, its version (what this Node was loaded with: process.report's header). */
const hostLibc = (): { libc: 'glibc' | 'musl'; glibc?: string } => {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime ? { libc: 'glibc', glibc: header.glibcVersionRuntime } : { libc: 'musl' };
};

export type HostRuntimeOptions = Pick<AdapterOptions, 'extraRuntimes' | 'cacheDir'> & Pick<SourceOptions, 'home' | 'env'>;
const found = new Map<string, { runtimes: RuntimeInstance[]; missing: MissingRuntime[] }>();

/**
 * The runtimes on this host: every runtime source (src/runtimes: PATH, pyenv, uv, asdf, mise, rbenv, rvm, nvm, fnm,
 * volta, ...) plus --runtime additions, identified once per process. FORKMATRIX_SOURCES=PATH,pyenv (source names)
 * narrows the sources (the tests use PATH alone: one interpreter per runtime).
 */
export function hostRuntimes(o: HostRuntimeOptions): { runtimes: RuntimeInstance[]; missing: MissingRuntime[] } {
  const key = JSON.stringify([o.extraRuntimes, o.cacheDir, o.home ?? null, (o.env ?? process.env).FORKMATRIX_SOURCES ?? null]);
  const only = (o.env ?? process.env).FORKMATRIX_SOURCES?.split(',').map((x) => x.trim()).filter(Boolean);
  const srcs = only?.length ? sources().filter((s) => only.includes(s.name)) : undefined;
  if (!found.has(key)) found.set(key, discover({ cacheDir: o.cacheDir, home: o.home, env: o.env, ...hostLibc(), extra: o.extraRuntimes, sources: srcs }, (rt, exe) => identifyRuntime(rt, exe, o.cacheDir)));
  const f = found.get(key)!;
  return { runtimes: [...f.runtimes], missing: [...f.missing] };
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
  const { runtimes, missing } = hostRuntimes(opts);
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

/** Debian packages that give the host its runtimes (`provision host`: provision/host.ts) (each runtime's spec names its own) and the hang diagnosis. */
export const HOST_PACKAGES: Record<string, string> = Object.assign({ gdb: 'gdb' }, ...RUNTIME_SPECS.map((s) => s.hostPackages ?? {}));

export const hostAdapter: Adapter = {
  name: 'host',
  async environments(opts) {
    return [hostEnvironment(opts)];
  },
  async status(opts) {
    const e = hostEnvironment(opts);
    const rts = e.runtimes.map((r) => `${r.runtime} ${r.version}`).join(', ');
    return [{ id: e.id, state: 'available', detail: `this machine's libc; runtimes: ${rts}${e.missing.length ? '; missing: ' + e.missing.map((m) => m.runtime).join(', ') : ''}` }];
  },
};
