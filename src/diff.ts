// What changed between two result sets (two runs, two machines), or between two columns of one (glibc 2.36 vs 2.41).

import { cellLabel, type Matrix } from './matrix.ts';
import type { CellResult } from './types.ts';

export interface DiffRow {
  case: string;
  column: string; // the column of the new side
  before: CellResult | null;
  after: CellResult | null;
  change: 'broke' | 'fixed' | 'appeared' | 'vanished' | 'changed';
}

const failed = (c: CellResult | null) => c?.verdict === 'fail';
const judged = (c: CellResult | null) => c?.verdict === 'pass' || c?.verdict === 'fail';

/**
 * Compare matrix `a` with `b`. With columns given, compare column `fromCol` of a with column `toCol` of b (the same
 * matrix may be passed twice); otherwise compare every column present on both sides by its id.
 */
export function diffMatrices(a: Matrix, b: Matrix, cols?: { from: string; to: string }): DiffRow[] {
  const pairs: [string, string][] = cols
    ? [[cols.from, cols.to]]
    : b.columns.filter((c) => a.columns.some((x) => x.id === c.id)).map((c) => [c.id, c.id]);
  const keys = [...new Set([...a.rows.map((r) => r.key), ...b.rows.map((r) => r.key)])].sort();
  const out: DiffRow[] = [];
  for (const [from, to] of pairs)
    for (const k of keys) {
      const before = a.cells[k]?.[from] ?? null;
      const after = b.cells[k]?.[to] ?? null;
      if (!before && !after) continue;
      let change: DiffRow['change'] | null = null;
      if (judged(before) && judged(after)) {
        if (!failed(before) && failed(after)) change = 'broke';
        else if (failed(before) && !failed(after)) change = 'fixed';
        else if (failed(before) && failed(after) && before!.kind !== after!.kind) change = 'changed';
      } else if (!judged(before) && judged(after)) change = 'appeared';
      else if (judged(before) && !judged(after)) change = 'vanished';
      if (change) out.push({ case: k, column: to, before, after, change });
    }
  return out;
}

export function diffMarkdown(rows: DiffRow[], fromLabel: string, toLabel: string): string {
  if (!rows.length) return `No cell changed between ${fromLabel} and ${toLabel}.\n`;
  let out = `| case | column | ${fromLabel} | ${toLabel} | change |\n|---|---|---|---|---|\n`;
  for (const r of rows) out += `| ${r.case} | ${r.column} | ${cellLabel(r.before ?? undefined) || '—'} | ${cellLabel(r.after ?? undefined) || '—'} | ${r.change} |\n`;
  const n = (c: string) => rows.filter((r) => r.change === c).length;
  return out + `\n${n('broke')} broke, ${n('fixed')} fixed, ${n('changed')} changed kind, ${n('appeared')} appeared, ${n('vanished')} vanished\n`;
}
