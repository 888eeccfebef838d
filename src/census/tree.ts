// The census engine's view of a source tree: files read and parsed once, the include graph among .c files (a
// template or part included by another), the headers a file includes, and the translation-unit roots.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseC, type CFile } from './cparse.ts';
import type { Dialect } from './engine-types.ts';

export function sourceTree(root: string, d: Dialect) {
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
  return { read, parse, all, allC, relevant, includedBy, partsOf, headersOf, headersOf1, roots, rootSet };
}

export type SourceTree = ReturnType<typeof sourceTree>;
