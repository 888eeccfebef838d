// Small helpers shared by the core and the adapters.

import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Compare dotted versions numerically ("2.36" < "2.41", "1.2.5-3" > "1.2.5"): negative, 0 or positive. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.\-+]/).map((x) => parseInt(x, 10) || 0);
  const pb = b.split(/[.\-+]/).map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** Parse a JSON file; null when it is missing or not JSON. */
export function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

/**
 * Write a file whole: beside it, then renamed over (a concurrent reader sees the old or the new text, never half).
 * With `ifChanged`, nothing is written when the file already holds `text`. Returns whether it wrote.
 */
export function writeWhole(file: string, text: string, o: { mode?: number; ifChanged?: boolean } = {}): boolean {
  if (o.ifChanged) {
    try {
      if (readFileSync(file, 'utf8') === text) return false;
    } catch {
      /* absent */
    }
  }
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, text);
    if (o.mode != null) chmodSync(tmp, o.mode);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true }); // a full disk leaves no half-written temporary behind
    throw e;
  }
  return true;
}

export function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

export function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

const doomed = new Set<string>();
let exitHook = false;

/**
 * Remove these paths when the process exits, however it exits short of SIGKILL: a normal end, an uncaught error,
 * or process.exit() from the Ctrl-C handler (src/proc.ts). Returns a function that forgets them (when the caller
 * cleaned up or kept them itself).
 */
export function removeOnExit(...paths: string[]): () => void {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const p of doomed) {
        try {
          rmSync(p, { recursive: true, force: true });
        } catch {
          /* best effort at exit */
        }
      }
    });
  }
  for (const p of paths) doomed.add(p);
  return () => {
    for (const p of paths) doomed.delete(p);
  };
}

/**
 * Write several files of one directory as a set: each beside its place first, then all renamed into place, so a
 * full disk leaves the old set (or none), never a mix or a half-written file. On an error the temporaries are
 * removed and the error names the file it happened on (`path`).
 */
export function writeAll(dir: string, files: [name: string, text: string][]): void {
  const tmps: [string, string][] = files.map(([name]) => [path.join(dir, `.${name}.tmp-${process.pid}`), path.join(dir, name)]);
  let at = dir;
  try {
    files.forEach(([, text], i) => {
      at = tmps[i][1];
      writeFileSync(tmps[i][0], text);
    });
    for (const [tmp, file] of tmps) {
      at = file;
      renameSync(tmp, file);
    }
  } catch (e) {
    for (const [tmp] of tmps) rmSync(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    if (!err.path) err.path = at;
    throw err;
  }
}
