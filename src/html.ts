// The static matrix page: one HTML file, readable without JavaScript (each cell's detail is a <details>), filterable
// with it. It opens on the answer: per runtime a grid of environments by case family, each row with its score, and
// what changed since the last publication (src/page/); then the findings, then the full table. Colour says the
// verdict and, for failures, the promise level: a broken guarantee is not the same red as a portability hazard
// where POSIX promises nothing.

import { cellLabel, columnId, summaryLine, type Matrix } from './matrix.ts';
import { censusHtml } from './census/render.ts';
import { esc, linkify, slug } from './page/esc.ts';
import { cellClass, GRID_CSS, gridHTML, libcLabel, runtimeVersion, scoreText } from './page/grid.ts';
import { changesHTML, CHANGES_CSS } from './page/changes.ts';
import { findingGroups, rateText } from './page/findings.ts';
import { detail } from './page/detail.ts';

export { cellClass };

const cellId = (caseKey: string, column: string) => `cell-${slug(caseKey)}--${slug(column)}`;

/** Every failure found here with no upstream report, grouped by where its cause lives (src/page/findings.ts). */
function findingsHTML(m: Matrix): string {
  const gs = findingGroups(m);
  if (!gs.length) return '';
  const item = (f: ReturnType<typeof findingGroups>[number]['findings'][number]) => {
    const seen = f.affected.map((c) => `<a href="#${cellId(f.key, columnId(c))}">${esc(columnId(c))}</a> ${esc(rateText(c))}`).join('; ');
    const clean = [...new Set(f.unaffected.map(columnId))].map(esc).join('; ');
    return `<li><strong>${esc(f.key)}</strong>: ${esc(f.measured)}${f.report ? ` (<a href="../../${esc(f.report)}">report</a>)` : ''}<br>affected: ${seen}${clean ? `<br>not affected: ${clean}` : ''}${f.backtrace ? `<br>stuck in: <code>${esc(f.backtrace)}</code>` : ''}<br>reproduce: <code class="repro">${esc(f.repro)}</code></li>`;
  };
  const groups = gs.map((g) => `<h3>In ${esc(g.where)}</h3><ul class="findings">${g.findings.map(item).join('')}</ul>`);
  const n = gs.reduce((k, g) => k + g.findings.length, 0);
  return `<section id="findings"><h2>Findings: ${n} found here, no upstream report yet</h2>${groups.join('')}</section>`;
}

export function toHTML(m: Matrix, title = 'forkmatrix: the child of a multithreaded fork()'): string {
  const runtimes = [...new Set(m.rows.map((r) => r.runtime))];
  const libcs = [...new Set(m.columns.map((c) => c.env))];
  let body = '';
  for (const rt of runtimes) {
    const cols = m.columns.filter((c) => c.runtime === rt);
    const rows = m.rows.filter((r) => r.runtime === rt);
    const score = new Map(m.summary.map((x) => [x.column, x]));
    const th = (c: Matrix['columns'][number]) =>
      `<th data-env="${esc(c.env)}" title="${esc(`${c.id}${c.libc ? ` — ${c.libc.name} ${c.libc.version} ${c.libc.path}` : ''}`)}">${esc(rt === 'libc' ? c.id : libcLabel(c))}${score.get(c.id) ? `<div class="sc">${esc(scoreText(score.get(c.id)!))}</div>` : ''}</th>`;
    // columns come grouped by runtime version, then libc (src/matrix.ts): one header over each version's columns
    const groups: { v: string; n: number }[] = [];
    for (const c of cols) {
      const v = `${rt} ${c.runtime_version === 'missing' ? 'missing' : runtimeVersion(c)}`;
      if (groups.at(-1)?.v === v) groups.at(-1)!.n++;
      else groups.push({ v, n: 1 });
    }
    const head = rt === 'libc'
      ? `<tr><th>case</th>${cols.map(th).join('')}</tr>`
      : `<tr><th rowspan="2">case</th>${groups.map((g) => `<th class="grp" colspan="${g.n}">${esc(g.v)}</th>`).join('')}</tr><tr class="sub">${cols.map(th).join('')}</tr>`;
    body += `<section class="rt" data-runtime="${esc(rt)}"><h2 id="${rt}">${esc(rt)}</h2><table class="m"><thead>${head}</thead><tbody>`;
    let family = '';
    for (const r of rows) {
      if (r.family !== family) {
        family = r.family;
        body += `<tr class="fam" id="fam-${slug(`${rt}/${family}`)}"><th colspan="${cols.length + 1}">${esc(rt)}/${esc(family)}</th></tr>`;
      }
      const verdicts = cols.map((col) => m.cells[r.key]?.[col.id]?.verdict ?? '').join(' ');
      body += `<tr class="case" data-verdicts="${esc(verdicts)}"><th class="name"><details><summary>${esc(r.id)} <span class="lvl lvl-${r.level}">${esc(r.level)}</span></summary><p>${esc(r.title)}</p><ul>${r.cite
        .map((x) => `<li>${linkify(x)}</li>`)
        .join('')}</ul><pre>${esc(r.source)}</pre><p>${esc(r.file)}</p></details></th>`;
      for (const col of cols) {
        const c = m.cells[r.key]?.[col.id];
        if (!c) {
          body += `<td class="none" data-env="${esc(col.env)}"></td>`;
          continue;
        }
        const id = cellId(r.key, col.id);
        body += `<td id="${id}" class="${cellClass(c)}" data-env="${esc(col.env)}" data-verdict="${c.verdict}"><details><summary>${esc(cellLabel(c))}</summary><a class="perma" href="#${id}">permalink</a>${detail(c)}</details></td>`;
      }
      body += '</tr>';
    }
    body += '</tbody></table></section>';
  }
  const summary = `<ul class="summary">${m.summary.map((s) => `<li>${esc(summaryLine(s))}</li>`).join('')}</ul>`;
  const opts = (xs: string[]) => xs.map((x) => `<option>${esc(x)}</option>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#111}
table.m{border-collapse:collapse;margin-bottom:2em}
.m th,.m td{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}
.m thead th{position:sticky;top:0;background:#f4f4f4;font-size:12px} .m thead tr.sub th{top:1.6em} .m th.grp{text-align:center} .m .sc{font-weight:400;color:#333;font-size:11px}
tr.fam th{background:#eef;font-weight:600}
td.pass,.legend .pass{background:#d9f2d9} td summary{white-space:nowrap} th.name summary{white-space:nowrap} td.fail-guaranteed{background:#e53935;color:#fff} td.fail-libc{background:#fb8c00;color:#111}
td.fail-tested{background:#e53935;color:#fff} td.fail-none{background:#cfd8e3} td.known{background:#fff3b0} td.found{background:#80deea} td.inconclusive{background:#fafafa;color:#777;font-style:italic} td.skip{background:#f2f2f2;color:#666} td.error{background:#d1b3ff}
td details[open]{background:#fff;color:#111;position:relative;z-index:2;min-width:32em;box-shadow:0 2px 8px #0004;padding:4px}
pre{white-space:pre-wrap;max-height:24em;overflow:auto;background:#f7f7f7;padding:4px;margin:2px 0;font-size:12px}
table.d th{text-align:right;padding-right:8px;white-space:nowrap;vertical-align:top} .lvl{font-size:11px;padding:0 4px;border-radius:3px;background:#eee}
.lvl-guaranteed{background:#ffd6d6}.lvl-libc{background:#ffe3c2}.lvl-none{background:#e0e6ee}
.legend span{display:inline-block;padding:1px 6px;margin-right:4px;border:1px solid #ccc}
.filters{margin:1em 0} .filters label{margin-right:1em} summary{cursor:pointer} :target{outline:3px solid #1565c0}
.perma{font-size:11px;float:right}
h1{font-size:22px;margin:0 0 4px} .lede{margin:0 0 6px} .legend{margin:0 0 10px;font-size:12px}
${GRID_CSS}${CHANGES_CSS}
</style></head><body>
<h1>${esc(title)}</h1>
<p class="lede">What the child of a multithreaded parent can do after <code>fork()</code>, counted over many real forks: per runtime, each environment (row) by case family (column), the square coloured by the most serious verdict among the family's cases (hover for each case and its rate; click for its rows in the table below). Generated ${esc(m.generated)} from ${m.sources.length} TAP stream(s).</p>
<p class="legend"><span style="background:#7bc96f">pass</span><span style="background:#e53935;color:#fff">broken guarantee</span><span style="background:#fb8c00">fails (libc-dependent promise)</span><span style="background:#fdd835">known failure (upstream source)</span><span style="background:#26c6da">found here (no upstream report yet)</span><span style="background:#eee;font-style:italic">inconclusive</span><span style="background:#cfd8e3">recorded, no promise</span><span style="background:#fafafa">skipped here</span><span style="background:#b388ff">case/harness error</span> — table cells read <em>kind failures/forks</em>; a square's number counts its failing cases.</p>
${gridHTML(m, runtimes)}
${changesHTML(m.changes, esc, cellId)}
${findingsHTML(m)}
<h2>Summary</h2>${summary}
<form class="filters" onsubmit="return false"><label>runtime <select id="f-rt"><option value="">all</option>${opts(runtimes)}</select></label><label>environment <select id="f-env"><option value="">all</option>${opts(libcs)}</select></label><label>verdict <select id="f-v"><option value="">all</option>${opts(['fail', 'pass', 'inconclusive', 'skip', 'error'])}</select></label><label>case <input id="f-q" type="search" placeholder="text"></label></form>
${body}
${m.census ? censusHtml(m.census) : ''}
${m.problems.length ? `<h2>Problems reading the results</h2><ul>${m.problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>` : ''}
<script>
(function(){
  var $=function(id){return document.getElementById(id)};
  function apply(){
    var rt=$('f-rt').value, env=$('f-env').value, v=$('f-v').value, q=$('f-q').value.toLowerCase();
    document.querySelectorAll('section.rt').forEach(function(s){
      var showS=!rt||s.dataset.runtime===rt; s.hidden=!showS; if(!showS)return;
      s.querySelectorAll('[data-env]').forEach(function(c){c.hidden=!!env&&c.dataset.env!==env});
      s.querySelectorAll('tr.case').forEach(function(tr){
        var cells=[].slice.call(tr.querySelectorAll('td[data-verdict]')).filter(function(c){return !c.hidden});
        var okV=!v||cells.some(function(c){return c.dataset.verdict===v});
        var okQ=!q||tr.textContent.toLowerCase().indexOf(q)>=0;
        tr.hidden=!(okV&&okQ);
      });
    });
  }
  ['f-rt','f-env','f-v','f-q'].forEach(function(id){$(id).addEventListener('input',apply)});
  function openHash(){var t=location.hash&&document.getElementById(location.hash.slice(1)); if(t){var d=t.querySelector('details'); if(d)d.open=true;}}
  window.addEventListener('hashchange',openHash); openHash();
})();
</script>
</body></html>
`;
}
