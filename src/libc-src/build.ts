// Build a musl source tree into a private install prefix in the cache, keyed by its commit (or content hash):
// <cache>/musl/src/<version>-<key>/ (lib/libc.so and its loader name, include/, crt files, etc/ld-musl-x86_64.path,
// info.json, build.log). Same toolchain rules as `provision musl`'s -g builds (provision/musl-debug.ts): the host's
// gcc, CFLAGS='-O2 -g', rootless (configure --prefix/--syslibdir at the final path, make install DESTDIR=a temp
// dir), `nice -n 10 make -j2`. Built into `<final>.tmp-PID` and renamed whole (adapters/apt.ts buildAtomically,
// under the cache lock): a failed or interrupted build leaves nothing in the cache but a failure record
// (<cache>/musl/src/.failed/<key>.txt: the compiler's last lines), so a commit that does not build is not rebuilt
// at each bisect step.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { capture, cleanBaseEnv, runGrouped } from '../proc.ts';
import { parseBanner } from '../probe.ts';
import { isFile, readJson, writeWhole } from '../util.ts';
import { workTreeBuild } from './worktree.ts';
import { buildAtomically } from '../../adapters/apt.ts';
import {
  cleanCheckoutCommit, contentHash, parseGitSpec, resolveRev, SourceError, treeKind, treeVersion,
} from './tree.ts';

export const LOADER = 'ld-musl-x86_64.so.1';
/** -g1: function names and line tables, enough for a hung child's backtrace, cheaper to compile than -g */
export const SRC_CFLAGS = '-O2 -g1';
/** Bumped when the recipe changes what gets built (a new recipe rebuilds, and retries recorded failures). */
export const SRC_RECIPE = 1;
export const BUILD_TIMEOUT_MS = 45 * 60_000;

/** A musl source resolved to what will be built, before anything is built. */
export interface MuslSource {
  /** the --libc argument as given */
  spec: string;
  how: 'git' | 'tree' | 'dsc';
  /** the checkout (git), tree or .dsc */
  path: string;
  /** the commit built (git, or a clean checkout) */
  commit: string | null;
  version: string;
  /** cache key: git.<sha12> or src.<hash12> */
  key: string;
  /** the environment / column id: musl-1.2.1+git.<short> */
  id: string;
}

export interface SrcBuildInfo extends MuslSource {
  recipe: number;
  cflags: string;
  gcc: string;
  banner: string;
  build_seconds: number;
  built: string;
}

export const srcRoot = (cacheDir: string) => path.join(cacheDir, 'musl', 'src');
export const prefixOf = (cacheDir: string, s: MuslSource) => path.join(srcRoot(cacheDir), `${s.version}-${s.key}`);
const failedFile = (cacheDir: string, s: MuslSource) => path.join(srcRoot(cacheDir), '.failed', `${s.version}-${s.key}.txt`);

function gitShow(repo: string, sha: string, file: string): string | null {
  const r = capture('git', ['-C', repo, 'show', `${sha}:${file}`], { env: cleanBaseEnv(), timeoutMs: 30_000 });
  return r.code === 0 ? r.stdout : null;
}

const GLIBC_REFUSAL = 'a glibc source tree: forkmatrix builds musl trees only (glibc needs an out-of-tree build, a matching '
  + 'loader and rpath setup, and more time than this 2-core machine gives a run; not measured here); build it yourself '
  + '(mkdir build && cd build && ../configure --prefix=/usr && make) and pass the build directory: --libc BUILD_DIR';

/** Resolve a --libc source argument (git:PATH@REV, a musl tree, a .dsc) to what would be built. Throws one line. */
export function resolveSource(spec: string, flag = '--libc'): MuslSource {
  const g = parseGitSpec(spec);
  if (g) {
    const repo = path.resolve(g.repo);
    const sha = resolveRev(repo, g.rev, flag);
    const v = gitShow(repo, sha, 'VERSION')?.trim();
    if (!v || gitShow(repo, sha, 'src/thread/pthread_create.c') == null) {
      const glibc = gitShow(repo, sha, 'version.h') != null && gitShow(repo, sha, 'nptl/pthread_create.c') != null;
      throw new SourceError(`${flag} ${spec}: ${glibc ? GLIBC_REFUSAL : `commit ${sha.slice(0, 12)} of ${repo} is not a musl source tree (no VERSION and src/thread/pthread_create.c)`}`);
    }
    return { spec, how: 'git', path: repo, commit: sha, version: v, key: `git.${sha.slice(0, 12)}`, id: `musl-${v}+git.${sha.slice(0, 7)}` };
  }
  const p = path.resolve(spec);
  const kind = treeKind(p);
  if (kind === 'glibc') throw new SourceError(`${flag} ${spec}: ${GLIBC_REFUSAL}`);
  if (kind === 'none') throw new SourceError(`${flag} ${spec}: not a musl source tree (expected VERSION, configure, arch/x86_64, src/thread and include/ as in a musl checkout, or a musl_*.dsc), nor git:PATH@REV`);
  if (kind === 'dsc') {
    const text = readFileSync(p, 'utf8');
    if (!/^Source:\s*musl\s*$/m.test(text)) throw new SourceError(`${flag} ${spec}: a Debian source package, but not musl's (Source: musl)`);
    const deb = /^Version:\s*(\S+)/m.exec(text)?.[1] ?? '';
    const v = deb.replace(/^\d+:/, '').replace(/-[^-]+$/, '');
    const key = `src.${capture('sha256sum', [p]).stdout.slice(0, 12)}`;
    return { spec, how: 'dsc', path: p, commit: null, version: v, key, id: `musl-${v}+deb.${deb.replace(/[^\w.+-]/g, '_')}` };
  }
  const version = treeVersion(p);
  const commit = cleanCheckoutCommit(p);
  const key = commit ? `git.${commit.slice(0, 12)}` : `src.${contentHash(p)}`;
  return { spec, how: 'tree', path: p, commit, version, key, id: `musl-${version}+${commit ? `git.${commit.slice(0, 7)}` : key.slice(0, 12)}` };
}

/** The built prefix of `s` when the cache has it complete, else null. */
export function cachedBuild(cacheDir: string, s: MuslSource): { prefix: string; info: SrcBuildInfo } | null {
  const prefix = prefixOf(cacheDir, s);
  const info = readJson<SrcBuildInfo>(path.join(prefix, 'info.json'));
  return info && info.recipe === SRC_RECIPE && isFile(path.join(prefix, 'lib', 'libc.so')) ? { prefix, info } : null;
}

/** A recorded build failure of `s` (the compiler's last lines), or null. */
export function recordedFailure(cacheDir: string, s: MuslSource): string | null {
  const t = isFile(failedFile(cacheDir, s)) ? readFileSync(failedFile(cacheDir, s), 'utf8') : null;
  return t && t.startsWith(`recipe ${SRC_RECIPE}\n`) ? t.split('\n').slice(1).join('\n').trim() : null;
}

export function lastLines(text: string, n = 4): string {
  const lines = text.trim().split('\n').filter((l) => l.trim());
  const err = lines.findIndex((l) => /\berror\b|Error \d|No such file/.test(l));
  const from = err >= 0 ? Math.min(err, Math.max(0, lines.length - n)) : Math.max(0, lines.length - n);
  return lines.slice(from, from + n).join(' | ').slice(0, 700);
}

/**
 * configure, make -j2, make install of the musl tree `src` for the prefix `final`, the files landing in `tmp`
 * (renamed to `final` by the caller). Returns the banner the built libc printed. For trees without a commit
 * (a content-hashed tree, a .dsc); commits go through workTreeBuild.
 */
export async function makeInstall(src: string, tmp: string, final: string, o: { cflags: string; label: string; logFile: string; noStatic?: boolean }): Promise<string> {
  const env = cleanBaseEnv();
  const steps: [string, string[]][] = [
    ['./configure', [`--prefix=${final}`, `--syslibdir=${final}/lib`, ...(o.noStatic ? ['--disable-static'] : []), `CFLAGS=${o.cflags}`]],
    ['nice', ['-n', '10', 'make', '-j2']],
    ['make', ['install', `DESTDIR=${path.join(tmp, '.dest')}`]],
  ];
  for (const [cmd, args] of steps) {
    const part = `${o.logFile}.part`;
    const r = await runGrouped(cmd, args, { env, cwd: src, logFile: part, timeoutMs: BUILD_TIMEOUT_MS });
    const out = existsSync(part) ? readFileSync(part, 'utf8') : '';
    writeFileSync(o.logFile, out, { flag: 'a' });
    rmSync(part, { force: true });
    if (r.code !== 0) {
      const what = [cmd, ...args].filter((a) => !a.startsWith('CFLAGS=') && !a.startsWith('--')).join(' ');
      throw new SourceError(`${o.label}: ${what} failed${r.timedOut ? ` (timed out after ${BUILD_TIMEOUT_MS / 60000} min)` : ''}: ${lastLines(out)}`);
    }
  }
  const dest = path.join(tmp, '.dest', final);
  for (const d of readdirSync(dest)) renameSync(path.join(dest, d), path.join(tmp, d));
  rmSync(path.join(tmp, '.dest'), { recursive: true, force: true });
  // the loader name as a relative link (make install writes an absolute one), and the library path musl reads from
  // <prefix>/etc/ (only this prefix's lib/)
  rmSync(path.join(tmp, 'lib', LOADER), { force: true });
  symlinkSync('libc.so', path.join(tmp, 'lib', LOADER));
  mkdirSync(path.join(tmp, 'etc'), { recursive: true });
  writeFileSync(path.join(tmp, 'etc', 'ld-musl-x86_64.path'), `${path.join(final, 'lib')}\n`);
  const b = capture(path.join(tmp, 'lib', 'libc.so'), [], { env: { PATH: '/usr/bin:/bin' }, timeoutMs: 10_000 });
  return (b.stdout + b.stderr).trim();
}

function writeInfo(tmp: string, s: MuslSource, banner: string, t0: number): void {
  const proved = parseBanner(banner);
  if (proved.name !== 'musl') throw new SourceError(`${s.id}: the built libc.so does not say it is musl (${JSON.stringify(banner.slice(0, 120))})`);
  const info: SrcBuildInfo = {
    ...s, version: proved.version || s.version, recipe: SRC_RECIPE, cflags: SRC_CFLAGS, gcc: `gcc ${capture('gcc', ['-dumpfullversion']).stdout.trim()}`,
    banner: banner.split('\n').slice(0, 2).join(' '), build_seconds: Math.round((performance.now() - t0) / 100) / 10, built: new Date().toISOString(),
  };
  writeFileSync(path.join(tmp, 'info.json'), JSON.stringify(info, null, 1) + '\n');
}

/**
 * Build `s` once (cached by key); returns the install prefix. A build that fails throws a SourceError with the
 * compiler's last lines, and is recorded so that it is not retried by the same recipe.
 */
export async function buildSource(cacheDir: string, s: MuslSource, log: (l: string) => void): Promise<{ prefix: string; info: SrcBuildInfo }> {
  const have = cachedBuild(cacheDir, s);
  if (have) return have;
  const failed = recordedFailure(cacheDir, s);
  if (failed) throw new SourceError(`${s.id}: does not build (recorded ${path.relative(cacheDir, failedFile(cacheDir, s))}): ${failed}`);
  for (const tool of ['make', 'gcc']) if (!capture('sh', ['-c', `command -v ${tool}`]).stdout.trim())
    throw new SourceError(`${s.spec}: no ${tool} to build musl (as root: apt-get install build-essential)`);
  const final = prefixOf(cacheDir, s);
  rmSync(final, { recursive: true, force: true }); // an older recipe's build
  log(`building ${s.id} from ${s.how === 'git' ? `${s.path} commit ${s.commit!.slice(0, 12)}` : s.path} (nice -n 10 make -j2, CFLAGS ${SRC_CFLAGS}; minutes on 2 cores)`);
  const t0 = performance.now();
  try {
    await buildAtomically(final, async (tmp) => {
      if (s.commit) {
        // a commit: built incrementally in the checkout's work clone (see workTreeBuild)
        const banner = await workTreeBuild(cacheDir, s, tmp, log);
        writeInfo(tmp, s, banner, t0);
        return;
      }
      const src = path.join(tmp, '.src');
      mkdirSync(src, { recursive: true });
      if (s.how === 'dsc') {
        rmSync(src, { recursive: true, force: true });
        const r = capture('dpkg-source', ['--no-check', '-x', s.path, src], { env: cleanBaseEnv(), timeoutMs: 600_000 });
        if (r.code !== 0) throw new SourceError(`${s.spec}: dpkg-source -x failed: ${lastLines(r.stderr || r.stdout || r.error || '')}`);
        for (const f of readdirSync(tmp)) if (f.startsWith('musl_')) rmSync(path.join(tmp, f), { force: true });
      } else {
        const r = capture('sh', ['-c', 'cd "$1" && tar -c --exclude=./.git --exclude=./obj --exclude=./lib --exclude=./config.mak . | tar -x -C "$2"', 'sh', s.path, src], { env: cleanBaseEnv(), timeoutMs: 300_000 });
        if (r.code !== 0) throw new SourceError(`${s.spec}: copying the tree failed: ${lastLines(r.stderr)}`);
      }
      const logFile = path.join(tmp, 'build.log');
      const cflags = `${SRC_CFLAGS} -ffile-prefix-map=${src}=musl-${s.version}`;
      const banner = await makeInstall(src, tmp, final, { cflags, label: s.id, logFile, noStatic: true });
      rmSync(src, { recursive: true, force: true });
      writeInfo(tmp, s, banner, t0);
    }, log);
  } catch (e) {
    const msg = (e as Error).message;
    // a compiler's failure is recorded; an interruption or a machine fault is not
    if (e instanceof SourceError && / failed/.test(msg)) writeWhole(failedFile(cacheDir, s), `recipe ${SRC_RECIPE}\n${msg}\n`);
    throw e instanceof SourceError ? e : new SourceError(`${s.id}: ${msg}`);
  }
  const built = cachedBuild(cacheDir, s);
  if (!built) throw new SourceError(`${s.id}: ${final} is incomplete after the build`);
  log(`built ${s.id} in ${built.info.build_seconds} s (${final})`);
  return built;
}
