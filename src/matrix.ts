// The matrix: built only from TAP streams (so results from many machines merge), rendered as JSON for tools,
// Markdown for READMEs, a static HTML page, and a terminal table.

import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { readStream } from './tap.ts';
import { compareVersions } from './schema.ts';
import { fmtRate } from './stats.ts';
import { cellFromEvidence, evidenceOfCell } from './cell.ts';
import { addEvidence } from './verdict.ts';
import type { CensusSummary } from './census/index.ts';
import { backtraceSummary, findingsMarkdown } from './page/findings.ts';
import { changesMarkdown, type Changes } from './page/changes.ts';
import { reproCommand } from './repro/command.ts';
import { RUNTIMES, type CellResult, type LibcProof, type PromiseLevel, type RuntimeName } from './types.ts';

export interface Column {
  id: string; // env · runtime version
  env: string;
  libc: LibcProof | null;
  runtime: RuntimeName;
  runtime_version: string;
}

export interface Row {
  key: string;
  runtime: RuntimeName;
  family: string;
  id: string;
  title: string;
  level: PromiseLevel;
  cite: string[];
  file: string;
  source: string;
}

export interface EnvSummary {
  column: string;
  runtime: RuntimeName;
  judged: number; // cells with a verdict of pass/fail on a judged promise
  hold: number;
  fail: number;
  known: number;
  /** failures measured here with no upstream report (findings) */
  found: number;
  inconclusive: number;
  skip: number;
  error: number;
}

export interface Matrix {
  generated: string;
  sources: string[];
  columns: Column[];
  rows: Row[];
  /** cells[rowKey][columnId] */
  cells: Record<string, Record<string, CellResult>>;
  summary: EnvSummary[];
  problems: string[];
  /** lock coverage per libc version (src/census): which internal locks the cases of this run exercise */
  census?: CensusSummary | null;
  /** what changed since a previous matrix (report --previous FILE), src/page/changes.ts */
  changes?: Changes | null;
}

/** The runtimes in matrix order (each spec's `order`, runners/<rt>/index.ts). */
const RT_ORDER: readonly RuntimeName[] = RUNTIMES;

export function columnId(c: Pick<CellResult, 'env' | 'runtime' | 'runtime_version'>): string {
  return c.runtime === 'libc' ? `${c.env} · ${c.runtime_version}` : `${c.env} · ${c.runtime} ${c.runtime_version}`;
}

function verdictRank(v: string): number {
  return ({ fail: 4, pass: 3, inconclusive: 2, error: 1, skip: 0 } as Record<string, number>)[v] ?? 0;
}

/**
 * Merge two results of the same cell (shards, repeated runs, other machines with the same environment): the
 * evidence adds up and is judged again by the same rules (src/verdict.ts), so three single-process results of 100
 * forks make a pass where each alone was inconclusive. Results of two different definitions of the case are not
 * merged: the later one replaces the earlier.
 */
export function mergeCells(a: CellResult, b: CellResult): CellResult {
  // evidence adds up only for one definition of the case: a re-run after the case changed (its YAML source
  // differs) replaces the earlier cell instead of mixing forks of two different programs; inputs are read in the
  // order given, so the later one wins
  if (a.source && b.source && a.source !== b.source) return b;
  if (a.verdict === 'skip' || a.verdict === 'error') if (verdictRank(b.verdict) > verdictRank(a.verdict)) return b;
  if (b.verdict === 'skip' || b.verdict === 'error') return a;
  const ea = evidenceOfCell(a);
  const ev = addEvidence(ea, evidenceOfCell(b));
  ev.first_failures = a.first_failure ? ev.first_failures : [...(b.failures_seen ?? []), ...(a.failures_seen ?? [])].slice(0, 8);
  const c = {
    threads: Math.max(a.pressure?.threads ?? 0, b.pressure?.threads ?? 0),
    known: [a.known, b.known].filter((k): k is NonNullable<typeof k> => !!k),
    found: [a.found, b.found].filter((k): k is NonNullable<typeof k> => !!k),
  };
  const merged = cellFromEvidence(c, a, ev, a.libc, a.runtime_version, { child_ms: a.child_ms ?? b.child_ms, reruns: [...(a.reruns ?? []), ...(b.reruns ?? [])] });
  return {
    ...merged,
    seed: a.first_failure ? a.seed : b.first_failure ? b.seed : a.seed,
    replay: a.first_failure ? a.replay : b.first_failure ? b.replay : a.replay,
  };
}

export function buildMatrix(cells: CellResult[], sources: string[] = [], problems: string[] = []): Matrix {
  const columns = new Map<string, Column>();
  const rows = new Map<string, Row>();
  const grid: Record<string, Record<string, CellResult>> = {};
  for (const c of cells) {
    const col = columnId(c);
    if (!columns.has(col)) columns.set(col, { id: col, env: c.env, libc: c.libc, runtime: c.runtime, runtime_version: c.runtime_version });
    if (!rows.has(c.case)) {
      const [, family = c.family, id = c.case] = c.case.split('/');
      rows.set(c.case, { key: c.case, runtime: c.runtime, family, id, title: c.title, level: c.level, cite: c.cite ?? [], file: c.file, source: c.source });
    }
    const row = (grid[c.case] ??= {});
    row[col] = row[col] ? mergeCells(row[col], c) : c;
  }
  const cols = [...columns.values()].sort(compareColumns);
  const rws = [...rows.values()].sort((a, b) => RT_ORDER.indexOf(a.runtime) - RT_ORDER.indexOf(b.runtime) || a.family.localeCompare(b.family) || a.id.localeCompare(b.id));
  const summary: EnvSummary[] = cols.map((col) => {
    const s: EnvSummary = { column: col.id, runtime: col.runtime, judged: 0, hold: 0, fail: 0, known: 0, found: 0, inconclusive: 0, skip: 0, error: 0 };
    for (const r of rws) {
      const c = grid[r.key]?.[col.id];
      if (!c) continue;
      if (c.verdict === 'skip') s.skip++;
      else if (c.verdict === 'error') s.error++;
      else if (c.verdict === 'inconclusive') s.inconclusive++;
      else if (c.level !== 'none') {
        s.judged++;
        if (c.verdict === 'pass') s.hold++;
        else if (c.known) s.known++;
        else if (c.found) s.found++;
        else s.fail++;
      }
    }
    return s;
  });
  // every failing cell carries the command that writes its standalone reproducer (src/repro)
  for (const row of Object.values(grid)) for (const [col, c] of Object.entries(row)) if (c.verdict === 'fail') row[col] = Object.assign({}, c, { repro: reproCommand(c) });
  return { generated: new Date().toISOString(), sources, columns: cols, rows: rws, cells: grid, summary, problems };
}

/** Columns grouped by runtime, then the runtime's version (not for libc: its columns are libcs), then libc. */
function compareColumns(a: Column, b: Column): number {
  const rv = (c: Column) => (c.runtime === 'libc' ? '' : c.runtime_version === 'missing' ? '~' : c.runtime_version.replace(/^\D+/, ''));
  return (
    RT_ORDER.indexOf(a.runtime) - RT_ORDER.indexOf(b.runtime) ||
    compareVersions(rv(a), rv(b)) ||
    rv(a).localeCompare(rv(b)) ||
    (a.libc?.name ?? '').localeCompare(b.libc?.name ?? '') ||
    compareVersions(a.libc?.version ?? '0', b.libc?.version ?? '0') ||
    a.env.length - b.env.length ||
    a.env.localeCompare(b.env) ||
    compareVersions(a.runtime_version.replace(/^\D+/, ''), b.runtime_version.replace(/^\D+/, ''))
  );
}

/** Every *.tap below the given directories (or the files themselves): in the order given, sorted within each. */
export async function findTap(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const st = await stat(p);
    if (st.isFile()) {
      out.push(p);
      continue;
    }
    const found: string[] = [];
    for (const e of await readdir(p, { withFileTypes: true, recursive: true })) {
      if (e.isFile() && e.name.endsWith('.tap')) found.push(path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
    }
    out.push(...found.sort());
  }
  return out;
}

export async function matrixFromTap(paths: string[]): Promise<Matrix> {
  const files = await findTap(paths);
  const cells: CellResult[] = [];
  const problems: string[] = [];
  for (const f of files) {
    const s = await readStream(f);
    cells.push(...s.cells);
    problems.push(...s.problems);
  }
  return buildMatrix(cells, files, problems);
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering

export function cellLabel(c: CellResult | undefined): string {
  if (!c) return '';
  switch (c.verdict) {
    case 'pass':
      return `pass ${c.failures}/${c.forks}`;
    case 'fail':
      return `${c.known ? 'known ' : c.found ? 'found ' : c.level === 'none' ? 'seen ' : ''}${c.kind ?? 'fail'} ${c.failures}/${c.forks}${c.known?.fixed_in ? ` (fixed in ${c.known.fixed_in})` : ''}`;
    case 'inconclusive':
      return `inconclusive ${c.failures}/${c.forks}`;
    case 'skip':
      return 'skip';
    case 'error':
      return 'error';
  }
}

const MD_MARK: Record<string, string> = { pass: '✅', fail: '❌', known: '🟨', found: '🔎', none: '⚪', inconclusive: '❔', skip: '⏭️', error: '💥' };

function mark(c: CellResult): string {
  if (c.verdict === 'fail') return c.known ? MD_MARK.known : c.found ? MD_MARK.found : c.level === 'none' ? MD_MARK.none : MD_MARK.fail;
  return MD_MARK[c.verdict];
}

export function summaryLine(s: EnvSummary): string {
  const extra = [s.known && `${s.known} known`, s.found && `${s.found} found here`, s.inconclusive && `${s.inconclusive} inconclusive`, s.skip && `${s.skip} skipped`, s.error && `${s.error} error${s.error === 1 ? '' : 's'}`].filter(Boolean).join(', ');
  return `${s.column}: ${s.hold} of ${s.judged} ${s.runtime} promises hold${extra ? ` (${extra})` : ''}`;
}

export function toMarkdown(m: Matrix): string {
  let out = `# forkmatrix results\n\nGenerated ${m.generated} from ${m.sources.length} TAP stream(s).\n\n`;
  out += `Legend: ✅ pass (failures/forks, >= 300 forks over >= 3 processes, pressure proved) · ❌ fail of a promise (hang, crash, wrong) · 🟨 known failure (an upstream source says so) · 🔎 found here (measured by forkmatrix, no upstream report yet) · ⚪ outcome recorded, no promise · ❔ inconclusive (too few forks or processes, or no pressure at the forks) · ⏭️ skipped here · 💥 harness or case error\n\n`;
  out += findingsMarkdown(m);
  out += changesMarkdown(m.changes);
  out += `## Summary\n\n${m.summary.map((s) => `- ${summaryLine(s)}`).join('\n')}\n`;
  for (const rt of RT_ORDER) {
    const cols = m.columns.filter((c) => c.runtime === rt);
    const rows = m.rows.filter((r) => r.runtime === rt);
    if (!rows.length) continue;
    out += `\n## ${rt}\n\n| case | level | ${cols.map((c) => c.id).join(' | ')} |\n|---|---|${cols.map(() => '---|').join('')}\n`;
    for (const r of rows) {
      const cells = cols.map((col) => {
        const c = m.cells[r.key]?.[col.id];
        return c ? `${mark(c)} ${cellLabel(c)}` : '';
      });
      out += `| ${r.family}/${r.id} | ${r.level} | ${cells.join(' | ')} |\n`;
    }
  }
  const failed = m.rows.flatMap((r) => m.columns.map((col) => m.cells[r.key]?.[col.id]).filter((c): c is CellResult => !!c && (c.verdict === 'fail' || c.verdict === 'error')));
  if (failed.length) {
    out += `\n## Failures and errors\n\n`;
    for (const c of failed) {
      const f = c.first_failure;
      const what = c.verdict === 'error' ? `error: ${errorLine(c.reason)}` : `${c.kind} ${c.failures}/${c.forks}, first at fork ${f?.iteration}: ${errorLine(f?.message)}`;
      out += `- **${c.case}** on ${columnId(c)}: ${what}${c.known ? ` (known: ${c.known.cite})` : c.found ? ` (found here: ${c.found.measured})` : ''}. Replay: \`${c.replay}\`\n`;
      const bt = backtraceSummary(c);
      if (bt) out += `  - stuck in: \`${bt}\`\n`;
    }
  }
  return out;
}

/**
 * The line of a failure message that says what went wrong: the exception line of a traceback or backtrace (Python
 * prints it last, Ruby first: `file:line:in 'x': message (Class)`), else the first line.
 */
export function errorLine(s: string | null | undefined): string {
  const lines = (s ?? '').trim().split('\n').map((l) => l.trim()).filter(Boolean);
  const frame = /^(File ".*", line \d+|from .*:\d+:in |\s*at |Traceback \(most recent call last\)|\^+$|#\d+ )/;
  const ruby = lines.find((l) => /:\d+:in [`'].*': .+\(\w+(::\w+)*\)$/.test(l));
  const exc = ruby ?? [...lines].reverse().find((l) => /^[\w.]*(Error|Exception|Warning|Interrupt|Exit)\b.*:|^\w+(\.\w+)*: /.test(l)) ?? lines.find((l) => !frame.test(l)) ?? lines[0] ?? '';
  return exc.slice(0, 300).replace(/\|/g, '\\|');
}

// Findings (every `found` failure, grouped by where its cause lives) live in src/page/findings.ts.
export { backtraceSummary, findings, findingsMarkdown, findingsText } from './page/findings.ts';

export function toJSON(m: Matrix): string {
  return JSON.stringify(m, null, 1) + '\n';
}

// Terminal -------------------------------------------------------------------------------------------------------

export function toTerminal(m: Matrix, color: boolean): string {
  const paint = (c: CellResult | undefined, s: string) => {
    if (!color || !c) return s;
    const code = c.verdict === 'pass' ? 32 : c.verdict === 'fail' ? (c.known || c.level === 'none' ? 33 : c.found ? 36 : 31) : c.verdict === 'error' ? 35 : 90;
    return `\x1b[${code}m${s}\x1b[0m`;
  };
  let out = '';
  for (const rt of RT_ORDER) {
    const cols = m.columns.filter((c) => c.runtime === rt);
    const rows = m.rows.filter((r) => r.runtime === rt);
    if (!rows.length) continue;
    const w0 = Math.max(rt.length, ...rows.map((r) => `${r.family}/${r.id}`.length));
    const widths = cols.map((col) => Math.max(col.id.length, ...rows.map((r) => cellLabel(m.cells[r.key]?.[col.id]).length)));
    out += `\n${rt.padEnd(w0)}  ${cols.map((c, i) => c.id.padEnd(widths[i])).join('  ')}\n`;
    for (const r of rows) {
      out += `${`${r.family}/${r.id}`.padEnd(w0)}  ${cols.map((col, i) => { const c = m.cells[r.key]?.[col.id]; return paint(c, cellLabel(c).padEnd(widths[i])); }).join('  ')}\n`;
    }
  }
  return out;
}

export { fmtRate };
