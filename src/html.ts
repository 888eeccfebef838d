// The static matrix page: one HTML file, readable without JavaScript (each cell's detail is a <details>), filterable
// with it. Colour says the verdict and, for failures, the promise level: a broken guarantee is not the same red as a
// portability hazard where POSIX promises nothing.

import { backtraceSummary, cellLabel, columnId, findings, summaryLine, type Matrix } from './matrix.ts';
import type { CellResult } from './types.ts';
import { censusHtml } from './census/render.ts';

const esc = (s: unknown) =>
  String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const linkify = (s: string) => esc(s).replace(/https?:\/\/[^\s<)"]+/g, (u) => `<a href="${u}">${u}</a>`);

export function cellClass(c: CellResult): string {
  if (c.verdict === 'fail') return c.known ? 'known' : c.found ? 'found' : `fail-${c.level}`;
  return c.verdict;
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '');

function detail(c: CellResult): string {
  const f = c.first_failure;
  const rows: [string, string][] = [
    ['verdict', `${c.verdict}${c.kind ? ` (${c.kind})` : ''}${c.known ? ` — known${c.known.fixed_in ? `, fixed in ${esc(c.known.fixed_in)}` : ''}: ${linkify(c.known.cite)}` : ''}${c.found ? ` — <strong>found here</strong> (no upstream report yet): ${esc(c.found.measured)}${c.found.report ? ` <a href="../../${esc(c.found.report)}">report</a>` : ''}` : ''}`],
    ['promise level', esc(c.level)],
  ];
  if (c.verdict === 'skip' || c.verdict === 'error' || c.verdict === 'inconclusive') rows.push(['reason', `<pre>${esc(c.reason)}</pre>`]);
  if (c.verdict !== 'skip' && c.verdict !== 'error') {
    rows.push(['forks', `${c.forks} (ok ${c.counts.ok}, hang ${c.counts.hang}, crash ${c.counts.crash}, wrong ${c.counts.wrong})`]);
    rows.push(['failure rate', `${(c.rate * 100).toPrecision(3)}% (95% interval ${(c.interval[0] * 100).toPrecision(2)}%–${(c.interval[1] * 100).toPrecision(2)}%)`]);
    if (c.missable != null) rows.push(['could have missed', `rates above ${(c.missable * 100).toPrecision(2)}% are excluded at 95% (rule of three)`]);
    if (c.processes) rows.push(['processes', `${c.processes} fresh harness process${c.processes === 1 ? '' : 'es'}`]);
    if (c.pressure?.threads) {
      const p = c.pressure;
      const inside = p.forks_sampled ? ` · at ${p.forks_inside} of ${p.forks_sampled} forks (${Math.round((100 * p.forks_inside) / p.forks_sampled)}%) a thread was inside its loop body` : '';
      rows.push(['pressure', esc(`${p.threads} threads, ${p.iterations.reduce((a, b) => a + b, 0)} loop iterations in ${Math.round(p.window_ms)} ms; slowest thread ${p.min_rate != null ? Math.round(p.min_rate) : '?'}/s${inside}`)]);
    }
    if (c.slow) rows.push(['slow children', `${c.slow} outlived the timeout while still running, then finished (not hangs)`]);
    if (c.child_ms?.median != null) rows.push(['child latency', `median ${c.child_ms.median.toFixed(2)} ms, p99 ${c.child_ms.p99?.toFixed(2)} ms`]);
  }
  rows.push(['libc', c.libc ? esc(`${c.libc.name} ${c.libc.version} — ${c.libc.path}`) : 'not proved']);
  rows.push(['runtime', esc(`${c.runtime} ${c.runtime_version} (${c.runtime_executable})`)]);
  if (c.budget?.forks) rows.push(['budget', esc(`${c.budget.forks} forks or ${+c.budget.seconds.toFixed(1)} s${c.rounds && c.rounds.length > 1 ? `, in ${c.rounds.length} slices (seeds ${c.rounds.map((r) => r.seed).join(', ')})` : ''}`)]);
  rows.push(['seed', esc(c.seed)]);
  rows.push(['reproduce', `<code>${esc(c.replay)}</code>`]);
  if (f) {
    rows.push(['first failure', `${esc(f.kind)} at fork ${esc(f.iteration)}${f.signame ? ` (${esc(f.signame)})` : ''}<pre>${esc(f.message)}</pre>`]);
    const bt = backtraceSummary(c);
    if (bt) rows.push(['stuck in', `<code>${esc(bt)}</code>`]);
    for (const [k, v] of Object.entries(f.diag ?? {})) if (v) rows.push([k, `<pre>${esc(v)}</pre>`]);
  }
  if (c.reruns?.length) rows.push(['harness re-runs', `<pre>${esc(c.reruns.join('\n'))}</pre>`]);
  rows.push(['environment', `<pre>${esc(Object.entries(c.clean_env ?? {}).map(([k, v]) => `${k}=${v}`).join('\n'))}</pre>`]);
  return `<table class="d">${rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('')}</table>`;
}

/** The page opens with what forkmatrix found that no upstream source reports yet. */
function findingsHTML(m: Matrix): string {
  const fs = findings(m);
  if (!fs.length) return '';
  const items = fs.map(([key, cells]) => {
    const f = cells[0].found!;
    const seen = cells.map((c) => `<a href="#cell-${slug(key)}--${slug(columnId(c))}">${esc(columnId(c))}</a> ${esc(`${c.kind} ${c.failures}/${c.forks}`)}`).join('; ');
    const bt = backtraceSummary(cells[0]);
    return `<li><strong>${esc(key)}</strong>: ${esc(f.measured)}${f.report ? ` (<a href="../../${esc(f.report)}">report</a>)` : ''}<br>seen: ${seen}${bt ? `<br>stuck in: <code>${esc(bt)}</code>` : ''}<br>replay: <code>${esc(cells[0].replay)}</code></li>`;
  });
  return `<h2 id="findings">Findings: found here, no upstream report yet</h2><ul class="findings">${items.join('')}</ul>`;
}

export function toHTML(m: Matrix, title = 'forkmatrix: the child of a multithreaded fork()'): string {
  const runtimes = [...new Set(m.rows.map((r) => r.runtime))];
  const libcs = [...new Set(m.columns.map((c) => c.env))];
  let body = '';
  for (const rt of runtimes) {
    const cols = m.columns.filter((c) => c.runtime === rt);
    const rows = m.rows.filter((r) => r.runtime === rt);
    body += `<section class="rt" data-runtime="${esc(rt)}"><h2 id="${rt}">${esc(rt)}</h2><table class="m"><thead><tr><th>case</th>${cols
      .map((c) => `<th data-env="${esc(c.env)}" title="${esc(c.libc ? `${c.libc.name} ${c.libc.version} ${c.libc.path}` : '')}">${esc(c.id)}</th>`)
      .join('')}</tr></thead><tbody>`;
    let family = '';
    for (const r of rows) {
      if (r.family !== family) {
        family = r.family;
        body += `<tr class="fam"><th colspan="${cols.length + 1}">${esc(rt)}/${esc(family)}</th></tr>`;
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
        const id = `cell-${slug(r.key)}--${slug(col.id)}`;
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
.m thead th{position:sticky;top:0;background:#f4f4f4;font-size:12px}
tr.fam th{background:#eef;font-weight:600}
td.pass,.legend .pass{background:#d9f2d9} td summary{white-space:nowrap} th.name summary{white-space:nowrap} td.fail-guaranteed{background:#e53935;color:#fff} td.fail-libc{background:#fb8c00;color:#111}
td.fail-none{background:#cfd8e3} td.known{background:#fff3b0} td.found{background:#80deea} td.inconclusive{background:#fafafa;color:#777;font-style:italic} td.skip{background:#f2f2f2;color:#666} td.error{background:#d1b3ff}
td details[open]{background:#fff;color:#111;position:relative;z-index:2;min-width:32em;box-shadow:0 2px 8px #0004;padding:4px}
pre{white-space:pre-wrap;max-height:24em;overflow:auto;background:#f7f7f7;padding:4px;margin:2px 0;font-size:12px}
table.d th{text-align:right;padding-right:8px;white-space:nowrap;vertical-align:top} .lvl{font-size:11px;padding:0 4px;border-radius:3px;background:#eee}
.lvl-guaranteed{background:#ffd6d6}.lvl-libc{background:#ffe3c2}.lvl-none{background:#e0e6ee}
.legend span{display:inline-block;padding:1px 6px;margin-right:4px;border:1px solid #ccc}
.filters{margin:1em 0} .filters label{margin-right:1em} summary{cursor:pointer} :target{outline:3px solid #1565c0}
.perma{font-size:11px;float:right}
</style></head><body>
<h1>${esc(title)}</h1>
<p>Each cell is one case (row) under one environment and runtime (column): what the child of a multithreaded parent could do after <code>fork()</code>, counted over many real forks. Generated ${esc(m.generated)} from ${m.sources.length} TAP stream(s).</p>
<p class="legend"><span class="pass">pass</span><span class="fail-guaranteed" style="background:#e53935;color:#fff">broken guarantee</span><span style="background:#fb8c00">fails (libc-dependent promise)</span><span style="background:#fff3b0">known failure (upstream source)</span><span style="background:#80deea">found here (no upstream report yet)</span><span style="background:#fafafa;font-style:italic">inconclusive</span><span style="background:#cfd8e3">recorded, no promise</span><span style="background:#f2f2f2">skipped here</span><span style="background:#d1b3ff">case/harness error</span> — cells read <em>kind failures/forks</em>.</p>
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
