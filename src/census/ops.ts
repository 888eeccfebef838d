// Every lock operation of every function of the units (written directly, through a macro of the unit, or as a
// call of a lock function), resolved to its definitions; and the calls a function body makes.

import { expandName, macros } from './cmacros.ts';
import { callsIn } from './cparse.ts';
import type { Def, Dialect, Unit, UnitFunction } from './engine-types.ts';
import type { LockDefinitions } from './defs.ts';
import type { SourceTree } from './tree.ts';
import type { TranslationUnits } from './units.ts';
import type { lockResolver } from './resolve.ts';

export interface Op { def: Def; unit: Unit; fn: string; op: 'take' | 'reset'; where: string }

export function lockOps(t: SourceTree, tu: TranslationUnits, ds: LockDefinitions, rs: ReturnType<typeof lockResolver>, d: Dialect) {
  const { parse } = t;
  const { units } = tu;
  const { globalDefs } = ds;
  const { resolve, resolveKnown } = rs;
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
  // ---- every lock operation
  const ops: Op[] = [];
  const unresolved: string[] = [];
  const fnOps = new Map<string, { def: Def; op: 'take' | 'reset'; where: string }[]>(); // key unit|fn
  const opsOf = (u: Unit, fn: UnitFunction) => {
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
  return { ops, unresolved, opsOf, callsOf };
}

export type LockOps = ReturnType<typeof lockOps>;
