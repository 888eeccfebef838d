// What fork() does with each lock: the fork function (and a runtime's before/after hooks) and every function it
// calls, 4 levels deep, found by name; a lock acquired on that path is taken, one only re-initialised is reset.

import type { Dialect, Unit, UnitFunction } from './engine-types.ts';
import type { LockDefinitions } from './defs.ts';
import type { LockOps } from './ops.ts';
import type { SourceTree } from './tree.ts';
import type { TranslationUnits } from './units.ts';

export function forkHandling(t: SourceTree, tu: TranslationUnits, ds: LockDefinitions, os: LockOps, d: Dialect) {
  const { read, parse, all, partsOf, headersOf, roots } = t;
  const { units, makeUnit } = tu;
  const { defs, discover } = ds;
  const { opsOf, callsOf } = os;
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
      const findDef = (name: string): { u: Unit; f: UnitFunction } | null => {
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
      const headerDef = (from: Unit, name: string): { u: Unit; f: UnitFunction } | null => {
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
      const walk = (u: Unit, f: UnitFunction, chain: string[], depth: number) => {
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
  return { status, forkFile };
}
