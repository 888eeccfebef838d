// The case file schema, checked on the YAML syntax tree so every problem names file:line:col.
// One problem per line: `suites/python/stdio.yaml:14:5: cases[2].timeout: expected a duration like 2s`.

import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml';
import path from 'node:path';
import { compareVersions } from './util.ts';
import { LEVELS, RUNTIMES, FAIL_KINDS, type CaseDef, type Found, type Known, type RuntimeName, type Scope } from './types.ts';

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

const SCOPE_KEYS = { libc: false, versions: false, runtime_versions: false, fixed_in: false, verdict: true } as const;
const VERSION_RE = /^\d+(\.\d+)*$/;
const boundsCheck: Check = (v) => (String(v ?? '').split(',').every((s) => KNOWN_VERSIONS_RE.test(s.trim())) ? null : 'expected version bounds like "<2.40" or ">=1.2.2,<1.2.4"');

/**
 * An upstream source: a URL, a bug/issue/PR number (bug 12345, #1234, gh-84579, Bug #20670, PR #6103), a commit hash,
 * or a source file with a line (posix/fork.c:123). What only this project measured is not one.
 */
export const UPSTREAM_RE = /https?:\/\/\S+|\b(?:bug|bz|issue|pr|gh|bpo|feature|misc)[ #-]*#?\d{3,}|#\d{3,}|\b[0-9a-f]{7,40}\b|[\w./-]+\.(?:c|h|cc|cpp|py|rb|js|mjs|ts|S)(?::\d+|\b)/i;
export const LOCK_ID_RE = /^[a-z][a-z0-9_-]*:[\w./+-]+:[\w.>[\]-]+$/;

/** The lock ids `locks:` may name (the census catalogue), or null when no catalogue exists. Set by src/census. */
let lockCatalogue: (() => Set<string> | null) | null = null;
export function setLockCatalogue(f: () => Set<string> | null): void {
  lockCatalogue = f;
}

/** The scope of a known/found entry: libc and its versions, the runtime's versions, fixed_in, verdict. */
function scope(ctx: Ctx, kf: Map<string, Node | null>, kp: string): Scope | null {
  const ok = [
    !kf.has('libc') || check(ctx, kf.get('libc'), `${kp}.libc`, oneOf(['glibc', 'musl'])),
    check(ctx, kf.get('verdict'), `${kp}.verdict`, oneOf(['fail', ...FAIL_KINDS])),
    !kf.has('versions') || check(ctx, kf.get('versions'), `${kp}.versions`, boundsCheck),
    !kf.has('runtime_versions') || check(ctx, kf.get('runtime_versions'), `${kp}.runtime_versions`, boundsCheck),
    !kf.has('fixed_in') || check(ctx, kf.get('fixed_in'), `${kp}.fixed_in`, (v) => (VERSION_RE.test(String(v ?? '')) ? null : 'expected a version like 3.2 or 2.41')),
  ].every(Boolean);
  if (!ok) return null;
  if (kf.has('versions') && !kf.has('libc')) {
    report(ctx, kf.get('versions'), `${kp}.versions`, 'libc versions need a libc: add `libc: glibc` or `libc: musl` (runtime versions go in runtime_versions)');
    return null;
  }
  const sc: Scope = { verdict: val(kf.get('verdict')) as Scope['verdict'] };
  if (kf.has('libc')) sc.libc = String(val(kf.get('libc')));
  if (kf.has('versions')) sc.versions = String(val(kf.get('versions')));
  if (kf.has('runtime_versions')) sc.runtime_versions = String(val(kf.get('runtime_versions')));
  if (kf.has('fixed_in')) sc.fixed_in = String(val(kf.get('fixed_in')));
  return sc;
}

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
      expect_output: false, budget: true, timeout: true, requires: false, known: false, found: false, locks: false, library: false,
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
    const snip = { prelude: '', setup: '', loop: '', precondition: '', before_fork: '' };
    const lines = { prelude: 0, setup: 0, loop: 0, child: 0, precondition: 0, before_fork: 0 };
    if (f.has('parent')) {
      const pa = fields(ctx, f.get('parent'), `${p}.parent`, { threads: false, prelude: false, setup: false, loop: false, precondition: false, before_fork: false });
      if (pa) {
        if (pa.has('threads') && check(ctx, pa.get('threads'), `${p}.parent.threads`, intIn(0, 64))) threads = val(pa.get('threads')) as number;
        for (const k of ['prelude', 'setup', 'loop', 'precondition', 'before_fork'] as const) {
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
      if (!isSeq(kn)) report(ctx, kn, `${p}.known`, 'expected a list of { libc?, versions?, runtime_versions?, fixed_in?, verdict, cite }');
      else
        kn.items.forEach((k, j) => {
          const kp = `${p}.known[${j}]`;
          const kf = fields(ctx, k as Node, kp, { ...SCOPE_KEYS, cite: true });
          const sc = kf && scope(ctx, kf, kp);
          if (!kf || !sc) return;
          if (!check(ctx, kf.get('cite'), `${kp}.cite`, str)) return;
          const cite = String(val(kf.get('cite')));
          if (!UPSTREAM_RE.test(cite)) {
            report(ctx, kf.get('cite'), `${kp}.cite`, 'names no upstream source (a URL, a bug or issue number, a commit, or a source file:line): a failure only this project measured is a `found:` entry with `measured:`');
            return;
          }
          known.push({ ...sc, cite });
        });
    }
    const found: Found[] = [];
    if (f.has('found')) {
      const fn = f.get('found');
      if (!isSeq(fn)) report(ctx, fn, `${p}.found`, 'expected a list of { libc?, versions?, runtime_versions?, verdict, measured, report? }');
      else
        fn.items.forEach((k, j) => {
          const kp = `${p}.found[${j}]`;
          const kf = fields(ctx, k as Node, kp, { ...SCOPE_KEYS, measured: true, report: false });
          const sc = kf && scope(ctx, kf, kp);
          if (!kf || !sc || !check(ctx, kf.get('measured'), `${kp}.measured`, str)) return;
          if (kf.has('report') && !check(ctx, kf.get('report'), `${kp}.report`, (v) => (typeof v === 'string' && /^findings\/[\w.+-]+\.md$/.test(v) ? null : 'expected a path like findings/<runtime>-<name>.md'))) return;
          found.push({ ...sc, measured: String(val(kf.get('measured'))), ...(kf.has('report') ? { report: String(val(kf.get('report'))) } : {}) });
        });
    }
    let locks: string[] = [];
    if (f.has('locks')) {
      const ln = f.get('locks');
      const v = val(ln);
      if (!Array.isArray(v) || !v.length || !v.every((x) => typeof x === 'string' && LOCK_ID_RE.test(x)))
        report(ctx, ln, `${p}.locks`, 'expected a list of lock ids like glibc:time/tzset:tzset_lock (libc:source path:variable; see `forkmatrix census`)');
      else {
        locks = v as string[];
        const ids = lockCatalogue?.();
        if (ids && isSeq(ln))
          ln.items.forEach((it, j) => {
            const id = String(val(it as Node));
            if (!ids.has(id)) {
              const near = [...ids].find((x) => x.endsWith(':' + id.split(':').at(-1)) && x.startsWith(id.split(':')[0] + ':'));
              report(ctx, it as Node, `${p}.locks[${j}]`, `unknown lock '${id}'${near ? ` (did you mean '${near}'?)` : ''}: the census catalogue (census/catalogue.json, \`forkmatrix census\`) has no such lock`);
            }
          });
      }
    }
    const library: Record<string, string> = {};
    if (f.has('library')) {
      const ln = f.get('library');
      const v = val(ln);
      if (v && typeof v === 'object' && !Array.isArray(v) && Object.entries(v).every(([k, x]) => /^[a-z][a-z0-9_]*$/.test(k) && typeof x === 'string' && x.trim()))
        Object.assign(library, v);
      else report(ctx, ln, `${p}.library`, 'expected a mapping of name: C source (lower-case names; each is built into lib<name>.so, path in $FM_LIB_<NAME>)');
    }
    if (ctx.problems.length > before || !runtime || !family) return;
    const r = (item as Node).range;
    out.push({
      runtime, family, id, key: `${runtime}/${family}/${id}`,
      title: String(val(f.get('title'))), level, cite, env, threads,
      prelude: snip.prelude, setup: snip.setup, loop: snip.loop, child, exit, expectOutput,
      forks, seconds, timeoutMs, requires, known, found, locks, library, file,
      precondition: snip.precondition, beforeFork: snip.before_fork,
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

/** Is `version` within bounds like "<2.40" or ">=1.2.2,<1.2.4"? */
export function inBounds(version: string, bounds: string): boolean {
  return bounds.split(',').every((cond) => {
    const m = /^(<=|>=|<|>|=)?\s*(.+)$/.exec(cond.trim());
    if (!m) return false;
    const c = compareVersions(version, m[2]);
    switch (m[1] ?? '=') {
      case '<': return c < 0;
      case '<=': return c <= 0;
      case '>': return c > 0;
      case '>=': return c >= 0;
      default: return c === 0;
    }
  });
}

/** The leading dotted number of a runtime version label: "3.11.7" -> "3.11.7", "1.44.2 (gcc 12.2.0)" -> "1.44.2". */
export function runtimeVersionNumber(v: string): string {
  return /\d+(?:\.\d+)*/.exec(v)?.[0] ?? v;
}

/**
 * Does a known/found entry apply to this cell? The libc scope (name, versions) must hold, and the runtime scope:
 * `runtime_versions`, or below `fixed_in` (a failure at or above the fixing version is a regression, not known).
 * A cell whose runtime version is unknown matches no runtime-scoped entry.
 */
export function scopeApplies(k: Scope, libc: { name: string; version: string } | null, runtimeVersion?: string): boolean {
  if (k.libc) {
    if (!libc || k.libc !== libc.name) return false;
    if (k.versions && !inBounds(libc.version, k.versions)) return false;
  }
  const rtBounds = k.runtime_versions ?? (k.fixed_in && (k.libc ? null : `<${k.fixed_in}`));
  if (k.fixed_in && k.libc && !k.runtime_versions && libc && compareVersions(libc.version, k.fixed_in) >= 0) return false;
  if (rtBounds) {
    if (!runtimeVersion || !/\d/.test(runtimeVersion)) return false;
    if (!inBounds(runtimeVersionNumber(runtimeVersion), rtBounds)) return false;
  }
  return true;
}

/** Does a known entry apply to this libc? (libc-only scope; kept for callers that have no runtime version) */
export function knownApplies(k: Scope, libc: { name: string; version: string }, runtimeVersion?: string): boolean {
  return scopeApplies(k, libc, runtimeVersion);
}

export { compareVersions } from './util.ts';
