// The README's picture of the page (docs/page.png): the published matrix (results/published/matrix.json) rendered
// by this checkout's page code, its first screen taken in headless Chromium (Debian's, driven by playwright-core).
// "What changed" compares it with the previous publication: the matrix.json's own `changes` when report wrote
// them, else the version of results/published/matrix.json before the last commit that changed it.
//   npx tsx docs/screenshot.ts [results/published/matrix.json] [docs/page.png]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { buildMatrix, type Matrix } from '../src/matrix.ts';
import { toHTML } from '../src/html.ts';
import { computeChanges } from '../src/page/changes.ts';

const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const src = path.resolve(process.argv[2] ?? path.join(repo, 'results', 'published', 'matrix.json'));
const out = path.resolve(process.argv[3] ?? path.join(repo, 'docs', 'page.png'));
const exe = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync);
if (!exe) {
  process.stderr.write('no Chromium: apt-get install chromium\n');
  process.exit(2);
}

/** A stored matrix, rebuilt from its cells by this checkout's code (column order, repro commands). */
const rebuild = (m: Matrix): Matrix => {
  const cells = Object.values(m.cells).flatMap((row) => Object.values(row));
  return { ...buildMatrix(cells, m.sources, m.problems), generated: m.generated, census: m.census, changes: m.changes };
};

const now = rebuild(JSON.parse(readFileSync(src, 'utf8')));
if (!now.changes) {
  const rel = path.relative(repo, src);
  const revs = execFileSync('git', ['log', '--format=%H', '-n', '2', '--', rel], { cwd: repo, encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  if (revs.length === 2) {
    const prev = JSON.parse(execFileSync('git', ['show', `${revs[1]}:${rel}`], { cwd: repo, encoding: 'utf8', maxBuffer: 1 << 28 }));
    now.changes = computeChanges(prev, now, `${rel} as of ${revs[1].slice(0, 7)}`);
  }
}
const dir = mkdtempSync(path.join(os.tmpdir(), 'fm-shot-'));
const browser = await chromium.launch({ executablePath: exe, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
try {
  const html = path.join(dir, 'index.html');
  writeFileSync(html, toHTML(now));
  const tab = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  await tab.goto(pathToFileURL(html).href);
  await tab.screenshot({ path: out });
  process.stdout.write(`${path.relative(process.cwd(), out)}: the first screen of ${path.relative(process.cwd(), src)}'s page\n`);
} finally {
  await browser.close();
  rmSync(dir, { recursive: true, force: true });
}
