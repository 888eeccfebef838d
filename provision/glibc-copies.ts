// Runtime copies for a glibc tree (adapters/glibc.ts): a host interpreter copied and patchelf'd so its PT_INTERP is
// the tree's loader and its DT_RPATH the tree's dirs, then checked once (it runs, maps only this tree's glibc
// pieces, names itself as its executable) and kept in <tree>/runtimes/<runtime>-<version>-<hash>/ (forkmatrix.json:
// the record), built in a temporary and renamed when whole; a copy that cannot work is remembered beside it
// (<dir>.failed.json) until the next `provision glibc`. `provision glibc` (provision/glibc.ts) makes every copy;
// the adapter makes small ones on demand (LAZY_COPY_MAX) and patchelf'd copies of compiled cases (patchedProgram).

import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildAtomically } from '../adapters/apt.ts';
import { FIRST_NEEDED, foreignPieces, hostLibDirs, readElf, realOr, type GlibcTree } from '../adapters/glibc.ts';
import { capture, cleanBaseEnv } from '../src/proc.ts';
import { libcFromMaps, sameFile } from '../src/probe.ts';
import { findOf } from '../src/runtimes/specs.ts';
import type { FoundRuntime, RuntimeInstance } from '../src/types.ts';

/** Copies bigger than this are made by `provision` only (environments() must stay fast). */
export const LAZY_COPY_MAX = 32 << 20;

export interface CopyRecord {
  ok: boolean;
  reason?: string;
  executable?: string;
  source?: string;
  checked?: string;
}

/** Bump when the way copies are made changes: older copies are then made again. */
const COPY_FORMAT = 2;

function copyKey(rt: RuntimeInstance): string {
  const st = statSync(rt.executable);
  return `${rt.runtime}-${rt.version}-${createHash('sha256').update(`${realOr(rt.executable)}\0${st.size}\0${st.mtimeMs}\0${COPY_FORMAT}`).digest('hex').slice(0, 10)}`;
}

/** The variables a runtime's copies need on a tree (Ruby: RUBYLIB with its rbconfig override; runners/<rt>/index.ts). */
export function copyEnv(tree: GlibcTree, rt: RuntimeInstance): Record<string, string> {
  return findOf(rt.runtime as FoundRuntime).glibcCopy?.env?.(path.dirname(tree.copies)) ?? {};
}

/** Why an interpreter is not a glibc program at all (a musl-linked --runtime), or null. */
export function notForGlibc(rt: RuntimeInstance): string | null {
  try {
    const interp = readElf(rt.executable).interp;
    if (interp && !/ld-linux/.test(path.basename(interp))) return `${rt.executable} is not linked against glibc (its loader is ${interp})`;
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

/** A copy that cannot work (patchelf refused it, or the check failed): remembered, so it is not retried until the
 * next `provision`. Other errors (a full disk, a race) are not remembered. */
class CopyRefused extends Error {}

const copiesInFlight = new Map<string, Promise<CopyRecord>>();

/** Make (once) and check the patchelf'd copy of a host interpreter for a tree. */
export function makeCopy(tree: GlibcTree, rt: RuntimeInstance, patchelf: string): Promise<CopyRecord> {
  const dir = path.join(tree.copies, copyKey(rt));
  // one build per directory at a time in this process (buildAtomically's temporary name is per process)
  let p = copiesInFlight.get(dir);
  if (!p) {
    p = makeCopyNow(tree, rt, patchelf, dir).finally(() => copiesInFlight.delete(dir));
    copiesInFlight.set(dir, p);
  }
  return p;
}

async function makeCopyNow(tree: GlibcTree, rt: RuntimeInstance, patchelf: string, dir: string): Promise<CopyRecord> {
  const name = path.basename(rt.executable);
  const failed = `${dir}.failed.json`;
  rmSync(failed, { force: true });
  try {
    await buildAtomically(dir, (tmp) => {
      const exe = path.join(tmp, 'bin', name);
      mkdirSync(path.dirname(exe), { recursive: true });
      copyFileSync(rt.executable, exe);
      chmodSync(exe, 0o755);
      const orig = readElf(rt.executable);
      const originDir = path.dirname(realOr(rt.executable));
      const own = [...orig.rpath, ...orig.runpath].map((d) => d.replace(/\$(ORIGIN|\{ORIGIN\})/g, originDir));
      const search = [...tree.dirs, ...own, ...hostLibDirs()].filter((d, i, a) => a.indexOf(d) === i);
      const add = FIRST_NEEDED.filter((s) => !orig.needed.includes(s) && tree.dirs.some((d) => existsSync(path.join(d, s))));
      // DT_RPATH (--force-rpath), not DT_RUNPATH: RPATH also serves the libraries the program loads that have none
      // of their own (and dlopen from libc, e.g. NSS modules); RUNPATH would serve the program's direct needs only.
      // one patchelf call per kind of change: patchelf 0.14 (bookworm) given --set-interpreter, --set-rpath and
      // --add-needed in one call writes a binary that dies with "stack smashing detected"
      const steps = [['--set-interpreter', tree.loader, '--force-rpath', '--set-rpath', search.join(':')], ...(add.length ? [add.flatMap((s) => ['--add-needed', s])] : [])];
      for (const step of steps) {
        const r = capture(patchelf, [...step, exe], { env: cleanBaseEnv(), timeoutMs: 120_000 });
        if (r.code !== 0) throw new CopyRefused(`patchelf ${step[0]} failed on a copy of ${rt.executable}: ${(r.stderr || r.error || '').trim()}`);
      }
      const copy = findOf(rt.runtime as FoundRuntime).glibcCopy;
      copy?.prepare?.(tmp, rt); // the runtime's own extras next to the copy (runners/<rt>/index.ts)
      // the check: the copy runs, maps this tree's libc and no other glibc piece, and names itself
      const env: Record<string, string> = { ...cleanBaseEnv({ HOME: tmp }), ...tree.env, ...copyEnv(tree, rt) };
      if (!copy) throw new CopyRefused(`${rt.runtime} has no glibc copy check in its spec (runners/${rt.runtime}/index.ts)`);
      const check = capture(exe, copy.verify, { env, timeoutMs: 60_000 });
      if (check.code !== 0) throw new CopyRefused(`the ${rt.runtime} copy does not run on ${tree.id}: ${(check.stderr || check.error || '').trim().split('\n').slice(-3).join(' ')}`);
      const [self, ...rest] = check.stdout.split('\n');
      const maps = rest.join('\n');
      const libc = libcFromMaps(maps);
      if (!libc || !sameFile(libc, tree.libc)) throw new CopyRefused(`the ${rt.runtime} copy loaded ${libc ?? 'no libc'}, not ${tree.libc}`);
      const foreign = foreignPieces(maps, tree);
      if (foreign.length) throw new CopyRefused(`the ${rt.runtime} copy mixes glibc pieces: ${foreign.join(', ')} (not from ${tree.dirs.join(':')})`);
      // the copy is checked in a temporary directory that is renamed into place: compare relative to it
      if (path.relative(tmp, realOr(self.trim())) !== path.join('bin', name))
        throw new CopyRefused(`the ${rt.runtime} copy names ${self.trim()} as its executable, not itself: its children would leave ${tree.id}`);
      const rec: CopyRecord = { ok: true, executable: path.join(dir, 'bin', name), source: rt.executable, checked: new Date().toISOString() };
      writeFileSync(path.join(tmp, 'forkmatrix.json'), JSON.stringify(rec, null, 1));
    });
  } catch (e) {
    const won = readCopy(tree, rt);
    if (won?.ok) return won; // another process made the same copy first
    const rec: CopyRecord = { ok: false, reason: (e as Error).message, source: rt.executable };
    if (e instanceof CopyRefused) {
      mkdirSync(tree.copies, { recursive: true });
      writeFileSync(failed, JSON.stringify(rec, null, 1));
    }
    return rec;
  }
  return readCopy(tree, rt) ?? { ok: false, reason: `the ${rt.runtime} copy vanished from ${dir}` };
}

export function readCopy(tree: GlibcTree, rt: RuntimeInstance): CopyRecord | null {
  const dir = path.join(tree.copies, copyKey(rt));
  for (const f of [path.join(dir, 'forkmatrix.json'), `${dir}.failed.json`]) {
    try {
      return JSON.parse(readFileSync(f, 'utf8')) as CopyRecord;
    } catch {
      /* next */
    }
  }
  return null;
}

/**
 * A copy of a dynamically linked host program whose PT_INTERP is the tree's loader and whose DT_RPATH is the tree's
 * dirs then the host's (cached by the program's path, size and mtime). null when it cannot be made: the caller
 * then runs the program through the loader.
 */
export function patchedProgram(tree: GlibcTree, prog: string, patchelf: string): string | null {
  try {
    if (!path.isAbsolute(prog)) return null;
    const st = statSync(prog);
    const elf = readElf(prog);
    if (!elf.interp || (elf.type !== 2 && elf.type !== 3)) return null;
    const key = createHash('sha256').update(`${realOr(prog)}\0${st.size}\0${st.mtimeMs}\0${tree.loader}`).digest('hex').slice(0, 20);
    const dir = path.join(path.dirname(tree.copies), 'programs', key);
    const out = path.join(dir, path.basename(prog));
    if (existsSync(out)) return out;
    const tmp = `${dir}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    mkdirSync(tmp, { recursive: true });
    try {
      const t = path.join(tmp, path.basename(prog));
      copyFileSync(prog, t);
      chmodSync(t, 0o755);
      const own = [...elf.rpath, ...elf.runpath].map((d) => d.replace(/\$(ORIGIN|\{ORIGIN\})/g, path.dirname(realOr(prog))));
      const search = [...tree.dirs, ...own, ...hostLibDirs()].filter((d, i, a) => a.indexOf(d) === i);
      const r = capture(patchelf, ['--set-interpreter', tree.loader, '--force-rpath', '--set-rpath', search.join(':'), t], { env: cleanBaseEnv(), timeoutMs: 60_000 });
      if (r.code !== 0) return null;
      try {
        renameSync(tmp, dir);
      } catch {
        /* another process made it first */
      }
      return existsSync(out) ? out : null;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  } catch {
    return null;
  }
}

