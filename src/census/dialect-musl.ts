// The census dialect of musl.
//
// musl: every object passed to LOCK()/__lock(), musl's internal pthread mutexes and rwlocks, a FILE's own lock
// (FLOCK/__lockfile), the objects fork()'s atfork_locks table points to (__*_lockptr), and __thread_list_lock
// (__tl_lock). Only src/ and ldso/ for x86_64, the configured malloc (Makefile MALLOC_DIR).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { defsBy, opsBy, walk } from './dialect-common.ts';
import type { Dialect } from './engine-types.ts';

const MUSL_OTHER_ARCHES = new Set(['aarch64', 'arm', 'i386', 'm68k', 'microblaze', 'mips', 'mips64', 'mipsn32', 'or1k', 'powerpc', 'powerpc64', 'riscv32', 'riscv64', 's390x', 'sh', 'x32', 'loongarch64']);

export const muslDialect: Dialect = {
  libc: 'musl',
  files(root) {
    let mallocDir = 'mallocng';
    try {
      mallocDir = /^MALLOC_DIR\s*=\s*(\S+)/m.exec(readFileSync(path.join(root, 'Makefile'), 'utf8'))?.[1] ?? mallocDir;
    } catch {
      /* the default */
    }
    const keep = (rel: string, isDir: boolean) => {
      const parts = rel.split('/');
      if (!['src', 'ldso'].includes(parts[0])) return false;
      if (parts.some((p) => MUSL_OTHER_ARCHES.has(p))) return false;
      if (isDir && parts[0] === 'src' && parts[1] === 'malloc' && parts.length === 3 && parts[2] !== mallocDir) return false;
      return true;
    };
    return [...walk(root, 'src', keep), ...walk(root, 'ldso', keep)];
  },
  relevant: (t) => /\bLOCK\s*\(|\b__lock\s*\(|pthread_(mutex|rwlock)_|_lockptr|__tl_lock|\bFLOCK\s*\(|__lockfile\s*\(/.test(t),
  selectRoots(roots) {
    const set = new Set(roots);
    // src/dir/x86_64/name.c replaces src/dir/name.c
    return roots.filter((r) => !set.has(`${path.posix.dirname(r)}/x86_64/${path.posix.basename(r)}`)).sort();
  },
  patternDefs(f) {
    return defsBy(f, [
      { re: /\b(?:static\s+)?(?:hidden\s+)?volatile\s+int\s+(\w+)\s*\[\s*[12]\s*\]/g, kind: 'LOCK', nameGroup: 1 },
      { re: /\bpthread_(?:mutex|rwlock)_t\s+(\w+)\s*(?=[;=\[,])/g, kind: 'pthread (internal)', nameGroup: 1 },
      { re: /\bvolatile\s+int\s+(lock)\s*;/g, kind: 'FILE lock (each stream\'s)', nameGroup: 1 },
    ]).filter((x) => !x.struct || x.kind.startsWith('FILE') ? (x.kind.startsWith('FILE') ? x.struct === '_IO_FILE' : true) : true);
  },
  ops(body) {
    return opsBy(body, [
      { re: /\b(?:LOCK|__lock)\s*\(/g, op: 'take', kind: 'LOCK' },
      { re: /\b(?:__)?pthread_mutex_(?:lock|trylock|timedlock)\s*\(/g, op: 'take', kind: 'pthread (internal)' },
      { re: /\b(?:__)?pthread_rwlock_(?:rdlock|wrlock|tryrdlock|trywrlock|timedrdlock|timedwrlock)\s*\(/g, op: 'take', kind: 'pthread (internal)' },
      { re: /\b(?:FLOCK|__lockfile)\s*\(/g, op: 'take', kind: 'FILE lock', struct: '_IO_FILE', expr: () => 'f->lock' },
      { re: /\b(\w+)\s*\[\s*0\s*\]\s*=\s*0\s*;/g, op: 'reset', kind: 'LOCK', expr: (m) => m[1], quiet: true },
      { re: /\b(\w+)\s*=\s*\(\s*pthread_(?:rwlock|mutex)_t\s*\)\s*PTHREAD_/g, op: 'reset', kind: 'pthread (internal)', expr: (m) => m[1], quiet: true },
      { re: /\b(__thread_list_lock)\s*=\s*0\s*;/g, op: 'reset', kind: 'thread list', expr: (m) => m[1], quiet: true },
    ]).filter((o) => !/^\*/.test(o.expr) || o.op !== 'take' || !/atfork_locks/.test(o.expr));
  },
  includeDirs: ['src/internal', 'src/include', 'include', 'arch/x86_64', 'arch/generic'],
  headerInlines: true,
  lockFunctions: { __tl_lock: { target: '__thread_list_lock', op: 'take' } },
  ignoreStruct: /^__pthread_|^pthread_|_t$/,
  fork: { fn: 'fork', files: ['src/process/fork.c'] },
  forkExtras(read, files, lockIn) {
    const fork = read('src/process/fork.c') ?? '';
    const table = /atfork_locks\s*\[\s*\]\s*=\s*\{([^}]*)\}/.exec(fork)?.[1] ?? '';
    const ptrs = [...table.matchAll(/&\s*(\w+)/g)].map((m) => m[1]);
    const resetPtrs = [...fork.matchAll(/\b(__\w+_lockptr)\s*\[\s*0\s*\]\s*=\s*0/g)].map((m) => m[1]);
    const out: { id: string; status: 'taken' | 'reset'; how: string }[] = [];
    const targets = new Map<string, { file: string; name: string }>();
    for (const f of files) {
      if (!f.endsWith('.c')) continue;
      const t = read(f) ?? '';
      if (!t.includes('_lockptr')) continue;
      for (const m of t.matchAll(/\*\s*const\s+(__\w+_lockptr)\s*=\s*&?\s*(\w+)\s*;/g)) targets.set(m[1], { file: f, name: m[2] });
    }
    for (const p of ptrs) {
      const t = targets.get(p);
      const id = t && lockIn(t.file, t.name);
      if (id) out.push({ id, status: 'taken', how: `taken by fork() through atfork_locks[] (&${p}, src/process/fork.c); the child sets it to 0` });
    }
    for (const p of resetPtrs) {
      const t = targets.get(p);
      const id = t && lockIn(t.file, t.name);
      if (id) out.push({ id, status: 'reset', how: `the child of fork() zeroes it (${p}[0] = 0, src/process/fork.c)` });
    }
    return out;
  },
};
