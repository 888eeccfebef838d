// A small C reader for the census: enough structure to find lock objects, the functions that take them and the
// calls between functions, from a libc's (or runtime's) source as written. It is not a compiler: preprocessor
// conditionals are not evaluated (both branches are read), macros are not expanded except where the census asks
// (lock macros are matched by name). Everything it finds carries a file:line so a reader can check it.
// Aliases and macros are read by cmacros.ts (re-exported here).

export { aliases, expandName, macros } from './cmacros.ts';

/** Comments and string/char literal contents replaced by spaces; newlines kept (line numbers stay right). */
export function stripComments(src: string): string {
  const out: string[] = [];
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i];
    const d = src[i + 1];
    if (c === '/' && d === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      // a backslash-newline inside the comment still continues a #define around it
      for (let j = i; j < stop; j++) out.push(src[j] === '\n' ? '\n' : src[j] === '\\' && src[j + 1] === '\n' ? '\\' : ' ');
      i = stop;
    } else if (c === '/' && d === '/') {
      let j = i;
      while (j < n && src[j] !== '\n') {
        // a line comment continued with a backslash-newline goes on
        if (src[j] === '\\' && src[j + 1] === '\n') {
          out.push(' ', '\n');
          j += 2;
          continue;
        }
        out.push(' ');
        j++;
      }
      i = j;
    } else if (c === '"' || c === "'") {
      out.push(c);
      let j = i + 1;
      while (j < n && src[j] !== c && src[j] !== '\n') {
        if (src[j] === '\\' && j + 1 < n) {
          out.push(' ', src[j + 1] === '\n' ? '\n' : ' ');
          j += 2;
          continue;
        }
        out.push(' ');
        j++;
      }
      if (j < n) out.push(src[j]);
      i = j + 1;
    } else {
      out.push(c);
      i++;
    }
  }
  return out.join('');
}

/** Preprocessor lines (with their continuations) blanked; returns the code and the directives with their lines. */
export function splitPreprocessor(text: string): { code: string; directives: { line: number; text: string }[] } {
  const lines = text.split('\n');
  const directives: { line: number; text: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*#/.test(lines[i])) continue;
    const start = i;
    let t = lines[i];
    lines[i] = '';
    while (/\\\s*$/.test(t.split('\n').pop()!) && i + 1 < lines.length) {
      i++;
      t += '\n' + lines[i];
      lines[i] = '';
    }
    directives.push({ line: start + 1, text: t.replace(/\\\s*\n/g, ' ') });
  }
  return { code: lines.join('\n'), directives };
}

export interface CFunction {
  name: string;
  isStatic: boolean;
  /** 1-based line of the name */
  line: number;
  /** offsets of the body in the code text (from '{' to the matching '}') */
  start: number;
  end: number;
  body: string;
  /** the definition's text before the body (return type, name, parameters) */
  header: string;
}

export interface CBlock {
  /** struct/union tag or typedef name ('' when anonymous) */
  name: string;
  start: number;
  end: number;
}

export interface CFile {
  /** the code: comments, literals and preprocessor lines blanked */
  code: string;
  directives: { line: number; text: string }[];
  functions: CFunction[];
  /** struct and union bodies at file scope */
  structs: CBlock[];
  /** ranges of the code at file scope (outside every function and struct body) */
  lineOf(offset: number): number;
  /** depth-0 text (function and struct bodies blanked) */
  fileScope: string;
}

const KEYWORDS = new Set(['if', 'while', 'for', 'switch', 'return', 'sizeof', 'do', 'else', 'case', 'defined', '__typeof', 'typeof', '__attribute__', 'alignof', '_Alignof', '__alignof__', '__builtin_expect', 'asm', '__asm__']);

function matchBrace(code: string, open: number): number {
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    const c = code[i];
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return code.length - 1;
}

/** The function name a definition header ends with ("static int\nfoo (int x) __THROW"), or null. */
export function functionName(header: string): string | null {
  let h = header.trim();
  if (!h || /=/.test(h.replace(/\([^()]*\)/g, ''))) return null;
  if (/^(typedef\b|struct\s+\w*\s*$|union\s+\w*\s*$|enum\b)/.test(h)) return null;
  // strip trailing attributes and annotation macros: __attribute__ ((...)), __THROW, attribute_hidden, name(...) groups
  for (let guard = 0; guard < 8; guard++) {
    const before = h;
    h = h.replace(/\s*(__attribute__|__attribute|__nonnull|__wur|__attribute_noinline__)\s*\(\((?:[^()]|\([^()]*\))*\)\)\s*$/, '');
    h = h.replace(/\s+(__THROW|__THROWNL|attribute_hidden|internal_function|__wur|noreturn|_Noreturn|attribute_compat_text_section|__attribute_noinline__|attribute_relro|inhibit_loop_to_libcall|__nonnull\s*\([^()]*\))\s*$/, '');
    if (h === before) break;
  }
  if (!h.endsWith(')')) return null;
  // match the parameter list backwards
  let depth = 0;
  let i = h.length - 1;
  for (; i >= 0; i--) {
    if (h[i] === ')') depth++;
    else if (h[i] === '(') {
      depth--;
      if (depth === 0) break;
    }
  }
  if (i < 0) return null;
  const beforeParams = h.slice(0, i);
  // a name made by a macro: INTERNAL (REENTRANT_GETNAME) (params): returned as written, for expandName()
  const made = /([A-Za-z_]\w*\s*\((?:[^()]|\([^()]*\))*\))\s*$/.exec(beforeParams);
  if (made && !KEYWORDS.has(made[1].split(/\s|\(/)[0]) && beforeParams.slice(0, made.index).trim()) return made[1].replace(/\s+/g, ' ');
  const m = /([A-Za-z_]\w*)\s*$/.exec(beforeParams);
  if (!m || KEYWORDS.has(m[1])) return null;
  // `name (x)` with nothing before: a macro call at file scope, a definition only for glibc's libc_freeres_fn (name)
  if (!h.slice(0, m.index).trim()) {
    const inner = /^\s*([A-Za-z_]\w*)\s*$/.exec(h.slice(i + 1, h.length - 1));
    return /^libc_freeres_fn$/.test(m[1]) && inner ? inner[1] : null;
  }
  return m[1];
}

/** Parse a C text: functions (with bodies), struct bodies, the directives and the file-scope text. */
export function parseC(src: string): CFile {
  const { code, directives } = splitPreprocessor(stripComments(src));
  const lineStarts: number[] = [0];
  for (let i = 0; i < code.length; i++) if (code[i] === '\n') lineStarts.push(i + 1);
  const lineOf = (off: number): number => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= off) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const functions: CFunction[] = [];
  const structs: CBlock[] = [];
  const scope = code.split('');
  let boundary = 0;
  let i = 0;
  let parenDepth = 0;
  while (i < code.length) {
    const c = code[i];
    if (c === '(') parenDepth++;
    else if (c === ')') parenDepth = Math.max(0, parenDepth - 1);
    if (c === ';' && parenDepth === 0) {
      boundary = i + 1;
    } else if (c === '{') {
      const header = code.slice(boundary, i);
      if (/\bextern\s*"\s*"\s*$/.test(header)) {
        // extern "C" { ... }: its contents are at file scope
        boundary = i + 1;
        i++;
        continue;
      }
      const close = matchBrace(code, i);
      const name = parenDepth === 0 ? functionName(header) : null;
      if (name) {
        const at = header.lastIndexOf(name);
        functions.push({
          name, isStatic: /\bstatic\b/.test(header) || /^\s*libc_freeres_fn\b/.test(header), line: lineOf(boundary + Math.max(0, at)), start: i, end: close, body: code.slice(i, close + 1), header,
        });
      } else {
        const tag = /\b(struct|union)\s+([A-Za-z_]\w*)?\s*(?:__attribute__\s*\(\([^)]*\)\)\s*)?$/.exec(header);
        if (tag) {
          let nm = tag[2] ?? '';
          if (!nm) {
            const after = /^\s*}\s*([A-Za-z_]\w*)/.exec(code.slice(close, close + 200));
            if (after) nm = after[1];
          }
          if (!nm && /\btypedef\b/.test(header)) {
            const after = /^}\s*([A-Za-z_]\w*)\s*;/.exec(code.slice(close, close + 200).replace(/\s+/g, ' '));
            if (after) nm = after[1];
          }
          structs.push({ name: nm, start: i, end: close });
        }
      }
      // blank the block in the file-scope text, keeping newlines
      for (let j = i; j <= close; j++) if (scope[j] !== '\n') scope[j] = ' ';
      i = close + 1;
      if (name) boundary = i;
      continue;
    }
    i++;
  }
  return { code, directives, functions, structs, lineOf, fileScope: scope.join('') };
}

/** Names called in a body: `name (`, plus the function passed to call_function_static_weak / __libc_once. */
export function callsIn(body: string): Set<string> {
  const out = new Set<string>();
  for (const m of body.matchAll(/\b([A-Za-z_]\w*)\s*\(/g)) if (!KEYWORDS.has(m[1])) out.add(m[1]);
  for (const m of body.matchAll(/\bcall_function_static_weak\s*\(\s*([A-Za-z_]\w*)/g)) out.add(m[1]);
  for (const m of body.matchAll(/\b__libc_once\s*\(\s*\w+\s*,\s*([A-Za-z_]\w*)/g)) out.add(m[1]);
  return out;
}

/**
 * The first argument of the call that starts at `open` (the '(' offset): text up to the matching ',' or ')'; for an
 * unclosed call, `unclosed` when given, else the rest of the text.
 */
export function firstArg(text: string, open: number, unclosed?: string): string {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') {
      depth--;
      if (depth === 0) return text.slice(open + 1, i).trim();
    } else if (c === ',' && depth === 1) return text.slice(open + 1, i).trim();
  }
  return unclosed ?? text.slice(open + 1).trim();
}

/**
 * The object a lock expression names: its last member or variable name, and whether it is a member access.
 * `GL(dl_load_lock)` -> _dl_load_lock (the rtld_global member); `ar_ptr->mutex` -> mutex (member);
 * `&lock` -> lock; `*((_IO_lock_t *) _IO_iter_file(i)->_lock)` -> _lock (member).
 */
export function lockTarget(expr: string): { name: string; member: boolean } | null {
  let e = expr.replace(/\s+/g, ' ').trim();
  const gl = /^&?\s*GLR?O?\s*\(\s*(\w+)\s*\)$/.exec(e);
  if (gl) return { name: '_' + gl[1], member: true };
  e = e.replace(/\[[^\]]*\]/g, '');
  const m = /((?:->|\.)\s*)?([A-Za-z_]\w*)\s*\)*\s*$/.exec(e);
  if (!m) return null;
  return { name: m[2], member: !!m[1] };
}
