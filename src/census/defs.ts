// Lock definitions: the objects a dialect's patterns declare (file scope, function-local statics, struct members),
// and the discovery of an object found only through its use (its declaration in the unit, a header, or any unit).

import path from 'node:path';
import type { Def, Dialect, Unit } from './engine-types.ts';
import type { SourceTree } from './tree.ts';
import type { TranslationUnits } from './units.ts';

export function lockDefinitions(t: SourceTree, tu: TranslationUnits, d: Dialect) {
  const { read, parse, all, relevant, includedBy, partsOf, headersOf, roots, rootSet } = t;
  const { units, makeUnit } = tu;
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
  return { defs, display, addDef, byName, discover, globalDefs, globalDiscover };
}

export type LockDefinitions = ReturnType<typeof lockDefinitions>;
