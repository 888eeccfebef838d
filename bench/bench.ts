// npm run bench: how fast forkmatrix forks, and how quickly it catches the races it exists for.
//
// 1. Per runtime, the harness's forks/s on a control case (no threads, an empty child) against a bare
//    fork+exit+wait loop written in the same runtime, alternated --reps times in the same run (bare, harness,
//    bare, harness ...): the median of the paired ratios is the harness's overhead, the range says how noisy the
//    machine was.
// 2. `run --budget quick` over every suite on the host environment, --reps times: wall time and CPU use of all cores.
// 3. Detection power, from the same quick runs: for every cell known to fail on this libc (a `known:` entry that
//    applies), how many of the runs detected it and the median time to its first failure.
//
// Options: --skip-quick (no quick runs, so no detection table), --reps N (default 3), --forks N (bare loop size).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadSuite, selectCases } from '../src/cases.ts';
import { cacheDir } from '../src/cli.ts';
import { matrixFromTap } from '../src/matrix.ts';
import { run } from '../src/run.ts';
import { knownApplies } from '../src/schema.ts';
import { hostEnvironment } from '../adapters/host.ts';
import type { CellResult, FoundRuntime, RuntimeName } from '../src/types.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: v } = parseArgs({ options: { 'skip-quick': { type: 'boolean' }, reps: { type: 'string' }, forks: { type: 'string' } } });
const REPS = Number(v.reps ?? 3);
const N = Number(v.forks ?? 1000);
const CACHE = cacheDir();
const env = hostEnvironment({ cacheDir: CACHE, extraRuntimes: [], preload: [], libc: [] });
const tmp = mkdtempSync(path.join(os.tmpdir(), 'fm-bench-'));
const say = (s: string) => process.stdout.write(s + '\n');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

// ---- 1. harness vs bare loop ---------------------------------------------------------------------------------
const BARE: Record<FoundRuntime, (exe: string) => { cmd: string; args: string[] } | null> = {
  libc: (cc) => {
    const src = path.join(tmp, 'bare.c');
    writeFileSync(src, `#include <stdio.h>\n#include <stdlib.h>\n#include <time.h>\n#include <unistd.h>\n#include <sys/wait.h>\nint main(int c,char**v){int n=atoi(v[1]);struct timespec a,b;clock_gettime(CLOCK_MONOTONIC,&a);for(int i=0;i<n;i++){pid_t p=fork();if(!p)_exit(0);int s;waitpid(p,&s,0);}clock_gettime(CLOCK_MONOTONIC,&b);printf("%f\\n",(b.tv_sec-a.tv_sec)*1e3+(b.tv_nsec-a.tv_nsec)/1e6);return 0;}\n`);
    const bin = path.join(tmp, 'bare');
    if (spawnSync(cc, ['-O2', '-o', bin, src]).status !== 0) return null;
    return { cmd: bin, args: [String(N)] };
  },
  python: (py) => ({ cmd: py, args: ['-c', `import os,time,sys\nn=int(sys.argv[1]);t=time.perf_counter()\nfor i in range(n):\n  p=os.fork()\n  if p==0: os._exit(0)\n  os.waitpid(p,0)\nprint((time.perf_counter()-t)*1e3)`, String(N)] }),
  ruby: (rb) => ({ cmd: rb, args: ['-e', `n=ARGV[0].to_i;t=Process.clock_gettime(Process::CLOCK_MONOTONIC);n.times{Process.wait(fork{exit!(0)})};puts((Process.clock_gettime(Process::CLOCK_MONOTONIC)-t)*1e3)`, String(N)] }),
  node: (nd) => ({ cmd: nd, args: ['-e', `const cp=require('child_process');const n=+process.argv[1];const t=performance.now();for(let i=0;i<n;i++){if(cp.spawnSync('/bin/true').status!==0)throw 1}console.log(performance.now()-t)`, String(Math.min(N, 300))] }),
};

async function harnessRate(runtime: RuntimeName): Promise<{ rate: number; cell: CellResult } | null> {
  const suite = await loadSuite(REPO, path.join(REPO, 'bench/suites'));
  const cases = selectCases(suite.cases, [runtime], null);
  const out = await run({ repoDir: REPO, cacheDir: CACHE, outRoot: path.join(tmp, 'r'), cases, environments: [env], budget: { kind: 'full' }, jobs: 1, seed: 1, failFast: false });
  const cell = out.cells[0];
  if (!cell || cell.verdict !== 'pass') return null;
  return { rate: cell.forks / (cell.elapsed_ms / 1000), cell };
}

say(`forkmatrix bench on ${os.cpus()[0]?.model ?? 'unknown cpu'}, ${os.cpus().length} cores, ${env.id}, load average ${os.loadavg()[0].toFixed(2)}`);
say('');
say(`1. harness vs a bare fork loop in the same runtime, alternated ${REPS} times (forks/s; node: spawnSync of /bin/true)`);
say('   runtime   harness   bare      ratio (median of pairs)   range');
const ratios: Record<string, number> = {};
for (const rt of env.runtimes) {
  const bare = BARE[rt.runtime as FoundRuntime](rt.executable);
  const n = rt.runtime === 'node' ? Math.min(N, 300) : N;
  const hs: number[] = [];
  const bs: number[] = [];
  const rs: number[] = [];
  let err = '';
  for (let k = 0; k < REPS; k++) {
    let bareRate = NaN;
    if (bare) {
      const r = spawnSync(bare.cmd, bare.args, { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
      const ms = parseFloat(r.stdout);
      if (r.status === 0 && ms > 0) bareRate = n / (ms / 1000);
    }
    const h = await harnessRate(rt.runtime);
    if (!h) {
      err = 'error';
      break;
    }
    hs.push(h.rate);
    bs.push(bareRate);
    rs.push(h.rate / bareRate);
  }
  const ratio = median(rs);
  ratios[rt.runtime] = ratio;
  const range = rs.length ? `${Math.min(...rs).toFixed(2)}-${Math.max(...rs).toFixed(2)}` : '';
  say(`   ${rt.runtime.padEnd(8)}  ${err ? '  error' : median(hs).toFixed(0).padStart(7)}   ${median(bs).toFixed(0).padStart(7)}   ${ratio.toFixed(2).padStart(4)}${ratio < 0.8 ? ' (below 0.8)' : '            '}        ${range}`);
}

// ---- 2. the quick run -----------------------------------------------------------------------------------------
function cpuTimes(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = line[3] + (line[4] ?? 0);
  const total = line.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}
const quickDirs: string[] = [];
if (!v['skip-quick']) {
  say('');
  say(`2. npx forkmatrix run --budget quick --env ${env.id} (every suite), ${REPS} times`);
  for (let k = 0; k < REPS; k++) {
    const out = path.join(tmp, `quick-${k}`);
    const c0 = cpuTimes();
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [path.join(REPO, 'bin/forkmatrix.mjs'), 'run', '--budget', 'quick', '--env', env.id, '--out', out, '--no-color'], { encoding: 'utf8', cwd: REPO, maxBuffer: 64 << 20 });
    const wall = (performance.now() - t0) / 1000;
    const c1 = cpuTimes();
    const util = (c1.busy - c0.busy) / (c1.total - c0.total);
    const last = r.status === 0 ? (r.stdout.trim().split('\n').pop() ?? '') : `the run failed (exit ${r.status}): ${(r.stderr || String(r.error ?? '')).trim().split('\n').slice(-3).join(' ')}`;
    if (r.status === 0) quickDirs.push(path.join(out, 'latest'));
    say(`   run ${k + 1}: wall ${wall.toFixed(0)} s (target < 180 s), CPU busy ${(util * 100).toFixed(0)}% of ${os.cpus().length} cores: ${last.replace(/ Results:.*/, '')}`);
  }

  // ---- 3. detection power -------------------------------------------------------------------------------------
  say('');
  say(`3. detection power: the cells known to fail on ${env.id}, over those ${quickDirs.length} quick runs`);
  const proof = await env.probe();
  const suite = await loadSuite(REPO);
  const expected = new Set(suite.cases.filter((c) => c.known.some((k) => knownApplies(k, proof))).map((c) => c.key));
  const seen = new Map<string, CellResult[]>();
  for (const d of quickDirs) for (const [key, row] of Object.entries((await matrixFromTap([d])).cells)) if (expected.has(key)) for (const c of Object.values(row)) seen.set(key, [...(seen.get(key) ?? []), c]);
  say('   case                                                               detected   median time to first failure   forks before it (median)');
  let all = 0;
  let caught = 0;
  for (const key of [...expected].sort()) {
    const cells = (seen.get(key) ?? []).filter((c) => c.verdict !== 'skip' && c.verdict !== 'error');
    if (!cells.length) continue;
    const hit = cells.filter((c) => c.verdict === 'fail');
    const ttf = median(hit.map((c) => c.first_failure?.elapsed_ms ?? c.elapsed_ms));
    const forks = median(hit.map((c) => (c.rounds ?? []).slice(0, -1).reduce((n, r) => n + r.forks, 0) + (c.first_failure?.iteration ?? 0) + 1));
    all += cells.length;
    caught += hit.length;
    say(`   ${key.padEnd(66)} ${`${hit.length}/${cells.length}`.padStart(8)}   ${hit.length ? `${(ttf / 1000).toFixed(2)} s`.padStart(8) : '       -'}                       ${hit.length ? forks.toFixed(0) : '-'}`);
  }
  say(`   detected in ${caught} of ${all} (cell, run) pairs`);
}
say('');
say(`ratios: ${Object.entries(ratios).map(([k, r]) => `${k} ${r.toFixed(2)}`).join(', ')}`);
