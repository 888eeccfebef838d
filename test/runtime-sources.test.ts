// Runtime sources (src/runtimes/) on a fake home: pyenv, nvm, rbenv, asdf, uv trees of tiny shell-script
// interpreters that answer the version query. Discovery, dedupe by real path and the broken one's reason, without
// touching the real home (home, variables and sources are injected).
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { identifyRuntime } from '../adapters/host.ts';
import { discover, sources } from '../src/runtimes/index.ts';
import { pathSource } from '../src/runtimes/path.ts';
import { parseQuery } from '../src/runtimes/spec.ts';
import { specOf } from '../src/runtimes/specs.ts';

const made: string[] = [];
function tmp(prefix: string): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}
t.teardown(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A fake interpreter: prints `version` and its own real path, as the runtime's query asks. */
function fake(file: string, version: string) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `#!/bin/sh\necho ${version}\nreadlink -f "$0"\n`);
  chmodSync(file, 0o755);
}

function broken(file: string) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, '#!/bin/sh\necho "python3: error while loading shared libraries: libpython3.9.so.1.0: cannot open shared object file" >&2\nexit 127\n');
  chmodSync(file, 0o755);
}

const home = tmp('fm-fake-home-');
const cache = tmp('fm-fake-cache-');
fake(`${home}/.pyenv/versions/3.12.1/bin/python3`, '3.12.1');
fake(`${home}/.pyenv/versions/3.9.18/bin/python3`, '3.9.18');
fake(`${home}/.pyenv/versions/3.14.0t/bin/python3`, '3.14.0t');
fake(`${home}/.pyenv/versions/2.7.18/bin/python`, '2.7.18'); // no python3 in 2.x: bin/python
broken(`${home}/.pyenv/versions/3.9.0/bin/python3`);
mkdirSync(`${home}/.pyenv/versions/empty/bin`, { recursive: true }); // no interpreter: not a candidate
fake(`${home}/.nvm/versions/node/v20.11.0/bin/node`, '20.11.0');
fake(`${home}/.nvm/versions/node/v18.19.0/bin/node`, '18.19.0');
fake(`${home}/.rbenv/versions/3.3.0/bin/ruby`, '3.3.0');
// the same ruby reached through asdf (a link to rbenv's): one runtime, not two
mkdirSync(`${home}/.asdf/installs/ruby/3.3.0/bin`, { recursive: true });
symlinkSync(`${home}/.rbenv/versions/3.3.0/bin/ruby`, `${home}/.asdf/installs/ruby/3.3.0/bin/ruby`);
fake(`${home}/.local/share/uv/python/cpython-3.13.1-linux-x86_64-gnu/bin/python3`, '3.13.1');
// a second install of a version already found (uv's 3.12.1 beside pyenv's): the first keeps the column
fake(`${home}/.local/share/uv/python/cpython-3.12.1-linux-x86_64-gnu/bin/python3`, '3.12.1');

const noPath = () => sources().filter((s) => s.name !== 'PATH');
const found = () => discover({ cacheDir: cache, home, env: {}, libc: 'glibc', sources: noPath() }, (rt, exe) => identifyRuntime(rt, exe));

t.test('every install under the fake home is found without flags, oldest version first', async (t) => {
  const { runtimes } = found();
  const got = runtimes.map((r) => `${r.runtime} ${r.version}`);
  t.same(got, ['python 3.9.18', 'python 3.12.1', 'python 3.13.1', 'python 3.14.0t', 'ruby 3.3.0', 'node 18.19.0', 'node 20.11.0']);
  t.equal(runtimes.find((r) => r.version === '3.14.0t')?.executable, `${home}/.pyenv/versions/3.14.0t/bin/python3`, 'the real path the interpreter named');
});

t.test('dedupe: a link to an install already found is not a second runtime', async (t) => {
  const rubies = found().runtimes.filter((r) => r.runtime === 'ruby');
  t.equal(rubies.length, 1);
  t.equal(rubies[0].executable, `${home}/.rbenv/versions/3.3.0/bin/ruby`);
});

t.test('a broken interpreter, Python 2 and a same-version second install are missing, one line each with the reason', async (t) => {
  const { missing } = found();
  const lines = missing.map((m) => m.reason);
  for (const l of lines) t.notOk(l.includes('\n'), `one line: ${l}`);
  const broke = missing.find((m) => m.reason.includes('3.9.0'));
  t.ok(broke, 'the broken 3.9.0 is listed');
  t.equal(broke!.runtime, 'python');
  t.match(broke!.reason, /^pyenv 3\.9\.0: .*3\.9\.0\/bin\/python3 did not answer python's version query \(.*libpython3\.9\.so\.1\.0: cannot open shared object file\)$/);
  t.match(lines.join('\n'), /pyenv 2\.7\.18: .*Python 2\.7\.18 cannot run the harness/);
  t.match(lines.join('\n'), /uv cpython-3\.12\.1-linux-x86_64-gnu: python 3\.12\.1 .* is the same version as .*\.pyenv\/versions\/3\.12\.1/);
  t.notOk(lines.some((l) => l.includes('empty')), 'a version dir without an interpreter is no candidate');
});

t.test('--runtime is asked first: the interpreter the user named keeps its version\'s column', async (t) => {
  const mine = path.join(tmp('fm-own-python-'), 'python3');
  fake(mine, '3.12.1');
  const { runtimes, missing } = discover({ cacheDir: cache, home, env: {}, libc: 'glibc', sources: noPath(), extra: [{ runtime: 'python', path: mine }] }, (rt, exe) => identifyRuntime(rt, exe));
  t.equal(runtimes.find((r) => r.version === '3.12.1')?.executable, mine);
  t.match(missing.map((m) => m.reason).join('\n'), /pyenv 3\.12\.1: python 3\.12\.1 .* is the same version as /);
});

t.test('variables move the roots (PYENV_ROOT, NVM_DIR), still without the real home', async (t) => {
  const other = tmp('fm-fake-root-');
  fake(`${other}/py/versions/3.11.7/bin/python3`, '3.11.7');
  fake(`${other}/n/versions/node/v22.1.0/bin/node`, '22.1.0');
  const { runtimes } = discover(
    { cacheDir: cache, home: tmp('fm-empty-home-'), env: { PYENV_ROOT: `${other}/py`, NVM_DIR: `${other}/n` }, libc: 'glibc', sources: noPath() },
    (rt, exe) => identifyRuntime(rt, exe),
  );
  t.same(runtimes.map((r) => `${r.runtime} ${r.version}`), ['python 3.11.7', 'node 22.1.0']);
});

t.test('an empty home: each runtime is missing with the install hint, nothing throws', async (t) => {
  const { runtimes, missing } = discover({ cacheDir: cache, home: tmp('fm-empty-home-'), env: {}, libc: 'glibc', sources: noPath() }, (rt, exe) => identifyRuntime(rt, exe));
  t.same(runtimes, []);
  t.match(missing.find((m) => m.runtime === 'python')?.reason, /no python3 on PATH \(apt-get install python3, or --runtime python=\/path\)/);
});

t.test('PATH: the first directory wins, and version managers\' shims are looked past', async (t) => {
  const bin = tmp('fm-fake-bin-');
  const shims = path.join(tmp('fm-fake-pyenv-'), 'shims');
  fake(path.join(shims, 'python3'), '3.11.7');
  fake(path.join(bin, 'python3'), '3.10.1');
  const c = pathSource.candidates({ cacheDir: cache, env: { PATH: `${shims}:${bin}` } });
  t.equal(c.find((x) => x.runtime === 'python')?.path, path.join(bin, 'python3'));
});

t.test('the query parsers: Python\'s free-threaded "t", a refused Python 2, the compiler label', async (t) => {
  t.match(parseQuery(specOf('python'), '/x/python3', '3.14.0t\n/x/python3.14t\n'), { version: '3.14.0t', executable: '/x/python3.14t' });
  t.match(parseQuery(specOf('python'), '/x/python', '2.7.18\n/x/python2.7\n'), { reason: /Python 2\.7\.18 cannot run the harness/ });
  t.match(parseQuery(specOf('libc'), '/usr/bin/gcc', '12.2.0\n'), { runtime: 'libc', version: 'gcc 12.2.0', executable: '/usr/bin/gcc' });
  t.match(parseQuery(specOf('node'), '/n', ''), { reason: /printed no version/ });
});
