// Faults of the machine: a full disk under --out ends a run (and a report) with one clear error and no partial
// matrix; a harness the machine kills (the OOM killer's SIGKILL, an allocation refused under a low ulimit -v) is an
// `error` cell with the reason, and the run goes on.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from '../src/cli.ts';
import { writeStream } from '../src/tap.ts';
import { HOST_ENV, runFixture } from './helpers.ts';
import { fakeCell, tmpDir } from './robust-helpers.ts';

const BIN = path.join(REPO, 'bin/forkmatrix.mjs');
const fm = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: REPO, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 300_000 });

/** A 64 KiB tmpfs, filled up to `free` bytes of room, unmounted whatever happens. */
async function withFullDisk(free: number, fn: (dir: string) => Promise<void> | void) {
  const dir = tmpDir('fm-full-');
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { encoding: 'utf8' });
  if (m.status !== 0) throw new Error(`mount -t tmpfs: ${m.stderr}`);
  try {
    try {
      writeFileSync(path.join(dir, 'filler'), Buffer.alloc(64 * 1024 - free));
    } catch {
      /* full already: as wanted */
    }
    await fn(dir);
  } finally {
    spawnSync('umount', ['-l', dir]);
  }
}

const canMount = process.getuid?.() === 0;

t.test('a full disk during a run: one clear error, exit 2, no partial matrix, no results directory', { skip: canMount ? false : 'needs root (mount -t tmpfs)' }, async (t) => {
  await withFullDisk(4096, (out) => {
    const cache = tmpDir('fm-full-cache-');
    const r = fm(['run', '--suites', 'test/fixtures/verdicts', '--suite', 'libc', '--case', 'passes', '--env', HOST_ENV, '--budget', '10', '--jobs', '1', '--out', out, '--cache', cache]);
    t.equal(r.status, 2, r.stderr);
    const last = r.stderr.trimEnd().split('\n').pop()!;
    t.match(last, /^forkmatrix: \S+: no space left on the device: free some, or give another --out \/ --cache \(write\); nothing was written in its place$/, 'ends with one line naming the file');
    t.notMatch(r.stderr, /internal error|\n\s+at /, 'no stack trace');
    t.same(readdirSync(out), ['filler'], 'no run directory, no partial directory, no latest link');
  });
});

t.test('a full disk during a report: one clear error, no half-written matrix', { skip: canMount ? false : 'needs root (mount -t tmpfs)' }, async (t) => {
  const src = tmpDir('fm-full-src-');
  mkdirSync(src, { recursive: true });
  const cells = Array.from({ length: 40 }, (_, i) => fakeCell({ case: `libc/a/case-${i}`, source: 'x'.repeat(500) }));
  writeFileSync(path.join(src, 'a.tap'), writeStream({ tool: 'forkmatrix', run: 'r', env: 'glibc-2.36', proof: 'p', runtime: 'libc gcc', budget: '30', environment: {} }, cells));
  await withFullDisk(2048, (out) => {
    const r = fm(['report', src, '--out', out]);
    t.equal(r.status, 2, r.stderr);
    t.match(r.stderr.trimEnd(), /^forkmatrix: \S+\/(matrix\.json|matrix\.md|index\.html): no space left on the device.*nothing was written in its place$/, 'one line naming the file');
    t.same(readdirSync(out), ['filler'], 'no matrix.json, no temporary');
  });
});

t.test('a harness killed by the machine is an error cell with the reason, and the run goes on', async (t) => {
  const r = await runFixture('test/fixtures/machine', ['libc'], { budget: { kind: 'forks', forks: 3 }, jobs: 1, cacheDir: tmpDir('fm-machine-cache-') });
  const oom = r.byId('oom-killed');
  t.equal(oom.verdict, 'error', 'SIGKILLed like the OOM killer does: error');
  t.match(oom.reason, /killed by SIGKILL/, `the reason says so: ${oom.reason}`);
  const as = r.byId('address-space');
  if (as.verdict === 'skip') t.comment(`address-space: ${as.reason}`); // RLIMIT_AS not enforced for the harness here
  else {
    t.equal(as.verdict, 'error', 'an allocation refused under a low ulimit -v: error');
    t.match(as.reason, /SIGABRT/, `the reason names the signal: ${as.reason}`);
  }
  const after = r.byId('after');
  t.ok(after && after.verdict !== 'error' && after.forks > 0, `the run went on: the next cell ran (${after?.verdict} ${after?.forks} forks)`);
});
