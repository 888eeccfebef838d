// TAP 14 out and in. One stream per (environment, runtime); one test point per cell; the YAML diagnostic carries
// everything the matrix needs, so streams from many machines merge without any other file.

import { readFile } from 'node:fs/promises';
import { Parser } from 'tap-parser';
import { stringify } from 'yaml';
import type { CellResult } from './types.ts';

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
  if (c.verdict === 'fail' && c.known) return ` # TODO known ${c.known.libc}${c.known.versions ? ' ' + c.known.versions : ''} ${c.known.verdict}: ${escapeDesc(c.known.cite)}`;
  if (c.verdict === 'fail' && c.level === 'none') return ' # TODO promise level none: recorded, not judged';
  return '';
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
  out += `# ${by('pass')} pass, ${by('fail')} fail, ${by('skip')} skip, ${by('error')} error\n`;
  return out;
}

export interface ParsedStream {
  file: string;
  cells: CellResult[];
  problems: string[];
}

/** Read a TAP stream back into cells. Test points without forkmatrix diagnostics are reported, not guessed. */
export function parseStream(text: string, file: string): ParsedStream {
  const cells: CellResult[] = [];
  const problems: string[] = [];
  const p = new Parser({ strict: false });
  p.on('assert', (r: { id: number; name: string; ok: boolean; skip: string | boolean; todo: string | boolean; diag: Record<string, unknown> | null }) => {
    const d = r.diag as Partial<CellResult> | null;
    if (!d || typeof d.case !== 'string' || typeof d.env !== 'string' || typeof d.verdict !== 'string') {
      problems.push(`${file}: test point ${r.id} (${r.name}) has no forkmatrix diagnostics (case, env, verdict): ignored`);
      return;
    }
    const verdict = d.verdict;
    const agrees = verdict === 'pass' || verdict === 'skip' ? r.ok : !r.ok;
    if (!agrees) problems.push(`${file}: test point ${r.id} says ${r.ok ? 'ok' : 'not ok'} but its verdict is ${verdict}: the verdict wins`);
    cells.push(d as CellResult);
  });
  p.end(text);
  return { file, cells, problems };
}

export async function readStream(file: string): Promise<ParsedStream> {
  return parseStream(await readFile(file, 'utf8'), file);
}
