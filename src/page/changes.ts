// "What changed since the last publication": `diff` (src/diff.ts) of the previous matrix.json against this one,
// kept in matrix.json (`changes`) so the page, matrix.md and tools read the same list.

import { diffMatrices } from '../diff.ts';
import { cellLabel, type Matrix } from '../matrix.ts';

export interface Change {
  case: string;
  column: string;
  before: string; // cell label, '' when absent
  after: string;
  change: 'broke' | 'fixed' | 'appeared' | 'vanished' | 'changed';
}

export interface Changes {
  /** the previous matrix: where it was read from and when it was generated */
  previous: string;
  previous_generated: string;
  rows: Change[];
  columns_added: string[];
  columns_removed: string[];
}

export const CHANGE_ORDER: Change['change'][] = ['broke', 'fixed', 'changed', 'appeared', 'vanished'];

export function computeChanges(prev: Matrix, now: Matrix, previous: string): Changes {
  const rows = diffMatrices(prev, now).map((r) => ({ case: r.case, column: r.column, before: cellLabel(r.before ?? undefined), after: cellLabel(r.after ?? undefined), change: r.change }));
  rows.sort((a, b) => CHANGE_ORDER.indexOf(a.change) - CHANGE_ORDER.indexOf(b.change));
  const ids = (m: Matrix) => new Set(m.columns.map((c) => c.id));
  const [a, b] = [ids(prev), ids(now)];
  return { previous, previous_generated: prev.generated, rows, columns_added: [...b].filter((x) => !a.has(x)), columns_removed: [...a].filter((x) => !b.has(x)) };
}

export function changeCounts(ch: Changes): string {
  const n = (k: Change['change']) => ch.rows.filter((r) => r.change === k).length;
  const words = { broke: 'broke', fixed: 'fixed', changed: 'changed kind', appeared: 'newly judged', vanished: 'no longer judged' };
  const parts = CHANGE_ORDER.map((k) => `${n(k)} ${words[k]}`);
  const cols = [ch.columns_added.length && `${ch.columns_added.length} new column${ch.columns_added.length === 1 ? '' : 's'}`, ch.columns_removed.length && `${ch.columns_removed.length} column${ch.columns_removed.length === 1 ? '' : 's'} gone`].filter(Boolean);
  return `${parts.join(', ')}${cols.length ? `; ${cols.join(', ')}` : ''}`;
}

export function changesMarkdown(ch: Changes | null | undefined): string {
  if (!ch) return '';
  let out = `## What changed since the last publication\n\nAgainst ${ch.previous} (generated ${ch.previous_generated}): ${changeCounts(ch)}.\n\n`;
  if (ch.columns_added.length) out += `New columns: ${ch.columns_added.join('; ')}.\n\n`;
  if (ch.columns_removed.length) out += `Columns gone: ${ch.columns_removed.join('; ')}.\n\n`;
  if (ch.rows.length) {
    out += `| change | case | column | before | now |\n|---|---|---|---|---|\n`;
    for (const r of ch.rows) out += `| ${r.change} | ${r.case} | ${r.column} | ${r.before || '—'} | ${r.after || '—'} |\n`;
    out += '\n';
  }
  return out;
}

const SHOWN = 12;

/** The page's "what changed" box: counts, then the changes (the most serious first), the rest folded away. */
export function changesHTML(ch: Changes | null | undefined, esc: (s: unknown) => string, cellId: (caseKey: string, column: string) => string): string {
  if (!ch) return `<section id="changes" class="changes"><h2>What changed since the last publication</h2><p>No previous publication to compare with (<code>forkmatrix report --previous matrix.json</code>).</p></section>`;
  const item = (r: Change) => `<li class="ch-${r.change}"><span class="tag">${r.change}</span> <a href="#${cellId(r.case, r.column)}">${esc(r.case)}</a> on ${esc(r.column)}: ${esc(r.before || '—')} → <strong>${esc(r.after || '—')}</strong></li>`;
  const cols = [
    ch.columns_added.length ? `<p>New columns: ${esc(ch.columns_added.join('; '))}.</p>` : '',
    ch.columns_removed.length ? `<p>Columns gone: ${esc(ch.columns_removed.join('; '))}.</p>` : '',
  ].join('');
  const list = ch.rows.length
    ? `<ul class="changes">${ch.rows.slice(0, SHOWN).map(item).join('')}</ul>${ch.rows.length > SHOWN ? `<details><summary>${ch.rows.length - SHOWN} more</summary><ul class="changes">${ch.rows.slice(SHOWN).map(item).join('')}</ul></details>` : ''}`
    : '<p>No cell changed its verdict.</p>';
  return `<section id="changes" class="changes"><h2>What changed since the last publication</h2><p class="counts">Against ${esc(ch.previous)} (generated ${esc(ch.previous_generated)}): ${esc(changeCounts(ch))}.</p>${cols}${list}</section>`;
}

export const CHANGES_CSS = `
section.changes ul.changes{list-style:none;padding-left:0;margin:4px 0} section.changes li{font-size:13px;margin:1px 0}
section.changes .tag{display:inline-block;min-width:5.5em;font-size:11px;padding:0 4px;border-radius:3px;background:#eee}
.ch-broke .tag{background:#e53935;color:#fff} .ch-fixed .tag{background:#7bc96f} .ch-changed .tag{background:#fdd835} .ch-appeared .tag{background:#bbdefb}
`;
