// npm run bench:delay: does the harness's random delay before each fork (--max-delay-us, default 200) buy detection?
//
// The delay costs throughput (the forking thread sleeps 0..N us, plus a nanosleep per fork); it exists so that
// forks do not fall into step with the parent threads' loops. This measures what it buys: for cells that fail
// rarely enough to need many forks on this machine, the forks until the first failure (--fail-fast, up to
// --forks), over --reps seeds, with each delay setting in --delays, interleaved.
//
// Options: --delays 0,200 (us), --reps N (default 6), --forks N (default 400), --case GLOB,... (default: below).

import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadSuite, selectCases } from '../src/cases.ts';
import { cacheDir } from '../src/cli.ts';
import { run } from '../src/run.ts';
import { hostEnvironment } from '../adapters/host.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: v } = parseArgs({ options: { delays: { type: 'string' }, reps: { type: 'string' }, forks: { type: 'string' }, case: { type: 'string' } } });
const DELAYS = (v.delays ?? '0,200').split(',').map(Number);
const REPS = Number(v.reps ?? 6);
const FORKS = Number(v.forks ?? 400);
// cells that, in `npm run bench`, needed more than a few forks to fail on glibc 2.36
const CASES = (v.case ?? [
  'libc/dl/dlopen-new-library-while-threads-dlopen-and-dlclose',
  'libc/netdb/getaddrinfo-etc-hosts-name-while-threads-resolve',
  'libc/netdb/getaddrinfo-localhost-while-threads-resolve',
  'libc/sem/sem-open-close-unlink-while-threads-sem-open',
  'libuv/fork/spawn-in-child-while-parent-threads-spawn',
  'python/time/localtime-while-c-threads-in-tzset',
  'ruby/resolver/addrinfo-getaddrinfo-addrconfig-while-threads-resolve',
].join(',')).split(',');

const CACHE = cacheDir();
const env = hostEnvironment({ cacheDir: CACHE, extraRuntimes: [], preload: [], libc: [] });
const tmp = mkdtempSync(path.join(os.tmpdir(), 'fm-delay-'));
const suite = await loadSuite(REPO);
const cases = selectCases(suite.cases, null, CASES);
const say = (s: string) => process.stdout.write(s + '\n');
say(`forkmatrix bench:delay on ${env.id}, ${os.cpus().length} cores: forks until the first failure (--fail-fast, at most ${FORKS}), ${REPS} seeds per setting`);

// forks[case][delay] = forks spent until the first failure (FORKS + 1 when none in FORKS)
const forks = new Map<string, Map<number, number[]>>();
const rate = new Map<string, Map<number, number>>();
for (let r = 0; r < REPS; r++) {
  for (const d of r % 2 ? [...DELAYS].reverse() : DELAYS) {
    const out = await run({
      repoDir: REPO, cacheDir: CACHE, outRoot: path.join(tmp, `${r}-${d}`), cases, environments: [env], budget: { kind: 'forks', forks: FORKS },
      jobs: os.cpus().length, seed: 1000 + r, failFast: true, maxDelayUs: d,
    });
    for (const c of out.cells) {
      if (c.verdict === 'skip' || c.verdict === 'error') continue;
      const n = c.failures ? (c.first_failure?.iteration ?? 0) + 1 : FORKS + 1;
      const m = forks.get(c.case) ?? new Map<number, number[]>();
      m.set(d, [...(m.get(d) ?? []), n]);
      forks.set(c.case, m);
      const rm = rate.get(c.case) ?? new Map<number, number>();
      rm.set(d, (rm.get(d) ?? 0) + (c.failures ? 1 : 0));
      rate.set(c.case, rm);
    }
  }
}
const med = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
say('');
say(`   ${'case'.padEnd(70)} ${DELAYS.map((d) => `delay ${d} us: detected, median forks`.padEnd(36)).join(' ')}`);
for (const [k, m] of forks) {
  say(`   ${k.padEnd(70)} ${DELAYS.map((d) => {
    const xs = m.get(d) ?? [];
    const md = xs.length ? med(xs) : NaN;
    return `${rate.get(k)?.get(d) ?? 0}/${xs.length}, ${md > FORKS ? `>${FORKS}` : md}`.padEnd(36);
  }).join(' ')}`);
}
