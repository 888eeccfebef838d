// Loaded into every test process (package.json tap.node-arg): the tests get a private forkmatrix cache, so a test
// run never writes the user's ~/.cache/forkmatrix (or whatever FORKMATRIX_CACHE names). CLI children inherit it.
// FORKMATRIX_TEST_CACHE points the tests at another directory (e.g. a CI cache kept between runs).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.env.FORKMATRIX_CACHE = path.resolve(process.env.FORKMATRIX_TEST_CACHE || path.join(repo, '.cache', 'test'));
// One interpreter per runtime, the one on PATH: not every pyenv/nvm/rbenv install on the machine (9 Pythons would
// run every Python test 9 times). test/runtime-sources.test.ts checks the other sources on a fake home.
process.env.FORKMATRIX_SOURCES ??= 'PATH';
