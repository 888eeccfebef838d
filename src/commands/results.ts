// The result sets 'report' and 'diff' read: TAP streams, each checked to be a whole forkmatrix stream.

import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { readStream } from '../tap.ts';
import { UsageError } from './shared.ts';

const RESULTS_HINT = 'give results directories (e.g. results/latest) or .tap files';

/**
 * The TAP streams of the result sets `paths` (directories are searched for *.tap, symlinks inside not followed),
 * each checked to be a complete forkmatrix stream: anything else is refused with one line naming it.
 */
export async function resultStreams(cmd: string, paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new UsageError(`${cmd}: ${p}: ${code === 'ENOENT' ? 'no such file or directory' : `cannot read it (${code})`} (${RESULTS_HINT})`);
    }
    let files: string[];
    if (st.isFile()) files = [path.resolve(p)];
    else if (st.isDirectory()) {
      files = [];
      let seen = 0;
      const walk = (d: string, depth: number) => {
        let entries;
        try {
          entries = readdirSync(d, { withFileTypes: true });
        } catch (e) {
          throw new UsageError(`${cmd}: ${d}: cannot read it (${(e as NodeJS.ErrnoException).code}) (${RESULTS_HINT})`);
        }
        for (const e of entries) {
          if (++seen > 20_000) throw new UsageError(`${cmd}: ${p}: not a forkmatrix results directory (more than 20000 entries searched for .tap streams; ${RESULTS_HINT})`);
          if (e.isFile() && e.name.endsWith('.tap')) files.push(path.resolve(d, e.name));
          else if (e.isDirectory() && depth < 6 && !e.name.startsWith('.')) walk(path.join(d, e.name), depth + 1);
        }
      };
      walk(p, 0);
      if (!files.length) throw new UsageError(`${cmd}: ${p}: not a forkmatrix results directory (no .tap stream in it; ${RESULTS_HINT})`);
    } else throw new UsageError(`${cmd}: ${p}: not a file or directory (${RESULTS_HINT})`);
    for (const f of files.sort()) {
      const s = await readStream(f);
      if (s.refusal) throw new UsageError(`${cmd}: ${s.refusal}`);
    }
    out.push(...files);
  }
  return out;
}
