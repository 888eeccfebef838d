// What changed between two result sets (two runs, two machines), or between two columns of one (glibc 2.36 vs 2.41).

import { cellLabel, type Column, type Matrix } from './matrix.ts';
import { RUNTIMES, type CellResult } from './types.ts';

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
export function diffMatrices(a: Matrix, b: Matrix, cols?: { from: string; to: string } | [string, string][]): DiffRow[] {
  const pairs: [string, string][] = cols
    ? Array.isArray(cols) ? cols : [[cols.from, cols.to]]
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

/** "python-3.11.7" -> python, 3.11.7 (a runtime name, a dash, a version); null for anything else (a column id). */
export function parseRuntimeVersion(name: string): { runtime: string; version: string } | null {
  const m = /^([a-z]+)-(\d[\w.+~-]*)$/.exec(name.trim());
  return m && (RUNTIMES as readonly string[]).includes(m[1]) ? { runtime: m[1], version: m[2] } : null;
}

/** Does a column's runtime version match a wanted one: exactly, or as a prefix at a dot/space ("3.11" of "3.11.7")? */
export function versionMatches(have: string, want: string): boolean {
  if (have === want) return true;
  const ft = (v: string) => /^\d+(\.\d+)*t$/.test(v); // free-threaded CPython: 3.14.0t
  if (ft(want) !== ft(have.split(' ')[0])) return false;
  const w = want.replace(/t$/, '');
  const h = have.split(' ')[0].replace(/t$/, '');
  return h === w || (have.startsWith(w) && /^[. (]/.test(have.slice(w.length))) || (h.startsWith(w) && h[w.length] === '.');
}

function pickById(m: Matrix, want: string, flag: string): Column | { error: string } {
  const hits = m.columns.filter((c) => c.id === want || c.id.startsWith(want));
  const exact = hits.find((c) => c.id === want);
  if (exact) return exact;
  if (hits.length !== 1) return { error: `--${flag} ${want}: ${hits.length ? 'matches ' + hits.map((c) => c.id).join(', ') : 'no such column'}; columns: ${m.columns.map((c) => c.id).join(', ')}` };
  return hits[0];
}

/**
 * The column pairs `diff --from X --to Y` compares. X and Y are column ids (or unique prefixes), or runtime versions
 * ("python-3.11.7"): then each environment that has both versions gives a pair (glibc-2.36 · python 3.11.7 with
 * glibc-2.36 · python 3.13.1, and so on), or, when no environment has both, the one column of each. One line of
 * error when a name matches no column or is ambiguous.
 */
export function pairColumns(a: Matrix, b: Matrix, from: string, to: string): [string, string][] | { error: string } {
  const rf = parseRuntimeVersion(from);
  const rt = parseRuntimeVersion(to);
  if (!rf && !rt) {
    const x = pickById(a, from, 'from');
    if ('error' in x) return x;
    const y = pickById(b, to, 'to');
    if ('error' in y) return y;
    return [[x.id, y.id]];
  }
  const side = (m: Matrix, want: string, flag: string): Column[] | { error: string } => {
    const r = parseRuntimeVersion(want);
    if (!r) {
      const c = pickById(m, want, flag);
      return 'error' in c ? c : [c];
    }
    const cols = m.columns.filter((c) => c.runtime === r.runtime && c.runtime_version !== 'missing' && versionMatches(c.runtime_version, r.version));
    if (!cols.length) {
      const have = [...new Set(m.columns.filter((c) => c.runtime === r.runtime && c.runtime_version !== 'missing').map((c) => c.runtime_version))];
      return { error: `--${flag} ${want}: no column has ${r.runtime} ${r.version}; ${have.length ? `${r.runtime} versions here: ${have.join(', ')}` : `no ${r.runtime} columns here`}` };
    }
    const perEnv = new Map<string, Set<string>>();
    for (const c of cols) perEnv.set(c.env, (perEnv.get(c.env) ?? new Set()).add(c.runtime_version));
    const twice = [...perEnv].find(([, v]) => v.size > 1);
    if (twice) return { error: `--${flag} ${want}: matches ${r.runtime} ${[...twice[1]].join(' and ')} in ${twice[0]}; name the version exactly` };
    return cols;
  };
  const xs = side(a, from, 'from');
  if ('error' in xs) return xs;
  const ys = side(b, to, 'to');
  if ('error' in ys) return ys;
  const pairs: [string, string][] = xs.flatMap((x) => ys.filter((y) => y.env === x.env).map((y): [string, string] => [x.id, y.id]));
  if (pairs.length) return pairs;
  if (xs.length === 1 && ys.length === 1) return [[xs[0].id, ys[0].id]];
  return { error: `--from ${from} and --to ${to} share no environment (${from}: ${[...new Set(xs.map((c) => c.env))].join(', ')}; ${to}: ${[...new Set(ys.map((c) => c.env))].join(', ')}); name one column of each` };
}
