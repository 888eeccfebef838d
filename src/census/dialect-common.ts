// What the census dialects share: a filtered walk of a source tree, and lock definitions and operations found by
// regular expressions (with the struct or function they sit in).

import { readdirSync } from 'node:fs';
import path from 'node:path';
import { firstArg, type CFile } from './cparse.ts';
import type { RawDef, RawOp } from './engine-types.ts';

export function walk(root: string, dir: string, keep: (rel: string, isDir: boolean) => boolean, out: string[] = []): string[] {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(path.join(root, dir), { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) {
      if (keep(rel, true)) walk(root, rel, keep, out);
    } else if (/\.[ch]$/.test(e.name) && keep(rel, false)) out.push(rel);
  }
  return out;
}

/** Offsets inside function bodies (where a declaration is a local, not a lock object of the library). */
function inFunction(f: CFile, off: number): boolean {
  return f.functions.some((fn) => off > fn.start && off < fn.end);
}
/** The innermost struct (or union) whose body holds the offset: a nested struct's own tag when it has one. */
function structAt(f: CFile, off: number, fieldPaths = false): string | null {
  const s = f.structs.find((b) => off > b.start && off < b.end);
  if (!s) return null;
  const stack: string[] = [s.name || '(anonymous)'];
  const body = f.code.slice(s.start + 1, off);
  for (const m of body.matchAll(/\b(?:struct|union)\s+(\w+)?\s*\{|\{|\}/g)) {
    if (m[0] === '}') stack.length > 1 && stack.pop();
    else if (m[0] === '{') stack.push(stack[stack.length - 1]);
    else if (m[1]) stack.push(m[1]);
    else if (!fieldPaths) stack.push(stack[stack.length - 1]);
    else {
      // an anonymous struct member: outer.field (CPython's _PyRuntimeState: interpreters.mutex, xidregistry.mutex)
      const open = s.start + 1 + (m.index ?? 0) + m[0].length - 1;
      let depth = 0;
      let close = open;
      for (; close < f.code.length; close++) {
        if (f.code[close] === '{') depth++;
        else if (f.code[close] === '}' && --depth === 0) break;
      }
      const field = /^}\s*(\w+)/.exec(f.code.slice(close, close + 200))?.[1];
      stack.push(field ? `${stack[stack.length - 1]}.${field}` : stack[stack.length - 1]);
    }
  }
  return stack[stack.length - 1];
}

/** The function whose body holds the offset (a function-local static lock is still one object of the library). */
function functionAt(f: CFile, off: number): string | null {
  return f.functions.find((fn) => off > fn.start && off < fn.end)?.name ?? null;
}

export function defsBy(f: CFile, patterns: { re: RegExp; kind: string; nameGroup: number; classGroup?: number; ptrGroup?: number }[], fieldPaths = false): RawDef[] {
  const out: RawDef[] = [];
  for (const p of patterns) {
    for (const m of f.code.matchAll(p.re)) {
      const off = m.index ?? 0;
      const cls = p.classGroup != null ? (m[p.classGroup] ?? '') : '';
      if (/\bextern\b/.test(cls)) continue;
      if (inFunction(f, off)) {
        // only a function-local static is an object of the library (a local lock is the caller's own)
        const stmt = f.code.slice(Math.max(f.code.lastIndexOf(';', off), f.code.lastIndexOf('{', off)) + 1, off + m[0].length);
        if (!/\bstatic\b/.test(cls) && !/\bstatic\b/.test(stmt)) continue;
        out.push({ name: m[p.nameGroup], struct: null, kind: p.kind, offset: off, fn: functionAt(f, off) ?? undefined });
        continue;
      }
      // a declaration whose statement starts with extern or typedef is no definition
      const stmtStart = Math.max(f.code.lastIndexOf(';', off), f.code.lastIndexOf('{', off), f.code.lastIndexOf('}', off)) + 1;
      const lead = f.code.slice(stmtStart, off);
      if (/\b(extern|typedef)\b/.test(lead) || /\(\s*$/.test(lead) || /,\s*$/.test(lead.trim() ? lead : '')) continue;
      const struct = structAt(f, off, fieldPaths);
      const isPtr = p.ptrGroup != null && !!m[p.ptrGroup];
      if (isPtr && !struct) continue; // a pointer variable is no lock object; a pointer member names each object's lock
      out.push({ name: m[p.nameGroup], struct: struct === '(anonymous)' ? null : struct, kind: isPtr ? `${p.kind} (each object's)` : p.kind, offset: off });
    }
  }
  return out;
}

export function opsBy(body: string, specs: { re: RegExp; op: 'take' | 'reset'; kind: string; struct?: string; expr?: (m: RegExpMatchArray) => string; quiet?: boolean }[]): RawOp[] {
  const out: RawOp[] = [];
  for (const s of specs) {
    for (const m of body.matchAll(s.re)) {
      const off = m.index ?? 0;
      let expr: string;
      if (s.expr) expr = s.expr(m);
      else {
        const open = body.indexOf('(', off + m[0].length - 1);
        expr = firstArg(body, open, '');
      }
      out.push({ op: s.op, expr, kind: s.kind, offset: off, struct: s.struct, quiet: s.quiet });
    }
  }
  return out;
}
