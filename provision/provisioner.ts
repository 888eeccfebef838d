// What a provisioner is (provision/README.md): one name on `forkmatrix provision`'s command line, what it needs
// from the machine, what it writes under the cache. src/registry.ts lists them; src/cli.ts checks the words and
// runs them. Adapters are left with discovery, proof and launch.

import type { AdapterOptions } from '../src/types.ts';

export interface ProvisionOptions extends Partial<AdapterOptions> {
  /** the forkmatrix cache ($FORKMATRIX_CACHE, --cache, or ~/.cache/forkmatrix) */
  cacheDir: string;
}

/** The adapters' options (--runtime, --preload, --libc; none when not given), for provisioners that make copies. */
export const adapterOptionsOf = (o: ProvisionOptions): AdapterOptions => ({ extraRuntimes: [], preload: [], libc: [], ...o });

export interface Provisioner {
  /** the name on the command line; a name ending in '@' takes versions after it (node@18,22) */
  name: string;
  /** what it needs from the machine (network, programs), for `provision --help` and error lines */
  needs: string;
  /** what it writes, relative to the cache */
  writes: string;
  /** does this command-line word belong to this provisioner? */
  accepts(word: string): boolean;
  /** bad input, before anything runs: one line naming the word and the fix, or null when the word is well formed */
  check(word: string): string | null;
  /** provision these words (each accepted and checked); throws one line on failure */
  provision(words: string[], opts: ProvisionOptions, log: (line: string) => void): Promise<void>;
}
