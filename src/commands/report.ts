// forkmatrix report: the matrix (matrix.json, matrix.md, index.html) from TAP streams of any number of runs.

import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadSuite } from '../cases.ts';
import { censusSummary } from '../census/index.ts';
import { matrixFromTap, toJSON, toMarkdown, toTerminal, summaryLine } from '../matrix.ts';
import { toHTML } from '../html.ts';
import { readMatrix } from '../plan-cmd.ts';
import { computeChanges } from '../page/changes.ts';
import { writeAll } from '../util.ts';
import { REPO, UsageError, parse, printHelp, usableDir } from './shared.ts';
import { resultStreams } from './results.ts';

export const usage = `Usage: forkmatrix report [--out DIR] [--previous MATRIX] PATH...

Reads TAP streams (directories are searched for *.tap) from any number of runs or machines, merges identical
cells (counts add up), and writes matrix.json, matrix.md and index.html to --out (default: the first PATH when it
is a directory). --previous MATRIX (a matrix.json or results directory) adds "what changed since" it; writing to
results/published compares with the matrix.json there by default.`;

export async function main(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv, { out: { type: 'string' }, previous: { type: 'string' } }, 'report');
  if (v.help) return printHelp(usage);
  if (!positionals.length) throw new UsageError(`report needs at least one results directory or .tap file (see 'forkmatrix report --help')`);
  const streams = await resultStreams('report', positionals);
  const m = await matrixFromTap(streams).catch((e: Error) => {
    throw new UsageError(`report: ${e.message}`);
  });
  if (!m.sources.length) throw new UsageError(`report: no .tap files under ${positionals.join(', ')}`);
  // the lock coverage of this checkout's cases (the census catalogue), when its suite loads cleanly
  const suite = await loadSuite(REPO);
  if (!suite.problems.length) m.census = censusSummary(suite.cases);
  // by default beside the first result set: the directory itself, or the folder of a .tap file
  const out = usableDir(path.resolve(v.out ?? (statSync(positionals[0]).isDirectory() ? positionals[0] : path.dirname(positionals[0]))), '--out');
  // what changed since the last publication: --previous, or the published matrix this report replaces
  const previous = v.previous ?? (out === path.join(REPO, 'results', 'published') && existsSync(path.join(out, 'matrix.json')) ? path.join(out, 'matrix.json') : null);
  if (previous) m.changes = computeChanges(await readMatrix(previous, '--previous'), m, path.relative(process.cwd(), path.resolve(previous)) || previous);
  writeAll(out, [['matrix.json', toJSON(m)], ['matrix.md', toMarkdown(m)], ['index.html', toHTML(m)]]);
  for (const p of m.problems) process.stderr.write(`forkmatrix: ${p}\n`);
  process.stdout.write(toTerminal(m, process.stdout.isTTY && !process.env.NO_COLOR));
  process.stdout.write(`\n${m.summary.map(summaryLine).join('\n')}\n\nmerged ${m.sources.length} stream(s) into ${path.relative(process.cwd(), out) || '.'}/{matrix.json,matrix.md,index.html}\n`);
  return 0;
}
