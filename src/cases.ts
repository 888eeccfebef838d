// Loading the suite: every suites/<runtime>/<family>.yaml, validated before anything forks.

import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { formatProblem, parseSuiteFile, setLockCatalogue, type Problem } from './schema.ts';
import { knownLockIds } from './census/index.ts';

// `locks:` names are checked against the census catalogue (census/catalogue.json); with no catalogue, not at all.
setLockCatalogue(() => {
  const ids = knownLockIds();
  return ids.size ? ids : null;
});
import { RUNTIMES, type CaseDef, type RuntimeName } from './types.ts';

export interface Suite {
  cases: CaseDef[];
  problems: Problem[];
  files: string[];
}

/** Load every case file under `suitesDir`. Paths in problems are relative to `repoDir`. */
export async function loadSuite(repoDir: string, suitesDir = path.join(repoDir, 'suites')): Promise<Suite> {
  const files: string[] = [];
  const problems: Problem[] = [];
  const cases: CaseDef[] = [];
  let dirs: string[] = [];
  try {
    dirs = (await readdir(suitesDir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  } catch {
    problems.push({ file: path.relative(repoDir, suitesDir) || suitesDir, line: 1, col: 1, path: '', message: 'no suites directory here' });
    return { cases, problems, files };
  }
  for (const d of dirs) {
    const rel = path.relative(repoDir, path.join(suitesDir, d));
    const entries = (await readdir(path.join(suitesDir, d))).filter((f) => /\.ya?ml$/.test(f)).sort();
    if (!RUNTIMES.includes(d as RuntimeName)) {
      if (entries.length)
        problems.push({ file: rel, line: 1, col: 1, path: '', message: `unknown runtime folder '${d}': use one of ${RUNTIMES.join(', ')}` });
      continue;
    }
    for (const f of entries) {
      const abs = path.join(suitesDir, d, f);
      const relFile = path.relative(repoDir, abs);
      files.push(relFile);
      const parsed = parseSuiteFile(await readFile(abs, 'utf8'), relFile);
      problems.push(...parsed.problems);
      cases.push(...parsed.cases);
    }
  }
  // ids are unique within a runtime, so `--case ID` names one case per runtime
  const byId = new Map<string, CaseDef>();
  for (const c of cases) {
    const k = `${c.runtime}/${c.id}`;
    const first = byId.get(k);
    if (first)
      problems.push({ file: c.file, line: c.line, col: 3, path: 'id', message: `id '${c.id}' is already used by ${first.file}:${first.line}: ids must be unique within a runtime` });
    else byId.set(k, c);
  }
  return { cases, problems, files };
}

export function formatProblems(problems: Problem[]): string {
  return problems.map(formatProblem).join('\n');
}

/** Filter by --suite (runtimes or runtime/family) and --case (glob on id or key). */
export function selectCases(cases: CaseDef[], suites: string[] | null, caseGlobs: string[] | null): CaseDef[] {
  return cases.filter((c) => {
    if (suites && !suites.some((s) => s === c.runtime || s === `${c.runtime}/${c.family}`)) return false;
    if (caseGlobs && !caseGlobs.some((g) => globMatch(g, c.id) || globMatch(g, c.key))) return false;
    return true;
  });
}

export function globMatch(glob: string, s: string): boolean {
  const re = new RegExp('^' + glob.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
  return re.test(s);
}
