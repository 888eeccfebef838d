// A real census (npm run test:slow): musl 1.2.5's source downloaded from Debian through a private apt state.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCensus } from '../../src/census/index.ts';

t.test('a real census: musl 1.2.5 from Debian source, in a private cache', { timeout: 600_000 }, async (t) => {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'fm-census-real-'));
  t.teardown(() => rmSync(cache, { recursive: true, force: true }));
  // the private cache needs the musl environment's record (what `provision musl-1.2.5` writes) to know the version
  const mdir = path.join(cache, 'musl', '1.2.5');
  mkdirSync(mdir, { recursive: true });
  writeFileSync(path.join(mdir, 'info.json'), JSON.stringify({ version: '1.2.5', packages: { musl: '1.2.5-3.1~deb13u1' } }));
  // a real download through the private apt state (it needs the Debian mirror, as `provision` does)
  const [r] = await runCensus({ cacheDir: cache, envs: ['musl-1.2.5'] });
  t.equal(r.forkFile, 'src/process/fork.c');
  const by = Object.fromEntries(r.locks.map((l) => [l.id, l]));
  for (const id of ['musl:src/time/__tz:lock', 'musl:src/misc/syslog:lock', 'musl:src/prng/random:lock', 'musl:src/thread/pthread_key_create:key_lock', 'musl:ldso/dynlink:init_fini_lock'])
    t.equal(by[id]?.status, 'taken', `${id}: fork() takes it in 1.2.5`);
  t.equal(by['musl:src/internal/stdio_impl:_IO_FILE.lock']?.status, 'none', "a FILE's own lock is not taken by fork()");
  t.ok(r.locks.length >= 20, `${r.locks.length} locks`);
});
