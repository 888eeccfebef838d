// The census dialect of CPython.
//
// CPython (3.11): PyThread_type_lock objects; taken by PyThread_acquire_lock*, re-initialised by
// _PyThread_at_fork_reinit. fork handling: what PyOS_BeforeFork acquires (taken) and what PyOS_AfterFork_Child
// re-initialises (reset). Public: the C API (Py[A-Z]*, not static) and Argument Clinic implementations (*_impl:
// what Python code calls).

import { defsBy, opsBy, walk } from './dialect-common.ts';
import type { Dialect } from './engine-types.ts';

export const pythonDialect: Dialect = {
  libc: 'python',
  files(root) {
    return walk(root, '', (rel, isDir) => {
      const top = rel.split('/')[0];
      if (!['Python', 'Modules', 'Objects', 'Parser', 'Include'].includes(top)) return false;
      if (isDir) return !/(^|\/)(tests?|_decimal\/libmpdec|expat|_ctypes\/libffi\w*|cjkcodecs)$/.test(rel);
      return !/(^|\/)(_test\w*|xx\w*|_xxtest\w*)\.c$/.test(rel);
    });
  },
  relevant: (t) => /PyThread_type_lock|PyThread_acquire_lock|_PyThread_at_fork_reinit/.test(t),
  selectRoots: (roots) => roots.filter((r) => r.endsWith('.c')).sort(),
  patternDefs(f) {
    return defsBy(f, [{ re: /\bPyThread_type_lock\s+(\w+)\s*(?=[;=\[,])/g, kind: 'PyThread_type_lock', nameGroup: 1 }], true);
  },
  ops(body) {
    return opsBy(body, [
      { re: /\bPyThread_acquire_lock(?:_timed)?\s*\(/g, op: 'take', kind: 'PyThread_type_lock' },
      { re: /\b_PyThread_at_fork_reinit\s*\(/g, op: 'reset', kind: 'PyThread_type_lock' },
    ]);
  },
  includeDirs: ['Include', 'Include/internal', 'Include/cpython', 'Python', 'Modules'],
  publicName: (n, isStatic) => (!isStatic && /^Py[A-Z]/.test(n)) || (isStatic && /_impl$/.test(n)),
  fork: {
    fn: 'PyOS_BeforeFork', files: ['Modules/posixmodule.c'],
    also: [{ fn: 'PyOS_AfterFork_Child', files: ['Modules/posixmodule.c'], counts: 'reset' }],
  },
};
