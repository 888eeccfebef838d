// `npm test` (pretest) and `npm run test:slow` start here: they install what the tests need, so a fresh clone on a
// fresh Debian machine with Node 20 needs nothing else. Plain Node, no dependencies (it runs before `npm ci`).
//  - npm: `npm ci` when a dependency is missing or not the locked version;
//  - Debian: ruby, python3, gcc, gdb (the hang backtrace), cmake (libuv) and chromium (the page test), with apt,
//    only where missing. Not root: it says what is missing; the tests that need it skip with that reason.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sh = (cmd, args, env = process.env) => spawnSync(cmd, args, { cwd: repo, stdio: ['ignore', 'inherit', 'inherit'], env }).status;
const onPath = (exe) => (process.env.PATH ?? '').split(':').some((d) => d && existsSync(path.join(d, exe)));

// npm ci when a direct dependency is missing or not the version package-lock.json pins (never on a mere mtime:
// npm ci starts by deleting node_modules)
const lock = JSON.parse(readFileSync(path.join(repo, 'package-lock.json'), 'utf8')).packages ?? {};
const pkg = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8'));
const stale = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).filter((dep) => {
  const want = lock[`node_modules/${dep}`]?.version;
  const file = path.join(repo, 'node_modules', dep, 'package.json');
  return !existsSync(file) || (want && JSON.parse(readFileSync(file, 'utf8')).version !== want);
});
if (stale.length) {
  console.log(`test: npm ci (${stale.length} dependencies missing or not the locked version: ${stale.slice(0, 5).join(', ')})`);
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
