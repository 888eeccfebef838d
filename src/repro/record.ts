// What forkmatrix measured for one cell, for a reproducer's header: the cell's record in a matrix.json (the latest
// run, then the published matrix, or --results), and the short bug-report text built from it and the case.

import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { columnId } from '../matrix.ts';
import type { CaseDef, CellResult, Environment, RuntimeInstance } from '../types.ts';

export interface CellRecord {
  cell: CellResult;
  /** where it was read (a matrix.json) */
  source: string;
  generated: string | null;
}

/** The matrix.json files to look in: --results (a results dir or a matrix.json), else latest and published. */
export function matrixFiles(repo: string, results?: string): string[] {
  if (results) {
    const p = path.resolve(results);
    return [existsSync(p) && statSync(p).isDirectory() ? path.join(p, 'matrix.json') : p];
  }
  return [path.join(repo, 'results', 'latest', 'matrix.json'), path.join(repo, 'results', 'published', 'matrix.json')];
}

/**
 * This cell's record: the same case, environment and runtime (the same runtime version when there is one), from
 * the first file that has it; a failing record is preferred over a passing one of a later file.
 */
export function findRecord(files: string[], c: CaseDef, env: Environment, rt: RuntimeInstance): CellRecord | null {
  const want = columnId({ env: env.id, runtime: c.runtime, runtime_version: rt.version });
  let first: CellRecord | null = null;
  for (const f of files) {
    let m: { cells?: Record<string, Record<string, CellResult>>; generated?: string };
    try {
      m = JSON.parse(readFileSync(f, 'utf8'));
    } catch {
      continue;
    }
    const row = m.cells?.[c.key];
    if (!row) continue;
    const cell = row[want] ?? Object.values(row).find((x) => x.env === env.id && x.runtime === c.runtime);
    if (!cell) continue;
    const rec = { cell, source: f, generated: m.generated ?? null };
    if (cell.failures > 0) return rec;
    first ??= rec;
  }
  return first;
}

/** The interesting lines of a gdb backtrace (frames and thread headers), at most `max`. */
export function backtraceOf(cell: CellResult, max = 30): string | null {
  const f = cell.first_failure;
  if (!f) return null;
  const d = f.diag ?? {};
  if (d.gdb) {
    const lines = d.gdb.split('\n').filter((l) => /^(#\d+|Thread \d+)/.test(l.trim()));
    if (lines.length) return lines.slice(0, max).map((l) => (l.length > 200 ? l.slice(0, 197) + '...' : l)).join('\n');
  }
  if (d.fault) return d.fault;
  if (d.stack) return d.stack.split('\n').slice(0, max).join('\n');
  return null;
}

const pct = (x: number) => `${(100 * x).toFixed(x < 0.01 ? 2 : 1)}%`;

export interface HeaderInput {
  c: CaseDef;
  env: Environment;
  rt: RuntimeInstance;
  record: CellRecord | null;
  build: string[];
  run: string;
  repo: string;
}

/** The bug-report text at the top of a reproducer (plain lines; each generator wraps them as comments). */
export function headerLines(h: HeaderInput): string[] {
  const { c, env, rt, record } = h;
  const out: string[] = [
    `forkmatrix reproducer: ${c.key} (${c.file}:${c.line})`,
    '',
    `Expected: ${c.title}.`,
    `Promise level: ${c.level} (${LEVEL_WORDS[c.level]})`,
    ...c.cite.map((x) => `  - ${x}`),
  ];
  for (const k of c.known) out.push(`Known upstream (${scopeText(k)}): ${k.cite}`);
  for (const f of c.found) out.push(`Found by forkmatrix, no upstream report yet (${scopeText(f)}): ${f.measured}${f.report ? ` (${f.report})` : ''}`);
  out.push(
    '',
    `What it does: ${c.threads} parent thread(s) run the loop below again and again; the main thread forks up to ${c.forks}`,
    `children (or for ${c.seconds} s), each after a random 0-20 us delay, and runs the child code in each. A child is ok when`,
    `it ends with status 0${c.expectOutput != null ? ` and its output matches /${c.expectOutput}/` : ''}. A child alive ${c.timeoutMs} ms after its fork is a hang when`,
    `blocked (no thread of its process group running or in a timed wait in two looks 100 ms apart, no CPU time`,
    `used) and is SIGKILLed; one that is not is waited for up to 5 x that (then a hang too). Prints "N of M children failed (H hang,`,
    `C crash, W wrong)" and exits 1 when any child failed, 0 when none did, 2 when the case cannot run here. An`,
    `optional first argument sets the number of forks.`,
    '',
    `Environment: ${env.id} (forkmatrix adapter ${env.adapter}), ${c.runtime} ${rt.version}`,
    'Build and run:',
    ...h.build.map((b) => `  ${b}`),
    `  ${h.run}`,
  );
  if (!record) {
    out.push('', `forkmatrix has no record of this cell yet (no results/latest or results/published cell for ${env.id}).`);
    return out;
  }
  const cell = record.cell;
  const where = path.relative(h.repo, record.source) || record.source;
  out.push('', `Measured by forkmatrix (${where}${record.generated ? `, ${record.generated.slice(0, 10)}` : ''}):`);
  const verdict = cell.verdict === 'fail' ? `fail (${cell.kind})` : cell.verdict;
  out.push(
    `  ${verdict}: ${cell.failures} of ${cell.forks} children failed (${cell.counts.hang} hang, ${cell.counts.crash} crash, ${cell.counts.wrong} wrong)` +
      (cell.forks ? `, rate ${pct(cell.rate)}, 95% interval ${pct(cell.interval[0])}-${pct(cell.interval[1])}` : ''),
  );
  if (cell.libc) out.push(`  libc: ${cell.libc.name} ${cell.libc.version} (${cell.libc.path})`);
  out.push(`  runtime: ${cell.runtime} ${cell.runtime_version}${cell.runtime_executable ? ` (${cell.runtime_executable})` : ''}`);
  if (cell.replay) out.push(`  replay: ${cell.replay}`);
  const f = cell.first_failure;
  if (f) {
    out.push(`  first failure (child ${f.iteration}): ${f.kind}: ${oneLine(f.message, 300)}`);
    const bt = backtraceOf(cell);
    if (bt) out.push('  backtrace of the first failing child:', ...bt.split('\n').map((l) => `    ${l.trimEnd()}`));
  }
  return out;
}

const LEVEL_WORDS: Record<string, string> = {
  guaranteed: 'the runtime or libc documents it: a failure is a bug',
  tested: "the runtime's own test suite asserts it",
  libc: 'POSIX leaves it undefined: a failure is a portability hazard on this libc',
  none: 'recorded, not judged',
};

function scopeText(s: { libc?: string; versions?: string; runtime_versions?: string; fixed_in?: string; verdict: string }): string {
  return [s.libc, s.versions, s.runtime_versions && `runtime ${s.runtime_versions}`, s.fixed_in && `fixed in ${s.fixed_in}`, s.verdict].filter(Boolean).join(' ');
}

export const oneLine = (s: string, n: number) => {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > n ? t.slice(0, n) + '...' : t;
};
