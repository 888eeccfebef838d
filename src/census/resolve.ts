// Resolving a lock expression as written (`&lock`, `fp->_lock`, `pd->lock`) to the definitions it names: a local
// static, a file-scope object of the unit or any unit, or a struct member through the variable's declared type.

import { lockTarget } from './cparse.ts';
import type { Def, Dialect, Unit } from './engine-types.ts';
import type { LockDefinitions } from './defs.ts';
import type { SourceTree } from './tree.ts';

export function lockResolver(t: SourceTree, ds: LockDefinitions, d: Dialect) {
  const { read, parse, all, headersOf, headersOf1 } = t;
  const { defs, addDef, byName, discover, globalDefs, globalDiscover } = ds;
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
  const resolveKnown = (u: Unit, part: string, expr: string): Def[] => {
    const t = lockTarget(expr);
    if (!t) return [];
    const hits = byName(t.name, t.member).filter((x) => (t.member ? true : x.unit === u.root || !x.isStatic));
    const own = hits.filter((x) => x.unit === u.root);
    return own.length ? own.slice(0, 1) : hits.length === 1 ? hits : [];
  };
  return { resolve, resolveKnown };
}
