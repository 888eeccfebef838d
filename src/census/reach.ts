// Public reach: the exported functions of a unit that take a lock directly or through functions of the unit, plus
// one hop: exported functions of other units that call an internal function reaching it (`via`).

import type { Unit } from './engine-types.ts';
import type { LockOps } from './ops.ts';
import type { SourceTree } from './tree.ts';
import type { TranslationUnits } from './units.ts';

export type Reach = Map<string, { public: Set<string>; via: Set<string>; takers: Set<string>; internal: Set<string> }>;

export function publicReach(t: SourceTree, tu: TranslationUnits, os: LockOps): Reach {
  const { read, roots } = t;
  const { makeUnit } = tu;
  const { ops, callsOf } = os;
  // ---- public reach
  const reach: Reach = new Map();
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
  return reach;
}
