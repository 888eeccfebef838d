// The libc CI gate: run the cases under a candidate libc (or preload), compare every cell with a baseline, and say
// exactly which cells regressed. A cell regresses when the baseline says pass and now any failure was seen: one
// observed hang is proof, while a pass is only "no failure in N forks" (so each pass reports what it could have
// missed). Expected failures (a case's `known:` or an expectations file) never fail the gate; one that now passes
// is reported as fixed.

import { readFileSync } from 'node:fs';
import { isSeq, LineCounter, parseDocument } from 'yaml';
import { fmtRate } from './stats.ts';
import { knownApplies } from './schema.ts';
import type { CaseDef, CellResult, Known } from './types.ts';
import { writeWhole } from './util.ts';

export interface BaselineCell {
  verdict: CellResult['verdict'];
  kind: CellResult['kind'];
  forks: number;
  failures: number;
  env: string;
}

export interface Baseline {
  forkmatrix_baseline: 1;
  recorded: string;
  environments: string[];
  cells: Record<string, BaselineCell>;
}

export type GateStatus = 'regressed' | 'fixed' | 'improved' | 'unchanged' | 'expected' | 'new-pass' | 'new-fail' | 'skipped' | 'error';

export interface GateCell {
  cell: CellResult;
  status: GateStatus;
  baseline: BaselineCell | null;
  note: string;
}

export function readBaseline(file: string): Baseline {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not a forkmatrix baseline (${(e as Error).message}); record one with --update-baseline`);
  }
  const b = data as Baseline;
  if (b?.forkmatrix_baseline !== 1 || typeof b.cells !== 'object') throw new Error(`${file}: not a forkmatrix baseline (no "forkmatrix_baseline": 1); record one with --update-baseline`);
  return b;
}

/** The baseline a run makes: per case the worst verdict over its environments (a failure anywhere wins). */
export function baselineFrom(cells: CellResult[]): Baseline {
  const out: Baseline = { forkmatrix_baseline: 1, recorded: new Date().toISOString(), environments: [...new Set(cells.map((c) => c.env))], cells: {} };
  for (const c of cells) {
    const prev = out.cells[c.case];
    const mine: BaselineCell = { verdict: c.verdict, kind: c.kind, forks: c.forks, failures: c.failures, env: c.env };
    if (!prev || rank(mine.verdict) > rank(prev.verdict)) out.cells[c.case] = mine;
  }
  return out;
}

const rank = (v: string) => ({ fail: 3, pass: 2, error: 1, skip: 0 } as Record<string, number>)[v] ?? 0;

export function writeBaseline(file: string, b: Baseline): void {
  writeWhole(file, JSON.stringify(b, null, 1) + '\n');
}

/** Expectations file (like wpt's metadata): a YAML list of { case, libc, versions?, verdict, cite }. */
export function readExpectations(file: string): Map<string, Known[]> {
  const lc = new LineCounter();
  const doc = parseDocument(readFileSync(file, 'utf8'), { lineCounter: lc });
  if (doc.errors.length) {
    const p = lc.linePos(doc.errors[0].pos[0]);
    throw new Error(`${file}:${p.line}:${p.col}: YAML: ${doc.errors[0].message.split('\n')[0]}`);
  }
  const out = new Map<string, Known[]>();
  const items = isSeq(doc.contents) ? doc.contents.items : null;
  if (!items) throw new Error(`${file}:1:1: expected a list of { case, libc, versions?, verdict, cite }`);
  items.forEach((node, i) => {
    const v = (node as { toJSON(): unknown }).toJSON() as Record<string, unknown>;
    const at = lc.linePos((node as unknown as { range?: number[] }).range?.[0] ?? 0);
    const where = `${file}:${at.line}:${at.col}: [${i}]`;
    for (const k of ['case', 'libc', 'verdict', 'cite']) if (typeof v?.[k] !== 'string') throw new Error(`${where}: missing ${k} (each entry needs case, libc, verdict, cite)`);
    if (!['glibc', 'musl'].includes(v.libc as string)) throw new Error(`${where}.libc: expected glibc or musl`);
    if (!['fail', 'hang', 'crash', 'wrong'].includes(v.verdict as string)) throw new Error(`${where}.verdict: expected fail, hang, crash or wrong`);
    const list = out.get(v.case as string) ?? [];
    list.push({ libc: v.libc as string, versions: v.versions as string | undefined, verdict: v.verdict as Known['verdict'], cite: v.cite as string });
    out.set(v.case as string, list);
  });
  return out;
}

export function withExpectations(cases: CaseDef[], exp: Map<string, Known[]>): CaseDef[] {
  return cases.map((c) => (exp.has(c.key) ? { ...c, known: [...c.known, ...exp.get(c.key)!] } : c));
}

function expectedFor(c: CellResult, cases: Map<string, CaseDef>): Known | null {
  const def = cases.get(c.case);
  if (!def || !c.libc) return null;
  return def.known.find((k) => knownApplies(k, c.libc!)) ?? null;
}

export function compare(cells: CellResult[], baseline: Baseline | null, cases: CaseDef[]): GateCell[] {
  const byKey = new Map(cases.map((c) => [c.key, c]));
  return cells.map((cell) => {
    const b = baseline?.cells[cell.case] ?? null;
    const miss = cell.missable != null ? `no failure in ${cell.forks} forks: rates above ${fmtRate(cell.missable)} excluded at 95%` : '';
    if (cell.verdict === 'skip') return { cell, status: 'skipped', baseline: b, note: cell.reason ?? '' };
    if (cell.verdict === 'error') return { cell, status: 'error', baseline: b, note: (cell.reason ?? '').split('\n')[0] };
    const failed = cell.verdict === 'fail';
    const expected = expectedFor(cell, byKey);
    if (failed && (cell.known || expected || cell.level === 'none'))
      return { cell, status: 'expected', baseline: b, note: cell.level === 'none' ? 'promise level none: recorded, not judged' : `expected: ${(cell.known ?? expected)!.cite}` };
    if (!failed && expected) return { cell, status: 'fixed', baseline: b, note: `expected ${expected.verdict} (${expected.cite}) but passed: ${miss}` };
    if (!b) return failed ? { cell, status: 'new-fail', baseline: b, note: `not in the baseline; ${cell.kind} ${cell.failures}/${cell.forks}` } : { cell, status: 'new-pass', baseline: b, note: miss };
    if (b.verdict === 'pass' && failed) return { cell, status: 'regressed', baseline: b, note: `baseline passed ${b.forks} forks; now ${cell.kind} ${cell.failures}/${cell.forks}` };
    if (b.verdict === 'fail' && !failed) return { cell, status: 'improved', baseline: b, note: `baseline ${b.kind} ${b.failures}/${b.forks}; now ${miss}` };
    return { cell, status: 'unchanged', baseline: b, note: failed ? `still ${cell.kind} ${cell.failures}/${cell.forks}` : miss };
  });
}

/** Does this status fail the gate? A regression always; a failure of a cell the baseline never saw too (strict). */
export function failsGate(s: GateStatus): boolean {
  return s === 'regressed' || s === 'new-fail' || s === 'error';
}
