// Proving which libc really ran: the file mapped into a process (from /proc/PID/maps), then that file's own
// banner (glibc's libc.so.6 and musl's libc/loader both print their version when executed).

import { realpathSync } from 'node:fs';
import { capture } from './proc.ts';
import type { LibcProof } from './types.ts';

const LIBC_FILE_RE = /\/(libc\.so\.6|libc-\d+\.\d+(?:\.\d+)?\.so|libc\.musl-[^/]*\.so\.1|ld-musl-[^/]*\.so\.1|libc\.so)$/;

/** The libc file mapped in a /proc/PID/maps text. */
export function libcFromMaps(maps: string): string | null {
  for (const line of maps.split('\n')) {
    const f = line.trim().split(/\s+/).slice(5).join(' ');
    if (f && LIBC_FILE_RE.test(f)) return f;
  }
  return null;
}

export function parseBanner(banner: string): { name: LibcProof['name']; version: string } {
  let m = /GNU C Library[^\n]*?version (\d+\.\d+(?:\.\d+)?)/.exec(banner);
  if (m) return { name: 'glibc', version: m[1] };
  m = /musl libc[\s\S]*?Version (\d+\.\d+\.\d+)/.exec(banner);
  if (m) return { name: 'musl', version: m[1] };
  return { name: 'unknown', version: '?' };
}

const cache = new Map<string, LibcProof>();

/**
 * Execute a libc file (optionally through `prefix`, e.g. a chroot) and read its banner. Cached per path.
 * `root` maps a path seen inside an environment to the host (a chroot's directory).
 */
export function proveLibcFile(path: string, root = ''): LibcProof {
  const host = root + path;
  let key = host;
  try {
    key = realpathSync(host);
  } catch {
    /* keep the path as given */
  }
  const hit = cache.get(key);
  if (hit) return { ...hit, path };
  const r = capture(host, [], { env: { PATH: '/usr/bin:/bin' }, timeoutMs: 10_000 });
  const banner = (r.stdout + r.stderr).trim();
  const { name, version } = parseBanner(banner);
  const proof: LibcProof = { name, version, path, banner: banner.split('\n').slice(0, 2).join(' ') };
  cache.set(key, proof);
  return proof;
}

/** Same file? (a chroot path vs a host path, symlinks) */
export function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return a === b;
  }
}
