// The README's picture of the page: the first screen of results/published/index.html (or the page given), taken
// in headless Chromium (Debian's, driven by playwright-core). Regenerate after publishing:
//   npx tsx docs/screenshot.ts [results/published/index.html] [docs/page.png]
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(new URL(import.meta.url).pathname);
const page = path.resolve(process.argv[2] ?? path.join(here, '..', 'results', 'published', 'index.html'));
const out = path.resolve(process.argv[3] ?? path.join(here, 'page.png'));
const exe = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync);
if (!exe) {
  process.stderr.write('no Chromium: apt-get install chromium\n');
  process.exit(2);
}
const browser = await chromium.launch({ executablePath: exe, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
try {
  const tab = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  await tab.goto(pathToFileURL(page).href);
  await tab.screenshot({ path: out });
  process.stdout.write(`${path.relative(process.cwd(), out)}: the first screen of ${path.relative(process.cwd(), page)}\n`);
} finally {
  await browser.close();
}
