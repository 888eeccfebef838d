// What a lock is, how it is taken and where fork() lives, per libc: the census engine's dialects.
//
// glibc: objects declared with __libc_lock_define*, __libc_rwlock_define*, __rtld_lock_define* (and their types),
// _IO_lock_t, and `int X = LLL_LOCK_INITIALIZER` (lll locks); taken by __libc_lock_lock/trylock, the rwlock and
// rtld variants, _IO_lock_lock, _IO_acquire_lock/_IO_flockfile (a stream's own lock), lll_lock; re-initialised by
// the *_init/_initialize macros and assignments of the initialisers. Only the files an x86_64 Linux build compiles
// are read: sysdeps directories of that configuration, the most specific file of a name winning (glibc's sysdeps
// override), no tests, no programs (zic, localedef, nscd's daemon, ldconfig ...).
//
// musl: every object passed to LOCK()/__lock(), musl's internal pthread mutexes and rwlocks, a FILE's own lock
// (FLOCK/__lockfile), the objects fork()'s atfork_locks table points to (__*_lockptr), and __thread_list_lock
// (__tl_lock). Only src/ and ldso/ for x86_64, the configured malloc (Makefile MALLOC_DIR).

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { firstArg, type CFile } from './cparse.ts';
import type { Dialect, RawDef, RawOp } from './engine.ts';

function walk(root: string, dir: string, keep: (rel: string, isDir: boolean) => boolean, out: string[] = []): string[] {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(path.join(root, dir), { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) {
      if (keep(rel, true)) walk(root, rel, keep, out);
    } else if (/\.[ch]$/.test(e.name) && keep(rel, false)) out.push(rel);
  }
  return out;
}

/** Offsets inside function bodies (where a declaration is a local, not a lock object of the library). */
function inFunction(f: CFile, off: number): boolean {
  return f.functions.some((fn) => off > fn.start && off < fn.end);
}
/** The innermost struct (or union) whose body holds the offset: a nested struct's own tag when it has one. */
function structAt(f: CFile, off: number, fieldPaths = false): string | null {
  const s = f.structs.find((b) => off > b.start && off < b.end);
  if (!s) return null;
  const stack: string[] = [s.name || '(anonymous)'];
  const body = f.code.slice(s.start + 1, off);
  for (const m of body.matchAll(/\b(?:struct|union)\s+(\w+)?\s*\{|\{|\}/g)) {
    if (m[0] === '}') stack.length > 1 && stack.pop();
    else if (m[0] === '{') stack.push(stack[stack.length - 1]);
    else if (m[1]) stack.push(m[1]);
    else if (!fieldPaths) stack.push(stack[stack.length - 1]);
    else {
      // an anonymous struct member: outer.field (CPython's _PyRuntimeState: interpreters.mutex, xidregistry.mutex)
      const open = s.start + 1 + (m.index ?? 0) + m[0].length - 1;
      let depth = 0;
      let close = open;
      for (; close < f.code.length; close++) {
        if (f.code[close] === '{') depth++;
        else if (f.code[close] === '}' && --depth === 0) break;
      }
      const field = /^}\s*(\w+)/.exec(f.code.slice(close, close + 200))?.[1];
      stack.push(field ? `${stack[stack.length - 1]}.${field}` : stack[stack.length - 1]);
    }
  }
  return stack[stack.length - 1];
}

/** The function whose body holds the offset (a function-local static lock is still one object of the library). */
function functionAt(f: CFile, off: number): string | null {
  return f.functions.find((fn) => off > fn.start && off < fn.end)?.name ?? null;
}

function defsBy(f: CFile, patterns: { re: RegExp; kind: string; nameGroup: number; classGroup?: number; ptrGroup?: number }[], fieldPaths = false): RawDef[] {
  const out: RawDef[] = [];
  for (const p of patterns) {
    for (const m of f.code.matchAll(p.re)) {
      const off = m.index ?? 0;
      const cls = p.classGroup != null ? (m[p.classGroup] ?? '') : '';
      if (/\bextern\b/.test(cls)) continue;
      if (inFunction(f, off)) {
        // only a function-local static is an object of the library (a local lock is the caller's own)
        const stmt = f.code.slice(Math.max(f.code.lastIndexOf(';', off), f.code.lastIndexOf('{', off)) + 1, off + m[0].length);
        if (!/\bstatic\b/.test(cls) && !/\bstatic\b/.test(stmt)) continue;
        out.push({ name: m[p.nameGroup], struct: null, kind: p.kind, offset: off, fn: functionAt(f, off) ?? undefined });
        continue;
      }
      // a declaration whose statement starts with extern or typedef is no definition
      const stmtStart = Math.max(f.code.lastIndexOf(';', off), f.code.lastIndexOf('{', off), f.code.lastIndexOf('}', off)) + 1;
      const lead = f.code.slice(stmtStart, off);
      if (/\b(extern|typedef)\b/.test(lead) || /\(\s*$/.test(lead) || /,\s*$/.test(lead.trim() ? lead : '')) continue;
      const struct = structAt(f, off, fieldPaths);
      const isPtr = p.ptrGroup != null && !!m[p.ptrGroup];
      if (isPtr && !struct) continue; // a pointer variable is no lock object; a pointer member names each object's lock
      out.push({ name: m[p.nameGroup], struct: struct === '(anonymous)' ? null : struct, kind: isPtr ? `${p.kind} (each object's)` : p.kind, offset: off });
    }
  }
  return out;
}

function opsBy(body: string, specs: { re: RegExp; op: 'take' | 'reset'; kind: string; struct?: string; expr?: (m: RegExpMatchArray) => string; quiet?: boolean }[]): RawOp[] {
  const out: RawOp[] = [];
  for (const s of specs) {
    for (const m of body.matchAll(s.re)) {
      const off = m.index ?? 0;
      let expr: string;
      if (s.expr) expr = s.expr(m);
      else {
        const open = body.indexOf('(', off + m[0].length - 1);
        expr = firstArg(body, open, '');
      }
      out.push({ op: s.op, expr, kind: s.kind, offset: off, struct: s.struct, quiet: s.quiet });
    }
  }
  return out;
}


// ------------------------------------------------------------------------------------------------------------------
// glibc

/** sysdeps directories of an x86_64 Linux build, most specific first (sysdeps/x86_64/preconfigure + Implies). */
export const GLIBC_SYSDEPS = [
  'sysdeps/unix/sysv/linux/x86_64/64', 'sysdeps/unix/sysv/linux/x86_64', 'sysdeps/unix/sysv/linux/x86', 'sysdeps/x86/nptl',
  'sysdeps/unix/sysv/linux/wordsize-64', 'sysdeps/x86_64/nptl', 'sysdeps/unix/sysv/linux', 'sysdeps/nptl', 'sysdeps/pthread',
  'sysdeps/gnu', 'sysdeps/unix/inet', 'sysdeps/unix/sysv', 'sysdeps/unix/x86_64', 'sysdeps/unix', 'sysdeps/posix',
  'sysdeps/x86_64/64', 'sysdeps/x86_64', 'sysdeps/x86', 'sysdeps/wordsize-64', 'sysdeps/generic',
];
const GLIBC_SKIP_DIRS = new Set([
  'localedata', 'po', 'manual', 'benchtests', 'conform', 'scripts', 'support', 'timezone', 'debian', 'hurd', 'mach', 'htl', 'fbtl',
  'locale/programs', 'sunrpc/rpcsvc', 'iconvdata',
]);
const GLIBC_PROGRAMS = /^(elf\/(ldconfig|sprof|pldd|readlib|chroot_canon|cache|sotruss-lib|pldd-xx)\.c|iconv\/(iconv_prog|iconv_charmap|iconvconfig|strtab)\.c|nss\/(getent|makedb)\.c|catgets\/gencat\.c|debug\/(pcprofiledump|xtrace)\.c|malloc\/(memusagestat|memusage|mtrace)\.c|login\/programs\/.*|sunrpc\/rpc_\w+\.c|nscd\/(?!nscd_)[^/]+\.c|posix\/getconf\.c|locale\/(locale|localedef)\.c)$/;

export const glibcDialect: Dialect = {
  libc: 'glibc',
  files(root) {
    return walk(root, '', (rel, isDir) => {
      if (isDir) {
        if (GLIBC_SKIP_DIRS.has(rel) || /(^|\/)(tests?|tst)$/.test(rel)) return false;
        if (rel.startsWith('sysdeps')) return rel === 'sysdeps' || GLIBC_SYSDEPS.some((s) => s === rel || s.startsWith(rel + '/'));
        return true;
      }
      const base = path.posix.basename(rel);
      if (/^(tst|test|bug|xtst|bench)[-_]/.test(base) || /-test\.c$|^tst/.test(base)) return false;
      if (GLIBC_PROGRAMS.test(rel) || /XXX/.test(base) || rel === 'elf/dl-support.c') return false; // templates; static-only
      if (rel.startsWith('sysdeps/')) return GLIBC_SYSDEPS.includes(path.posix.dirname(rel));
      return rel.includes('/');
    });
  },
  relevant: (t) => /__libc_lock|__libc_rwlock|__rtld_lock|_IO_lock|lll_lock|lll_trylock|LLL_LOCK_INITIALIZER|_IO_acquire_lock|_IO_flockfile|gl_(rw)?lock_|pthread_(mutex|rwlock)_t\s+\w+\s*=|#\s*include\s*[<"][^>"]+\.c[>"]/.test(t),
  selectRoots(roots) {
    const rank = (f: string) => {
      const i = GLIBC_SYSDEPS.indexOf(path.posix.dirname(f));
      return i < 0 ? GLIBC_SYSDEPS.length : i;
    };
    const byBase = new Map<string, string[]>();
    for (const r of roots) byBase.set(path.posix.basename(r), [...(byBase.get(path.posix.basename(r)) ?? []), r]);
    const out: string[] = [];
    for (const group of byBase.values()) {
      const sys = group.filter((g) => g.startsWith('sysdeps/')).sort((a, b) => rank(a) - rank(b));
      if (sys.length) out.push(sys[0]);
      else out.push(...group);
    }
    return out.sort();
  },
  patternDefs(f) {
    return defsBy(f, [
      { re: /\b__libc_lock_define(?:_initialized)?(_recursive)?\s*\(\s*([^,()]*?)\s*,\s*(\w+)(?:\s+attribute_hidden)?\s*\)/g, kind: '__libc_lock', nameGroup: 3, classGroup: 2 },
      { re: /\b__libc_rwlock_define(?:_initialized)?\s*\(\s*([^,()]*?)\s*,\s*(\w+)(?:\s+attribute_hidden)?\s*\)/g, kind: '__libc_rwlock', nameGroup: 2, classGroup: 1 },
      { re: /\b__rtld_lock_define(?:_initialized)?_recursive\s*\(\s*([^,()]*?)\s*,\s*(\w+)(?:\s+attribute_hidden)?\s*\)/g, kind: '__rtld_lock', nameGroup: 2, classGroup: 1 },
      { re: /\b(?:__libc_lock_t|__libc_lock_recursive_t|__libc_rwlock_t|__rtld_lock_recursive_t)\s+(\w+)\s*(?=[;=\[,])/g, kind: '__libc_lock', nameGroup: 1 },
      { re: /\b_IO_lock_t\s+(\*\s*)?(\w+)\s*(?=[;=\[,])/g, kind: '_IO_lock_t', nameGroup: 2, ptrGroup: 1 },
      { re: /\bint\s+(\w+)\s*=\s*LLL_LOCK_INITIALIZER\b/g, kind: 'lll', nameGroup: 1 },
      // gnulib's names in intl/ (gl_rwlock_define_initialized is __libc_rwlock_define_initialized there)
      { re: /\bgl_(?:rw|recursive_)?lock_define(?:_initialized)?\s*\(\s*([^,()]*?)\s*,\s*(\w+)(?:\s+attribute_hidden)?\s*\)/g, kind: '__libc_lock (gnulib name)', nameGroup: 2, classGroup: 1 },
      // internal pthread objects (librt's timer thread, ...)
      { re: /\bpthread_(?:mutex|rwlock)_t\s+(\w+)\s*(?=[;=\[,])/g, kind: 'pthread (internal)', nameGroup: 1 },
    ]);
  },
  ops(body) {
    const take = (names: string, kind: string) => ({ re: new RegExp(`\\b(?:${names})\\s*\\(`, 'g'), op: 'take' as const, kind });
    const reset = (names: string, kind: string) => ({ re: new RegExp(`\\b(?:${names})\\s*\\(`, 'g'), op: 'reset' as const, kind });
    return opsBy(body, [
      take('__libc_lock_lock|__libc_lock_trylock|__libc_lock_lock_recursive|__libc_lock_trylock_recursive', '__libc_lock'),
      take('__libc_rwlock_rdlock|__libc_rwlock_wrlock|__libc_rwlock_tryrdlock|__libc_rwlock_trywrlock', '__libc_rwlock'),
      take('__rtld_lock_lock_recursive|__rtld_lock_trylock_recursive', '__rtld_lock'),
      take('_IO_lock_lock|_IO_lock_trylock', '_IO_lock_t'),
      take('lll_lock|lll_trylock|__lll_lock', 'lll'),
      take('gl_rwlock_rdlock|gl_rwlock_wrlock|gl_lock_lock|gl_recursive_lock_lock', '__libc_lock (gnulib name)'),
      take('pthread_mutex_lock|__pthread_mutex_lock|pthread_mutex_trylock|pthread_rwlock_rdlock|pthread_rwlock_wrlock|__pthread_rwlock_rdlock|__pthread_rwlock_wrlock', 'pthread (internal)'),
      { re: /\b(?:_IO_acquire_lock|_IO_flockfile|_IO_acquire_lock_clear_flags2)\s*\(/g, op: 'take', kind: '_IO_lock_t', struct: '_IO_FILE', expr: () => 'fp->_lock' },
      reset('__libc_lock_init|__libc_lock_init_recursive|__libc_rwlock_init|__rtld_lock_initialize|_IO_lock_init|gl_rwlock_init|gl_lock_init', 'lock'),
      { re: /(GLR?O?\s*\(\s*\w+\s*\)|[\w.>\-\[\]()*&]+)\s*=\s*(?:\([^)]*\)\s*)?(?:LLL_LOCK_INITIALIZER|_IO_lock_initializer|_LIBC_LOCK_INITIALIZER|_LIBC_LOCK_RECURSIVE_INITIALIZER|_RTLD_LOCK_RECURSIVE_INITIALIZER)\b/g, op: 'reset', kind: 'lock', expr: (m) => m[1], quiet: true },
    ]);
  },
  includeDirs: ['include', 'libio', 'nptl', 'sysdeps/nptl', 'sysdeps/generic', 'sysdeps/unix/sysv/linux', 'sysdeps/x86_64/nptl'],
  // error paths fork's helpers may reach (a dynarray failure aborts): no lock handling of fork's own
  forkSkip: ['abort', '__libc_fatal', '__libc_message', '__libc_dynarray_at_failure', '__assert_fail', '__malloc_assert', 'malloc_printerr', '__fortify_fail', '__chk_fail'],
  // on x86_64 (__TIMESIZE 64) include/*.h renames __foo64 to __foo: the public alias is declared for __foo
  nameVariants: (n) => (/^__\w+64(_r)?$/.test(n) ? [n.replace(/64(_r)?$/, '$1')] : []),
  ignoreStruct: /(?:lock|mutex|cond|rwlock|once)\w*_t$|^__pthread_|^pthread_/,
  // one object of each: its members are named like the variables they are in a static build (GL(x) is _x)
  singletonStructs: ['rtld_global', 'rtld_global_ro'],
  fork: { fn: '__libc_fork', files: ['posix/fork.c', 'sysdeps/nptl/fork.c', 'sysdeps/unix/sysv/linux/fork.c'] },
};

// ------------------------------------------------------------------------------------------------------------------
// musl

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

// ------------------------------------------------------------------------------------------------------------------
// CPython (3.11): PyThread_type_lock objects; taken by PyThread_acquire_lock*, re-initialised by
// _PyThread_at_fork_reinit. fork handling: what PyOS_BeforeFork acquires (taken) and what PyOS_AfterFork_Child
// re-initialises (reset). Public: the C API (Py[A-Z]*, not static) and Argument Clinic implementations (*_impl:
// what Python code calls).

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
