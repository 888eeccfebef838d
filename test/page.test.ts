// The published page in a real browser (Debian's chromium driven by playwright-core): it renders, a filter hides
// rows, a cell's detail opens, a permalink opens its cell, and nothing logs an error.
import t from 'tap';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { runFixture } from './helpers.ts';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync);

t.test('the matrix page in headless Chromium', { skip: CHROMIUM ? false : 'no Chromium (apt-get install chromium): .ci/run installs it' }, async (t) => {
  const { chromium } = await import('playwright-core');
  const r = await runFixture('test/fixtures/verdicts', ['libc']);
  const url = pathToFileURL(path.join(r.dir, 'index.html')).href;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  t.equal(await page.locator('tr.case').count(), 6, 'one row per case');
  t.match(await page.locator('ul.summary').innerText(), /1 of 5 libc promises hold/);

  const hang = page.locator('td.fail-guaranteed', { hasText: 'hang 2/2' });
  t.equal(await hang.count(), 1, 'the hang is coloured as a broken guarantee');
  await hang.locator('summary').click();
  t.ok(await hang.locator('table.d').isVisible(), 'clicking a cell opens its detail');
  t.match(await hang.locator('table.d').innerText(), /reproduce[\s\S]*npx forkmatrix run --case libc\/verdicts\/hangs/);
  t.match(await hang.locator('table.d').innerText(), /budget\s+2 forks or 5 s/, 'the detail says what budget the cell had');

  await page.selectOption('#f-v', 'pass');
  const visible = await page.locator('tr.case:visible').count();
  t.equal(visible, 1, 'the verdict filter leaves only the passing row');
  await page.selectOption('#f-v', '');
  t.equal(await page.locator('tr.case:visible').count(), 6);

  const id = await page.locator('td.wrong, td.fail-libc').first().getAttribute('id');
  await page.goto(`${url}#${id}`);
  t.ok(await page.locator(`#${id} table.d`).isVisible(), 'a permalink opens its cell');
  t.same(errors, [], 'no console errors');
});
