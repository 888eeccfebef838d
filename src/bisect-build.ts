// What each bisect step runs on: a commit of a musl checkout built into the cache (src/libc-src/), or a commit of
// an interposer repository built into an LD_PRELOAD library. Interposer convention: at each commit the tree
// (exported with git archive, the checkout untouched) is built by `sh build.sh` if it has one, else `make`, and
// must leave exactly one *.so at its top; cached in <cache>/bisect/preload/<sha12>/ (atomically). A commit that
// does not build is a skip, recorded so it is not rebuilt.

import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { buildAtomically } from '../adapters/apt.ts';
import { sourceEnvironment } from '../adapters/musl.ts';
import { withPreload } from '../adapters/preload.ts';
import { capture, cleanBaseEnv, runGrouped } from './proc.ts';
import { exportCommit, SourceError } from './libc-src/tree.ts';
import { lastLines } from './libc-src/build.ts';
import { isFile, writeWhole } from './util.ts';
import type { AdapterOptions, Environment } from './types.ts';

export type Built = { env: Environment; built: boolean; seconds: number } | { skip: string };

const preloadDir = (cacheDir: string, sha: string) => path.join(cacheDir, 'bisect', 'preload', sha.slice(0, 12));

function soIn(dir: string): string | null {
  const sos = readdirSync(dir).filter((f) => /\.so(\.\d+)*$/.test(f) && isFile(path.join(dir, f)));
  return sos.length === 1 ? sos[0] : null;
}

/** Build commit `sha` of the interposer repository `repo` (cached); the .so's path, or why it does not build. */
export async function buildPreload(repo: string, sha: string, cacheDir: string): Promise<{ lib: string; built: boolean; seconds: number } | { skip: string }> {
  const dir = preloadDir(cacheDir, sha);
  const failed = path.join(cacheDir, 'bisect', 'preload', '.failed', `${sha.slice(0, 12)}.txt`);
  if (isFile(failed)) return { skip: readFileSync(failed, 'utf8').trim() };
  const have = existsSync(dir) ? soIn(dir) : null;
  if (have) return { lib: path.join(dir, have), built: false, seconds: 0 };
  const t0 = Date.now();
  try {
    await buildAtomically(dir, async (tmp) => {
      const src = path.join(tmp, '.src');
      capture('mkdir', ['-p', src]);
      exportCommit(repo, sha, src);
      const [cmd, args] = isFile(path.join(src, 'build.sh')) ? ['sh', ['build.sh']] : ['make', ['-j2']];
      if (cmd === 'make' && !isFile(path.join(src, 'Makefile'))) throw new SourceError(`no build.sh or Makefile at commit ${sha.slice(0, 12)}`);
      const log = path.join(tmp, 'build.log');
      const r = await runGrouped('nice', ['-n', '10', cmd, ...args], { env: cleanBaseEnv(), cwd: src, logFile: log, timeoutMs: 20 * 60_000 });
      if (r.code !== 0) throw new SourceError(`${cmd} ${args.join(' ')} failed: ${lastLines(readFileSync(log, 'utf8'))}`);
      const so = soIn(src);
      if (!so) throw new SourceError(`the build left ${readdirSync(src).filter((f) => f.includes('.so')).length || 'no'} *.so at the top of the tree (expected exactly one)`);
      renameSync(path.join(src, so), path.join(tmp, so));
      rmSync(src, { recursive: true, force: true });
    });
  } catch (e) {
    const why = `does not build: ${(e as Error).message}`;
    if (e instanceof SourceError) writeWhole(failed, why + '\n');
    return { skip: why };
  }
  const so = soIn(dir);
  return so ? { lib: path.join(dir, so), built: true, seconds: (Date.now() - t0) / 1000 } : { skip: `${dir} has no .so after the build` };
}

/** The environment of one commit: the musl built from it, or `base` with the interposer built from it. */
export async function commitEnvironment(
  mode: { libcGit: string } | { preloadGit: string; base: Environment; name: string },
  sha: string, opts: AdapterOptions, log: (l: string) => void,
): Promise<Built> {
  if ('libcGit' in mode) {
    const t0 = Date.now();
    let said = false;
    try {
      const env = await sourceEnvironment(`git:${mode.libcGit}@${sha}`, opts, (l) => {
        said ||= /^building /.test(l);
        log(l);
      });
      return { env, built: said, seconds: (Date.now() - t0) / 1000 };
    } catch (e) {
      if (e instanceof SourceError) return { skip: e.message };
      throw e;
    }
  }
  const b = await buildPreload(mode.preloadGit, sha, opts.cacheDir);
  if ('skip' in b) return b;
  return { env: withPreload(mode.base, mode.name, b.lib), built: b.built, seconds: b.seconds };
}
