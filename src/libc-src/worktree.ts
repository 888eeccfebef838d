// A commit of a musl checkout built incrementally in the checkout's own work clone (see workTreeBuild): the
// bisect's builds cost what the commit changed, not a whole musl.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { capture, cleanBaseEnv, runGrouped } from '../proc.ts';
import { isDir, isFile } from '../util.ts';
import { lockFile, withLock } from '../lock.ts';
import { SourceError } from './tree.ts';
import { BUILD_TIMEOUT_MS, lastLines, LOADER, prefixOf, SRC_CFLAGS, srcRoot, type MuslSource } from './build.ts';

/**
 * A commit of a checkout, built in the checkout's work clone <cache>/musl/src/.work/<hash of its path>/src (git
 * clone --shared: the user's checkout is never touched), one build at a time (a cache lock). `git checkout -f`
 * rewrites only the files that differ, and the objects carry gcc -MMD dependencies (the Makefile's blanket IMPH
 * prerequisite emptied in config.mak), so the next commit recompiles only what changed: a bisect step costs
 * seconds to a few minutes, not a whole build. --disable-static: the cases link dynamically. The install goes to
 * DESTDIR=<tmp> (the prefix is not compiled into musl: its loader finds etc/ relative to itself).
 */
export async function workTreeBuild(cacheDir: string, s: MuslSource, tmp: string, log: (l: string) => void): Promise<string> {
  const repo = s.how === 'git' ? s.path : s.path;
  const wid = createHash('sha256').update(repo).digest('hex').slice(0, 12);
  const work = path.join(srcRoot(cacheDir), '.work', wid);
  return withLock(lockFile(cacheDir, `musl-src-work-${wid}`), `building in ${work}`, log, async () => {
    const src = path.join(work, 'src');
    const env = cleanBaseEnv({ GIT_TERMINAL_PROMPT: '0' });
    const git = (args: string[]) => capture('git', ['-C', src, ...args], { env, timeoutMs: 300_000 });
    if (!isDir(path.join(src, '.git')) || git(['rev-parse', '--git-dir']).code !== 0) {
      rmSync(work, { recursive: true, force: true });
      mkdirSync(work, { recursive: true });
      const r = capture('git', ['clone', '--quiet', '--shared', '--no-checkout', repo, src], { env, timeoutMs: 600_000 });
      if (r.code !== 0) throw new SourceError(`git clone --shared ${repo} failed: ${lastLines(r.stderr)}`);
    }
    let r = git(['fetch', '--quiet', repo, s.commit!]);
    r = git(['checkout', '--quiet', '-f', '--detach', s.commit!]);
    if (r.code !== 0) throw new SourceError(`git checkout ${s.commit!.slice(0, 12)} in ${src} failed: ${lastLines(r.stderr)}`);
    git(['clean', '-fdxq', '-e', '/obj', '-e', '/lib', '-e', '/config.mak']);
    // -MMD without -MP: -MP's phony header targets make musl's install rules pick a header this commit deleted
    const cflags = `${SRC_CFLAGS} -MMD -ffile-prefix-map=${src}=musl`;
    const stamp = `${createHash('sha256').update(readFileSync(path.join(src, 'configure'))).digest('hex')} ${cflags}`;
    const stampFile = path.join(work, 'configured');
    const logFile = path.join(tmp, 'build.log');
    if (!isFile(path.join(src, 'config.mak')) || (isFile(stampFile) ? readFileSync(stampFile, 'utf8') : '') !== stamp) {
      const c = await runGrouped('./configure', ['--prefix=/fm', '--syslibdir=/fm/lib', '--disable-static', `CFLAGS=${cflags}`], { env: cleanBaseEnv(), cwd: src, logFile, timeoutMs: 600_000 });
      if (c.code !== 0) throw new SourceError(`${s.id}: ./configure failed: ${lastLines(readFileSync(logFile, 'utf8'))}`);
      writeFileSync(path.join(src, 'config.mak'), `${readFileSync(path.join(src, 'config.mak'), 'utf8')}\n# forkmatrix: exact header dependencies instead of rebuilding all on IMPH\nIMPH =\n-include $(shell find obj -name '*.d' 2>/dev/null)\n`);
      writeFileSync(stampFile, stamp);
    }
    rmSync(path.join(src, 'obj', 'src', 'internal', 'version.h'), { force: true }); // git describe of this commit
    pruneStaleDeps(src);
    // a build killed mid-way (Ctrl-C kills make's whole group) may have left a truncated object newer than its
    // source: everything written since that build started is removed
    const marker = path.join(work, 'building');
    if (isFile(marker)) dropNewerThan(path.join(src, 'obj'), statSync(marker).mtimeMs);
    writeFileSync(marker, `${process.pid}\n`);
    rmSync(path.join(src, 'lib'), { recursive: true, force: true }); // relinked from the objects
    const steps: [string, string[]][] = [['nice', ['-n', '10', 'make', '-j2']], ['make', ['install', `DESTDIR=${path.join(tmp, '.dest')}`]]];
    for (const [cmd, args] of steps) {
      const part = `${logFile}.part`;
      const m = await runGrouped(cmd, args, { env: cleanBaseEnv(), cwd: src, logFile: part, timeoutMs: BUILD_TIMEOUT_MS });
      const out = existsSync(part) ? readFileSync(part, 'utf8') : '';
      writeFileSync(logFile, out, { flag: 'a' });
      rmSync(part, { force: true });
      if (m.code !== 0) throw new SourceError(`${s.id}: ${args.includes('install') ? 'make install' : 'make -j2'} failed${m.timedOut ? ' (timed out)' : ''}: ${lastLines(out)}`);
    }
    rmSync(marker, { force: true });
    const dest = path.join(tmp, '.dest', 'fm');
    for (const d of readdirSync(dest)) renameSync(path.join(dest, d), path.join(tmp, d));
    rmSync(path.join(tmp, '.dest'), { recursive: true, force: true });
    const final = prefixOf(cacheDir, s);
    rmSync(path.join(tmp, 'lib', LOADER), { force: true });
    symlinkSync('libc.so', path.join(tmp, 'lib', LOADER));
    mkdirSync(path.join(tmp, 'etc'), { recursive: true });
    writeFileSync(path.join(tmp, 'etc', 'ld-musl-x86_64.path'), `${path.join(final, 'lib')}\n`);
    const b = capture(path.join(tmp, 'lib', 'libc.so'), [], { env: { PATH: '/usr/bin:/bin' }, timeoutMs: 10_000 });
    return (b.stdout + b.stderr).trim();
  });
}

function dropNewerThan(dir: string, ms: number): void {
  if (!isDir(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) dropNewerThan(p, ms);
    else if (statSync(p).mtimeMs >= ms) rmSync(p, { force: true });
  }
}

/**
 * An object whose recorded dependencies name a file this commit does not have (a header deleted or moved) is
 * removed with its .d, so make rebuilds it instead of failing on the missing file. Returns how many.
 */
export function pruneStaleDeps(src: string): number {
  let n = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.d')) {
        const all = readFileSync(p, 'utf8').replace(/\\\n/g, ' ').split('\n');
        const text = all[0];
        // only the object's own rule: phony header targets (gcc -MP) would mislead make's install rules
        if (all.slice(1).some((l) => l.trim())) writeFileSync(p, text + '\n');
        const colon = text.indexOf(': ');
        const target = text.slice(0, colon).trim();
        const deps = text.slice(colon + 2).split(/\s+/).filter(Boolean);
        if (colon < 0 || deps.some((f) => !existsSync(path.resolve(src, f)))) {
          rmSync(p, { force: true });
          if (target) rmSync(path.resolve(src, target), { force: true });
          n++;
        }
      }
    }
  };
  if (isDir(path.join(src, 'obj'))) walk(path.join(src, 'obj'));
  return n;
}
