// TAP is the interchange format: what a run writes must come back as the same matrix, and streams from several
// runs of the same cell must add up.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseStream, writeStream } from '../src/tap.ts';
import { buildMatrix, matrixFromTap, toMarkdown } from '../src/matrix.ts';
import { toHTML } from '../src/html.ts';
import { wilson, ruleOfThree } from '../src/stats.ts';
import { runFixture, tmp } from './helpers.ts';

t.test('Wilson interval and rule of three', async (t) => {
  const [lo, hi] = wilson(0, 100);
  t.equal(lo, 0);
  t.ok(Math.abs(hi - 0.037) < 0.001, `0/100 -> upper ${hi}`);
  const [l2, h2] = wilson(10, 100);
  t.ok(Math.abs(l2 - 0.0552) < 0.001 && Math.abs(h2 - 0.1744) < 0.001, `10/100 -> ${l2}..${h2}`);
  t.equal(ruleOfThree(300), 0.01);
});

t.test('a real run round-trips through TAP into the same matrix', async (t) => {
  const r = await runFixture('test/fixtures/verdicts', ['libc']);
  const m2 = await matrixFromTap([r.dir]);
  t.same(m2.rows.map((x) => x.key), r.matrix.rows.map((x) => x.key));
  t.same(m2.columns, r.matrix.columns);
  t.same(m2.cells, r.matrix.cells, 'every cell, with counts, interval, seed and first failure, survives TAP');
  t.same(m2.problems, []);
  const md = toMarkdown(m2);
  t.match(md, /\| verdicts\/hangs \| guaranteed \| ❌ hang 2\/2 \|/);
  t.match(md, /Replay: `npx forkmatrix run --case libc\/verdicts\/hangs --env glibc-[\d.]+ --budget 2 --suites test\/fixtures\/verdicts --seed 7`|Replay: `npx forkmatrix run --case libc\/verdicts\/hangs/);
  const html = toHTML(m2);
  t.match(html, /<td id="cell-libc-verdicts-hangs--glibc-[\d-]+-gcc-[\d-]+" class="fail-guaranteed"/);
  t.notMatch(html, /<script[^>]+src=/, 'one static file');

  // the same streams twice (two machines, two shards of repeated runs) sum up
  const other = tmp();
  for (const f of r.streams) writeFileSync(path.join(other, path.basename(f)), (await import('node:fs')).readFileSync(f, 'utf8'));
  const merged = await matrixFromTap([r.dir, other]);
  const key = 'libc/verdicts/passes';
  const col = Object.keys(merged.cells[key])[0];
  t.equal(merged.cells[key][col].forks, 2 * r.matrix.cells[key][col].forks);
  t.equal(merged.cells['libc/verdicts/hangs'][col].failures, 4);

  // a re-run after the case changed replaces the earlier cell: forks of two different programs never add up
  const changed = tmp();
  for (const f of r.streams) {
    const text = (await import('node:fs')).readFileSync(f, 'utf8');
    const s = parseStream(text, f);
    const edited = s.cells.map((c) => (c.case === key ? { ...c, source: `${c.source}\n# changed` } : c));
    writeFileSync(path.join(changed, path.basename(f)), writeStream({ tool: 'forkmatrix', run: 'rerun', env: edited[0].env, proof: 'p', runtime: edited[0].runtime, budget: '2', environment: {} }, edited));
  }
  const replaced = await matrixFromTap([r.dir, changed]);
  t.equal(replaced.cells[key][col].forks, r.matrix.cells[key][col].forks, 'the changed case is not summed with the old one');
  t.match(replaced.cells[key][col].source, /# changed$/, 'the later input (the re-run) wins');
  const reversed = await matrixFromTap([changed, r.dir]);
  t.notMatch(reversed.cells[key][col].source, /# changed$/, 'inputs are read in the order given, whatever their paths');
  t.equal(replaced.cells['libc/verdicts/hangs'][col].failures, 4, 'unchanged cases still add up');
});

t.test('foreign TAP without forkmatrix diagnostics is reported, not guessed', async (t) => {
  const s = parseStream('TAP version 14\n1..1\nok 1 - something\n', 'x.tap');
  t.same(s.cells, []);
  t.match(s.problems, [/x\.tap:(\d+:)? test point 1 \(something\) has no forkmatrix diagnostics/]);
  t.same(buildMatrix([]).rows, []);
  t.match(writeStream({ tool: 'forkmatrix', run: 'r', env: 'e', proof: 'p', runtime: 'x', budget: 'quick', environment: {} }, []), /^TAP version 14\n[\s\S]*1\.\.0\n/);
});
