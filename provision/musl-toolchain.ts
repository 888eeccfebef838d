// The musl toolchain (provision musl, and --libc prefixes): the host's gcc with a musl-gcc style specs file (no
// root, no musl-tools): musl's headers and a private kernel-header dir of symlinks (linux, asm-generic, asm; never
// -I/usr/include), musl's crt files, libc and libgcc, and -dynamic-linker pointing at the version's own loader.
// The kernel headers are the host's, else Debian's linux-libc-dev unpacked into <cache>/musl/kernel-headers/.
// A --libc prefix gets its toolchain on first use in <cache>/musl/local/<version>-<key>/ (localInstall), keyed by
// the prefix and its libc's identity. adapters/musl.ts keeps discovery, proof and launch.

import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isDir, isFile } from '../src/util.ts';
import { buildAtomically, PrivateApt, unpackDeb } from '../adapters/apt.ts';
import { hostGcc, muslDir, PROVISION_CMD, type MuslInstall, type MuslPrefix } from '../adapters/musl.ts';

export const TRIPLE = 'x86_64-linux-musl';

/** Where a musl's headers and libraries are, for the specs file. */
export interface ToolchainLayout {
  includes: string[]; // musl's own header dirs, in order
  lib: string; // crt1.o, crti.o, crtn.o, libc.so, libc.a ...
  loader: string; // -dynamic-linker
  kernelInclude: string; // private dir: linux, asm-generic, asm
}

function specsText(t: ToolchainLayout): string {
  for (const p of [...t.includes, t.lib, t.loader, t.kernelInclude])
    if (/\s/.test(p)) throw new Error(`musl: the path ${JSON.stringify(p)} has white space, which a gcc specs file cannot hold (use a --cache without spaces)`);
  const inc = [...t.includes, t.kernelInclude].map((d) => `-isystem ${d}`).join(' ');
  const l = t.lib;
  return `%rename cpp_options old_cpp_options

*cpp_options:
-nostdinc ${inc} -isystem include%s %(old_cpp_options)

*cc1:
%(cc1_cpu) -nostdinc ${inc} -isystem include%s

*link_libgcc:
-L${l} -L .%s

*libgcc:
libgcc.a%s %:if-exists(libgcc_eh.a%s)

*startfile:
%{shared:;static-pie:${l}/rcrt1.o; :${l}/Scrt1.o} ${l}/crti.o crtbeginS.o%s

*endfile:
crtendS.o%s ${l}/crtn.o

*link:
-dynamic-linker ${t.loader} -nostdlib %{shared:-shared} %{static:-static} %{static-pie:-static -pie --no-dynamic-linker} %{rdynamic:-export-dynamic}

*esp_link:


*esp_options:


*esp_cpp_options:


`;
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function wrapperText(gcc: string, specs: string, what: string): string {
  return `#!/bin/sh
# forkmatrix: gcc against ${what}, without root and without the host's musl-tools (written by adapters/musl.ts)
if [ "$#" = 1 ] && [ "$1" = -print-multiarch ]; then echo ${TRIPLE}; exit 0; fi
exec ${shq(gcc)} "$@" -specs ${shq(specs)}
`;
}

/** The host's kernel headers (linux-libc-dev), or null when they are absent. */
function hostKernelHeaders(): { linux: string; asmGeneric: string; asm: string } | null {
  const k = { linux: '/usr/include/linux', asmGeneric: '/usr/include/asm-generic', asm: '/usr/include/x86_64-linux-gnu/asm' };
  return isDir(k.linux) && isDir(k.asmGeneric) && isDir(k.asm) ? k : null;
}

/** Kernel headers: the host's, or Debian's linux-libc-dev unpacked into the cache (no root). */
export async function kernelHeaders(cacheDir: string, log: (l: string) => void, mayDownload: boolean): Promise<{ linux: string; asmGeneric: string; asm: string } | null> {
  const host = hostKernelHeaders();
  if (host) return host;
  const dir = path.join(muslDir(cacheDir), 'kernel-headers');
  const fromDir = () => ({ linux: path.join(dir, 'usr/include/linux'), asmGeneric: path.join(dir, 'usr/include/asm-generic'), asm: path.join(dir, 'usr/include/x86_64-linux-gnu/asm') });
  if (isDir(dir)) return fromDir();
  if (!mayDownload) return null;
  log('musl: no kernel headers in /usr/include: unpacking Debian linux-libc-dev/bookworm into the cache');
  await buildAtomically(dir, (tmp) => {
    const [deb] = new PrivateApt(cacheDir).download(['linux-libc-dev/bookworm'], path.join(tmp, '.debs'), log);
    unpackDeb(deb, tmp);
    rmSync(path.join(tmp, '.debs'), { recursive: true, force: true });
  });
  return fromDir();
}

/** Write <dir>/kernel-include/{linux,asm-generic,asm} as symlinks to the kernel headers. */
function writeKernelInclude(dir: string, k: { linux: string; asmGeneric: string; asm: string }): string {
  const ki = path.join(dir, 'kernel-include');
  mkdirSync(ki, { recursive: true });
  for (const [name, target] of [['linux', k.linux], ['asm-generic', k.asmGeneric], ['asm', k.asm]] as const) {
    rmSync(path.join(ki, name), { force: true });
    symlinkSync(target, path.join(ki, name));
  }
  return ki;
}

/** Write the specs file and the wrapper for a toolchain into `dir` (paths inside are `finalDir`'s). */
export function writeToolchain(dir: string, finalDir: string, layout: Omit<ToolchainLayout, 'kernelInclude'>, k: { linux: string; asmGeneric: string; asm: string }, gcc: string, what: string): void {
  writeKernelInclude(dir, k);
  const t: ToolchainLayout = { ...layout, kernelInclude: path.join(finalDir, 'kernel-include') };
  mkdirSync(path.join(dir, 'bin'), { recursive: true });
  writeFileSync(path.join(dir, 'musl-gcc.specs'), specsText(t));
  const w = path.join(dir, 'bin', 'musl-gcc');
  writeFileSync(w, wrapperText(gcc, path.join(finalDir, 'musl-gcc.specs'), what));
  chmodSync(w, 0o755);
}

/** The toolchain for a --libc prefix, in <cache>/musl/local/<key>/ (keyed by the prefix and its libc's identity). */
export async function localInstall(mp: MuslPrefix, cacheDir: string): Promise<MuslInstall> {
  const gcc = hostGcc();
  if (!gcc) throw new Error(`--libc ${mp.prefix}: no gcc to compile against it (as root: apt-get install gcc)`);
  const st = statSync(mp.libc);
  const headers = statSync(path.join(mp.prefix, 'include', 'stdio.h'));
  const key = createHash('sha256').update([mp.prefix, st.size, st.mtimeMs, headers.mtimeMs, gcc].join('\0')).digest('hex').slice(0, 16);
  const dir = path.join(muslDir(cacheDir), 'local', `${mp.version}-${key}`);
  const cc = path.join(dir, 'bin', 'musl-gcc');
  if (!isFile(cc)) {
    const k = await kernelHeaders(cacheDir, () => {}, false);
    if (!k) throw new Error(`--libc ${mp.prefix}: no kernel headers in /usr/include (apt-get install linux-libc-dev, or ${PROVISION_CMD} which fetches them)`);
    try {
      await buildAtomically(dir, (tmp) => {
        writeToolchain(tmp, dir, { includes: mp.includes, lib: mp.lib, loader: mp.libc }, k, gcc, `musl ${mp.version} from ${mp.prefix}`);
        writeFileSync(path.join(tmp, 'prefix.json'), JSON.stringify({ ...mp }, null, 1) + '\n');
      });
    } catch (e) {
      if (!isFile(cc)) throw e;
    }
  }
  return { version: mp.version, loader: mp.libc, cc, work: dir, info: null, prefix: mp.prefix };
}
