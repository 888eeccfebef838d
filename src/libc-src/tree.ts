// What a `--libc` source argument is: a musl source tree (a git checkout, Debian's extracted source package, or a
// `.dsc` of it), `git:PATH@REV` (a revision of a musl checkout), or something that is not a musl tree (glibc's
// source, a random folder), refused with the reason. Pure where it can be: the parsing and the tree tests take
// paths and return values; only the git helpers run git.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { capture, cleanBaseEnv } from '../proc.ts';
import { isDir, isFile } from '../util.ts';

export class SourceError extends Error {}

/** `git:PATH@REV` -> { repo, rev }; null when `spec` does not start with git:, an error when it is malformed. */
export function parseGitSpec(spec: string): { repo: string; rev: string } | null {
  if (!spec.startsWith('git:')) return null;
  const body = spec.slice(4);
  const at = body.lastIndexOf('@');
  if (at <= 0 || at === body.length - 1) throw new SourceError(`--libc ${spec}: expected git:PATH@REV (a musl checkout and a commit, tag or branch), e.g. git:../musl@v1.2.1`);
  return { repo: body.slice(0, at), rev: body.slice(at + 1) };
}

export type TreeKind = 'musl' | 'glibc' | 'dsc' | 'none';

/** What kind of source tree `dir` is (a musl tree has VERSION, configure, arch/x86_64 and src/thread). */
export function treeKind(p: string): TreeKind {
  if (isFile(p) && p.endsWith('.dsc')) return 'dsc';
  if (!isDir(p)) return 'none';
  const has = (f: string) => isFile(path.join(p, f));
  const hasDir = (f: string) => isDir(path.join(p, f));
  if (has('VERSION') && has('configure') && hasDir('arch/x86_64') && hasDir('src/thread') && has('include/stdio.h')) return 'musl';
  if (has('version.h') && hasDir('nptl') && hasDir('csu') && has('configure')) return 'glibc';
  return 'none';
}

/** Is `dir` a musl *source* tree (not yet built: no lib/libc.so)? The musl adapter then builds it. */
export function isMuslSource(p: string): boolean {
  const k = treeKind(p);
  return k === 'dsc' || (k === 'musl' && !isFile(path.join(p, 'lib', 'libc.so')));
}

/** The version a musl tree says it is (its VERSION file). */
export function treeVersion(dir: string): string {
  const v = readFileSync(path.join(dir, 'VERSION'), 'utf8').trim();
  if (!/^\d+\.\d+\.\d+[\w.+-]*$/.test(v)) throw new SourceError(`${dir}/VERSION says ${JSON.stringify(v.slice(0, 40))}, not a musl version`);
  return v;
}

const IGNORED = new Set(['.git', 'obj', 'lib', 'config.mak', '.pc']);

/**
 * A content hash of a source tree (paths, modes and bytes of every file except build outputs and .git): the cache
 * key of a tree that is not a clean git checkout. ~2,000 files for musl: well under a second.
 */
export function contentHash(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      if (!rel && IGNORED.has(name)) continue;
      const p = path.join(d, name);
      const st = statSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      const r = rel ? `${rel}/${name}` : name;
      if (st.isDirectory()) walk(p, r);
      else if (st.isFile()) h.update(`${r}\0${st.mode & 0o111 ? 'x' : '-'}\0${st.size}\0`).update(readFileSync(p));
    }
  };
  walk(dir, '');
  return h.digest('hex').slice(0, 12);
}

function git(repo: string, args: string[], timeoutMs = 60_000) {
  return capture('git', ['-C', repo, ...args], { env: cleanBaseEnv({ GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1' }), timeoutMs });
}

/** Is `repo` a git repository (a checkout or a bare one)? */
export function isGitRepo(repo: string): boolean {
  return isDir(repo) && git(repo, ['rev-parse', '--git-dir']).code === 0;
}

/** The full commit `rev` names in `repo`; throws one line when it names none. */
export function resolveRev(repo: string, rev: string, flag: string): string {
  if (!isDir(repo)) throw new SourceError(`${flag} ${repo}: no such directory (give a git checkout)`);
  if (!isGitRepo(repo)) throw new SourceError(`${flag} ${repo}: not a git repository (give a musl git checkout, e.g. git clone https://git.musl-libc.org/git/musl)`);
  if (rev.startsWith('-')) throw new SourceError(`${flag}: REV ${JSON.stringify(rev)} may not start with '-'`);
  const r = git(repo, ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`]);
  const sha = r.stdout.trim();
  if (r.code !== 0 || !/^[0-9a-f]{40}$/.test(sha)) throw new SourceError(`${flag} ${repo}@${rev}: no such commit, tag or branch in ${repo} (see git -C ${repo} tag, git -C ${repo} log --oneline)`);
  return sha;
}

/** A clean git checkout's HEAD commit, or null (not git, or local changes: then the content hash keys it). */
export function cleanCheckoutCommit(dir: string): string | null {
  if (!isDir(path.join(dir, '.git')) && !isFile(path.join(dir, '.git'))) return null;
  const head = git(dir, ['rev-parse', '--verify', 'HEAD^{commit}']);
  if (head.code !== 0) return null;
  const st = git(dir, ['status', '--porcelain', '--untracked-files=normal']);
  return st.code === 0 && !st.stdout.trim() ? head.stdout.trim() : null;
}

/** Export commit `sha` of `repo` into the (new, empty) directory `dest` with git archive: the user's checkout is not touched. */
export function exportCommit(repo: string, sha: string, dest: string): void {
  const r = capture('sh', ['-c', `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, 'sh', repo, sha, dest], { env: cleanBaseEnv(), timeoutMs: 300_000 });
  if (r.code !== 0) throw new SourceError(`git archive ${sha.slice(0, 12)} of ${repo} failed: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
}

/** The commits from `old` (exclusive) to `new` (inclusive), oldest first, along the first-parent line. */
export function commitsBetween(repo: string, oldSha: string, newSha: string): string[] {
  const r = git(repo, ['rev-list', '--reverse', '--first-parent', '--ancestry-path', `${oldSha}..${newSha}`]);
  if (r.code !== 0) throw new SourceError(`git rev-list ${oldSha.slice(0, 12)}..${newSha.slice(0, 12)} failed: ${r.stderr.trim().slice(0, 200)}`);
  return r.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
}

/** Is `a` an ancestor of `b`? */
export function isAncestor(repo: string, a: string, b: string): boolean {
  return git(repo, ['merge-base', '--is-ancestor', a, b]).code === 0;
}

/** One line naming a commit: short sha and subject. */
export function commitLine(repo: string, sha: string): string {
  const r = git(repo, ['log', '-1', '--format=%h %s', sha]);
  return r.stdout.trim() || sha.slice(0, 12);
}

/** The tag naming exactly `sha`, if any (v1.2.1). */
export function tagOf(repo: string, sha: string): string | null {
  const r = git(repo, ['describe', '--tags', '--exact-match', sha]);
  return r.code === 0 ? r.stdout.trim() : null;
}
