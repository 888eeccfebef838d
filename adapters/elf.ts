// ELF: what a binary asks of the dynamic loader, read straight from the file (no binutils needed): its
// interpreter, NEEDED libraries and the newest GLIBC_x.y symbol version it needs, and the refusal line when a glibc
// is older than that. Used by the glibc copies, the roots and the Node builds (src/runtimes/node-dist.ts).

import { compareVersions } from '../src/util.ts';
import { closeSync, openSync, readSync, realpathSync, statSync } from 'node:fs';

export interface ElfInfo {
  /** ET_EXEC 2, ET_DYN 3 */
  type: number;
  /** e_machine: 62 is x86-64 */
  machine: number;
  interp: string | null;
  needed: string[];
  rpath: string[];
  runpath: string[];
  /** DT_FLAGS_1 (DF_1_PIE 0x08000000 marks a position-independent executable) */
  flags1: number;
  /** .gnu.version_r: per needed file, the version names asked for (GLIBC_2.34 ...) */
  verneed: { file: string; versions: string[] }[];
}

export function readElf(file: string): ElfInfo {
  const fd = openSync(file, 'r');
  try {
    const read = (pos: number, len: number): Buffer => {
      const b = Buffer.alloc(len);
      const n = readSync(fd, b, 0, len, pos);
      return n === len ? b : b.subarray(0, n);
    };
    const h = read(0, 64);
    if (h.length < 64 || h.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file}: not an ELF file`);
    if (h[4] !== 2 || h[5] !== 1) throw new Error(`${file}: not a 64-bit little-endian ELF file`);
    const type = h.readUInt16LE(16);
    const machine = h.readUInt16LE(18);
    const phoff = Number(h.readBigUInt64LE(32));
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    const ph = read(phoff, phentsize * phnum);
    const loads: { vaddr: number; off: number; filesz: number }[] = [];
    let dyn: { off: number; size: number } | null = null;
    let interp: string | null = null;
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      const ptype = ph.readUInt32LE(o);
      const off = Number(ph.readBigUInt64LE(o + 8));
      const vaddr = Number(ph.readBigUInt64LE(o + 16));
      const filesz = Number(ph.readBigUInt64LE(o + 32));
      if (ptype === 1) loads.push({ vaddr, off, filesz });
      else if (ptype === 2) dyn = { off, size: filesz };
      else if (ptype === 3) interp = read(off, filesz).toString('latin1').replace(/\0.*$/s, '');
    }
    const info: ElfInfo = { type, machine, interp, needed: [], rpath: [], runpath: [], verneed: [], flags1: 0 };
    if (!dyn) return info; // static
    const toOff = (addr: number): number => {
      const l = loads.find((x) => addr >= x.vaddr && addr < x.vaddr + x.filesz);
      if (!l) throw new Error(`${file}: dynamic address 0x${addr.toString(16)} is in no PT_LOAD segment`);
      return l.off + (addr - l.vaddr);
    };
    const d = read(dyn.off, dyn.size);
    const tags: [number, number][] = [];
    for (let o = 0; o + 16 <= d.length; o += 16) {
      const tag = Number(d.readBigInt64LE(o));
      if (tag === 0) break;
      tags.push([tag, Number(d.readBigUInt64LE(o + 8))]);
    }
    const get = (t: number) => tags.find(([k]) => k === t)?.[1];
    info.flags1 = get(0x6ffffffb) ?? 0;
    const strtab = get(5);
    const strsz = get(10) ?? 0;
    if (strtab == null) return info;
    const strs = read(toOff(strtab), strsz);
    const str = (i: number) => {
      const end = strs.indexOf(0, i);
      return strs.toString('latin1', i, end < 0 ? strs.length : end);
    };
    for (const [t, v] of tags) {
      if (t === 1) info.needed.push(str(v));
      else if (t === 15) info.rpath.push(...str(v).split(':').filter(Boolean));
      else if (t === 29) info.runpath.push(...str(v).split(':').filter(Boolean));
    }
    const vn = get(0x6ffffffe);
    const vnnum = get(0x6fffffff) ?? 0;
    if (vn != null) {
      let at = toOff(vn);
      for (let i = 0; i < vnnum; i++) {
        const e = read(at, 16);
        const cnt = e.readUInt16LE(2);
        const fileName = str(e.readUInt32LE(4));
        const versions: string[] = [];
        let ax = at + e.readUInt32LE(8);
        for (let j = 0; j < cnt; j++) {
          const a = read(ax, 16);
          versions.push(str(a.readUInt32LE(8)));
          const next = a.readUInt32LE(12);
          if (!next) break;
          ax += next;
        }
        info.verneed.push({ file: fileName, versions });
        const next = e.readUInt32LE(12);
        if (!next) break;
        at += next;
      }
    }
    return info;
  } finally {
    closeSync(fd);
  }
}


export interface GlibcNeed {
  /** newest GLIBC_x.y asked for, as "2.34" (null: none) */
  newest: string | null;
  /** the file that asks for it */
  by: string | null;
  /** files that ask for GLIBC_PRIVATE (they only run on the glibc they were built with) */
  private: string[];
}

const needCache = new Map<string, GlibcNeed>();

/** The newest GLIBC_x.y symbol version the given ELF files need (their .gnu.version_r entries). */
export function glibcNeeds(files: string[]): GlibcNeed {
  const out: GlibcNeed = { newest: null, by: null, private: [] };
  for (const f of files) {
    let key = f;
    try {
      const st = statSync(f);
      key = `${realpathSync(f)}:${st.size}:${st.mtimeMs}`;
    } catch {
      /* keep */
    }
    let one = needCache.get(key);
    if (!one) {
      one = { newest: null, by: null, private: [] };
      for (const v of readElf(f).verneed.flatMap((x) => x.versions)) {
        if (v === 'GLIBC_PRIVATE') one.private = [f];
        const m = /^GLIBC_(\d+\.\d+(?:\.\d+)?)$/.exec(v);
        if (m && (!one.newest || compareVersions(m[1], one.newest) > 0)) one = { ...one, newest: m[1], by: f };
      }
      needCache.set(key, one);
    }
    if (one.newest && (!out.newest || compareVersions(one.newest, out.newest) > 0)) {
      out.newest = one.newest;
      out.by = one.by;
    }
    out.private.push(...one.private);
  }
  return out;
}

/**
 * Why the given binaries cannot run on glibc `version` (null: they can): a glibc older than a binary's newest
 * GLIBC_x.y need fails at load time ("version `GLIBC_2.34' not found").
 */
export function refuseOlder(files: string[], version: string, what = 'the binary'): string | null {
  const n = glibcNeeds(files);
  if (n.private.length) return `${n.private[0]} needs GLIBC_PRIVATE symbols: it runs only on the glibc it was built with`;
  if (n.newest && compareVersions(version, n.newest) < 0)
    return `glibc ${version} is older than ${what}: ${n.by} needs GLIBC_${n.newest} (use a Debian root of that release, or a glibc >= ${n.newest})`;
  return null;
}
