// TAP 14 out and in. One stream per (environment, runtime); one test point per cell; the YAML diagnostic carries
// everything the matrix needs, so streams from many machines merge without any other file.

import { readFile } from 'node:fs/promises';
import { Parser } from 'tap-parser';
import { stringify } from 'yaml';
import type { CellResult, Scope } from './types.ts';

export interface StreamHeader {
  tool: string;
  run: string;
  env: string;
  proof: string;
  runtime: string;
  budget: string;
  environment: Record<string, string>;
}

function escapeDesc(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/#/g, '\\#').replace(/\n/g, ' ');
}

/** The TAP directive a cell gets: SKIP for skip, TODO where a failure is expected (known) or not judged (level none). */
export function directive(c: CellResult): string {
  if (c.verdict === 'skip') return ` # SKIP ${escapeDesc(c.reason ?? 'could not run here')}`;
  if (c.verdict === 'fail' && c.known) return ` # TODO known ${scopeLabel(c.known)} ${c.known.verdict}: ${escapeDesc(c.known.cite)}`;
  if (c.verdict === 'fail' && c.found) return ` # TODO found here ${scopeLabel(c.found)} ${c.found.verdict}: ${escapeDesc(c.found.measured)}`;
  if (c.verdict === 'inconclusive') return ` # TODO inconclusive: ${escapeDesc(c.reason ?? '')}`;
  if (c.verdict === 'fail' && c.level === 'none') return ' # TODO promise level none: recorded, not judged';
  return '';
}

/** "glibc <2.40", "ruby <3.2 (fixed in 3.2)", "every libc" */
export function scopeLabel(k: Scope): string {
  const parts = [k.libc ? `${k.libc}${k.versions ? ' ' + k.versions : ''}` : '', k.runtime_versions ? `runtime ${k.runtime_versions}` : '', k.fixed_in ? `(fixed in ${k.fixed_in})` : ''].filter(Boolean);
  return parts.length ? parts.join(' ') : 'everywhere';
}

export function testPoint(n: number, c: CellResult): string {
  const ok = c.verdict === 'pass' || c.verdict === 'skip';
  // verdict and kind first: a person reading the stream sees them without scrolling
  const diag = stringify(Object.assign({ case: c.case, verdict: c.verdict, kind: c.kind, reason: c.reason }, c), { lineWidth: 0, blockQuote: 'literal' }).trimEnd().split('\n').map((l) => '  ' + l).join('\n');
  return `${ok ? 'ok' : 'not ok'} ${n} - ${escapeDesc(c.case)}${directive(c)}\n  ---\n${diag}\n  ...\n`;
}

export function writeStream(h: StreamHeader, cells: CellResult[]): string {
  let out = 'TAP version 14\n';
  out += `# ${h.tool} run ${h.run}, budget ${h.budget}\n`;
  out += `# environment ${h.env}: ${h.proof}\n`;
  out += `# runtime ${h.runtime}\n`;
  out += `1..${cells.length}\n`;
  cells.forEach((c, i) => (out += testPoint(i + 1, c)));
  const by = (v: string) => cells.filter((c) => c.verdict === v).length;
  out += `# ${by('pass')} pass, ${by('fail')} fail, ${by('inconclusive')} inconclusive, ${by('skip')} skip, ${by('error')} error\n`;
  return out;
}

export interface ParsedStream {
  file: string;
  cells: CellResult[];
  /** one line each, with file:line: test points that were left out, and why */
  problems: string[];
  /** why this is not a forkmatrix TAP stream at all (empty, binary, another tool's, truncated), or null */
  refusal: string | null;
}

/** The verdicts a forkmatrix stream may carry (older streams carry a subset). */
export const STREAM_VERDICTS = ['pass', 'fail', 'inconclusive', 'skip', 'error'] as const;

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isCount = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0;

/** What is wrong with a test point's diagnostics as a forkmatrix cell (null: a cell the matrix can use). */
export function cellProblem(d: Record<string, unknown>): string | null {
  for (const k of ['case', 'env', 'verdict', 'runtime', 'runtime_version'] as const)
    if (typeof d[k] !== 'string' || !d[k]) return `${k}: expected a non-empty string`;
  if (!(STREAM_VERDICTS as readonly string[]).includes(d.verdict as string)) return `verdict: '${d.verdict}' is not one of ${STREAM_VERDICTS.join(', ')} (a stream of a newer forkmatrix?)`;
  for (const k of ['forks', 'failures'] as const) if (!isCount(d[k])) return `${k}: expected a number >= 0`;
  if (!isObj(d.counts) || !['ok', 'hang', 'crash', 'wrong'].every((k) => isCount((d.counts as Record<string, unknown>)[k]))) return 'counts: expected { ok, hang, crash, wrong } numbers';
  const optional: [string, (x: unknown) => boolean, string][] = [
    ['title', (x) => typeof x === 'string', 'a string'],
    ['family', (x) => typeof x === 'string', 'a string'],
    ['file', (x) => typeof x === 'string', 'a string'],
    ['source', (x) => typeof x === 'string', 'a string'],
    ['level', (x) => typeof x === 'string', 'a string'],
    ['reason', (x) => typeof x === 'string', 'a string'],
    ['replay', (x) => typeof x === 'string', 'a string'],
    ['runtime_executable', (x) => typeof x === 'string', 'a string'],
    ['kind', (x) => typeof x === 'string', 'a string'],
    ['cite', (x) => Array.isArray(x) && x.every((c) => typeof c === 'string'), 'a list of strings'],
    ['libc', (x) => isObj(x) && typeof x.name === 'string' && typeof x.version === 'string', '{ name, version, ... }'],
    ['known', (x) => isObj(x) && typeof x.cite === 'string', '{ libc, verdict, cite, ... }'],
    ['first_failure', (x) => isObj(x) && typeof x.message === 'string', '{ kind, message, ... }'],
    ['failures_seen', (x) => Array.isArray(x) && x.every((f) => isObj(f)), 'a list'],
    ['interval', (x) => Array.isArray(x) && x.length === 2 && x.every((n) => typeof n === 'number'), '[low, high]'],
    ['rate', (x) => typeof x === 'number', 'a number'],
    ['missable', (x) => typeof x === 'number', 'a number'],
    ['seed', (x) => typeof x === 'number', 'a number'],
    ['elapsed_ms', (x) => typeof x === 'number', 'a number'],
    ['child_ms', (x) => isObj(x) && ['median', 'p99'].every((k) => x[k] == null || typeof x[k] === 'number'), '{ median, p99 } numbers'],
    ['budget', (x) => isObj(x) && ['forks', 'seconds'].every((k) => typeof x[k] === 'number'), '{ forks, seconds, timeout_ms } numbers'],
    ['pressure', (x) => isObj(x) && typeof x.threads === 'number' && Array.isArray(x.iterations) && x.iterations.every((n) => typeof n === 'number') && typeof x.window_ms === 'number', '{ threads, iterations, window_ms, ... }'],
    ['found', (x) => isObj(x) && typeof x.measured === 'string', '{ verdict, measured, ... }'],
    ['processes', (x) => typeof x === 'number', 'a number'],
    ['slow', (x) => typeof x === 'number', 'a number'],
    ['reruns', (x) => Array.isArray(x) && x.every((r) => typeof r === 'string'), 'a list of strings'],
    ['clean_env', (x) => isObj(x), 'an object'],
    ['rounds', (x) => Array.isArray(x) && x.every((r) => isObj(r) && ['seed', 'forks', 'failures'].every((k) => typeof r[k] === 'number')), 'a list of { seed, forks, failures }'],
  ];
  for (const [k, ok, what] of optional) if (d[k] != null && !ok(d[k])) return `${k}: expected ${what}`;
  if (d.verdict !== 'skip' && d.verdict !== 'error' && d.interval == null) return 'interval: expected [low, high]';
  return null;
}

/**
 * Read a TAP stream back into cells. Never throws: a test point without usable forkmatrix diagnostics is left out
 * with a problem naming file:line; a text that is no forkmatrix stream at all (empty, binary, another tool's,
 * truncated) gets a `refusal`.
 */
export function parseStream(text: string, file: string): ParsedStream {
  const cells: CellResult[] = [];
  const problems: string[] = [];
  if (!text.trim()) return { file, cells, problems, refusal: `${file}: empty, not a TAP stream (expected a forkmatrix results directory or .tap file)` };
  if (text.includes('\0') || (text.match(/\uFFFD/g)?.length ?? 0) > 8)
    return { file, cells, problems, refusal: `${file}: binary data, not a TAP stream (expected a forkmatrix results directory or .tap file)` };
  const p = new Parser({ strict: false });
  let line = 0;
  const pointLines: number[] = [];
  let points = 0;
  // from the text itself: the parser emits a made-up version line and plan for a text that has none
  const sawVersion = /^TAP version \d+\s*$/m.test(text);
  const sawPlan = /^1\.\.\d+/m.test(text);
  let plan: { start: number; end: number } | null = null;
  let bailout: string | null = null;
  let damaged: string | null = null;
  p.on('line', (l: string) => {
    line++;
    if (/^(not )?ok\b/.test(l)) pointLines.push(line);
  });
  p.on('plan', (pl: { start: number; end: number }) => (plan = pl));
  p.on('bailout', (reason: string) => (bailout = reason || 'no reason given'));
  p.on('assert', (r: { id: number; name: string; ok: boolean; diag: Record<string, unknown> | null }) => {
    points++;
    const at = `${file}:${pointLines.shift() ?? line}`;
    const d = r.diag;
    if (!isObj(d) || typeof d.case !== 'string' || typeof d.env !== 'string' || typeof d.verdict !== 'string') {
      problems.push(`${at}: test point ${r.id} (${String(r.name).slice(0, 80)}) has no forkmatrix diagnostics (case, env, verdict): ignored`);
      return;
    }
    const bad = cellProblem(d);
    if (bad) {
      // forkmatrix diagnostics that are broken: the stream is damaged or newer than this reader
      damaged ??= `${at}: test point ${r.id} (${d.case.slice(0, 80)}): diagnostics ${bad}`;
      return;
    }
    const verdict = d.verdict;
    // inconclusive is neither: either way is fine
    const agrees = verdict === 'inconclusive' || (verdict === 'pass' || verdict === 'skip' ? r.ok : !r.ok);
    if (!agrees) problems.push(`${at}: test point ${r.id} says ${r.ok ? 'ok' : 'not ok'} but its verdict is ${verdict}: the verdict wins`);
    cells.push(d as unknown as CellResult);
  });
  try {
    p.end(text);
  } catch (e) {
    return { file, cells: [], problems, refusal: `${file}:${line}: not a readable TAP stream (${(e as Error).message.split('\n')[0]})` };
  }
  let refusal: string | null = null;
  const pl = sawPlan ? (plan as { start: number; end: number } | null) : null;
  if (!points && !sawVersion && !sawPlan) refusal = `${file}: not a TAP stream (no 'TAP version' line, plan or test point; expected a forkmatrix results directory or .tap file)`;
  else if (damaged) refusal = `${damaged}: a damaged stream, or one of a newer forkmatrix`;
  else if (bailout) refusal = `${file}: the stream bailed out ("${bailout}"): its run did not complete`;
  else if (!cells.length)
    refusal = points
      ? `${file}: none of its ${points} test point(s) carries forkmatrix diagnostics (case, env, verdict): a TAP stream of another tool, or damaged${problems.length ? ` (first at line ${problems[0].slice(file.length + 1)})` : ''}`
      : `${file}: a TAP stream with no test point: not forkmatrix results`;
  else if (!pl) refusal = `${file}:${line}: truncated: no plan (1..N) in the stream`;
  else if (!(pl.start === 1 && pl.end === 0) && points !== pl.end - pl.start + 1)
    refusal = `${file}:${line}: truncated: the plan says ${pl.start}..${pl.end} but ${points} test point(s) are there`;
  return { file, cells, problems, refusal };
}

export async function readStream(file: string): Promise<ParsedStream> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { file, cells: [], problems: [], refusal: `${file}: ${err.code === 'EISDIR' ? 'a directory, not a .tap file' : `cannot read it (${err.code ?? err.message})`}` };
  }
  return parseStream(text, file);
}
