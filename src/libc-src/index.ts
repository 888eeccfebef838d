// `forkmatrix provision libc-src PATH...`, and the release columns: `--env musl-1.2.0` resolved from a musl
// checkout (FORKMATRIX_MUSL_GIT or --libc-git PATH) as `git:PATH@v1.2.0`.

import path from 'node:path';
import { buildSource, cachedBuild, resolveSource } from './build.ts';
import { isGitRepo, resolveRev, SourceError } from './tree.ts';
import type { AdapterOptions, Environment } from '../types.ts';

export { SourceError } from './tree.ts';

/** Build each source (git:PATH@REV, a musl tree or .dsc) into the cache; one line each. Throws SourceError. */
export async function provisionLibcSrc(specs: string[], cacheDir: string, log: (l: string) => void): Promise<void> {
  if (!specs.length) throw new SourceError(`provision libc-src needs the source: provision libc-src PATH (a musl checkout or tree, a musl_*.dsc, or git:PATH@REV)`);
  for (const spec of specs) {
    const s = resolveSource(spec, 'provision libc-src');
    const had = cachedBuild(cacheDir, s);
    const b = await buildSource(cacheDir, s, log);
    log(`${s.id}: ${had ? 'already built' : 'built'} in ${b.prefix} (${b.info.build_seconds} s); use it with --libc ${spec}`);
  }
}

/** The musl checkout to take releases from: --libc-git PATH, else $FORKMATRIX_MUSL_GIT; null when neither. */
export function muslGit(flag: string | undefined): string | null {
  const p = flag ?? process.env.FORKMATRIX_MUSL_GIT;
  if (!p) return null;
  const repo = path.resolve(p);
  if (!isGitRepo(repo)) throw new SourceError(`${flag ? '--libc-git' : 'FORKMATRIX_MUSL_GIT'} ${p}: not a git repository (give a musl checkout)`);
  return repo;
}

export const RELEASE_RE = /^musl-(\d+\.\d+\.\d+)$/;

/**
 * `--env` ids that name musl releases not otherwise available, as `git:REPO@vX.Y.Z` --libc sources, and the
 * env ids those become (musl-1.2.0 -> musl-1.2.0+git.<short>). An id whose tag is missing is refused.
 */
export function releaseSources(wanted: string[], available: string[], repo: string): { spec: string; from: string; id: string }[] {
  const out: { spec: string; from: string; id: string }[] = [];
  for (const w of wanted) {
    const m = RELEASE_RE.exec(w);
    if (!m || available.includes(w)) continue;
    resolveRev(repo, `v${m[1]}`, `--env ${w}: the musl checkout`);
    const spec = `git:${repo}@v${m[1]}`;
    out.push({ spec, from: w, id: resolveSource(spec).id });
  }
  return out;
}

/**
 * `--env` names musl releases nobody provisioned (musl-1.2.0): each is built from the musl checkout's tag and
 * replaces the name in `wanted` by its column id (musl-1.2.0+git.<short>). A release that does not build is an
 * environment whose probe says why (the run goes on without that column and prints the compiler's last lines).
 */
export async function withReleases(
  wanted: string[] | null, envs: Environment[], gitFlag: string | undefined, aopts: AdapterOptions, log: (l: string) => void,
): Promise<{ envs: Environment[]; wanted: string[] | null }> {
  const missing = (wanted ?? []).filter((w) => RELEASE_RE.test(w) && !envs.some((e) => e.id === w));
  if (!missing.length) return { envs, wanted };
  const repo = muslGit(gitFlag);
  if (!repo) throw new SourceError(`--env ${missing.join(',')}: not provisioned here; a musl release Debian does not ship is built from a musl git checkout: give --libc-git PATH or set FORKMATRIX_MUSL_GIT`);
  const { sourceEnvironment } = await import('../../adapters/musl.ts');
  const out = [...envs];
  const ids = new Map<string, string>();
  for (const r of releaseSources(missing, [], repo)) {
    try {
      const env = await sourceEnvironment(r.spec, aopts, log, `--env ${r.from}`);
      out.push(env);
      ids.set(r.from, env.id);
    } catch (e) {
      if (!(e instanceof SourceError)) throw e;
      const msg = e.message;
      out.push({
        id: r.id, adapter: 'musl', expect: { libc: 'musl', version: r.id.replace(/^musl-|\+.*$/g, '') }, env: {}, runtimes: [], missing: [], root: '',
        launch: (argv, env) => ({ command: argv[0], args: argv.slice(1), env }),
        probe: async () => {
          throw new Error(`does not build: ${msg}`);
        },
      });
      ids.set(r.from, r.id);
    }
  }
  return { envs: out, wanted: wanted!.map((w) => ids.get(w) ?? w) };
}
