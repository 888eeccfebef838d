// A case's own shared objects (`library:` in the case file): tiny libraries that nothing else has loaded, built
// per environment with that environment's own C compiler, so that a child that dlopens (or `require`s, or
// ctypes-loads) one really takes the loader's locks for a new object. A system library is no substitute: an
// allocator or a runtime may already have mapped it, and the child then never adds an object.
//
// Each entry `name: <C source>` becomes <dir>/lib<name>.so and, for Ruby's `require` (which calls Init_<name>),
// <dir>/<name>.so; the case sees the path of the first in $FM_LIB_<NAME> and the directory in $FM_LIBDIR.
// Built once per (compiler, flags, sources) into <cache>/lib/<hash>/, written beside and renamed into place.

import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { capture, cleanBaseEnv } from './proc.ts';
import type { CaseDef, Environment } from './types.ts';

export type Built = { env: Record<string, string> } | { error: string } | { skip: string };

export async function buildLibraries(c: Pick<CaseDef, 'library' | 'file'>, env: Environment, cacheDir: string): Promise<Built> {
  const names = Object.keys(c.library).sort();
  if (!names.length) return { env: {} };
  const cc = env.runtimes.find((r) => r.runtime === 'libc');
  if (!cc) return { skip: `the case builds its own library (library: ${names.join(', ')}) and ${env.id} has no C compiler` };
  const flags = ['-shared', '-fPIC', '-O1', '-g', ...(cc.cflags ?? [])];
  const hash = createHash('sha256').update([cc.executable, cc.version, flags.join(' '), ...names.map((n) => `${n}\0${c.library[n]}`)].join('\0')).digest('hex').slice(0, 20);
  const dir = path.join(cacheDir, 'lib', hash);
  const vars: Record<string, string> = { FM_LIBDIR: dir };
  for (const n of names) vars[`FM_LIB_${n.toUpperCase()}`] = path.join(dir, `lib${n}.so`);
  if (existsSync(path.join(dir, '.complete'))) return { env: vars };
  const tmp = `${dir}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  mkdirSync(tmp, { recursive: true });
  try {
    for (const n of names) {
      const src = path.join(tmp, `${n}.c`);
      writeFileSync(src, `/* library ${n} of a case in ${c.file} */\n${c.library[n]}\n`);
      const out = path.join(tmp, `lib${n}.so`);
      const r = capture(cc.executable, [...flags, src, '-o', out], { env: cleanBaseEnv(), cwd: tmp, timeoutMs: 120_000 });
      if (r.code !== 0) {
        const msg = (r.stderr || r.error || '').split('\n').filter((l) => /error/.test(l)).slice(0, 5).join('\n') || r.stderr.slice(0, 1000) || `exit ${r.code}`;
        return { error: `library ${n} of the case does not compile with ${path.basename(cc.executable)} ${cc.version}:\n${msg}` };
      }
      copyFileSync(out, path.join(tmp, `${n}.so`));
    }
    writeFileSync(path.join(tmp, '.complete'), '');
    try {
      renameSync(tmp, dir);
    } catch {
      /* built by another run meanwhile: theirs is as good */
    }
    return { env: vars };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
