// A cell's detail on the page (a <details> in its square of the table): everything that decides its verdict, the
// first failure with its diagnostics, the environment and the commands that reproduce it.

import type { CellResult } from '../types.ts';
import { backtraceSummary } from './findings.ts';
import { esc, linkify } from './esc.ts';

export function detail(c: CellResult): string {
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
  const repro = (c as CellResult & { repro?: string }).repro;
  if (repro) rows.push(['standalone reproducer', `<code>${esc(repro)}</code>`]);
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
