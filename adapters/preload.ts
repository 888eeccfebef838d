// Allocators and other interposers on every glibc environment, through LD_PRELOAD.
//
// - `forkmatrix provision allocators` (provision/allocators.ts): Debian bookworm's libjemalloc2 (5.3), libtcmalloc-minimal4 (2.10) and
//   libmimalloc2.0 (2.0.9), unpacked into <cache>/allocators/<name>/<version>/ (they run on any glibc >= 2.36).
// - `--preload PATH.so`: any interposer a user wants to test, as `<env>+<name>` (libfoo.so.1 -> foo).
//
// For every glibc environment (the host's and the glibc adapter's) each becomes `<env>+<name>` with
// LD_PRELOAD=<lib> in environment.env: it reaches the launched program (and what that program forks and execs),
// never the compiler or gdb (they get their own clean environments). Proof: the probe must show the library mapped
// in a real process next to the proved libc; a preload that silently did not load is an error, not a column.

import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { hostEnvironment } from './host.ts';
import {
  compareVersions, debianTrees, DEBIAN_GLIBC, glibcTreeEnvironments, hostGlibc, mappedFiles, probeMaps, readElf, refuseOlder,
  rememberHostRuntimes,
} from './glibc.ts';
import { libcFromMaps, sameFile } from '../src/probe.ts';
import type { Adapter, AdapterOptions, AdapterStatus, Environment, LibcProof } from '../src/types.ts';

export interface Allocator {
  name: string;
  pkg: string;
  /** the library's file name inside the package */
  lib: string;
  about: string;
}

export const ALLOCATORS: Allocator[] = [
  { name: 'jemalloc', pkg: 'libjemalloc2', lib: 'libjemalloc.so.2', about: 'jemalloc 5.3' },
  { name: 'tcmalloc', pkg: 'libtcmalloc-minimal4', lib: 'libtcmalloc_minimal.so.4', about: 'gperftools tcmalloc (minimal) 2.10' },
  { name: 'mimalloc', pkg: 'libmimalloc2.0', lib: 'libmimalloc.so.2', about: 'mimalloc 2.0.9' },
];

/** bookworm's builds need at most glibc 2.34-ish: they run on the host (2.36) and every newer copy. */
export const ALLOCATOR_SUITE = 'bookworm';

export interface AllocMeta {
  name: string;
  pkg: string;
  suite: string;
  debVersion: string;
  /** path of the library, relative to the directory */
  lib: string;
}

/** A provisioned allocator: its library path, or null. */
export function allocatorLib(cacheDir: string, a: Allocator): { lib: string; meta: AllocMeta } | null {
  const base = path.join(cacheDir, 'allocators', a.name);
  let dirs: string[] = [];
  try {
    dirs = readdirSync(base).filter((d) => !d.includes('.tmp-')).sort(compareVersions).reverse();
  } catch {
    return null;
  }
  for (const d of dirs) {
    try {
      const meta = JSON.parse(readFileSync(path.join(base, d, 'forkmatrix.json'), 'utf8')) as AllocMeta;
      const lib = path.join(base, d, meta.lib);
      if (existsSync(lib)) return { lib, meta };
    } catch {
      /* incomplete */
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// --preload PATH.so

/** `libfoo.so.1` -> `foo`, `hook.so` -> `hook`. */
export function preloadName(file: string): string {
  return path.basename(file).replace(/\.so(\.[\d.]+)?$/, '').replace(/^lib/, '').replace(/[^A-Za-z0-9._-]/g, '_') || 'preload';
}

/** Check a --preload path before anything runs: it must be an x86-64 ELF shared object. Throws with the reason. */
export function checkPreload(p: string): string {
  const abs = path.resolve(p);
  if (!existsSync(abs)) throw new Error(`--preload ${p}: no such file`);
  if (!statSync(abs).isFile()) throw new Error(`--preload ${p}: not a file`);
  let elf;
  try {
    elf = readElf(abs);
  } catch (e) {
    throw new Error(`--preload ${p}: not a loadable shared object (${(e as Error).message.replace(abs + ': ', '')})`);
  }
  if (elf.type !== 3) throw new Error(`--preload ${p}: an ELF file, but not a shared object (e_type ${elf.type}): build it with -shared -fPIC`);
  if (elf.flags1 & 0x08000000) throw new Error(`--preload ${p}: a program (position-independent executable), not a shared library`);
  if (elf.machine !== 62) throw new Error(`--preload ${p}: built for another machine (e_machine ${elf.machine}), this is x86-64`);
  return abs;
}

// ---------------------------------------------------------------------------------------------------------------
// Environments

/** `base` with `lib` preloaded: `<base>+<name>`. The probe proves the base's libc and the library mapped. */
export function withPreload(base: Environment, name: string, lib: string): Environment {
  const env = { ...base.env, LD_PRELOAD: base.env.LD_PRELOAD ? `${base.env.LD_PRELOAD}:${lib}` : lib };
  const e: Environment = {
    ...base,
    id: `${base.id}+${name}`,
    adapter: 'preload',
    env,
    // exactly the given environment plus this one's (the base adds its own, e.g. GCONV_PATH, RUBYLIB)
    launch: (argv, given) => base.launch(argv, { ...given, ...env }),
    async probe(): Promise<LibcProof> {
      const proof = await base.probe();
      const { maps, stderr } = probeMaps(e);
      const file = libcFromMaps(maps);
      if (!file || !sameFile(file, proof.path)) throw new Error(`with LD_PRELOAD=${lib} the probe loaded ${file ?? 'no libc'}, not ${proof.path}`);
      const real = (() => {
        try {
          return realpathSync(lib);
        } catch {
          return lib;
        }
      })();
      if (!mappedFiles(maps).some((f) => f === real || sameFile(f, lib))) {
        const said = stderr.trim().split('\n').find((l) => /LD_PRELOAD|ld\.so/.test(l));
        throw new Error(`LD_PRELOAD=${lib} did not load in ${base.id}${said ? `: ${said.trim()}` : ' (not in the probe\'s /proc/self/maps)'}`);
      }
      return { ...proof, banner: `${proof.banner} + LD_PRELOAD ${real} (mapped)`, preloaded: [real] } as LibcProof;
    },
  };
  return e;
}

/** Every glibc environment without preloads: the host's (when it is glibc) and the glibc adapter's. */
export async function glibcBases(opts: AdapterOptions): Promise<Environment[]> {
  const out: Environment[] = [];
  if (hostGlibc()) {
    const host = hostEnvironment(opts);
    rememberHostRuntimes(opts.extraRuntimes, { runtimes: host.runtimes, missing: host.missing });
    out.push(host);
  }
  out.push(...(await glibcTreeEnvironments(opts)));
  return out;
}

/** Why `lib` cannot be preloaded into an environment of glibc `version` (null: it can). */
function preloadRefusal(lib: string, version: string | undefined): string | null {
  return version ? refuseOlder([lib], version, path.basename(lib)) : null;
}

export const preloadAdapter: Adapter = {
  name: 'preload',
  async environments(opts) {
    const custom = opts.preload.map((p) => ({ name: preloadName(p), lib: checkPreload(p) }));
    if (!custom.length && !ALLOCATORS.some((a) => allocatorLib(opts.cacheDir, a))) return []; // nothing to preload
    const bases = await glibcBases(opts);
    const out: Environment[] = [];
    for (const base of bases) {
      const libs = ALLOCATORS.map((a) => ({ name: a.name, lib: allocatorLib(opts.cacheDir, a)?.lib ?? null }))
        .filter((x): x is { name: string; lib: string } => !!x.lib && !custom.some((c) => c.name === x.name)); // a --preload of the same name wins
      for (const { name, lib } of [...libs, ...custom]) {
        if (preloadRefusal(lib, base.expect.version)) continue;
        out.push(withPreload(base, name, lib));
      }
    }
    return out;
  },
  async status(opts) {
    const out: AdapterStatus[] = [];
    const host = hostGlibc();
    // the bases: the host, the provisioned copies, and the copies `provision glibc` would make
    const bases: { id: string; version: string | null; ready: boolean }[] = [];
    if (host) bases.push({ id: `glibc-${host.version}`, version: host.version, ready: true });
    const trees = debianTrees(opts.cacheDir).filter((t) => !host || t.version !== host.version);
    for (const t of trees) bases.push({ id: t.id, version: t.version, ready: true });
    for (const d of DEBIAN_GLIBC.filter((x) => x.provision)) {
      const v = d.version;
      if (v && (bases.some((b) => b.version === v) || (host && v === host.version))) continue;
      if (!v && trees.length && d.suite === 'sid') continue; // sid already provisioned under its version
      bases.push({ id: v ? `glibc-${v}` : `glibc-${d.suite}`, version: v, ready: false });
    }
    let locals: Environment[] = [];
    try {
      locals = (await glibcTreeEnvironments(opts, { lazyCopies: false })).filter((e) => e.id.endsWith('+local'));
    } catch {
      /* the glibc adapter reports a bad --libc */
    }
    for (const l of locals) bases.push({ id: l.id, version: l.expect.version ?? null, ready: true });
    for (const b of bases) {
      for (const a of ALLOCATORS) {
        const have = allocatorLib(opts.cacheDir, a);
        const id = `${b.id}+${a.name}`;
        const why = have && b.version ? preloadRefusal(have.lib, b.version) : null;
        if (why) out.push({ id, state: 'impossible', detail: why });
        else if (have && b.ready) out.push({ id, state: 'available', detail: `${a.about} (Debian ${have.meta.suite} ${a.pkg} ${have.meta.debVersion}) via LD_PRELOAD=${have.lib}` });
        else
          out.push({
            id, state: 'provisionable',
            detail: `npx forkmatrix provision ${[!b.ready ? 'glibc' : '', !have ? 'allocators' : ''].filter(Boolean).join(' ')} (${a.about} from Debian ${ALLOCATOR_SUITE} ${a.pkg}, via LD_PRELOAD)`,
          });
      }
      for (const p of opts.preload) {
        const id = `${b.id}+${preloadName(p)}`;
        try {
          const lib = checkPreload(p);
          const why = b.version ? preloadRefusal(lib, b.version) : null;
          if (why) out.push({ id, state: 'impossible', detail: why });
          else out.push({ id, state: b.ready ? 'available' : 'provisionable', detail: b.ready ? `--preload ${lib} via LD_PRELOAD (proved mapped at run time)` : 'npx forkmatrix provision glibc' });
        } catch (e) {
          out.push({ id, state: 'impossible', detail: (e as Error).message });
        }
      }
    }
    return out;
  },
};
