// `npm test` (pretest) and `npm run test:slow` start here: they install what the tests need, so a fresh clone on a
// fresh Debian machine with Node 20 needs nothing else. Plain Node, no dependencies (it runs before `npm ci`).
//  - npm: `npm ci` when node_modules is missing or older than package-lock.json;
//  - Debian: ruby, python3, gcc, gdb (the hang backtrace), cmake (libuv) and chromium (the page test), with apt,
//    only where missing. Not root: it says what is missing; the tests that need it skip with that reason.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sh = (cmd, args, env = process.env) => spawnSync(cmd, args, { cwd: repo, stdio: ['ignore', 'inherit', 'inherit'], env }).status;
const onPath = (exe) => (process.env.PATH ?? '').split(':').some((d) => d && existsSync(path.join(d, exe)));

const lock = path.join(repo, 'package-lock.json');
const installed = path.join(repo, 'node_modules', '.package-lock.json');
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  console.log('test: npm ci (node_modules is missing or older than package-lock.json)');
  if (sh('npm', ['ci', '--no-audit', '--no-fund']) !== 0) process.exit(1);
}

const PACKAGES = { ruby: 'ruby', python3: 'python3', cc: 'gcc', gdb: 'gdb', cmake: 'cmake', chromium: 'chromium' };
const need = Object.entries(PACKAGES).filter(([exe]) => !onPath(exe)).map(([, pkg]) => pkg);
if (need.length && process.getuid?.() === 0 && onPath('apt-get')) {
  console.log(`test: apt-get install ${need.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const wait = ['-o', 'DPkg::Lock::Timeout=600'];
  if (sh('apt-get', [...wait, 'install', '-y', '-q', ...need], env) !== 0) {
    sh('apt-get', [...wait, 'update', '-q'], env);
    if (sh('apt-get', [...wait, 'install', '-y', '-q', ...need], env) !== 0) process.exit(1);
  }
} else if (need.length) {
  console.log(`test: missing ${need.join(', ')} (as root: apt-get install ${need.join(' ')}); the tests that need them skip`);
}
