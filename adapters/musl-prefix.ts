// What a path given on the command line is, for the musl adapter: `--libc PATH` as a musl install prefix or build
// tree (proved by running its libc.so), a glibc one (the glibc adapter's), and which loader an ELF program names
// (`--runtime R=PATH` of a musl-linked interpreter). Reads and runs files; writes nothing.

import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import path from 'node:path';
import { isDir, isFile } from '../src/util.ts';
import { capture } from '../src/proc.ts';
import { parseBanner, proveLibcFile } from '../src/probe.ts';

/** The ELF program interpreter (PT_INTERP) of a file, read from its headers; null when it has none / is no ELF. */
export function elfInterpreter(file: string): string | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const h = Buffer.alloc(64);
    if (readSync(fd, h, 0, 64, 0) < 52 || h.readUInt32BE(0) !== 0x7f454c46) return null;
    const is64 = h[4] === 2;
    const le = h[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u64 = (b: Buffer, o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
    const phoff = is64 ? u64(h, 0x20) : u32(h, 0x1c);
    const phentsize = u16(h, is64 ? 0x36 : 0x2a);
    const phnum = u16(h, is64 ? 0x38 : 0x2c);
    const ph = Buffer.alloc(phentsize);
    for (let i = 0; i < phnum; i++) {
      readSync(fd, ph, 0, phentsize, phoff + i * phentsize);
      if (u32(ph, 0) !== 3) continue; // PT_INTERP
      const off = is64 ? u64(ph, 8) : u32(ph, 4);
      const size = is64 ? u64(ph, 32) : u32(ph, 16);
      const s = Buffer.alloc(Math.min(size, 4096));
      readSync(fd, s, 0, s.length, off);
      return s.toString('latin1').replace(/\0.*$/s, '');
    }
    return null;
  } finally {
    closeSync(fd);
  }
}


export interface MuslPrefix {
  prefix: string;
  kind: 'prefix' | 'build tree';
  libc: string;
  lib: string;
  includes: string[];
  version: string;
  banner: string;
}

/** Does `dir` look like glibc (an install prefix, build tree or lib dir)? Such paths belong to another adapter. */
export function looksLikeGlibc(dir: string): boolean {
  const candidates = ['', 'lib', 'lib64', 'lib/x86_64-linux-gnu', 'usr/lib', 'usr/lib/x86_64-linux-gnu'];
  for (const c of candidates) {
    if (existsSync(path.join(dir, c, 'libc.so.6'))) return true;
    if (existsSync(path.join(dir, c, 'ld-linux-x86-64.so.2'))) return true;
  }
  if (existsSync(path.join(dir, 'elf', 'ld.so')) || existsSync(path.join(dir, 'elf', 'ld-linux-x86-64.so.2'))) return true;
  for (const c of ['libc.so', 'lib/libc.so']) {
    const f = path.join(dir, c);
    if (!isFile(f)) continue;
    try {
      const head = readFileSync(f).subarray(0, 4096).toString('latin1');
      if (/GNU ld script/.test(head) || /GNU C Library/.test(head)) return true;
    } catch {
      /* unreadable */
    }
    // the real glibc libc.so of a build tree announces itself when run
    const b = proveLibcFile(path.resolve(f));
    if (b.name === 'glibc') return true;
  }
  return false;
}

/**
 * Check that PATH is a musl install prefix (`make install prefix=PATH`: PATH/lib/libc.so, PATH/include) or a musl
 * build tree (lib/libc.so, include/, obj/include, arch/x86_64) and prove its version. Throws a clear error otherwise.
 */
export function muslPrefix(p: string): MuslPrefix {
  const prefix = path.resolve(p);
  const how = `expected a musl install prefix (PATH/lib/libc.so and PATH/include, as musl's \`./configure --prefix=PATH --syslibdir=PATH/lib && make install\` leaves them; without --syslibdir, make install as root replaces the system's /lib/ld-musl-x86_64.so.1) or a musl build tree (PATH/lib/libc.so after \`make\`)`;
  if (!isDir(prefix)) throw new Error(`--libc ${p}: no such directory; ${how}`);
  const libc = path.join(prefix, 'lib', 'libc.so');
  if (!isFile(libc)) throw new Error(`--libc ${p}: not a musl prefix: ${libc} does not exist; ${how}`);
  const r = capture(libc, [], { env: { PATH: '/usr/bin:/bin' }, timeoutMs: 10_000 });
  const banner = (r.stdout + r.stderr).trim();
  const proved = parseBanner(banner);
  if (proved.name !== 'musl')
    throw new Error(`--libc ${p}: not a musl prefix: ${libc} is not musl's loader (run, it said: ${JSON.stringify(banner.split('\n')[0]?.slice(0, 120) ?? '')}${r.error ? `; ${r.error}` : ''}); ${how}`);
  const buildTree = isFile(path.join(prefix, 'obj', 'include', 'bits', 'alltypes.h')) && isDir(path.join(prefix, 'arch', 'x86_64'));
  const includes = buildTree
    ? ['obj/include', 'arch/x86_64', 'arch/generic', 'include'].map((d) => path.join(prefix, d))
    : [path.join(prefix, 'include')];
  if (!isFile(path.join(prefix, 'include', 'stdio.h')))
    throw new Error(`--libc ${p}: musl ${proved.version} has no headers in ${path.join(prefix, 'include')} (install with \`make install\` after \`./configure --prefix=${p} --syslibdir=${p}/lib\`); ${how}`);
  for (const f of ['crt1.o', 'crti.o', 'crtn.o'])
    if (!isFile(path.join(prefix, 'lib', f))) throw new Error(`--libc ${p}: musl ${proved.version} lacks ${path.join(prefix, 'lib', f)} (its C start files); ${how}`);
  return { prefix, kind: buildTree ? 'build tree' : 'prefix', libc, lib: path.join(prefix, 'lib'), includes, version: proved.version, banner: banner.split('\n').slice(0, 2).join(' ') };
}
