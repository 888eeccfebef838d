// The page's first screen: per runtime, a compact grid of its environments (rows: runtime version, then libc) by
// case family (columns), each square coloured by the worst verdict among the family's cases there, the rates on
// hover; each row ends with its score, like test262.fyi ("16 of 29 promises hold").

import { cellLabel, type Column, type EnvSummary, type Matrix } from '../matrix.ts';
import type { CellResult } from '../types.ts';
import { esc, slug } from './esc.ts';
import { percent } from './findings.ts';

export function cellClass(c: CellResult): string {
  if (c.verdict === 'fail') return c.known ? 'known' : c.found ? 'found' : `fail-${c.level}`;
  return c.verdict;
}

/** Which class a square of several cells shows: the most serious one present. */
export const SQUARE_ORDER = ['fail-guaranteed', 'fail-tested', 'fail-libc', 'found', 'known', 'error', 'fail-none', 'inconclusive', 'pass', 'skip'];

export function squareClass(cells: CellResult[]): string {
  const classes = new Set(cells.map(cellClass));
  return SQUARE_ORDER.find((k) => classes.has(k)) ?? [...classes][0] ?? 'none';
}

/** The version a column's runtime is at ("3.11.7", "3.14.0t", "1.50.0"); '' for libc, whose columns are libcs. */
export function runtimeVersion(col: Pick<Column, 'runtime' | 'runtime_version'>): string {
  if (col.runtime === 'libc') return '';
  return /\d+(\.\d+)*[a-z0-9]*/.exec(col.runtime_version)?.[0] ?? col.runtime_version;
}

/** "glibc 2.36", "musl 1.2.5", "glibc 2.31 bullseye +jemalloc": the libc side of a column, short. */
export function libcLabel(col: Pick<Column, 'env'>): string {
  return col.env.replace(/^(glibc|musl)-/, '$1 ').replace(/-(\w+)/g, ' $1').replace(/\+/g, ' +');
}

export const scoreText = (s: EnvSummary) => `${s.hold} of ${s.judged} promises hold${s.inconclusive ? ` · ${s.inconclusive} inconclusive` : ''}`;

const pct = (c: CellResult) => (c.forks ? ` (${percent(c.failures, c.forks)})` : '');

function square(m: Matrix, rt: string, family: string, rows: Matrix['rows'], col: Column): string {
  const cells = rows.map((r) => [r, m.cells[r.key]?.[col.id]] as const).filter((x): x is [Matrix['rows'][number], CellResult] => !!x[1]);
  if (!cells.length) return '<td class="sq none"></td>';
  const cls = squareClass(cells.map(([, c]) => c));
  const judged = cells.filter(([, c]) => (c.verdict === 'pass' || c.verdict === 'fail') && c.level !== 'none');
  const hold = judged.filter(([, c]) => c.verdict === 'pass').length;
  const lines = cells.map(([r, c]) => `${r.id}: ${cellLabel(c)}${c.verdict === 'fail' || c.verdict === 'pass' ? pct(c) : ''}`);
  const title = `${rt}/${family} on ${col.id}: ${hold} of ${judged.length} promises hold\n${lines.join('\n')}`;
  const bad = cells.filter(([, c]) => c.verdict === 'fail' && c.level !== 'none').length;
  return `<td class="sq ${cls}" title="${esc(title)}"><a href="#fam-${slug(`${rt}/${family}`)}" aria-label="${esc(title)}">${bad ? bad : ''}</a></td>`;
}

/** One runtime's grid: rows are its columns grouped by runtime version, then libc; columns its families. */
function runtimeGrid(m: Matrix, rt: string): string {
  const cols = m.columns.filter((c) => c.runtime === rt);
  const rows = m.rows.filter((r) => r.runtime === rt);
  if (!cols.length || !rows.length) return '';
  const families = [...new Set(rows.map((r) => r.family))];
  const byFamily = new Map(families.map((f) => [f, rows.filter((r) => r.family === f)]));
  const summary = new Map(m.summary.map((s) => [s.column, s]));
  let body = '';
  let version: string | null = null;
  for (const col of cols) {
    const v = runtimeVersion(col);
    if (rt !== 'libc' && v !== version) {
      version = v;
      body += `<tr class="ver"><th colspan="${families.length + 2}">${esc(rt)} ${esc(col.runtime_version === 'missing' ? 'missing' : v)}</th></tr>`;
    }
    const s = summary.get(col.id);
    body += `<tr><th class="env" title="${esc(col.id)}">${esc(libcLabel(col))}</th>${families.map((f) => square(m, rt, f, byFamily.get(f)!, col)).join('')}<td class="score" title="${esc(col.id)}">${s ? esc(scoreText(s)) : ''}</td></tr>`;
  }
  const head = `<tr><th></th>${families.map((f) => `<th class="fh"><div>${esc(f)}</div></th>`).join('')}<th></th></tr>`;
  return `<figure class="grid" data-runtime="${esc(rt)}"><figcaption><a href="#${esc(rt)}">${esc(rt)}</a></figcaption><table class="g"><thead>${head}</thead><tbody>${body}</tbody></table></figure>`;
}

export function gridHTML(m: Matrix, runtimes: string[]): string {
  return `<div class="grids">${runtimes.map((rt) => runtimeGrid(m, rt)).join('')}</div>`;
}

export const GRID_CSS = `
.grids{display:flex;flex-wrap:wrap;gap:10px 28px;align-items:flex-start}
figure.grid{margin:0} figure.grid figcaption{font-weight:600;margin-bottom:2px}
table.g{border-collapse:separate;border-spacing:2px}
table.g th.fh{vertical-align:bottom;padding:0} table.g th.fh div{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;font-size:11px;font-weight:400;max-height:8em;overflow:hidden}
table.g th.env{text-align:right;font-weight:400;font-size:12px;white-space:nowrap;padding-right:4px}
table.g tr.ver th{text-align:left;font-size:12px;font-weight:600;padding-top:4px}
table.g td.sq{width:15px;height:15px;padding:0;border:1px solid #0002;text-align:center;font-size:10px;line-height:15px}
table.g td.sq a{display:block;color:inherit;text-decoration:none;width:100%;height:100%}
table.g td.score{font-size:12px;white-space:nowrap;padding-left:6px;color:#333}
.sq.pass{background:#7bc96f} .sq.fail-guaranteed,.sq.fail-tested{background:#e53935;color:#fff} .sq.fail-libc{background:#fb8c00} .sq.found{background:#26c6da}
.sq.known{background:#fdd835} .sq.fail-none{background:#cfd8e3} .sq.inconclusive{background:#eee} .sq.skip{background:#fafafa} .sq.error{background:#b388ff} .sq.none{border:0}
`;
