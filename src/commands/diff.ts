// forkmatrix diff: what changed between two result sets, or two columns of one, as Markdown.

import { matrixFromTap } from '../matrix.ts';
import { diffMarkdown, diffMatrices, pairColumns } from '../diff.ts';
import { UsageError, parse, printHelp } from './shared.ts';
import { resultStreams } from './results.ts';

export const usage = `Usage: forkmatrix diff OLD NEW [--from COLUMN --to COLUMN]

OLD and NEW are results directories (or .tap files). Without columns, every column present in both is compared;
with --from/--to (column ids as the matrix prints them, e.g. 'glibc-2.36 · gcc 12.2.0'; a prefix is enough), one
column of OLD with one of NEW: the same directory twice compares two environments of one run. A runtime version
(--from python-3.11.7 --to python-3.13.1; python-3.14.0t is free-threaded) compares those versions' columns in
every environment that has both. Prints the cells that broke, were fixed, changed kind, appeared or vanished, as
Markdown.`;

export async function main(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv, { from: { type: 'string' }, to: { type: 'string' } }, 'diff');
  if (v.help) return printHelp(usage);
  if (positionals.length !== 2) throw new UsageError(`diff needs two result sets: forkmatrix diff OLD NEW (see 'forkmatrix diff --help')`);
  if (!!v.from !== !!v.to) throw new UsageError('--from and --to go together');
  const sides = [await resultStreams('diff', [positionals[0]]), await resultStreams('diff', [positionals[1]])];
  const [a, b] = await Promise.all(sides.map((files) => matrixFromTap(files).catch((e: Error) => { throw new UsageError(`diff: ${e.message}`); })));
  let cols: [string, string][] | undefined;
  if (v.from && v.to) {
    // column ids, or runtime versions (python-3.11.7): then each environment with both versions gives a pair
    const p = pairColumns(a, b, v.from, v.to);
    if ('error' in p) throw new UsageError(p.error);
    cols = p;
  }
  const rows = diffMatrices(a, b, cols);
  process.stdout.write(diffMarkdown(rows, v.from ?? positionals[0], v.to ?? positionals[1]));
  return 0;
}
