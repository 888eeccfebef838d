// The C harness (runners/libc/harness.c) on real forks: the hang proof (early, blocked, slow, running), pressure,
// before_fork / precondition, `mapped` and the library macros. Each case is compiled through the C runner (into a
// private cache) and its binary run with a config; the assertions are on the harness's own JSON result.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { identifyRuntime, which } from '../adapters/host.ts';
import { CFLAGS, composeC, libcRunner } from '../runners/libc/index.ts';
import { cleanBaseEnv } from '../src/proc.ts';
import type { CaseDef, Environment, HarnessConfig, HarnessResult, RuntimeInstance } from '../src/types.ts';

// not ./helpers.ts: importing it identifies every runtime on the host (seconds); this file needs only the compiler
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);
const cc = which('cc') ?? which('gcc');
const rt = cc ? identifyRuntime('libc', cc) : { reason: 'no C compiler' };
const dir = mkdtempSync(path.join(os.tmpdir(), 'fm-harness-c-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** Processes whose command line mentions `marker` (leftovers). */
function processesMentioning(marker: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(marker)) found.push(`${pid}: ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return found;
}

function mkCase(id: string, s: Partial<CaseDef>): CaseDef {
  const lines = { prelude: 0, setup: 0, loop: 0, child: 0, precondition: 0, before_fork: 0 };
  return {
    runtime: 'libc', family: 'harness', id, key: `libc/harness/${id}`, title: id, level: 'guaranteed', cite: [], env: {}, threads: 0,
    prelude: '', setup: '', loop: '', child: '', exit: '_exit', expectOutput: null, forks: 100, seconds: 10, timeoutMs: 1000, requires: [],
    known: [], found: [], locks: [], library: {}, precondition: '', beforeFork: '', file: 'test/harness-c.yaml', line: 1, lines, source: '',
    ...s,
  };
}

// The behaviours under test, one per mode. They are compiled into ONE case (each snippet a switch on the mode the
// environment names): one compile of harness.c instead of one per behaviour keeps this file fast.
type Mode = { prelude?: string; loop?: string; precondition?: string; beforeFork?: string; child: string };
const MODES: Record<string, Mode> = {
  // busy for 1.5x the 300 ms timeout, then ok
  slow: { child: 'double s = fm_now_ms(); while (fm_now_ms() - s < 450) {}' },
  // the first 8 children are ok (a median for the early look), the 9th pauses forever
  blocked: { beforeFork: 'n++;', child: 'if (n == 9) pause();' },
  deadlock: { child: 'pthread_mutex_lock(&m);\npthread_mutex_lock(&m);' },
  // child 1 sleeps past the timeout (a timed wait), child 2 spins past it; both then exit 3
  boundary: { beforeFork: 'n++;', child: 'double s = fm_now_ms();\nif (n == 1) fm_sleep_ms(310);\nelse while (fm_now_ms() - s < 310) {}\nreturn 3;' },
  spin: { child: 'for (;;) {}' },
  // the 7th child blocks inside fork() (an atfork child handler): it never reaches the harness's setpgid
  atfork: { beforeFork: 'static int reg;\nif (!reg++) pthread_atfork(NULL, NULL, atfork_child);\nn++;', child: '' },
  busyloop: { loop: 'volatile int x = 0;\nfor (int i = 0; i < 2000; i++) x += i;', child: '' },
  // the precondition waits until the (nice +10) thread has entered its loop: on a loaded machine it may not
  // have run at all within the 20 ms warm-up
  stuckloop: { loop: 'for (;;) pause();', precondition: 'while (!fm_inside()) fm_sleep_ms(1);', child: '' },
  none: { child: '' },
  hooks: {
    loop: 'fm_sleep_ms(1);',
    precondition: 'while (fm_iterations() < 3) fm_sleep_ms(1);\npre = 1;',
    beforeFork: 'before++;\nwhile (!fm_inside() && fm_iterations() < 1000000) {}',
    child: 'return pre == 1 && before >= 1 ? 0 : 1;',
  },
  'precondition-returns': { precondition: 'return 7;', child: '' },
  'precondition-fm-fail': { precondition: 'fm_fail("%s is not mapped", "libfoo.so");', child: '' },
  library: {
    // loaded by the precondition: `mapped` (read after it) must name it
    precondition: 'if (!dlopen(FM_LIB_FMLIB, RTLD_NOW)) fm_fail("dlopen: %s", dlerror());',
    child: 'void *h = dlopen(FM_LIB_FMLIB, RTLD_NOW);\nif (!h) fm_fail("dlopen: %s", dlerror());\nint (*f)(void) = (int (*)(void))dlsym(h, "fm_lib_value");\nreturn f && f() == 42 ? 0 : 1;',
  },
};
const names = Object.keys(MODES);
const sw = (k: keyof Mode, tail: string) =>
  `switch (fm_mode) {\n${names.map((n, i) => (MODES[n][k] ? `case ${i}: { ${MODES[n][k]} } ${tail}\n` : '')).join('')}default: ${tail}\n}`;
const modesCase = mkCase('modes', {
  prelude: [
    '#include <dlfcn.h>', '#include <pthread.h>', 'static int fm_mode = -1;', 'static volatile int n, pre, before;', 'static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;',
    `static void atfork_child(void) { if (n == 7) pause(); }`,
  ].join('\n'),
  setup: 'fm_mode = atoi(getenv("FM_MODE"));',
  loop: sw('loop', 'break;'), precondition: sw('precondition', 'return 0;'), beforeFork: sw('beforeFork', 'break;'), child: sw('child', 'return 0;'),
  library: { fmlib: 'int fm_lib_value(void) { return 42; }' },
});

type Result = HarnessResult & { diag?: never };

let built: Promise<string> | null = null;
/** The modes case compiled through the C runner (once). */
function binary(): Promise<string> {
  built ??= libcRunner.prepare(modesCase, { env: {} as Environment, runtime: rt as RuntimeInstance, cacheDir: dir, repoDir: REPO }).then((p) => {
    if (!('argv' in p)) throw new Error(JSON.stringify(p));
    return p.argv[0];
  });
  return built;
}

/** Run the case in `mode` with a config; the harness's JSON result. */
async function harness(mode: keyof typeof MODES, cfg: Partial<HarnessConfig>, env: Record<string, string> = {}): Promise<Result> {
  const bin = await binary();
  const result = path.join(dir, `${mode}.result.json`);
  const config: Partial<HarnessConfig> = {
    case: mode, file: modesCase.file, lines: modesCase.lines, threads: 0, exit: '_exit', expect_output: null, forks: 20, seconds: 10,
    timeout_ms: 1000, seed: 1, max_delay_us: 20, warmup_ms: 20, fail_fast: false, diag: { gdb: null, max: 1 }, result, env_check: false,
    ...cfg,
  };
  const file = path.join(dir, `${mode}.config.json`);
  writeFileSync(file, JSON.stringify(config));
  await run(bin, [file], { env: cleanBaseEnv({ FM_MODE: String(names.indexOf(mode)), ...env }), timeout: 60_000 });
  return JSON.parse(readFileSync(result, 'utf8')) as Result;
}

/** The "+N ms" offsets of a hang's proof lines. */
const offsets = (proof: string | null | undefined) => [...String(proof ?? '').matchAll(/^\+(\d+) ms: /gm)].map((m) => Number(m[1]));

t.test('the C harness', { skip: 'reason' in rt ? rt.reason : false }, async (t) => {
  t.test('a child busy for 1.5x the timeout that then exits 0 is ok and counted slow, not a hang', async (t) => {
    const r = await harness('slow', { forks: 2, timeout_ms: 300 });
    t.match(r, { forks: 2, ok: 2, hang: 0, wrong: 0, crash: 0, slow: 2 });
    t.equal(r.slow_examples?.length, 2);
    t.ok(r.slow_examples!.every((e) => e.ms >= 440 && e.ms < 1500), `slow children took ${r.slow_examples!.map((e) => e.ms).join(', ')} ms`);
  });

  t.test('a child blocked forever is a hang, proved blocked by two samples, and found early', async (t) => {
    // the first 8 children are ok (a median for the early look), the 9th pauses forever
    const r = await harness('blocked', { forks: 12, timeout_ms: 8000, fail_fast: true });
    t.match(r, { forks: 9, ok: 8, hang: 1 });
    const f = r.first_failures![0];
    t.match(f, { kind: 'hang', iteration: 8, diag: { blocked: 'yes', wchan: /pause/ } });
    const at = offsets(f.diag?.proof);
    t.equal(at.length, 2, `two samples: ${f.diag?.proof}`);
    t.match(f.diag?.proof, /^\+\d+ ms: cpu [\d.]+ ms.*; \d+ S \[S\]$/m, 'each sample lists the process and its thread states');
    t.ok(at[1] - at[0] >= 90, 'the samples are sample_ms apart');
    t.ok(at[1] < 4000, `proved at +${at[1]} ms, well before the 8000 ms timeout (early look)`);
  });

  t.test('a self-deadlocked child (no early look possible) is a hang at the timeout', async (t) => {
    const r = await harness('deadlock', { forks: 1, timeout_ms: 300 });
    t.match(r, { forks: 1, hang: 1, slow: 0 });
    const f = r.first_failures![0];
    t.match(f.diag, { blocked: 'yes', wchan: /futex/ });
    const at = offsets(f.diag?.proof);
    t.ok(at.length === 2 && at[0] >= 300, `sampled from the timeout on: ${f.diag?.proof}`);
  });

  t.test('a child that exits non-zero right at the timeout is wrong, not a hang', async (t) => {
    const r = await harness('boundary', { forks: 2, timeout_ms: 300 });
    t.match(r, { forks: 2, wrong: 2, hang: 0, crash: 0 });
    t.match(r.first_failures, [{ kind: 'wrong', status: 3 }, { kind: 'wrong', status: 3 }]);
  });

  t.test('a child that spins forever is a hang whose proof says running, after hard_factor x timeout', async (t) => {
    const r = await harness('spin', {
      forks: 1, timeout_ms: 200, hang_proof: { sample_ms: 50, early_min_ms: 200, early_factor: 20, hard_factor: 3 },
    });
    t.match(r, { forks: 1, hang: 1, slow: 0 });
    const f = r.first_failures![0];
    t.match(f.diag, { blocked: 'running', proof: / R \[R\]/ });
    t.ok(Math.max(...offsets(f.diag?.proof)) >= 600, 'waited on to 3 x 200 ms');
  });

  t.test('a child blocked inside fork() (before its setpgid) is proved a hang and killed', async (t) => {
    const r = await harness('atfork', { forks: 10, timeout_ms: 3000, fail_fast: true });
    t.match(r, { forks: 7, ok: 6, hang: 1 });
    const f = r.first_failures![0];
    t.match(f.diag, { blocked: 'yes', wchan: /pause/ });
    t.equal(offsets(f.diag?.proof).length, 2, String(f.diag?.proof));
  });

  t.test('pressure: working threads report iterations and forks inside; a thread stuck in its first iteration reports 0', async (t) => {
    const busy = await harness('busyloop', { forks: 30, threads: 2 });
    t.match(busy, { forks: 30, ok: 30, threads_started: 2 });
    t.match(busy.pressure, { forks_sampled: 30 });
    t.ok(busy.pressure!.window_ms > 0);
    t.equal(busy.pressure!.threads.length, 2);
    for (const th of busy.pressure!.threads) t.ok(th.iterations > 0 && th.last_ms !== null && th.error === null, JSON.stringify(th));
    t.ok(busy.pressure!.forks_inside > 0, `${busy.pressure!.forks_inside} of 30 forks with a thread inside its loop`);

    const stuck = await harness('stuckloop', { forks: 10, threads: 1 });
    t.match(stuck, { forks: 10, ok: 10 });
    t.same(stuck.pressure!.threads, [{ iterations: 0, last_ms: null, error: null }]);
    t.equal(stuck.pressure!.forks_inside, 10, 'the stuck thread is inside its loop at every fork');

    const none = await harness('none', { forks: 3, threads: 0 });
    t.match(none.pressure, { threads: [], forks_inside: 0, forks_sampled: 3 });
    t.ok(none.mapped!.some((m) => /libc[.-]/.test(path.basename(m))), `mapped names the libc: ${none.mapped}`);
  });

  t.test('before_fork and the precondition run; a failed precondition is an error with no fork', async (t) => {
    const ok = await harness('hooks', { forks: 5, threads: 1 });
    t.match(ok, { forks: 5, ok: 5, error: null });

    const fails = await harness('precondition-returns', { forks: 5 });
    t.match(fails, { forks: 0, error: 'precondition failed: fm_precondition returned 7' });
    t.ok(fails.mapped!.length > 0 && fails.libc?.path, 'the error carries mapped and libc');

    const msg = await harness('precondition-fm-fail', { forks: 5 });
    t.match(msg, { forks: 0, error: 'precondition failed: libfoo.so is not mapped' });
  });

  t.test('library: FM_LIB_<NAME> is a C macro for the path in the environment; mapped is read after the precondition', async (t) => {
    const so = path.join(dir, 'libfmlib.so');
    writeFileSync(path.join(dir, 'fmlib.c'), 'int fm_lib_value(void) { return 42; }\n');
    await run(cc!, ['-shared', '-fPIC', '-o', so, path.join(dir, 'fmlib.c')], { env: cleanBaseEnv() });
    t.match(composeC(modesCase), /#define FM_LIB_FMLIB getenv\("FM_LIB_FMLIB"\)/);
    const r = await harness('library', { forks: 3 }, { FM_LIB_FMLIB: so });
    t.match(r, { forks: 3, ok: 3, error: null }, r.first_failures?.[0]?.message ?? r.error ?? '');
    t.ok(r.mapped?.includes(so), `mapped, read after the precondition, names ${so}: ${r.mapped}`);
  });

  t.test('a compile error in the precondition or before_fork names its YAML line', async (t) => {
    // the composed case.c alone, syntax-checked (what prepare compiles first; no harness.c compile needed)
    const lines = { prelude: 0, setup: 0, loop: 0, child: 0, precondition: 40, before_fork: 50 };
    for (const [k, s, line] of [['precondition', { precondition: 'return nope;' }, 40], ['before_fork', { beforeFork: 'int x = ;' }, 50]] as const) {
      const src = path.join(dir, `bad-${k}.c`);
      writeFileSync(src, composeC(mkCase(`bad-${k}`, { ...s, lines })));
      const e = await run(cc!, [...CFLAGS, '-fsyntax-only', '-I', path.join(REPO, 'runners', 'libc'), src], { env: cleanBaseEnv() }).then(() => null, (e: { stderr: string }) => e.stderr);
      t.match(e, new RegExp(`test/harness-c\\.yaml:${line}:\\d+: error`), k);
    }
  });

  t.same(processesMentioning(dir), [], 'no harness or child is left');
});
