// `npm run test:slow` first provisions, into the tests' private cache (test/setup.mjs), what the slow tests use:
// musl 1.2.2/1.2.3/1.2.5, the glibc 2.41 copy, the allocators and the libuv sources (about 40 s from nothing on 2
// cores with a reachable Debian mirror; seconds when they are there). The Debian roots and the musl-built runtimes
// take many minutes: their tests skip with the provision command unless FORKMATRIX_TEST_CACHE names a cache that has
// them.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import '../setup.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const what = ['musl', 'glibc', 'allocators', 'libuv'];
console.log(`test:slow: provisioning ${what.join(' ')} into ${process.env.FORKMATRIX_CACHE}`);
const r = spawnSync(process.execPath, [path.join(repo, 'bin/forkmatrix.mjs'), 'provision', ...what], { stdio: 'inherit', env: process.env });
process.exit(r.status ?? 1);
