// Findings: every failure measured here with no upstream report (a case's `found:`), grouped by where its cause
// lives: in a libc (the libc versions that fail, and those that do not) or in a runtime (its versions, whatever the
// libc). Each gives the rate per affected column, the versions affected and unaffected, the first backtrace and the
// command that reproduces it (the cell's standalone `repro` when it has one, else the replay line).

import { columnId, type Matrix } from '../matrix.ts';
import { compareVersions } from '../util.ts';
import type { CellResult } from '../types.ts';

export interface Finding {
  key: string;
  measured: string;
  report?: string;
  affected: CellResult[];
  /** cells of the same case that ran without a failure (pass, or inconclusive with none) */
  unaffected: CellResult[];
  backtrace: string | null;
  repro: string;
}

export interface FindingGroup {
  /** "musl 1.2.3, 1.2.5 (not 1.2.2)", "python 3.10, 3.11, 3.12 (not 3.13), any libc" */
  where: string;
  cause: 'libc' | 'runtime';
  findings: Finding[];
}

const libcOf = (c: CellResult) => (c.libc ? `${c.libc.name} ${c.libc.version}` : c.env);
const rtVersion = (c: CellResult) => /\d+(\.\d+)*[a-z0-9]*/.exec(c.runtime_version)?.[0] ?? c.runtime_version;
const uniq = (xs: string[]) => [...new Set(xs)];
const byVersion = (xs: string[]) => uniq(xs).sort((a, b) => a.split(' ')[0].localeCompare(b.split(' ')[0]) || compareVersions(a.replace(/^\D+/, ''), b.replace(/^\D+/, '')));

/** Every failure measured here with no upstream report (a `found:` entry), grouped by case, in row order. */
export function findings(m: Matrix): [string, CellResult[]][] {
  const byCase = new Map<string, CellResult[]>();
  for (const r of m.rows)
    for (const col of m.columns) {
      const c = m.cells[r.key]?.[col.id];
      if (c?.verdict === 'fail' && c.found) byCase.set(r.key, [...(byCase.get(r.key) ?? []), c]);
    }
  return [...byCase];
}

/**
 * Where a finding's cause lives. In the runtime when its `found:` scopes runtime versions, or when every libc the
 * case ran on without the failure shares no runtime version with a failing cell (the runtime's versions decide);
 * otherwise in the libc: the failing libc versions against those that ran clean.
 */
export function causeOf(affected: CellResult[], unaffected: CellResult[]): { cause: 'libc' | 'runtime'; where: string } {
  const f = affected[0];
  const rt = f.runtime;
  const runtimeScoped = !!f.found?.runtime_versions;
  const badRt = uniq(affected.map(rtVersion));
  const cleanOnBadRt = unaffected.filter((c) => badRt.includes(rtVersion(c)));
  if (rt !== 'libc' && (runtimeScoped || !cleanOnBadRt.length)) {
    const good = byVersion(unaffected.map(rtVersion).filter((v) => !badRt.includes(v)));
    const libcs = byVersion(affected.map(libcOf));
    return { cause: 'runtime', where: `${rt} ${byVersion(badRt).join(', ')}${good.length ? ` (not ${good.join(', ')})` : ''}, on ${libcs.join(', ')}` };
  }
  const bad = byVersion(affected.map(libcOf));
  // the versions of the same libc that ran clean say where the range ends; another libc says nothing about it
  const names = new Set(affected.map((c) => c.libc?.name ?? ''));
  const good = byVersion(unaffected.filter((c) => names.has(c.libc?.name ?? '')).map(libcOf).filter((v) => !bad.includes(v)));
  return { cause: 'libc', where: `${bad.join(', ')}${good.length ? ` (not ${good.join(', ')})` : ''}` };
}

/** The findings of a matrix, grouped by where their cause lives; groups in order of first appearance. */
export function findingGroups(m: Matrix): FindingGroup[] {
  const groups = new Map<string, FindingGroup>();
  for (const [key, affected] of findings(m)) {
    const unaffected = Object.values(m.cells[key] ?? {}).filter((c) => c.failures === 0 && (c.verdict === 'pass' || c.verdict === 'inconclusive'));
    const { cause, where } = causeOf(affected, unaffected);
    const withBt = affected.find((c) => backtraceSummary(c));
    const repro = affected.map((c) => (c as CellResult & { repro?: string }).repro).find(Boolean) ?? affected[0].replay;
    const g = groups.get(where) ?? { where, cause, findings: [] };
    g.findings.push({ key, measured: affected[0].found!.measured, report: affected[0].found!.report, affected, unaffected, backtrace: withBt ? backtraceSummary(withBt) : null, repro });
    groups.set(where, g);
  }
  return [...groups.values()];
}

/** "12%", "0.33%", "100%" */
export const percent = (failures: number, forks: number) => {
  const x = forks ? (100 * failures) / forks : 0;
  return `${x >= 10 ? x.toFixed(0) : x.toPrecision(2)}%`;
};
export const rateText = (c: CellResult) => `${c.kind ?? 'fail'} ${c.failures}/${c.forks} (${percent(c.failures, c.forks)})`;

/** The terminal's list of findings, after the summary. */
export function findingsText(m: Matrix): string {
  const gs = findingGroups(m);
  if (!gs.length) return '';
  let out = '\nFindings (found here, no upstream report yet):\n';
  for (const g of gs) {
    out += `  in ${g.where}:\n`;
    for (const f of g.findings) out += `    ${f.key}: ${f.measured}${f.report ? ` (${f.report})` : ''}\n      seen: ${f.affected.map((c) => `${columnId(c)} ${rateText(c)}`).join('; ')}\n      repro: ${f.repro}\n`;
  }
  return out;
}

/** Findings first in matrix.md: every found failure, grouped by where its cause lives. */
export function findingsMarkdown(m: Matrix): string {
  const gs = findingGroups(m);
  if (!gs.length) return '';
  let out = `## Findings (found here, no upstream report yet)\n\n`;
  for (const g of gs) {
    out += `### In ${g.where}\n\n`;
    for (const f of g.findings) {
      out += `- **${f.key}**: ${f.measured}${f.report ? ` ([report](../../${f.report}))` : ''}. Affected: ${f.affected.map((c) => `${columnId(c)} ${rateText(c)}`).join('; ')}.`;
      out += `${f.unaffected.length ? ` Not affected: ${uniq(f.unaffected.map(columnId)).join('; ')}.` : ''} Reproduce: \`${f.repro}\`\n`;
      if (f.backtrace) out += `  - stuck in: \`${f.backtrace}\`\n`;
    }
    out += '\n';
  }
  return out;
}

/** "__lll_lock_wait <- __tz_convert <- localtime_r" from a gdb backtrace of the child's first thread. */
export function backtraceSummary(c: CellResult): string | null {
  const gdb = c.first_failure?.diag?.gdb;
  if (gdb) {
    // gdb prints every thread; the child has one, but prefer the block that runs the case's code, else thread 1
    const blocks = gdb.split(/^(?=Thread \d+ )/m).filter((b) => /^#\d/m.test(b));
    const block = blocks.find((b) => /\bfm_child\b|harness\.(py|rb)|fork_loop/.test(b)) ?? blocks.at(-1) ?? gdb;
    const frames = [...block.matchAll(/^#\d+\s+(?:0x[0-9a-f]+ in )?([A-Za-z_][\w:.@]*)\s*\(/gm)].map((m) => m[1]);
    const useful = frames.filter((f) => !/^(futex_wait|__futex_abstimed_wait_common(64)?|__GI___futex_abstimed_wait(_cancelable)?64|do_futex_wait)$/.test(f));
    if (useful.length) return useful.slice(0, 5).join(' <- ');
  }
  const fault = c.first_failure?.diag?.fault;
  if (fault) return fault.trim().split('\n')[0].slice(0, 200);
  const wchan = c.first_failure?.diag?.wchan;
  return wchan ? `kernel: ${wchan}` : null;
}
