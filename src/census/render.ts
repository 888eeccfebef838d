// The census as a terminal table, JSON and an HTML section (coverage per libc version).

import type { CensusSummary, CensusVersion } from './index.ts';

const pad = (s: string | number, n: number) => String(s).padEnd(n);
const lpad = (s: string | number, n: number) => String(s).padStart(n);

/** Per libc version: locks, taken/reset/none, exposed (none + a public path), covered/reason/uncovered; then the uncovered. */
export function renderTerminal(s: CensusSummary, results: CensusVersion[] = []): string {
  let out = `${pad('libc', 14)}${lpad('locks', 6)}${lpad('taken', 7)}${lpad('reset', 7)}${lpad('none', 6)}${lpad('exposed', 9)}${lpad('covered', 9)}${lpad('reason', 8)}${lpad('uncovered', 11)}\n`;
  for (const v of s.versions) {
    out += `${pad(`${v.libc} ${v.version}`, 14)}${lpad(v.locks, 6)}${lpad(v.taken, 7)}${lpad(v.reset, 7)}${lpad(v.none, 6)}${lpad(v.exposed, 9)}${lpad(v.covered, 9)}${lpad(v.reasoned, 8)}${lpad(v.uncovered, 11)}\n`;
  }
  out += '\nexposed: fork() neither takes nor resets it and a public function reaches it; each needs a case (locks: [id]) or a line in census/reasons.yaml\n';
  const unc = new Map<string, { versions: string[]; pub: string }>();
  for (const v of s.versions) {
    for (const l of v.list) {
      if (l.coverage !== 'uncovered') continue;
      const r = results.find((x) => x.libc === v.libc && x.version === v.version)?.locks.find((x) => x.id === l.id);
      const e = unc.get(l.id) ?? { versions: [], pub: r ? [...r.public.slice(0, 4), ...r.via.slice(0, r.public.length ? 0 : 2)].join(', ') : '' };
      e.versions.push(v.version);
      unc.set(l.id, e);
    }
  }
  if (unc.size) {
    out += `\nuncovered (${unc.size}):\n`;
    for (const [id, e] of [...unc].sort()) out += `  ${pad(id, 52)} ${pad(e.versions.join(','), 22)} ${e.pub}\n`;
  }
  if (s.unknownLocks.length) out += `\ncases name locks no censused version has: ${s.unknownLocks.join(', ')}\n`;
  for (const r of results) {
    out += `\n${r.libc} ${r.version}: ${r.source}; fork() in ${r.forkFile}; ${r.units} translation units of ${r.files} files read; ${r.unresolved.length} lock operation(s) on an object the census could not name (mostly the pthread functions' own argument)`;
  }
  return out + (results.length ? '\n' : '');
}

export function censusJson(s: CensusSummary, results: CensusVersion[]): string {
  return JSON.stringify({ method: s.method, summary: s.versions.map(({ list, ...rest }) => rest), versions: results, coverage: s }, null, 1) + '\n';
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** An HTML section: coverage per libc version, then each exposed lock with its cases or reason. */
export function censusHtml(s: CensusSummary | null): string {
  if (!s) return '';
  let h = '<section id="census"><h2>Lock census: coverage per libc version</h2>\n';
  h += `<p class="method">${esc(s.method)}</p>\n<table class="census"><thead><tr><th>libc</th><th>locks</th><th>taken by fork</th><th>reset in the child</th><th>neither</th><th>exposed</th><th>covered by a case</th><th>with a reason</th><th>uncovered</th></tr></thead><tbody>\n`;
  for (const v of s.versions)
    h += `<tr><td title="${esc(v.source)}">${esc(v.libc)} ${esc(v.version)}</td><td>${v.locks}</td><td>${v.taken}</td><td>${v.reset}</td><td>${v.none}</td><td>${v.exposed}</td><td>${v.covered}</td><td>${v.reasoned}</td><td class="${v.uncovered ? 'uncovered' : 'ok'}">${v.uncovered}</td></tr>\n`;
  h += '</tbody></table>\n';
  // every exposed or covered lock, with its status per version
  const ids = [...new Set(s.versions.flatMap((v) => v.list.filter((l) => l.coverage === 'covered' || l.public + l.via > 0).map((l) => l.id)))].sort();
  h += '<details><summary>Locks with a public path, per version</summary>\n<table class="census-locks"><thead><tr><th>lock</th>';
  for (const v of s.versions) h += `<th>${esc(v.libc)} ${esc(v.version)}</th>`;
  h += '<th>cases / reason</th></tr></thead><tbody>\n';
  for (const id of ids) {
    const rows = s.versions.map((v) => v.list.find((l) => l.id === id));
    const any = rows.find(Boolean)!;
    h += `<tr><td><code>${esc(id)}</code></td>`;
    for (const r of rows) h += r ? `<td class="${r.coverage}">${r.status}${r.coverage === 'uncovered' ? ' · uncovered' : ''}</td>` : '<td>–</td>';
    h += `<td>${any.cases.length ? any.cases.map((c) => `<code>${esc(c)}</code>`).join(' ') : esc(rows.find((r) => r?.reason)?.reason ?? '')}</td></tr>\n`;
  }
  h += '</tbody></table></details></section>\n';
  return h;
}
