import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from '../src/cli.ts';
import { expandName, lockTarget, macros, parseC } from '../src/census/cparse.ts';
import { runCensusEngine } from '../src/census/engine.ts';
import { glibcDialect, muslDialect } from '../src/census/dialects.ts';
import { censusHtml, censusSummary, knownLockIds, readCatalogue, runCensus, updateCatalogue } from '../src/census/index.ts';
import { localSource } from '../src/census/source.ts';

const FIX = path.join(REPO, 'test/fixtures/census');

t.test('the C reader: functions, macro-made names, lock expressions', async (t) => {
  const f = parseC('#define F getpwnam\n/* { */ static int helper (void) { return "}"[0]; }\nint\nF (const char *n)\n{\n  return helper ();\n}\n');
  t.same(f.functions.map((x) => [x.name, x.isStatic, x.line]), [['helper', true, 2], ['F', false, 4]]);
  t.equal(expandName('INTERNAL (REENTRANT_GETNAME)', macros([{ text: '#define REENTRANT_GETNAME APPEND_R (GETFUNC_NAME)' }, { text: '#define APPEND_R(Name) CONCAT2_2 (Name, _r)' }, { text: '#define INTERNAL(Name) CONCAT2_2 (__, Name)' }, { text: '#define CONCAT2_2(Pre, Post) Pre##Post' }, { text: '#define GETFUNC_NAME getpwent' }])).replace(/\s+/g, ''), '__getpwent_r');
  t.same(lockTarget('GL(dl_load_lock)'), { name: '_dl_load_lock', member: true });
  t.same(lockTarget('ar_ptr->mutex'), { name: 'mutex', member: true });
  t.same(lockTarget('&lock'), { name: 'lock', member: false });
});

t.test('glibc fixture: ids, a template counted under its includer, fork status, public reach', async (t) => {
  const r = runCensusEngine(path.join(FIX, 'glibc'), glibcDialect);
  const by = Object.fromEntries(r.locks.map((l) => [l.id, l]));
  t.same(Object.keys(by).sort(), ['glibc:posix/fork:fork_only_lock', 'glibc:posix/fork:global_reset_lock', 'glibc:pwd/getpwnam:lock', 'glibc:time/tzset:tzset_lock']);
  t.equal(r.forkFile, 'posix/fork.c');
  t.equal(by['glibc:posix/fork:fork_only_lock'].status, 'taken', 'acquired in a helper fork calls');
  t.match(by['glibc:posix/fork:fork_only_lock'].how[0], /in prepare \(posix\/fork\.c:\d+\) <- __libc_fork/);
  t.equal(by['glibc:posix/fork:global_reset_lock'].status, 'reset');
  t.equal(by['glibc:time/tzset:tzset_lock'].status, 'none');
  t.same(by['glibc:time/tzset:tzset_lock'].public, ['tzset'], 'through weak_alias');
  t.same(by['glibc:time/tzset:tzset_lock'].via, ['localtime_r (time/localtime.c) -> __tz_convert'], 'one hop through the internal __tz_convert');
  t.same(by['glibc:pwd/getpwnam:lock'].public, ['getpwnam'], 'the template function named by the includer');
  t.equal(by['glibc:pwd/getpwnam:lock'].file, 'nss/getXXbyYY.c', 'defined in the template, counted under the includer');
});

t.test('musl fixture: the atfork_locks table, a lock fork does not take', async (t) => {
  const r = runCensusEngine(path.join(FIX, 'musl'), muslDialect);
  const by = Object.fromEntries(r.locks.map((l) => [l.id, l]));
  t.equal(by['musl:src/time/__tz:lock']?.status, 'taken');
  t.match(by['musl:src/time/__tz:lock'].how[0], /atfork_locks\[\] \(&__timezone_lockptr/);
  t.equal(by['musl:src/misc/syslog:lock']?.status, 'none', 'its lockptr exists but is not in the table');
  t.same(by['musl:src/misc/syslog:lock'].public, ['syslog']);
});

t.test('coverage: a case names a lock, a reason excuses one, the rest is uncovered', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fm-census-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = runCensusEngine(path.join(FIX, 'musl'), muslDialect);
  const cat = updateCatalogue([{ libc: 'musl', version: '9.9.9', env: null, source: 'fixture', forkFile: r.forkFile, files: r.files, units: r.units, unresolved: [], locks: r.locks }], path.join(dir, 'c.json'));
  t.ok(knownLockIds(path.join(dir, 'c.json')).has('musl:src/misc/syslog:lock'));
  const s = censusSummary([{ runtime: 'libc', id: 'tz', locks: ['musl:src/time/__tz:lock', 'musl:nope:x'] }], cat, new Map())!;
  const v = s.versions[0];
  t.equal(v.uncovered, 1);
  t.equal(v.list.find((l) => l.id === 'musl:src/misc/syslog:lock')?.coverage, 'uncovered');
  t.same(v.list.find((l) => l.id === 'musl:src/time/__tz:lock')?.cases, ['libc/tz']);
  t.same(s.unknownLocks, ['musl:nope:x']);
  const html = censusHtml(s);
  t.match(html, /<section id="census">/);
  t.match(html, /<td>musl 9\.9\.9<\/td>|musl 9\.9\.9/);
  t.match(html, /musl:src\/misc\/syslog:lock/);
  const s2 = censusSummary([], cat, new Map([['musl:src/misc/*', 'a reason']]))!;
  t.equal(s2.versions[0].uncovered, 0);
  t.equal(s2.versions[0].list.find((l) => l.id === 'musl:src/misc/syslog:lock')?.reason, 'a reason');
});

t.test('bad input: one line naming the flag', async (t) => {
  t.throws(() => localSource('/nonexistent-dir'), /--libc \/nonexistent-dir: no such directory/);
  t.throws(() => localSource(REPO), /not a libc source tree/);
  const cache = mkdtempSync(path.join(os.tmpdir(), 'fm-census-cache-'));
  t.teardown(() => rmSync(cache, { recursive: true, force: true }));
  await t.rejects(runCensus({ cacheDir: cache, envs: ['musl-0.0.1'] }), { message: /^--env musl-0\.0\.1: no such libc provisioned here; available: / });
});

t.test('the committed catalogue knows the provisioned versions', async (t) => {
  const cat = readCatalogue();
  t.ok(cat, 'census/catalogue.json exists');
  t.ok(cat!.versions.some((v) => v.libc === 'musl' && v.version === '1.2.5'));
  t.ok(knownLockIds().has('glibc:stdlib/setenv:envlock'));
});
