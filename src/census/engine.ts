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
//
// The steps, each in its own module: tree.ts (files, includes, roots), units.ts (translation units), defs.ts (lock
// definitions), resolve.ts (a lock expression to its definitions), ops.ts (every lock operation), reach.ts (public
// reach), fork.ts (fork()'s handling). The types are in engine-types.ts.

import path from 'node:path';
import { lockDefinitions } from './defs.ts';
import type { CensusLock, CensusResult, Dialect, LockStatus } from './engine-types.ts';
import { forkHandling } from './fork.ts';
import { lockOps } from './ops.ts';
import { publicReach } from './reach.ts';
import { lockResolver } from './resolve.ts';
import { sourceTree } from './tree.ts';
import { translationUnits } from './units.ts';

export type { CensusLock, CensusResult, Dialect, LockStatus, RawDef, RawOp } from './engine-types.ts';

const rel = (p: string) => p.split(path.sep).join('/');

export function runCensusEngine(root: string, d: Dialect): CensusResult {
  const tree = sourceTree(root, d);
  const tu = translationUnits(tree, d);
  const ds = lockDefinitions(tree, tu, d);
  const ops = lockOps(tree, tu, ds, lockResolver(tree, ds, d), d);
  const reach = publicReach(tree, tu, ops);
  const { status, forkFile } = forkHandling(tree, tu, ds, ops, d);
  const { all } = tree;
  const { units } = tu;
  const { defs, display } = ds;
  const { unresolved } = ops;

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
