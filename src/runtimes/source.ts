// A runtime source: one place interpreters live on this machine (PATH, a version manager's install dir, the cache).
// Each source is a small module exporting one RuntimeSource; src/runtimes/index.ts lists them (one line each).
// A source only names candidate paths: the caller runs each candidate's version query in the clean environment,
// dedupes by realpath and turns a broken one into a `missing` entry with a one-line reason.

import type { FoundRuntime } from '../types.ts';

export interface SourceOptions {
  /** the forkmatrix cache (sources that provision into it look there) */
  cacheDir: string;
  /** the user's home directory (default os.homedir()); tests point it at a fake tree */
  home?: string;
  /** the environment variables a source may read (PYENV_ROOT, NVM_DIR, ...; default process.env) */
  env?: Record<string, string | undefined>;
}

export interface Candidate {
  runtime: FoundRuntime;
  /** absolute path of the interpreter (or compiler, for libc) */
  path: string;
  /** where it was found, for `list` and reasons: e.g. "pyenv 3.11.7", "PATH", "nvm v20.11.0" */
  via: string;
}

export interface RuntimeSource {
  name: string;
  /** 'glibc': offered only to environments whose libc is glibc (host, glibc copies), e.g. official Node builds */
  libc?: 'glibc';
  /** candidate paths, cheap (readdir/stat only: no process is started here); [] when the source is absent */
  candidates(opts: SourceOptions): Candidate[];
  /**
   * Why a candidate cannot run in the environment at all, read from the file before it is started (node-dist: the
   * glibc its build needs), as one line; null: ask it its version as usual.
   */
  refuse?(path: string, env: { glibc?: string }): string | null;
}
