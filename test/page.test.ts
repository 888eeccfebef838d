// The published page in a real browser (Debian's chromium driven by playwright-core): its first screen shows the
// family grid with each row's score and what changed since the last publication; the findings are grouped by where
// their cause lives, with the repro command; the full table still works (a filter hides rows, a cell's detail
// opens, a permalink opens its cell), and nothing logs an error.
import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { runFixture, tmp } from './helpers.ts';
import { toHTML } from '../src/html.ts';
import { buildMatrix, type Matrix } from '../src/matrix.ts';
import { computeChanges } from '../src/page/changes.ts';
import { causeOf } from '../src/page/findings.ts';
import type { CellResult } from '../src/types.ts';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync);
const VIEW = { width: 1280, height: 900 };

t.test('where a finding\'s cause lives (pure)', async (t) => {
  const cell = (runtime: string, libc: string, version: string, rt: string, over: Partial<CellResult> = {}) =>
    ({ runtime, runtime_version: rt, env: `${libc}-${version}`, libc: { name: libc, version, path: '', banner: '' }, verdict: 'fail', found: { measured: 'x', verdict: 'fail' }, failures: 1, forks: 10, ...over }) as CellResult;
  const musl = (v: string) => cell('libc', 'musl', v, 'gcc 12.2.0');
  t.same(causeOf([musl('1.2.3'), musl('1.2.5')], [musl('1.2.2'), cell('libc', 'glibc', '2.36', 'gcc 12.2.0')]), { cause: 'libc', where: 'musl 1.2.3, musl 1.2.5 (not musl 1.2.2)' }, 'a libc range; another libc says nothing about it');
  const py = (v: string, libc = 'glibc', lv = '2.36') => cell('python', libc, lv, v);
  t.same(causeOf([py('3.11.7'), py('3.11.7', 'musl', '1.2.5')], [py('3.13.0')]), { cause: 'runtime', where: 'python 3.11.7 (not 3.13.0), on glibc 2.36, musl 1.2.5' }, 'fails on every libc its versions ran on: the runtime');
  t.same(causeOf([py('3.11.7')], [py('3.11.7', 'musl', '1.2.5')]).cause, 'libc', 'the same python passes on another libc: the libc');
});

t.test('columns: by runtime, then its version (free-threaded after its base), then libc; the table groups them', async (t) => {
  const cell = (env: string, name: string, version: string, rt: string) =>
    ({ case: 'python/f/a', family: 'f', title: 'a', cite: [], file: '', source: '', runtime: 'python', runtime_version: rt, env, libc: { name, version, path: '', banner: '' }, verdict: 'pass', level: 'guaranteed', forks: 300, failures: 0, counts: { ok: 300, hang: 0, crash: 0, wrong: 0 }, rate: 0, interval: [0, 0.01], replay: '', seed: 1, clean_env: {} }) as unknown as CellResult;
  const m = buildMatrix([cell('musl-1.2.5', 'musl', '1.2.5', '3.14.0t'), cell('glibc-2.41', 'glibc', '2.41', '3.11.7'), cell('glibc-2.36', 'glibc', '2.36', '3.14.0t'), cell('glibc-2.36', 'glibc', '2.36', '3.14.0'), cell('glibc-2.36', 'glibc', '2.36', '3.11.7')]);
  t.same(m.columns.map((c) => c.id), ['glibc-2.36 · python 3.11.7', 'glibc-2.41 · python 3.11.7', 'glibc-2.36 · python 3.14.0', 'glibc-2.36 · python 3.14.0t', 'musl-1.2.5 · python 3.14.0t']);
  const html = toHTML(m);
  t.match(html, /<th class="grp" colspan="2">python 3\.11\.7<\/th><th class="grp" colspan="1">python 3\.14\.0<\/th><th class="grp" colspan="2">python 3\.14\.0t<\/th>/, 'one header over each version');
  t.match(html, /<tr class="ver"><th colspan="3">python 3\.14\.0t<\/th><\/tr>/, 'the grid groups its rows by version too');
});

t.test('the matrix page in headless Chromium', { skip: CHROMIUM ? false : 'no Chromium (apt-get install chromium): .ci/run installs it' }, async (t) => {
  const { chromium } = await import('playwright-core');
  const r = await runFixture('test/fixtures/verdicts', ['libc']);
  // a finding (with a standalone reproducer) and a previous publication in which the hang still passed
  const m: Matrix = buildMatrix(r.cells.map((c) => (c.case.endsWith('/crashes') ? { ...c, found: { measured: 'crashes here, measured by the fixture', verdict: 'fail' as const }, repro: 'npx forkmatrix repro libc/verdicts/crashes --env X' } : c)), r.matrix.sources);
  const prev = buildMatrix(r.cells.map((c) => (c.case.endsWith('/hangs') ? { ...c, verdict: 'pass' as const, kind: null, failures: 0, forks: 400 } : c)));
  m.changes = computeChanges(prev, m, 'results/published/matrix.json');
  const file = path.join(tmp(), 'index.html');
  writeFileSync(file, toHTML(m));
  const url = pathToFileURL(file).href;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: VIEW });
  const errors: string[] = [];
  page.on('console', (msg) => msg.type() === 'error' && errors.push(msg.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);

  // the first screen: the grid, its scores, what changed
  const onFirstScreen = async (sel: string) => {
    const box = await page.locator(sel).first().boundingBox();
    return !!box && box.y >= 0 && box.y + Math.min(box.height, 40) <= VIEW.height;
  };
  t.ok(await onFirstScreen('figure.grid[data-runtime="libc"] table.g'), 'the libc grid is on the first screen');
  t.ok(await onFirstScreen('figure.grid td.score'), 'the score is on the first screen');
  t.ok(await onFirstScreen('#changes h2'), 'what changed is on the first screen');
  t.match(await page.locator('figure.grid td.score').first().innerText(), /^1 of 5 promises hold/, 'a per-column score like test262.fyi');
  const fams = await page.locator('figure.grid th.fh').allInnerTexts();
  t.same(fams, ['verdicts'], 'grid columns are the families');
  const sq = page.locator('figure.grid td.sq').first();
  t.match(await sq.getAttribute('class'), /fail-guaranteed/, 'the square shows the most serious verdict of its family (the broken guarantee)');
  const title = (await sq.getAttribute('title')) ?? '';
  t.match(title, /hangs: hang 2\/2 \(100%\)/, 'the rate on hover');
  t.match(title, /1 of 5 promises hold/);
  await sq.locator('a').click();
  t.match(page.url(), /#fam-libc-verdicts$/, 'a square leads to its family in the table');

  const changes = await page.locator('#changes').innerText();
  t.match(changes, /1 broke/);
  t.match(changes, /broke\s+libc\/verdicts\/hangs on .*: pass 0\/400 → hang 2\/2/);

  const findings = await page.locator('#findings').innerText();
  t.match(findings, /In glibc \d/, 'findings grouped by where the cause lives');
  t.match(findings, /libc\/verdicts\/crashes: crashes here/);
  t.match(findings, /affected: .* crash \d+\/\d+ \(\d+%\)/, 'with the rate');
  t.match(findings, /reproduce: npx forkmatrix repro libc\/verdicts\/crashes --env \S+/, 'and the repro command of the cell');

  // the full table below
  t.equal(await page.locator('tr.case').count(), 6, 'one row per case');
  t.match(await page.locator('ul.summary').innerText(), /1 of 5 libc promises hold/);
  const hang = page.locator('td.fail-guaranteed', { hasText: 'hang 2/2' });
  t.equal(await hang.count(), 1, 'the hang is coloured as a broken guarantee');
  await hang.locator('summary').click();
  t.ok(await hang.locator('table.d').isVisible(), 'clicking a cell opens its detail');
  t.match(await hang.locator('table.d').innerText(), /reproduce[\s\S]*npx forkmatrix run --case libc\/verdicts\/hangs/);
  t.match(await hang.locator('table.d').innerText(), /budget\s+2 forks or 5 s/, 'the detail says what budget the cell had');
  t.match(await page.locator('table.m thead').first().innerText(), /1 of 5 promises hold/, 'each table column carries its score');

  await page.selectOption('#f-v', 'pass');
  t.equal(await page.locator('tr.case:visible').count(), 1, 'the verdict filter leaves only the passing row');
  await page.selectOption('#f-v', '');
  t.equal(await page.locator('tr.case:visible').count(), 6);

  const id = await page.locator('td.wrong, td.fail-libc').first().getAttribute('id');
  await page.goto(`${url}#${id}`);
  t.ok(await page.locator(`#${id} table.d`).isVisible(), 'a permalink opens its cell');
  t.same(errors, [], 'no console errors');
});
