// forkmatrix validate: every case file checked; one line per problem.

import { loadSuite, formatProblems } from '../cases.ts';
import { REPO, parse, printHelp, suitesDir } from './shared.ts';

export const usage = `Usage: forkmatrix validate [DIR]

Checks every suites/<runtime>/<family>.yaml (or those under DIR). Prints file:line:col: path: problem for each
mistake and exits 1; prints a count and exits 0 when all is well.`;

export async function main(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv, {}, 'validate');
  if (v.help) return printHelp(usage);
  const suite = await loadSuite(REPO, suitesDir(positionals[0] ?? v.suites));
  if (suite.problems.length) {
    process.stderr.write(`${formatProblems(suite.problems)}\n${suite.problems.length} problem(s) in ${suite.files.length} file(s)\n`);
    return 1;
  }
  process.stdout.write(`${suite.cases.length} cases in ${suite.files.length} files: all valid\n`);
  return 0;
}
