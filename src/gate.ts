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
  /** environments built from git (git:PATH@COMMIT by environment id): what a bisect of a regression starts from */
  sources?: Record<string, string>;
}

export type GateStatus = 'regressed' | 'fixed' | 'improved' | 'unchanged' | 'expected' | 'new-pass' | 'new-fail' | 'skipped' | 'inconclusive' | 'error' | 'flaky';

export interface GateCell {
  cell: CellResult;
  status: GateStatus;
  baseline: BaselineCell | null;
  note: string;
  /** re-runs it took to confirm (or not) a failure of the quick run (src/gate-confirm.ts) */
  confirmations?: number;
}

/** The baseline format this forkmatrix reads and writes. */
export const BASELINE_FORMAT = 1;

/** "at position N" of a JSON.parse error, as line:col of `text` (null when the message has none). */
function jsonPos(text: string, message: string): string | null {
  const m = /position (\d+)/.exec(message);
  if (m) return lineCol(text, Number(m[1]));
  if (/end of (JSON|data) input/i.test(message)) return lineCol(text, text.length);
  // "Unexpected token 'r', "root:x:0:0"... is not valid JSON" names no position: the first character that cannot
  // start a JSON text is one
  const first = text.search(/\S/);
  return first >= 0 && !/[{["\-0-9tfn]/.test(text[first]) ? lineCol(text, first) : null;
}

function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `${before.length}:${before[before.length - 1].length + 1}`;
}

/** Read a baseline written by --update-baseline. Throws an Error with one line naming the file (and where) and the fix. */
export function readBaseline(file: string): Baseline {
  const fix = 'record one with --update-baseline';
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`--baseline ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory, not a baseline file' : `cannot read it (${code ?? (e as Error).message})`}; ${fix}`);
  }
  if (!text.trim()) throw new Error(`--baseline ${file}: empty, not a forkmatrix baseline; ${fix}`);
  if (text.includes('\0')) throw new Error(`--baseline ${file}: binary data, not a forkmatrix baseline; ${fix}`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    const at = jsonPos(text, msg);
    throw new Error(`--baseline ${file}${at ? ':' + at : ''}: not a forkmatrix baseline (not JSON: ${msg.replace(/ in JSON at position \d+.*$/, '').slice(0, 100)}); ${fix}`);
  }
  const b = data as Baseline;
  if (typeof b !== 'object' || b === null || Array.isArray(b) || !('forkmatrix_baseline' in b))
    throw new Error(`--baseline ${file}: not a forkmatrix baseline (no "forkmatrix_baseline" key); ${fix}`);
  const format = (b as { forkmatrix_baseline: unknown }).forkmatrix_baseline;
  if (typeof format === 'number' && format > BASELINE_FORMAT)
    throw new Error(`--baseline ${file}: written by a newer forkmatrix (baseline format ${format}; this one reads ${BASELINE_FORMAT}): update forkmatrix, or re-record it with --update-baseline`);
  if (format !== BASELINE_FORMAT) throw new Error(`--baseline ${file}: "forkmatrix_baseline": ${JSON.stringify(format)?.slice(0, 40)} is not a baseline format (expected ${BASELINE_FORMAT}); ${fix}`);
  if (typeof b.cells !== 'object' || b.cells === null || Array.isArray(b.cells)) throw new Error(`--baseline ${file}: "cells" must be an object of case -> cell; ${fix}`);
  for (const [k, c] of Object.entries(b.cells)) {
    const bad =
      typeof c !== 'object' || c === null ? 'not an object'
      : typeof c.verdict !== 'string' ? 'no verdict'
      : !['pass', 'fail', 'inconclusive', 'skip', 'error'].includes(c.verdict) ? `verdict '${String(c.verdict).slice(0, 20)}' is unknown`
      : typeof c.forks !== 'number' || typeof c.failures !== 'number' ? 'forks and failures must be numbers'
      : null;
    if (bad) throw new Error(`--baseline ${file}: cells["${k.slice(0, 80)}"]: ${bad}; ${fix}`);
  }
  if (!Array.isArray(b.environments)) b.environments = [];
  return b;
}

/** The baseline a run makes: per case the worst verdict over its environments (a failure anywhere wins). */
export function baselineFrom(cells: CellResult[], sources: Record<string, string> = {}): Baseline {
  const out: Baseline = { forkmatrix_baseline: 1, recorded: new Date().toISOString(), environments: [...new Set(cells.map((c) => c.env))], cells: {} };
  if (Object.keys(sources).length) out.sources = sources;
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
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`--expectations ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory, not a YAML file' : `cannot read it (${code ?? (e as Error).message})`}`);
  }
  const shape = 'expected a YAML list of { case, libc, versions?, verdict, cite }';
  if (text.includes('\0')) throw new Error(`${file}:1:1: binary data, not YAML: ${shape}`);
  const lc = new LineCounter();
  let doc;
  try {
    doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  } catch (e) {
    throw new Error(`${file}:1:1: YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc.errors.length) {
    const p = lc.linePos(doc.errors[0].pos[0]);
    throw new Error(`${file}:${p.line}:${p.col}: YAML: ${doc.errors[0].message.split('\n')[0]}`);
  }
  const out = new Map<string, Known[]>();
  const items = isSeq(doc.contents) ? doc.contents.items : null;
  if (!items) throw new Error(`${file}:1:1: ${shape}`);
  items.forEach((node, i) => {
    let v: unknown;
    try {
      v = node && typeof (node as { toJSON?: unknown }).toJSON === 'function' ? (node as { toJSON(): unknown }).toJSON() : null;
    } catch (e) {
      v = null; // e.g. an alias to nowhere
    }
    const at = lc.linePos((node as unknown as { range?: number[] } | null)?.range?.[0] ?? 0);
    const where = `${file}:${at.line}:${at.col}: [${i}]`;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where}: ${shape}`);
    const e = v as Record<string, unknown>;
    for (const k of ['case', 'libc', 'verdict', 'cite']) if (typeof e[k] !== 'string') throw new Error(`${where}: missing ${k} (each entry needs case, libc, verdict, cite)`);
    if (!['glibc', 'musl'].includes(e.libc as string)) throw new Error(`${where}.libc: expected glibc or musl`);
    if (!['fail', 'hang', 'crash', 'wrong'].includes(e.verdict as string)) throw new Error(`${where}.verdict: expected fail, hang, crash or wrong`);
    if (typeof e.versions === "number") e.versions = String(e.versions);
    if (e.versions != null && typeof e.versions !== "string") throw new Error(`${where}.versions: expected a string such as "<2.40"`);
    const list = out.get(e.case as string) ?? [];
    list.push({ libc: e.libc as string, versions: e.versions as string | undefined, verdict: e.verdict as Known['verdict'], cite: e.cite as string });
    out.set(e.case as string, list);
  });
  return out;
}

export function withExpectations(cases: CaseDef[], exp: Map<string, Known[]>): CaseDef[] {
  return cases.map((c) => (exp.has(c.key) ? { ...c, known: [...c.known, ...exp.get(c.key)!] } : c));
}

function expectedFor(c: CellResult, cases: Map<string, CaseDef>): { verdict: string; cite: string } | null {
  const def = cases.get(c.case);
  if (!def || !c.libc) return null;
  const k = def.known.find((k) => knownApplies(k, c.libc!, c.runtime_version));
  if (k) return k;
  const f = def.found.find((k) => knownApplies(k, c.libc!, c.runtime_version));
  return f ? { verdict: f.verdict, cite: `found here: ${f.measured}` } : null;
}

export function compare(cells: CellResult[], baseline: Baseline | null, cases: CaseDef[]): GateCell[] {
  const byKey = new Map(cases.map((c) => [c.key, c]));
  return cells.map((cell) => {
    const b = baseline?.cells[cell.case] ?? null;
    const miss = cell.missable != null ? `no failure in ${cell.forks} forks: rates above ${fmtRate(cell.missable)} excluded at 95%` : '';
    if (cell.verdict === 'skip') return { cell, status: 'skipped', baseline: b, note: cell.reason ?? '' };
    if (cell.verdict === 'error') return { cell, status: 'error', baseline: b, note: (cell.reason ?? '').split('\n')[0] };
    if (cell.verdict === 'inconclusive') return { cell, status: 'inconclusive', baseline: b, note: cell.reason ?? '' };
    const failed = cell.verdict === 'fail';
    const expected = expectedFor(cell, byKey);
    if (failed && (cell.known || cell.found || expected || cell.level === 'none'))
      return { cell, status: 'expected', baseline: b, note: cell.level === 'none' ? 'promise level none: recorded, not judged' : `expected: ${cell.known ? `known${cell.known.fixed_in ? `, fixed in ${cell.known.fixed_in}` : ''}: ${cell.known.cite}` : cell.found ? `found here: ${cell.found.measured}` : expected!.cite}` };
    if (!failed && expected) return { cell, status: 'fixed', baseline: b, note: `expected ${expected.verdict} (${expected.cite}) but passed: ${miss}` };
    if (!b) return failed ? { cell, status: 'new-fail', baseline: b, note: `not in the baseline; ${cell.kind} ${cell.failures}/${cell.forks}` } : { cell, status: 'new-pass', baseline: b, note: miss };
    if ((b.verdict === 'pass' || (b.verdict === 'inconclusive' && !b.failures)) && failed) return { cell, status: 'regressed', baseline: b, note: `baseline saw no failure in ${b.forks} forks; now ${cell.kind} ${cell.failures}/${cell.forks}` };
    if (b.verdict === 'fail' && !failed) return { cell, status: 'improved', baseline: b, note: `baseline ${b.kind} ${b.failures}/${b.forks}; now ${miss}` };
    return { cell, status: 'unchanged', baseline: b, note: failed ? `still ${cell.kind} ${cell.failures}/${cell.forks}` : miss };
  });
}

/** Does this status fail the gate? A regression always; a failure of a cell the baseline never saw too (strict). */
export function failsGate(s: GateStatus): boolean {
  return s === 'regressed' || s === 'new-fail' || s === 'error';
}
