// Ctrl-C or SIGKILL in the middle of a provision (download, unpack, build) leaves no entry a later run takes for
// complete, and the next provision resumes or rebuilds: it takes over the dead owner's lock instead of waiting for
// it, and removes the dead one's temporaries. A real provision killed mid-way is in
// test/slow/provision-robust.test.ts (it downloads).
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from '../src/cli.ts';
import { buildAtomically } from '../adapters/apt.ts';
import { tmpDir } from './robust-helpers.ts';

// a provision from a fresh test cache first rebuilds apt's package cache: minutes on a loaded machine
t.setTimeout(900_000);

/** A separate forkmatrix process building `dir` through buildAtomically: it fills half, says so, then waits for `go`. */
function builder(dir: string, go: string): ChildProcess {
  const script = path.join(tmpDir('fm-int-'), 'build.mts'); // .mts: an ES module wherever it lies
  writeFileSync(script, `
import { existsSync, writeFileSync } from 'node:fs';
import { buildAtomically } from ${JSON.stringify(path.join(REPO, 'adapters/apt.ts'))};
await buildAtomically(${JSON.stringify(dir)}, async (tmp) => {
  writeFileSync(tmp + '/half', 'x');
  process.stdout.write('filling\\n');
  while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 50));
  writeFileSync(tmp + '/complete', 'theirs');
}, (l) => process.stderr.write(l + '\\n'));
`);
  return spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
}

const said = (p: ChildProcess, what: string) =>
  new Promise<void>((res, rej) => {
    let out = '';
    let err = '';
    p.stdout!.on('data', (b) => ((out += b), out.includes(what) && res()));
    p.stderr!.on('data', (b) => (err += b));
    p.on('exit', (code) => rej(new Error(`the builder exited (${code}) before saying '${what}': ${err}`)));
  });
const exited = (p: ChildProcess) => new Promise<void>((res) => (p.exitCode != null || p.signalCode ? res() : p.on('exit', () => res())));

for (const sig of ['SIGKILL', 'SIGINT'] as const) {
  t.test(`${sig} in the middle of a build: nothing taken for complete; the next build takes over and rebuilds`, async (t) => {
    const root = tmpDir('fm-int-cache-');
    const dir = path.join(root, 'thing', '1.0');
    const p = builder(dir, path.join(root, 'never'));
    await said(p, 'filling');
    p.kill(sig);
    await exited(p);
    t.notOk(existsSync(dir), 'the entry does not exist: nothing reads it as complete');
    const left = readdirSync(path.dirname(dir));
    t.ok(left.includes(`1.0.tmp-${p.pid}`), `the dead build's temporary is there (${left.join(', ')})`);
    t.ok(left.includes('.1.0.lock'), 'and its lock, now stale');
    const lines: string[] = [];
    const t0 = Date.now();
    await buildAtomically(dir, (tmpDir) => writeFileSync(path.join(tmpDir, 'complete'), 'mine'), (l) => lines.push(l));
    t.ok(Date.now() - t0 < 20_000, `the stale lock was taken over, not waited for (${Date.now() - t0} ms)`);
    t.same(readdirSync(dir), ['complete'], 'rebuilt whole: nothing of the half-built one');
    t.same(readdirSync(path.dirname(dir)), ['1.0'], 'the dead temporary and the lock are gone');
  });
}

t.test('a second build of the same thing waits for the live first one, saying so, then reuses its result', async (t) => {
  const root = tmpDir('fm-int-cache-');
  const dir = path.join(root, 'thing', '2.0');
  const go = path.join(root, 'go');
  const p = builder(dir, go);
  await said(p, 'filling');
  const lines: string[] = [];
  let filled = false;
  const second = buildAtomically(dir, () => void (filled = true), (l) => lines.push(l));
  await new Promise((r) => setTimeout(r, 1500));
  t.match(lines.join('\n'), new RegExp(`waiting: another forkmatrix \\(pid ${p.pid}, since [^)]+\\) is building ${dir.replace(/[.]/g, '\\.')}`), 'it says whom it waits for');
  writeFileSync(go, '');
  await second;
  await exited(p);
  t.notOk(filled, 'it did not build again');
  t.equal(readFileSync(path.join(dir, 'complete'), 'utf8'), 'theirs', "it reused the first one's result");
  t.match(lines.join('\n'), /reusing .*: another forkmatrix built it meanwhile/);
});
