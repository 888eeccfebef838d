// The census engine: from a source tree and a dialect (glibc, musl, a runtime), every internal lock object, the
// functions that take it, the public functions that reach it, and what fork() does with it.
//
// How "public functions that reach it" is computed (an approximation, and said so in every output):
//   1. within the translation unit (the .c file plus the .c files it #includes): the exported functions that take
//      the lock directly or through any function of that unit (static helpers included);
//   2. one hop across files: public functions elsewhere that call an internal (non-static, non-public) function of
//      step 1 directly (`via`).
// Exported means: not static, and the name or one of its aliases (weak_alias, strong_alias, versioned_symbol)
// does not start with '_'.
//
// How fork()'s handling is computed: the fork function's body and every function it calls, to a depth of 4, found
// by name in the tree; a lock acquired on that path is `taken` (fork holds it across), one only re-initialised is
// `reset` (the child re-initialises it), any other is `none`. Each status names the call chain it comes from.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { aliases, callsIn, expandName, lockTarget, macros, parseC, type CFile, type CFunction } from './cparse.ts';

export type LockStatus = 'reset' | 'taken' | 'none';

export interface RawDef {
  /** variable name, or member name when struct is set */
  name: string;
  struct: string | null;
  kind: string;
  offset: number;
  /** a function-local static: the function's name */
  fn?: string;
}

export interface RawOp {
  op: 'take' | 'reset';
  /** the lock expression as written (first argument) */
  expr: string;
  /** what kind of lock the operation implies (for objects found through their use) */
  kind: string;
  offset: number;
  /** the member belongs to this struct (e.g. a FILE's lock) */
  struct?: string;
  /** an unresolved expression is no problem worth reporting (a guess at an assignment) */
  quiet?: boolean;
}

export interface Dialect {
  libc: string;
  /** every candidate source file (relative to root, '/'-separated): .c and .h */
  files(root: string): string[];
  /** quick text test: may this file define or use a lock? */
  relevant(text: string): boolean;
  /** the TU roots actually built (e.g. glibc's sysdeps override: the most specific file of a name wins) */
  selectRoots(roots: string[]): string[];
  /** lock objects declared by their lock macro or type (file scope and struct members) */
  patternDefs(f: CFile): RawDef[];
  /** lock operations in a function body */
  ops(body: string): RawOp[];
  /** the fork function and the file that defines it; `after` (a runtime's after-fork-in-the-child hook) counts only
   * re-initialisations, `before` only acquisitions */
  fork: { fn: string; files: string[]; also?: { fn: string; files: string[]; counts: 'take' | 'reset' }[] };
  /** which names are public (default: not static and not starting with '_') */
  publicName?(name: string, isStatic: boolean): boolean;
  /** extra fork handling the call walk cannot see (musl's atfork_locks table) */
  forkExtras?(read: (rel: string) => string | null, files: string[], lockIn: (file: string, name: string) => string | null): { id: string; status: 'taken' | 'reset'; how: string }[];
  /** functions the fork walk does not enter (error paths) */
  forkSkip?: string[];
  /** other names a function is known by (macros in headers the census does not read) */
  nameVariants?(name: string): string[];
  /** read static inline functions of the headers a unit includes, and functions a file-scope macro defines, as part of
   * the unit (musl's mallocng: rdlock() in glue.h, __malloc_atfork in its LOCK_OBJ_DEF macro) */
  headerInlines?: boolean;
  /** structs with one object only: a member lock is named by its member name alone */
  singletonStructs?: string[];
  /** structs that are a lock type's own implementation, not objects holding a lock */
  ignoreStruct?: RegExp;
  /** where `#include "x.h"` is searched besides the including file's directory */
  includeDirs?: string[];
  /** functions whose name is the lock operation (musl __tl_lock takes __thread_list_lock) */
  lockFunctions?: Record<string, { target: string; op: 'take' | 'reset' }>;
}

export interface CensusLock {
  id: string;
  name: string;
  /** where the object is defined (file:line) */
  file: string;
  line: number;
  kind: string;
  status: LockStatus;
  /** how fork handles it: the operation and the call chain from the fork function */
  how: string[];
  /** functions that take it: file:function */
  takers: string[];
  /** exported functions that reach it in the same translation unit */
  public: string[];
  /** exported functions elsewhere that reach it through an internal function, "name (file) -> internal" */
  via: string[];
}

export interface CensusResult {
  locks: CensusLock[];
  /** lock operations whose object could not be resolved (expression as written, file:line) */
  unresolved: string[];
  files: number;
  units: number;
  forkFile: string | null;
}

interface Unit {
  root: string;
  parts: string[];
  /** names a call may be written as: object-like macros of the unit (DCIGETTEXT -> __dcigettext) */
  rename?: Map<string, string>;
  functions: (CFunction & { part: string; fullName: string; publicNames: string[] })[];
}

interface Def {
  id: string;
  name: string;
  struct: string | null;
  part: string;
  /** the unit it belongs to (file scope) or null (struct members: a type) */
  unit: string | null;
  isStatic: boolean;
  kind: string;
  line: number;
  /** a function-local static: the function */
  fn?: string;
}

const isPublicName = (n: string) => /^[A-Za-z]/.test(n);
const rel = (p: string) => p.split(path.sep).join('/');

export function runCensusEngine(root: string, d: Dialect): CensusResult {
  const texts = new Map<string, string | null>();
  const read = (r: string): string | null => {
    if (!texts.has(r)) {
      try {
        texts.set(r, readFileSync(path.join(root, r), 'utf8'));
      } catch {
        texts.set(r, null);
      }
    }
    return texts.get(r)!;
  };
  const parsed = new Map<string, CFile>();
  const parse = (r: string): CFile => {
    let f = parsed.get(r);
    if (!f) {
      f = parseC(read(r) ?? '');
      parsed.set(r, f);
    }
    return f;
  };
  const all = d.files(root);
  const allC = all.filter((f) => f.endsWith('.c'));
  const relevant = all.filter((f) => d.relevant(read(f) ?? ''));
  // include graph among .c files (templates and parts)
  const includes = new Map<string, string[]>();
  const includedBy = new Map<string, string[]>();
  const resolveInclude = (from: string, inc: string): string | null => {
    for (const cand of [path.posix.normalize(path.posix.join(path.posix.dirname(from), inc)), path.posix.normalize(inc)]) {
      if (!cand.startsWith('..') && read(cand) != null) return cand;
    }
    return null;
  };
  const incOf = (f: string): string[] => {
    let r = includes.get(f);
    if (!r) {
      r = [];
      for (const m of (read(f) ?? '').matchAll(/^\s*#\s*include\s*[<"]([^>"]+\.c)[>"]/gm)) {
        const got = resolveInclude(f, m[1]);
        if (got && got !== f) r.push(got);
      }
      includes.set(f, r);
    }
    return r;
  };
  for (const f of allC) {
    if (!/#\s*include\s*[<"][^>"]+\.c[>"]/.test(read(f) ?? '')) continue;
    for (const g of incOf(f)) includedBy.set(g, [...(includedBy.get(g) ?? []), f]);
  }
  const partsOf = (r: string): string[] => {
    const out: string[] = [];
    const walk = (f: string) => {
      if (out.includes(f) || out.length > 50) return;
      out.push(f);
      for (const g of incOf(f)) walk(g);
    };
    walk(r);
    return out;
  };
  const headerCache = new Map<string, string[]>();
  /** headers a file includes, two levels deep */
  const headersOf = (p: string): string[] => {
    let got = headerCache.get(p);
    if (!got) {
      const one = headersOf1(p);
      got = [...new Set([...one, ...one.flatMap(headersOf1)])];
      headerCache.set(p, got);
    }
    return got;
  };
  const headersOf1 = (p: string): string[] => {
    const out: string[] = [];
    for (const m of (read(p) ?? '').matchAll(/^\s*#\s*include\s*[<"]([^>"]+\.h)[>"]/gm)) {
      for (const cand of [path.posix.join(path.posix.dirname(p), m[1]), ...(d.includeDirs ?? []).map((dir) => path.posix.join(dir, m[1]))]) {
        if (read(cand) != null) {
          out.push(cand);
          break;
        }
      }
    }
    return out;
  };
  const roots = d.selectRoots(allC.filter((f) => !includedBy.has(f)));
  const rootSet = new Set(roots);
  // units that matter: a root that is relevant or includes a relevant part
  const relSet = new Set(relevant);
  const units = new Map<string, Unit>();
  const makeUnit = (r: string): Unit => {
    let u = units.get(r);
    if (u) return u;
    const parts = partsOf(r);
    const defsText = parts.map((p) => parse(p).directives).flat();
    const ms = macros(defsText);
    const als = new Map<string, string[]>();
    for (const p of parts) for (const [k0, v] of aliases(read(p) ?? '')) {
      const k = expandName(k0, ms).replace(/\s+/g, '');
      // a target is not expanded: glibc #undefs the name before the alias (setenv.c: #define setenv __setenv)
      als.set(k, [...(als.get(k) ?? []), ...v]);
    }
    const aliasClosure = (n: string): string[] => {
      const out = new Set<string>([n, ...(d.nameVariants?.(n) ?? [])]);
      for (let grew = true; grew; ) {
        grew = false;
        for (const x of [...out]) for (const y of als.get(x) ?? []) if (!out.has(y)) (out.add(y), (grew = true));
      }
      return [...out];
    };
    const extra: (CFunction & { part: string })[] = [];
    if (d.headerInlines) {
      for (const h of [...new Set(parts.flatMap(headersOf))]) for (const fn of parse(h).functions) if (fn.isStatic) extra.push({ ...fn, part: h });
      // functions a macro defines, where a part expands that macro at file scope
      for (const p of parts) {
        for (const h of [p, ...headersOf(p)]) {
          for (const dir of parse(h).directives) {
            const m = /^\s*#\s*define\s+(\w+)\s+(.*\{.*\}.*)$/s.exec(dir.text);
            if (!m || !new RegExp(`^\\s*${m[1]}\\s*;?\\s*$`, 'm').test(read(p) ?? '')) continue;
            for (const fn of parseC(m[2]).functions) extra.push({ ...fn, part: h, line: dir.line, fixedLine: dir.line } as CFunction & { part: string });
          }
        }
      }
    }
    const functions = [...parts.flatMap((p) => parse(p).functions.map((fn) => ({ ...fn, part: p }))), ...extra].map((fn) => {
      {
        const fullName = /[^\w]/.test(fn.name) || ms.has(fn.name) ? expandName(fn.name, ms).replace(/\s+/g, '') : fn.name;
        const names = aliasClosure(fullName);
        return { ...fn, fullName, publicNames: d.publicName ? names.filter((n) => d.publicName!(n, fn.isStatic)) : fn.isStatic ? [] : names.filter(isPublicName) };
      }
    });
    const rename = new Map<string, string>();
    for (const [k, v] of ms) if (!v.params && /^[A-Za-z_]\w*$/.test(v.body)) rename.set(k, expandName(k, ms).trim());
    u = { root: r, parts, functions, rename };
    units.set(r, u);
    return u;
  };
  for (const r of roots) if (partsOf(r).some((p) => relSet.has(p))) makeUnit(r);
  // a file that defines main() is a program (a test or benchmark left in the tree), not the library
  for (const [r, u] of units) if (u.functions.some((f) => f.fullName === 'main')) units.delete(r);

  // ---- definitions by pattern
  const defs = new Map<string, Def>();
  const idFor = (file: string, name: string) => `${d.libc}:${file.replace(/\.[ch]$/, '')}:${name}`;
  const display = (x: { struct: string | null; name: string }) => (x.struct && !d.singletonStructs?.includes(x.struct) ? `${x.struct}.${x.name}` : x.name);
  const addDef = (x: Omit<Def, 'id'>, idPath: string): Def => {
    const id = idFor(idPath, display(x));
    const got = defs.get(id);
    if (got) return got;
    const def = { ...x, id };
    defs.set(id, def);
    return def;
  };
  // a template (nss/getXXbyYY.c, or any .c file several files include) counts under its includer, where the object
  // lives; a part included once (malloc/arena.c into malloc.c) keeps its own path
  const partIdPath = (part: string, r: string) =>
    part === r || (!/XX/.test(path.posix.basename(part)) && (includedBy.get(part) ?? []).filter((x) => rootSet.has(x) || includedBy.has(x)).length <= 1) ? part : r;
  for (const u of units.values()) {
    for (const p of u.parts) {
      const f = parse(p);
      for (const x of d.patternDefs(f)) {
        const isStatic = /\bstatic\b/.test(f.fileScope.slice(Math.max(0, f.fileScope.lastIndexOf(';', x.offset)), x.offset + 80).split(';')[0] + f.code.slice(x.offset, x.offset + 60));
        if (x.struct && d.ignoreStruct?.test(x.struct)) continue;
        if (x.fn) {
          // a function-local static: `name` when no other lock of the file has that name, else name-function (no C name has a dash)
          const clash = d.patternDefs(f).filter((y) => y.name === x.name && !y.struct).length > 1;
          addDef({ name: clash ? `${x.name}-${x.fn}` : x.name, struct: null, part: p, unit: u.root, isStatic: true, kind: x.kind, line: f.lineOf(x.offset), fn: x.fn }, partIdPath(p, u.root));
        } else if (x.struct) addDef({ name: x.name, struct: x.struct, part: p, unit: null, isStatic: false, kind: x.kind, line: f.lineOf(x.offset) }, p);
        else addDef({ name: x.name, struct: null, part: p, unit: u.root, isStatic, kind: x.kind, line: f.lineOf(x.offset) }, partIdPath(p, u.root));
      }
    }
  }
  for (const h of relevant.filter((f) => f.endsWith('.h'))) {
    const f = parse(h);
    for (const x of d.patternDefs(f)) if (x.struct && !d.ignoreStruct?.test(x.struct)) addDef({ name: x.name, struct: x.struct, part: h, unit: null, isStatic: false, kind: x.kind, line: f.lineOf(x.offset) }, h);
  }

  // ---- resolving a lock expression to definitions
  const byName = (name: string, member: boolean) => [...defs.values()].filter((x) => x.name === name && !!x.struct === member);
  const declRe = (name: string) => new RegExp(`(^|[;}\\n])([^;{}()]*?)\\b${name.replace(/\$/g, '\\$')}\\s*(\\[[^\\]]*\\])?\\s*(=[^;]*)?;`, 'g');
  const discover = (u: Unit | null, name: string, member: boolean, kind: string, fromPart: string | null, wide = true): Def[] => {
    // an object found through its use: its declaration at file scope (or as a struct member)
    const candidates: string[] = u ? [...u.parts] : [];
    const out: Def[] = [];
    if (!member) {
      for (const p of candidates) {
        const f = parse(p);
        for (const m of f.fileScope.matchAll(declRe(name))) {
          if (/\bextern\b/.test(m[2]) || /\btypedef\b/.test(m[2]) || !/\w/.test(m[2])) continue;
          const off = (m.index ?? 0) + m[0].search(new RegExp(`\\b${name.replace(/\$/g, '\\$')}\\b`));
          out.push(addDef({ name, struct: null, part: p, unit: u!.root, isStatic: /\bstatic\b/.test(m[2]), kind, line: f.lineOf(off) }, partIdPath(p, u!.root)));
          break;
        }
        if (out.length) return out;
        // defined inside a macro (musl mallocng's LOCK_OBJ_DEF) used at file scope of this part
      }
      return out;
    }
    const files = [...new Set([...candidates, ...candidates.flatMap(headersOf), ...(wide ? relevant.filter((f) => f.endsWith('.h')) : [])])];
    for (const p of files) {
      const f = parse(p);
      for (const s of f.structs) {
        const body = f.code.slice(s.start, s.end);
        const m = new RegExp(`[;{]\\s*([^;{}()]*?)\\b${name}\\s*(\\[[^\\]]*\\])?\\s*;`).exec(body);
        if (m && s.name && !/\(/.test(m[1]) && !d.ignoreStruct?.test(s.name)) out.push(addDef({ name, struct: s.name, part: p, unit: null, isStatic: false, kind, line: f.lineOf(s.start + m.index) }, p));
      }
    }
    return out.length === 1 ? out : [];
  };
  const globalDefs = (name: string) => [...defs.values()].filter((x) => !x.struct && x.name === name && !x.isStatic);
  const globalFound = new Map<string, Def[]>();
  /** a non-static object of that name defined at file scope of any unit (or by a macro used at file scope) */
  const globalDiscover = (name: string, kind: string): Def[] => {
    const got = globalFound.get(name);
    if (got) return got;
    const out: Def[] = [];
    const re = new RegExp(`\\b${name}\\b`);
    const declared = new RegExp(`(\\bint|_t)\\s+(volatile\\s+)?${name}\\s*[\\[;=]`);
    for (const r of roots) {
      if (!partsOf(r).some((p) => declared.test(read(p) ?? ''))) continue;
      const u = makeUnit(r);
      const found = discover(u, name, false, kind, null).filter((x) => !x.isStatic);
      if (found.length) {
        out.push(found[0]);
        break;
      }
    }
    if (!out.length) {
      // defined inside a macro (musl mallocng's LOCK_OBJ_DEF: `int __malloc_lock[1];`) that a file expands at file scope
      for (const h of all) {
        const text = read(h) ?? '';
        if (!re.test(text)) continue;
        const m = new RegExp(`#\\s*define\\s+(\\w+)[^\\n]*(?:\\\\\\n[^\\n]*)*?\\b(?:volatile\\s+)?int\\s+${name}\\s*\\[`).exec(text);
        if (!m) continue;
        const user = roots.find((r) => new RegExp(`^\\s*${m[1]}\\s*;?\\s*$`, 'm').test(read(r) ?? ''));
        if (user) out.push(addDef({ name, struct: null, part: user, unit: user, isStatic: false, kind, line: (read(user) ?? '').slice(0, (read(user) ?? '').search(new RegExp(`^[ \\t]*${m[1]}\\b`, 'm'))).split('\n').length }, user));
        break;
      }
    }
    globalFound.set(name, out);
    return out;
  };
  // typedef struct S T; across the headers read (lazily, once)
  let typedefs: Map<string, string> | null = null;
  const typedefOf = (t: string): string | null => {
    if (!typedefs) {
      typedefs = new Map();
      for (const h of all) {
        if (!h.endsWith('.h')) continue;
        for (const m of (read(h) ?? '').matchAll(/\btypedef\s+struct\s+(\w+)\s+(\w+)\s*;/g)) if (!typedefs.has(m[2])) typedefs.set(m[2], m[1]);
      }
    }
    return typedefs.get(t) ?? null;
  };
  const structOfVar = (fnText: string, expr: string): string | null => {
    // only one level (v->m, v.m): in a chain (runtime->interpreters.mutex) the member belongs to the inner struct
    const one = /^\(?\s*&?\s*\(?\s*(\w+)\s*\)?\s*(?:->|\.)\s*\w+\s*\)?$/.exec(expr.replace(/\s+/g, ' ').trim());
    const v = one?.[1];
    if (!v) return null;
    const m = new RegExp(`(?:\\bstruct\\s+)?\\b(\\w+)\\s*\\*?\\s*(?:const\\s+)?\\b${v}\\s*[,;=)\\[]`).exec(fnText);
    if (!m || /^(return|const|volatile|unsigned|int|char|long|void)$/.test(m[1])) return null;
    return /\bstruct\s+\w+\s*\*?\s*(?:const\s+)?$/.test(fnText.slice(0, (m.index ?? 0) + m[0].indexOf(m[1]) + m[1].length)) ? m[1] : (typedefOf(m[1]) ?? m[1]);
  };
  const structCache = new Map<string, Def | null>();
  const discoverInStruct = (u: Unit, sname: string, member: string, kind: string): Def | null => {
    const k = `${sname}.${member}`;
    if (structCache.has(k)) return structCache.get(k)!;
    let out: Def | null = null;
    const re = new RegExp(`\\bstruct\\s+${sname}\\s*\\{`);
    for (const p of [...u.parts, ...u.parts.flatMap(headersOf), ...all.filter((f) => f.endsWith('.h'))]) {
      if (!re.test(read(p) ?? '') || d.ignoreStruct?.test(sname)) continue;
      const f = parse(p);
      for (const s of f.structs.filter((b) => b.name === sname)) {
        const body = f.code.slice(s.start, s.end);
        const m = new RegExp(`[;{]\\s*([^;{}()]*?)\\b${member}\\s*(\\[[^\\]]*\\])?\\s*;`).exec(body);
        if (m && !/\(/.test(m[1])) {
          out = addDef({ name: member, struct: sname, part: p, unit: null, isStatic: false, kind, line: f.lineOf(s.start + m.index + m[0].indexOf(member)) }, p);
          break;
        }
      }
      if (out) break;
    }
    structCache.set(k, out);
    return out;
  };
  const resolve = (u: Unit, part: string, expr: string, kind: string, struct?: string, fnName?: string, fnText?: string): Def[] => {
    const t = lockTarget(expr);
    if (!t) return [];
    if (!t.member && fnName) {
      const local = [...defs.values()].filter((x) => x.fn === fnName && x.unit === u.root && (x.name === t.name || x.name === `${t.name}-${fnName}`));
      if (local.length) return local.slice(0, 1);
    }
    if (t.member && struct) {
      const want = byName(t.name, true).filter((x) => x.struct === struct);
      if (want.length) return want.slice(0, 1);
    }
    if (!t.member) {
      const inUnit = byName(t.name, false).filter((x) => x.unit === u.root && !x.fn);
      if (inUnit.length) return [inUnit.find((x) => x.part === part) ?? inUnit[0]];
      const local = discover(u, t.name, false, kind, part);
      if (local.length) return local;
      const g = globalDefs(t.name);
      if (g.length) return g.slice(0, 1);
      return globalDiscover(t.name, kind);
    }
    const mem = byName(t.name, true);
    // the struct the expression's variable is declared as (DIR *dirp -> struct __dirstream; struct pthread *pd)
    const sname = fnText ? structOfVar(fnText, expr) : null;
    if (sname) {
      const want = mem.filter((x) => x.struct === sname);
      if (want.length) return want.slice(0, 1);
      const found = discoverInStruct(u, sname, t.name, kind);
      if (found) return [found];
    }
    const inUnit = mem.filter((x) => u.parts.includes(x.part));
    if (inUnit.length === 1) return inUnit;
    const nearFiles1 = new Set(u.parts.flatMap(headersOf1));
    const inNear1 = mem.filter((x) => nearFiles1.has(x.part));
    if (!inUnit.length && inNear1.length === 1) return inNear1;
    const nearFiles = new Set(u.parts.flatMap(headersOf));
    const inNear = mem.filter((x) => nearFiles.has(x.part));
    if (!inUnit.length && inNear.length === 1) return inNear;
    // a member of a struct the unit defines or includes
    const near = discover(u, t.name, true, kind, part, false);
    if (near.length) return near;
    const text = u.parts.map((p) => read(p) ?? '').join('\n');
    const named = (inUnit.length ? inUnit : mem).filter((x) => new RegExp(`\\b${x.struct}\\b`).test(text));
    if (named.length === 1) return named;
    if (mem.length === 1) return mem;
    if (!mem.length) return discover(u, t.name, true, kind, part);
    return [];
  };

  const lockMacroCache = new Map<string, Map<string, { params: string[] | null; body: string }>>();
  const lockMacros = (u: Unit) => {
    let m = lockMacroCache.get(u.root);
    if (!m) {
      // the definition that does take a lock wins over an empty one in another #if branch
      m = new Map();
      for (const dir of u.parts.flatMap((p) => parse(p).directives)) {
        for (const [k, v] of macros([dir])) if (!m.has(k) && d.ops(v.body).length > 0) m.set(k, v);
      }
      lockMacroCache.set(u.root, m);
    }
    return m;
  };
  const resolveKnown = (u: Unit, part: string, expr: string): Def[] => {
    const t = lockTarget(expr);
    if (!t) return [];
    const hits = byName(t.name, t.member).filter((x) => (t.member ? true : x.unit === u.root || !x.isStatic));
    const own = hits.filter((x) => x.unit === u.root);
    return own.length ? own.slice(0, 1) : hits.length === 1 ? hits : [];
  };

  // ---- every lock operation
  interface Op { def: Def; unit: Unit; fn: string; op: 'take' | 'reset'; where: string }
  const ops: Op[] = [];
  const unresolved: string[] = [];
  const fnOps = new Map<string, { def: Def; op: 'take' | 'reset'; where: string }[]>(); // key unit|fn
  const opsOf = (u: Unit, fn: Unit['functions'][number]) => {
    const k = `${u.root}|${fn.fullName}|${fn.part}|${fn.line}`;
    let r = fnOps.get(k);
    if (r) return r;
    r = [];
    const f = parse(fn.part);
    // lock operations written through a macro of the unit (glibc setenv.c: #define LOCK __libc_lock_lock (envlock))
    const lm = lockMacros(u);
    let body = fn.body;
    let viaMacro = false;
    if (lm.size && [...lm.keys()].some((k) => new RegExp(`\\b${k}\\b`).test(body))) {
      const expanded = expandName(body, lm);
      if (expanded !== body) (body = expanded), (viaMacro = true);
    }
    for (const o of d.ops(body)) {
      const where = viaMacro || (fn as { fixedLine?: number }).fixedLine ? `${fn.part}:${fn.line}${viaMacro ? ' (through a macro)' : ''}` : `${fn.part}:${f.lineOf(fn.start + o.offset)}`;
      // a guessed reset (an assignment) only counts for an object already known as a lock
      const got = o.quiet ? resolveKnown(u, fn.part, o.expr) : resolve(u, fn.part, o.expr, o.kind, o.struct, fn.fullName, fn.header + fn.body);
      if (!got.length && !o.quiet) unresolved.push(`${o.expr} (${where}, in ${fn.fullName})`);
      for (const def of got) r.push({ def, op: o.op, where });
    }
    for (const [name, lf] of Object.entries(d.lockFunctions ?? {})) {
      if (fn.fullName === name) continue;
      if (new RegExp(`\\b${name}\\s*\\(`).test(fn.body)) {
        const got = resolve(u, fn.part, lf.target, 'lock function');
        const def = got[0] ?? globalDefs(lf.target)[0];
        if (def) r.push({ def, op: lf.op, where: `${fn.part}:${fn.line} (${name})` });
      }
    }
    fnOps.set(k, r);
    return r;
  };
  for (const u of units.values()) for (const fn of u.functions) for (const o of opsOf(u, fn)) ops.push({ def: o.def, unit: u, fn: fn.fullName, op: o.op, where: o.where });

  const callsOf = (u: Unit, body: string): Set<string> => {
    const out = new Set<string>();
    for (const c of callsIn(body)) out.add(u.rename?.get(c) ?? c);
    return out;
  };

  // ---- public reach
  const reach = new Map<string, { public: Set<string>; via: Set<string>; takers: Set<string>; internal: Set<string> }>();
  const R = (id: string) => {
    let r = reach.get(id);
    if (!r) reach.set(id, (r = { public: new Set(), via: new Set(), takers: new Set(), internal: new Set() }));
    return r;
  };
  /** functions of unit u that reach any of `seeds` through calls within the unit */
  const closure = (u: Unit, seeds: Set<string>): Set<string> => {
    const reached = new Set(seeds);
    let grew = true;
    const calls = new Map(u.functions.map((f) => [f, callsOf(u, f.body)]));
    while (grew) {
      grew = false;
      for (const f of u.functions) {
        if (reached.has(f.fullName)) continue;
        for (const c of calls.get(f)!) if (reached.has(c)) {
          reached.add(f.fullName);
          grew = true;
          break;
        }
      }
    }
    return reached;
  };
  const takersBy = new Map<string, Map<Unit, Set<string>>>();
  for (const o of ops) {
    if (o.op !== 'take') continue;
    R(o.def.id).takers.add(`${o.unit.root}:${o.fn}`);
    const m = takersBy.get(o.def.id) ?? new Map<Unit, Set<string>>();
    m.set(o.unit, (m.get(o.unit) ?? new Set()).add(o.fn));
    takersBy.set(o.def.id, m);
  }
  const internalEntries = new Map<string, Set<string>>(); // entry name -> lock ids
  for (const [id, m] of takersBy) {
    for (const [u, seeds] of m) {
      const c = closure(u, seeds);
      for (const f of u.functions) {
        if (!c.has(f.fullName)) continue;
        for (const n of f.publicNames) R(id).public.add(n);
        if (!f.isStatic && !f.publicNames.length) {
          R(id).internal.add(f.fullName);
          internalEntries.set(f.fullName, (internalEntries.get(f.fullName) ?? new Set()).add(id));
        }
      }
    }
  }
  // one hop: public functions in other units that call an internal entry
  if (internalEntries.size) {
    const names = [...internalEntries.keys()].filter((n) => n.length > 3);
    const re = new RegExp(`\\b(${names.map((n) => n.replace(/\$/g, '\\$')).join('|')})\\s*\\(`);
    for (const r of roots) {
      if (!re.test(read(r) ?? '')) continue;
      const u = makeUnit(r);
      for (const f of u.functions) {
        if (!f.publicNames.length) continue;
        for (const c of callsOf(u, f.body)) {
          const ids = internalEntries.get(c);
          if (!ids) continue;
          if (u.functions.some((g) => g.fullName === c)) continue; // same unit: already counted
          for (const id of ids) for (const n of f.publicNames) R(id).via.add(`${n} (${r}) -> ${c}`);
        }
      }
    }
  }

  // ---- fork
  const status = new Map<string, { taken: string[]; reset: string[] }>();
  const S = (id: string) => {
    let s = status.get(id);
    if (!s) status.set(id, (s = { taken: [], reset: [] }));
    return s;
  };
  let forkFile: string | null = null;
  for (const entry of [{ ...d.fork, counts: 'both' as const }, ...(d.fork.also ?? [])]) {
    const forkUnitRoot = entry.files.map((ff) => roots.find((r) => r === ff) ?? roots.find((r) => partsOf(r).includes(ff))).find(Boolean) ?? null;
    if (!forkUnitRoot) continue;
    const fu = makeUnit(forkUnitRoot);
    const start = fu.functions.find((f) => f.fullName === entry.fn);
    if (start) {
      if (entry.counts === 'both') forkFile = start.part;
      const defIndex = new Map<string, string[]>(); // name -> roots defining it non-static (lazy)
      const findDef = (name: string): { u: Unit; f: Unit['functions'][number] } | null => {
        let rs = defIndex.get(name);
        if (!rs) {
          const re = new RegExp(`\\b${name}\\s*\\(`);
          rs = roots.filter((r) => partsOf(r).some((p) => re.test(read(p) ?? '') || (!!d.headerInlines && headersOf(p).some((h) => re.test(read(h) ?? '')))));
          defIndex.set(name, rs);
        }
        for (const r of rs) {
          const u = makeUnit(r);
          const f = u.functions.find((g) => g.fullName === name && !g.isStatic && !/^\s*\{\s*\}\s*$/.test(g.body));
          if (f) return { u, f };
        }
        return null;
      };
      // a static inline function of a header the unit includes (glibc sysdeps/nptl/fork.h: fork_system_setup_after_fork)
      const headerDef = (from: Unit, name: string): { u: Unit; f: Unit['functions'][number] } | null => {
        for (const h of from.parts.flatMap(headersOf)) {
          if (!new RegExp(`\\b${name}\\s*\\(`).test(read(h) ?? '')) continue;
          const hu: Unit = units.get(h) ?? { root: h, parts: [h], functions: parse(h).functions.map((fn) => ({ ...fn, part: h, fullName: fn.name, publicNames: [] })) };
          units.set(h, hu);
          const f = hu.functions.find((x) => x.fullName === name);
          if (f) return { u: hu, f };
        }
        return null;
      };
      const seen = new Set<string>();
      const walk = (u: Unit, f: Unit['functions'][number], chain: string[], depth: number) => {
        const key = `${u.root}|${f.fullName}`;
        if (seen.has(key) || depth > 4 || d.forkSkip?.includes(f.fullName)) return;
        seen.add(key);
        const here = [...chain, `${f.fullName} (${f.part}:${f.line})`];
        for (const o of opsOf(u, f)) {
          if (entry.counts !== 'both' && o.op !== entry.counts) continue;
          const s = S(o.def.id);
          (o.op === 'take' ? s.taken : s.reset).push(`${o.op === 'take' ? 'taken' : 're-initialised'} at ${o.where} in ${here.slice().reverse().join(' <- ')}`);
        }
        for (const c of callsOf(u, f.body)) {
          if (c === f.fullName) continue;
          const local = u.functions.find((g) => g.fullName === c && g.body.trim() !== '{}' && !/^\{\s*\}$/.test(g.body));
          if (local) walk(u, local, here, depth + 1);
          else {
            const g = findDef(c) ?? headerDef(u, c);
            if (g) walk(g.u, g.f, here, depth + 1);
          }
        }
      };
      walk(fu, start, [], 0);
    }
  }
  const lockIn = (file: string, name: string): string | null => {
    const hit = [...defs.values()].find((x) => !x.struct && x.name === name && x.part === file);
    if (hit) return hit.id;
    const r = roots.find((x) => partsOf(x).includes(file));
    return r ? (discover(makeUnit(r), name, false, 'lock', file)[0]?.id ?? null) : null;
  };
  for (const x of d.forkExtras?.(read, all, lockIn) ?? []) {
    const s = S(x.id);
    (x.status === 'taken' ? s.taken : s.reset).push(x.how);
  }

  // ---- assemble
  const locks: CensusLock[] = [...defs.values()]
    .map((x) => {
      const r = reach.get(x.id);
      const s = status.get(x.id);
      const st: LockStatus = s?.taken.length ? 'taken' : s?.reset.length ? 'reset' : 'none';
      return {
        id: x.id, name: display(x), file: x.part, line: x.line, kind: x.kind, status: st,
        how: s ? [...new Set([...s.taken, ...s.reset])].slice(0, 6) : [],
        takers: [...(r?.takers ?? [])].sort(), public: [...(r?.public ?? [])].sort(), via: [...(r?.via ?? [])].sort().slice(0, 40),
      };
    })
    .sort((a, b) => a.id.localeCompare(b.id));
  return { locks, unresolved: [...new Set(unresolved)].sort(), files: all.length, units: units.size, forkFile };
}

export { rel };
