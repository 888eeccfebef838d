// Translation units: a root .c file with the parts it includes, its functions with their full names (macros
// expanded) and public names (aliases), and, for some dialects, the static inline functions of its headers.

import { aliases, expandName, macros } from './cmacros.ts';
import { parseC, type CFunction } from './cparse.ts';
import type { Dialect, Unit } from './engine-types.ts';
import type { SourceTree } from './tree.ts';

const isPublicName = (n: string) => /^[A-Za-z]/.test(n);

/** The units that matter (a root that is relevant or includes a relevant part), and `makeUnit` for any other root. */
export function translationUnits(t: SourceTree, d: Dialect) {
  const { read, parse, relevant, partsOf, headersOf, roots } = t;
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
  return { units, makeUnit };
}

export type TranslationUnits = ReturnType<typeof translationUnits>;
