// The case file schema, checked on the YAML syntax tree so every problem names file:line:col.
// One problem per line: `suites/python/stdio.yaml:14:5: cases[2].timeout: expected a duration like 2s`.

import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml';
import path from 'node:path';
import { compareVersions } from './util.ts';
import { LEVELS, RUNTIMES, FAIL_KINDS, type CaseDef, type Known, type RuntimeName } from './types.ts';

export interface Problem {
  file: string;
  line: number;
  col: number;
  path: string;
  message: string;
}

export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.path ? p.path + ': ' : ''}${p.message}`;
}

const ID_RE = /^[a-z0-9]+(?:[-_.][a-z0-9]+)*$/;
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s)$/;

/** "2s" | "500ms" | 2 (seconds) -> milliseconds */
export function parseDuration(v: unknown): number | null {
  if (typeof v === 'number' && v > 0) return Math.round(v * 1000);
  if (typeof v !== 'string') return null;
  const m = DURATION_RE.exec(v.trim());
  if (!m) return null;
  const n = Number(m[1]) * (m[2] === 'ms' ? 1 : 1000);
  return n > 0 ? Math.round(n) : null;
}

type Check = (v: unknown) => string | null; // null = fine, else "expected ..."

const str: Check = (v) => (typeof v === 'string' && v.trim() !== '' ? null : 'expected a non-empty string');
const code: Check = (v) => (typeof v === 'string' ? null : 'expected a block of code (use `|`)');
const intIn =
  (lo: number, hi: number): Check =>
  (v) =>
    Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi ? null : `expected a whole number from ${lo} to ${hi}`;
const posNum: Check = (v) => (typeof v === 'number' && v > 0 ? null : 'expected a positive number');
const oneOf =
  (xs: readonly string[]): Check =>
  (v) =>
    typeof v === 'string' && xs.includes(v) ? null : `expected one of ${xs.join(', ')}`;

interface Ctx {
  file: string;
  lc: LineCounter;
  problems: Problem[];
}

function pos(ctx: Ctx, node: Node | Pair | null | undefined): { line: number; col: number } {
  const n = (node && 'range' in node ? node : (node as Pair | undefined)?.key) as Node | undefined;
  const off = n?.range?.[0] ?? 0;
  const p = ctx.lc.linePos(off);
  return { line: p.line, col: p.col };
}

function report(ctx: Ctx, node: Node | Pair | null | undefined, p: string, message: string) {
  const { line, col } = pos(ctx, node);
  ctx.problems.push({ file: ctx.file, line, col, path: p, message });
}

/** Check a mapping's keys against the allowed set; returns the value nodes by key. */
function fields(
  ctx: Ctx,
  node: Node | null | undefined,
  p: string,
  allowed: Record<string, boolean>, // key -> required
  hint = '',
): Map<string, Node | null> | null {
  const out = new Map<string, Node | null>();
  if (!isMap(node)) {
    report(ctx, node, p, `expected a mapping with ${Object.keys(allowed).join(', ')}`);
    return null;
  }
  for (const pair of (node as YAMLMap).items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    if (!(k in allowed)) {
      const near = Object.keys(allowed).find((a) => a.startsWith(k.slice(0, 3)));
      report(ctx, pair.key as Node, p ? `${p}.${k}` : k, `unknown key${near ? ` (did you mean '${near}'?)` : ''}; allowed: ${Object.keys(allowed).join(', ')}${hint}`);
      continue;
    }
    if (out.has(k)) report(ctx, pair.key as Node, p ? `${p}.${k}` : k, 'duplicate key');
    out.set(k, (pair.value as Node) ?? null);
  }
  for (const [k, req] of Object.entries(allowed)) {
    if (req && !out.has(k)) report(ctx, node, p ? `${p}.${k}` : k, `missing required key '${k}'`);
  }
  return out;
}

function val(n: Node | null | undefined): unknown {
  return n == null ? undefined : isScalar(n) ? n.value : n.toJSON();
}

function check(ctx: Ctx, n: Node | null | undefined, p: string, c: Check): boolean {
  const msg = c(val(n));
  if (msg) report(ctx, n, p, msg);
  return !msg;
}

/** Line (1-based) of the first line of a block scalar's text. */
function textLine(ctx: Ctx, n: Node | null | undefined): number {
  if (!n || !isScalar(n) || !n.range) return 0;
  const start = ctx.lc.linePos(n.range[0]).line;
  // Block scalars (| and >) start their text on the line after the indicator.
  return n.type === 'BLOCK_LITERAL' || n.type === 'BLOCK_FOLDED' ? start + 1 : start;
}

const KNOWN_VERSIONS_RE = /^(<=|>=|<|>|=)?\s*\d+(\.\d+)*$/;

export interface ParsedFile {
  cases: CaseDef[];
  problems: Problem[];
}

/**
 * Parse and validate one suite file. `file` is the repo-relative path (used in messages and to check that
 * runtime/family match the location).
 */
export function parseSuiteFile(text: string, file: string): ParsedFile {
  const lc = new LineCounter();
  const ctx: Ctx = { file, lc, problems: [] };
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  for (const e of doc.errors) {
    const p = lc.linePos(e.pos[0]);
    ctx.problems.push({ file, line: p.line, col: p.col, path: '', message: `YAML: ${e.message.split('\n')[0]}` });
  }
  if (doc.errors.length) return { cases: [], problems: ctx.problems };

  const top = fields(ctx, doc.contents as Node, '', { runtime: true, family: true, cases: true });
  if (!top) return { cases: [], problems: ctx.problems };

  const parts = file.split(/[\\/]/);
  const dirRuntime = parts.at(-2) ?? '';
  const base = path.basename(file).replace(/\.ya?ml$/, '');
  let runtime: RuntimeName | null = null;
  const rtNode = top.get('runtime');
  if (rtNode !== undefined && check(ctx, rtNode, 'runtime', oneOf(RUNTIMES))) {
    runtime = val(rtNode) as RuntimeName;
    if (runtime !== dirRuntime)
      report(ctx, rtNode, 'runtime', `is '${runtime}' but the file lives in suites/${dirRuntime}/: move the file or fix the runtime`);
  }
  const famNode = top.get('family');
  let family = '';
  if (famNode !== undefined && check(ctx, famNode, 'family', str)) {
    family = String(val(famNode));
    if (family !== base) report(ctx, famNode, 'family', `is '${family}' but the file is named ${base}.yaml: they must match`);
  }
  const casesNode = top.get('cases');
  const out: CaseDef[] = [];
  if (casesNode === undefined) return { cases: out, problems: ctx.problems };
  if (!isSeq(casesNode) || casesNode.items.length === 0) {
    report(ctx, casesNode, 'cases', 'expected a non-empty list of cases (each item starts with `- id:`)');
    return { cases: out, problems: ctx.problems };
  }
  const seen = new Map<string, number>();
  casesNode.items.forEach((item, i) => {
    const p = `cases[${i}]`;
    const before = ctx.problems.length;
    const f = fields(ctx, item as Node, p, {
      id: true, title: true, promise: true, env: false, parent: false, child: true, exit: false,
      expect_output: false, budget: true, timeout: true, requires: false, known: false,
    });
    if (!f) return;
    const idN = f.get('id');
    let id = '';
    if (idN !== undefined && check(ctx, idN, `${p}.id`, (v) => (typeof v === 'string' && ID_RE.test(v) ? null : 'expected lower-case words joined by - (e.g. malloc-while-threads-allocate)'))) {
      id = String(val(idN));
      if (seen.has(id)) report(ctx, idN, `${p}.id`, `duplicate id '${id}' (first at line ${seen.get(id)}): ids must be unique within a file`);
      else seen.set(id, pos(ctx, idN).line);
    }
    if (f.has('title')) check(ctx, f.get('title'), `${p}.title`, str);
    // promise
    let level: CaseDef['level'] = 'libc';
    let cite: string[] = [];
    if (f.has('promise')) {
      const pr = fields(ctx, f.get('promise'), `${p}.promise`, { level: true, cite: true });
      if (pr) {
        if (pr.has('level') && check(ctx, pr.get('level'), `${p}.promise.level`, oneOf(LEVELS))) level = val(pr.get('level')) as CaseDef['level'];
        const cn = pr.get('cite');
        if (cn !== undefined) {
          const v = val(cn);
          if (typeof v === 'string' && v.trim()) cite = [v];
          else if (Array.isArray(v) && v.length && v.every((x) => typeof x === 'string' && x.trim())) cite = v as string[];
          else report(ctx, cn, `${p}.promise.cite`, 'expected a citation (a string, or a list of strings: docs, POSIX, a bug, a commit)');
        }
      }
    }
    // env
    const env: Record<string, string> = {};
    if (f.has('env')) {
      const en = f.get('env');
      const v = val(en);
      if (v && typeof v === 'object' && !Array.isArray(v) && Object.entries(v).every(([k, x]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && (typeof x === 'string' || typeof x === 'number')))
        for (const [k, x] of Object.entries(v)) env[k] = String(x);
      else report(ctx, en, `${p}.env`, 'expected a mapping of VARIABLE: value');
    }
    // parent
    let threads = 0;
    const snip = { prelude: '', setup: '', loop: '' };
    const lines = { prelude: 0, setup: 0, loop: 0, child: 0 };
    if (f.has('parent')) {
      const pa = fields(ctx, f.get('parent'), `${p}.parent`, { threads: false, prelude: false, setup: false, loop: false });
      if (pa) {
        if (pa.has('threads') && check(ctx, pa.get('threads'), `${p}.parent.threads`, intIn(0, 64))) threads = val(pa.get('threads')) as number;
        for (const k of ['prelude', 'setup', 'loop'] as const) {
          if (pa.has(k) && check(ctx, pa.get(k), `${p}.parent.${k}`, code)) {
            snip[k] = String(val(pa.get(k)));
            lines[k] = textLine(ctx, pa.get(k));
          }
        }
        if (threads > 0 && !snip.loop.trim()) report(ctx, f.get('parent'), `${p}.parent.loop`, `threads: ${threads} needs a loop for them to run`);
      }
    }
    let child = '';
    if (f.has('child') && check(ctx, f.get('child'), `${p}.child`, (v) => (typeof v === 'string' && v.trim() ? null : 'expected the code the child runs (a non-empty block, use `|`)'))) {
      child = String(val(f.get('child')));
      lines.child = textLine(ctx, f.get('child'));
    }
    let exit: CaseDef['exit'] = '_exit';
    if (f.has('exit') && check(ctx, f.get('exit'), `${p}.exit`, oneOf(['_exit', 'exit']))) exit = val(f.get('exit')) as CaseDef['exit'];
    let expectOutput: string | null = null;
    if (f.has('expect_output') && check(ctx, f.get('expect_output'), `${p}.expect_output`, str)) {
      expectOutput = String(val(f.get('expect_output')));
      try {
        new RegExp(expectOutput);
      } catch (e) {
        report(ctx, f.get('expect_output'), `${p}.expect_output`, `not a valid regular expression: ${(e as Error).message}`);
      }
    }
    let forks = 0, seconds = 0;
    if (f.has('budget')) {
      const b = fields(ctx, f.get('budget'), `${p}.budget`, { forks: true, seconds: true }, ' (e.g. { forks: 2000, seconds: 10 })');
      if (b) {
        if (b.has('forks') && check(ctx, b.get('forks'), `${p}.budget.forks`, intIn(1, 10_000_000))) forks = val(b.get('forks')) as number;
        if (b.has('seconds') && check(ctx, b.get('seconds'), `${p}.budget.seconds`, posNum)) seconds = val(b.get('seconds')) as number;
      }
    }
    let timeoutMs = 0;
    if (f.has('timeout')) {
      const t = parseDuration(val(f.get('timeout')));
      if (t == null) report(ctx, f.get('timeout'), `${p}.timeout`, 'expected a duration like 2s or 500ms');
      else timeoutMs = t;
    }
    let requires: string[] = [];
    if (f.has('requires')) {
      const v = val(f.get('requires'));
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) requires = v as string[];
      else report(ctx, f.get('requires'), `${p}.requires`, 'expected a list of feature names, e.g. [addon]');
    }
    const known: Known[] = [];
    if (f.has('known')) {
      const kn = f.get('known');
      if (!isSeq(kn)) report(ctx, kn, `${p}.known`, 'expected a list of { libc, versions?, verdict, cite }');
      else
        kn.items.forEach((k, j) => {
          const kp = `${p}.known[${j}]`;
          const kf = fields(ctx, k as Node, kp, { libc: true, versions: false, verdict: true, cite: true });
          if (!kf) return;
          const checks = [
            check(ctx, kf.get('libc'), `${kp}.libc`, oneOf(['glibc', 'musl'])),
            check(ctx, kf.get('verdict'), `${kp}.verdict`, oneOf(['fail', ...FAIL_KINDS])),
            check(ctx, kf.get('cite'), `${kp}.cite`, str),
            !kf.has('versions') ||
              check(ctx, kf.get('versions'), `${kp}.versions`, (v) =>
                String(v ?? '').split(',').every((s) => KNOWN_VERSIONS_RE.test(s.trim())) ? null : 'expected version bounds like "<2.40" or ">=1.2.2,<1.2.4"'),
          ];
          const ok = checks.every(Boolean);
          if (ok)
            known.push({
              libc: String(val(kf.get('libc'))),
              versions: kf.has('versions') ? String(val(kf.get('versions'))) : undefined,
              verdict: val(kf.get('verdict')) as Known['verdict'],
              cite: String(val(kf.get('cite'))),
            });
        });
    }
    if (ctx.problems.length > before || !runtime || !family) return;
    const r = (item as Node).range;
    out.push({
      runtime, family, id, key: `${runtime}/${family}/${id}`,
      title: String(val(f.get('title'))), level, cite, env, threads,
      prelude: snip.prelude, setup: snip.setup, loop: snip.loop, child, exit, expectOutput,
      forks, seconds, timeoutMs, requires, known, file,
      line: pos(ctx, item as Node).line, lines,
      source: r ? dedentItem(text, lc, r[0], r[1]) : '',
    });
  });
  ctx.problems.sort((a, b) => a.line - b.line || a.col - b.col);
  return { cases: out, problems: ctx.problems };
}

/** The YAML text of one list item, dedented, for display. */
function dedentItem(text: string, lc: LineCounter, start: number, end: number): string {
  const lineStart = text.lastIndexOf('\n', start - 1) + 1;
  const col = lc.linePos(start).col - 1;
  const body = text.slice(lineStart, end).replace(/\s+$/, '');
  return body
    .split('\n')
    .map((l, i) => (i === 0 ? l.slice(col) : l.slice(Math.min(col, l.length - l.trimStart().length))))
    .join('\n');
}

/** Does a known entry apply to this libc? */
export function knownApplies(k: Known, libc: { name: string; version: string }): boolean {
  if (k.libc !== libc.name) return false;
  if (!k.versions) return true;
  return k.versions.split(',').every((cond) => {
    const m = /^(<=|>=|<|>|=)?\s*(.+)$/.exec(cond.trim());
    if (!m) return false;
    const c = compareVersions(libc.version, m[2]);
    switch (m[1] ?? '=') {
      case '<': return c < 0;
      case '<=': return c <= 0;
      case '>': return c > 0;
      case '>=': return c >= 0;
      default: return c === 0;
    }
  });
}

export { compareVersions } from './util.ts';
