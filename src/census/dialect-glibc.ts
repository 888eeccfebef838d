// The census dialect of glibc.
//
// glibc: objects declared with __libc_lock_define*, __libc_rwlock_define*, __rtld_lock_define* (and their types),
// _IO_lock_t, and `int X = LLL_LOCK_INITIALIZER` (lll locks); taken by __libc_lock_lock/trylock, the rwlock and
// rtld variants, _IO_lock_lock, _IO_acquire_lock/_IO_flockfile (a stream's own lock), lll_lock; re-initialised by
// the *_init/_initialize macros and assignments of the initialisers. Only the files an x86_64 Linux build compiles
// are read: sysdeps directories of that configuration, the most specific file of a name winning (glibc's sysdeps
// override), no tests, no programs (zic, localedef, nscd's daemon, ldconfig ...).

import path from 'node:path';
import { defsBy, opsBy, walk } from './dialect-common.ts';
import type { Dialect } from './engine-types.ts';

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
