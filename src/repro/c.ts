// libc and libuv cases: one C file, the case's snippets (as runners/libc composes them) around a small fork loop
// (templates/main.c) that judges children as runners/libc/harness.c does. Its libraries (`library:`) are in the same
// file under #ifdef FM_LIBRARY_<NAME>, so the build line builds them from it.

import { ensureLibuv } from '../../runners/libuv/index.ts';
import { libraryMacro } from '../../runners/libc/index.ts';
import { comment, cString, MAX_DELAY_US, sh, template, WARMUP_MS, type Generated, type GenInput } from './common.ts';
import { headerLines } from './record.ts';

const CFLAGS = ['-std=gnu11', '-O1', '-g', '-fno-builtin', '-pthread'];

/** The program's text, without its header: the case's snippets, then the fork loop. */
export function cProgram(g: GenInput, uv: boolean): string {
  const c = g.c;
  const libs = Object.keys(c.library ?? {}).sort();
  const envPairs = Object.entries(c.env ?? {}).flatMap(([k, v]) => [cString(k), cString(v)]);
  const program = [
    '#define _GNU_SOURCE',
    template('api.c'),
    ...(uv ? ['#include <uv.h>'] : []),
    ...libs.map((n) => `#define ${libraryMacro(n)} getenv("${libraryMacro(n)}")`),
    '',
    `/* ==== the case: ${c.key} (${c.file}) ==== */`,
    '/* prelude */',
    c.prelude.trimEnd(),
    '',
    '/* setup: once in the parent, before the threads start */',
    `void fm_setup(void) {\n${c.setup.trimEnd()}\n}`,
    '/* loop: one iteration of each parent thread, again and again */',
    `void fm_loop(void) {\n${c.loop.trimEnd()}\n}`,
    '/* precondition: once, threads running, before the first fork */',
    `int fm_precondition(void) {\n${(c.precondition ?? '').trimEnd()}\nreturn 0;\n}`,
    '/* before_fork: in the forking thread right before each fork() */',
    `void fm_before_fork(void) {\n${(c.beforeFork ?? '').trimEnd()}\n}`,
    '/* child: in each child; 0 = ok, anything else (or fm_fail) = wrong */',
    `int fm_child(void) {\n${c.child.trimEnd()}\nreturn 0;\n}`,
    '/* ==== end of the case ==== */',
    '',
    `static const char *fm_case_env[] = {${[...envPairs, 'NULL'].join(', ')}};`,
    '/* the libraries built beside this program (see the build line) */',
    'static void fm_libraries(const char *argv0) {',
    ...(libs.length
      ? [
          '    char dir[4096];',
          '    if (!strchr(argv0, \'/\') || !realpath(argv0, dir)) { ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1); dir[n > 0 ? n : 0] = 0; }',
          '    char *slash = strrchr(dir, \'/\');',
          '    if (slash) *slash = 0;',
          '    char p[4200];',
          '    setenv("FM_LIBDIR", dir, 0);',
          ...libs.map((n) => `    snprintf(p, sizeof p, "%s/lib${n}.so", dir), setenv("${libraryMacro(n)}", p, 0);`),
        ]
      : ['    (void)argv0;']),
    '}',
    `#define FM_FORKS ${c.forks}L`,
    `#define FM_SECONDS ${c.seconds}`,
    `#define FM_THREADS ${c.threads}`,
    `#define FM_TIMEOUT_MS ${c.timeoutMs}.0`,
    `#define FM_MAX_DELAY_US ${MAX_DELAY_US}`,
    `#define FM_WARMUP_MS ${WARMUP_MS}`,
    `#define FM_SEED ${g.seed}ULL`,
    `#define FM_EXIT_NORMAL ${c.exit === 'exit' ? 1 : 0}`,
    `#define FM_EXPECT ${c.expectOutput != null ? cString(c.expectOutput) : '((const char *)0)'}`,
    template('main.c').replace('fm_libraries();', 'fm_libraries(argv[0]);'),
  ].join('\n');
  if (!libs.length) return program;
  const sections = libs.map((n, i) => `#${i ? 'elif' : 'if'} defined(FM_LIBRARY_${n.toUpperCase().replace(/[^A-Z0-9_]/g, '_')})\n/* library ${n} (lib${n}.so) */\n${c.library[n].trimEnd()}`);
  return `${sections.join('\n')}\n#else\n${program}\n#endif\n`;
}

export async function cRepro(g: GenInput): Promise<Generated> {
  const c = g.c;
  const uv = c.runtime === 'libuv';
  const cc = g.rt.executable;
  const flags = [...CFLAGS, ...(g.rt.cflags ?? [])];
  const src = `${g.name}.c`;
  const libs = Object.keys(c.library ?? {}).sort();
  const build: string[] = libs.map((n) => [cc, '-shared', '-fPIC', '-O1', '-g', ...(g.rt.cflags ?? []), `-DFM_LIBRARY_${n.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`, src, '-o', `lib${n}.so`].map(sh).join(' '));
  let link = ['-ldl', '-lrt'];
  let uvNote: string | null = null;
  if (uv) {
    const built = await ensureLibuv({ runtime: g.rt, cacheDir: g.cacheDir });
    if ('include' in built) {
      link = [built.lib, '-ldl', '-lrt', '-lpthread'];
      flags.push('-I', built.include);
      uvNote = `(libuv ${built.version} as forkmatrix built it; with another libuv: ${[cc, ...flags, src, '-o', g.name, '-luv'].map(sh).join(' ')})`;
    } else {
      link = ['-luv', '-ldl', '-lrt'];
      uvNote = `(forkmatrix's libuv build is not here: ${'skip' in built ? built.skip : built.error.split('\n')[0]}; this links the system's libuv)`;
    }
  }
  build.push([cc, ...flags, src, '-o', g.name, ...link].map(sh).join(' '));
  const run = g.runLine([`./${g.name}`]);
  const lines = headerLines({ c, env: g.env, rt: g.rt, record: g.record, build: uvNote ? [...build, uvNote] : build, run, repo: g.repo });
  return { files: [{ name: src, text: comment(lines, 'c') + cProgram(g, uv) }], build, run };
}
