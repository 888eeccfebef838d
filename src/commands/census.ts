// forkmatrix census: the lock census of each libc version (src/census/), with the cases covering each lock.

import os from 'node:os';
import path from 'node:path';
import { loadSuite } from '../cases.ts';
import { REPO, UsageError, cacheDir, list, parse, printHelp, suitesDir } from './shared.ts';

export const usage = `Usage: forkmatrix census [--env LIST] [--libc SRC] [--json]

For each provisioned libc (or --env LIST, e.g. glibc-2.36,musl-1.2.5), from Debian's source package of exactly
that version (cached under the cache's census/), or a source tree (--libc SRC: a musl or glibc checkout): every
libc-internal lock, whether fork() takes or resets it, the public functions that reach it (an approximation, see
src/census/README.md) and the cases that name it (locks: [id]). Prints coverage per version and the uncovered
locks; --json prints everything. Updates census/catalogue.json (the ids 'validate' accepts) for Debian sources.
A lock fork() neither takes nor resets that a public function reaches needs a case or a line in census/reasons.yaml.`;

export async function main(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, { env: { type: 'string' }, json: { type: 'boolean' } }, 'census');
  if (v.help) return printHelp(usage);
  const census = await import('../census/index.ts');
  const log = (l: string) => process.stderr.write(`forkmatrix: ${l}\n`);
  const results = await census.runCensus({ cacheDir: cacheDir(v.cache), envs: list(v.env), libcSrc: v.libc ?? [], log }).catch((e: Error) => {
    throw e instanceof census.CensusUsageError ? new UsageError(e.message) : e;
  });
  const cat = census.updateCatalogue(results);
  const suite = await loadSuite(REPO, suitesDir(v.suites));
  // a --libc tree is not in the catalogue: its coverage comes from its own results
  const local = results.filter((r) => r.version.endsWith('+local'));
  const shown = local.length ? census.updateCatalogue(local, path.join(os.tmpdir(), 'forkmatrix-census-none.json'), false) : cat;
  const summary = census.censusSummary(suite.cases, { ...shown, versions: shown.versions.filter((x) => results.some((r) => r.libc === x.libc && r.version === x.version)) })!;
  process.stdout.write(v.json ? census.censusJson(summary, results) : census.renderTerminal(summary, results));
  return 0;
}
