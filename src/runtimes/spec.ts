// One spec per runtime: everything the rest of the tool knows about a runtime lives in runners/<rt>/index.ts as
// one RuntimeSpec (a Runner plus how to find and identify it). Adapters, the matrix order and the CLI read the specs
// (src/registry.ts lists them); none keeps a per-runtime table of its own.

import path from 'node:path';
import type { RuntimeInstance, Runner } from '../types.ts';

/** How an environment finds and identifies a runtime it looks for itself (an interpreter, or the C compiler). */
export interface FindSpec {
  /** executable names looked up on PATH, first found wins (libc: cc, gcc, clang) */
  names: string[];
  /**
   * Arguments that make the executable print its version on line 1 and, for an interpreter, the real path of its
   * executable on line 2 (resolved inside the environment, so it also works in a chroot).
   */
  query: string[];
  /** The version label from the query's first line (default: the line itself; libc: "gcc 12.2.0"). */
  version?(line: string, exe: string): string;
  /** false: the executable is the one asked, not the path printed on line 2 (a compiler prints none) */
  selfReports?: boolean;
  /** Why an identified version cannot run the harness at all (Python 2): it is listed as missing with this reason. */
  refuse?(version: string): string | null;
  /** how to get it on a Debian-like host (for `missing` reasons) */
  install: string;
  /** in a Debian root: the packages installed for it (the first gives `exe`) and its executable there */
  debian: { packages: string[]; exe: string };
  /** A patchelf'd copy on another glibc (adapters/glibc.ts): runtime-specific parts. */
  glibcCopy?: {
    /** arguments that print the executable's own path (line 1) and then /proc/self/maps */
    verify: string[];
    /** extra files next to a copy in `dir` (Python's pyvenv.cfg, Node's include/ links) */
    prepare?(dir: string, rt: RuntimeInstance): void;
    /** variables every run of a copy needs; `shared` is a per-glibc-tree directory for shared files (Ruby's RUBYLIB) */
    env?(shared: string): Record<string, string>;
  };
}

export interface RuntimeSpec extends Runner {
  /** the column and row order in the matrix (ascending) */
  order: number;
  /** present for a runtime environments look for; absent for one built on another (libuv: builtOn) */
  find?: FindSpec;
  /** what `provision host` installs for it: executable name -> Debian package (libuv: cmake) */
  hostPackages?: Record<string, string>;
}

/** Parse a FindSpec query's output into a runtime instance (exe: the executable asked). */
export function parseQuery(spec: RuntimeSpec, exe: string, stdout: string): RuntimeInstance | { reason: string } {
  const f = spec.find!;
  const [first = '', second = ''] = stdout.trim().split('\n').map((s) => s.trim());
  if (!first) return { reason: `${exe} printed no version` };
  const version = f.version ? f.version(first, exe) : first;
  const why = f.refuse?.(version);
  if (why) return { reason: `${exe}: ${why}` };
  return { runtime: spec.runtime, version, executable: f.selfReports === false ? exe : second || exe };
}

/** The compiler label for libc: "gcc 12.2.0" or "clang 16.0.6". */
export const compilerVersion = (line: string, exe: string) => `${path.basename(exe).includes('clang') ? 'clang' : 'gcc'} ${line}`;
