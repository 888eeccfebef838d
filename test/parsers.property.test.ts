// Property-based tests (fast-check) of every reader of user-supplied text: the case schema, the TAP reader, the
// baseline and expectations readers. Generated inputs (random text, and real documents mutated: cut, spliced,
// characters dropped or inserted) either parse or are reported with a position; nothing else is ever thrown, and
// whatever the TAP reader accepts renders into a matrix.
import t from 'tap';
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseSuiteFile } from '../src/schema.ts';
import { parseStream, writeStream } from '../src/tap.ts';
import { readBaseline, readExpectations, baselineFrom, compare } from '../src/gate.ts';
import { buildMatrix, toJSON, toMarkdown, toTerminal } from '../src/matrix.ts';
import { toHTML } from '../src/html.ts';
import { REPO } from '../src/cli.ts';
import { fakeCell, tmpDir } from './robust-helpers.ts';

const RUNS = Number(process.env.FM_PROPERTY_RUNS ?? 300);
const d = tmpDir('fm-prop-');

/** A real document, mutated: cut at a point, a slice dropped, junk inserted, or two cut halves spliced. */
function mutated(doc: string) {
  const junk = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.constantFrom('\n', ':', '- ', '  ', '"', "'", '[', '{', '}', ']', '#', '---', '...', '\t', '&a', '*a', '!!binary', '\0', '\uFFFD', '1..9\n', 'not ok 9\n', 'ok\n', 'Bail out!\n', 'TAP version 15\n'),
  );
  const at = fc.nat({ max: doc.length });
  return fc.oneof(
    at.map((i) => doc.slice(0, i)),
    fc.tuple(at, fc.nat({ max: 40 })).map(([i, n]) => doc.slice(0, i) + doc.slice(i + n)),
    fc.tuple(at, junk).map(([i, j]) => doc.slice(0, i) + j + doc.slice(i)),
    fc.tuple(at, at).map(([i, j]) => doc.slice(0, Math.min(i, j)) + doc.slice(Math.max(i, j)) + doc.slice(Math.min(i, j), Math.max(i, j))),
    fc.array(fc.tuple(at, junk), { maxLength: 5 }).map((edits) => edits.reduce((s, [i, j]) => s.slice(0, i) + j + s.slice(i), doc)),
  );
}

const anyText = fc.oneof(fc.string({ maxLength: 400 }), fc.string({ unit: 'binary', maxLength: 400 }), fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b).toString('utf8')));

t.test('case schema: parseSuiteFile parses or reports file:line:col, never throws', async (t) => {
  const real = readFileSync(path.join(REPO, 'test/fixtures/verdicts/libc/verdicts.yaml'), 'utf8');
  const clean = parseSuiteFile(real, 'suites/libc/verdicts.yaml');
  t.same(clean.problems, [], 'the unmutated file parses');
  let parsed = 0;
  let reported = 0;
  fc.assert(
    fc.property(fc.oneof(anyText, mutated(real)), (text) => {
      const r = parseSuiteFile(text, 'suites/libc/verdicts.yaml');
      if (r.problems.length) reported++;
      else parsed++;
      for (const p of r.problems) {
        if (!(Number.isInteger(p.line) && p.line >= 1 && Number.isInteger(p.col) && p.col >= 1 && typeof p.message === 'string' && p.message)) return false;
      }
      return true;
    }),
    { numRuns: RUNS },
  );
  t.ok(reported > 0, `problems reported with positions (${parsed} parsed, ${reported} reported)`);
});

t.test('TAP reader: parses or refuses with the file (and line), never throws; what it accepts renders', async (t) => {
  const cells = [
    fakeCell({ case: 'libc/a/one' }),
    fakeCell({ case: 'libc/a/two', verdict: 'fail', kind: 'hang', failures: 1, counts: { ok: 29, hang: 1, crash: 0, wrong: 0 }, first_failure: { kind: 'hang', message: 'stuck', fork: 3 } as never }),
    fakeCell({ case: 'libc/b/three', verdict: 'skip', reason: 'no # python\nhere', forks: 0, counts: { ok: 0, hang: 0, crash: 0, wrong: 0 } }),
  ];
  const real = writeStream({ tool: 'forkmatrix', run: 'r', env: 'glibc-2.36', proof: 'p', runtime: 'libc gcc', budget: '30', environment: {} }, cells);
  t.equal(parseStream(real, 'x.tap').refusal, null, 'the unmutated stream is accepted');
  let accepted = 0;
  let refused = 0;
  fc.assert(
    fc.property(fc.oneof(anyText, mutated(real)), (text) => {
      const r = parseStream(text, 'x.tap');
      for (const line of [...r.problems, ...(r.refusal ? [r.refusal] : [])]) if (!line.startsWith('x.tap') || line.includes('\n')) return false;
      if (r.refusal) {
        refused++;
        return true;
      }
      accepted++;
      const m = buildMatrix(r.cells, ['x.tap'], r.problems);
      toJSON(m);
      toMarkdown(m);
      toTerminal(m, false);
      toHTML(m);
      return r.cells.length > 0;
    }),
    { numRuns: RUNS },
  );
  t.ok(accepted > 0 && refused > 0, `both outcomes generated (${accepted} accepted, ${refused} refused)`);
});

t.test('baseline reader: parses or refuses in one line naming the file, never anything else', async (t) => {
  const real = JSON.stringify(baselineFrom([fakeCell({ case: 'libc/a/one' }), fakeCell({ case: 'libc/a/two', verdict: 'fail', kind: 'crash', failures: 2 })]), null, 1);
  const f = path.join(d, 'baseline.json');
  let parsed = 0;
  let refused = 0;
  const jsonish = fc.jsonValue().map((v) => JSON.stringify(v));
  const shaped = fc.record({ forkmatrix_baseline: fc.oneof(fc.constant(1), fc.jsonValue()), cells: fc.oneof(fc.dictionary(fc.string(), fc.jsonValue()), fc.jsonValue()) }).map((v) => JSON.stringify(v));
  fc.assert(
    fc.property(fc.oneof(anyText, jsonish, shaped, mutated(real)), (text) => {
      writeFileSync(f, text);
      let b;
      try {
        b = readBaseline(f);
      } catch (e) {
        refused++;
        const m = (e as Error).message;
        return e instanceof Error && m.startsWith(`--baseline ${f}`) && !m.includes('\n');
      }
      parsed++;
      compare([fakeCell({ case: 'libc/a/one', verdict: 'fail', kind: 'hang', failures: 1 }), fakeCell({ case: 'libc/z/new' })], b, []); // and the gate can use it
      return true;
    }),
    { numRuns: RUNS },
  );
  t.ok(parsed > 0 && refused > 0, `both outcomes generated (${parsed} parsed, ${refused} refused)`);
});

t.test('expectations reader: parses or reports file:line:col, never anything else', async (t) => {
  const real = '- case: libc/time/localtime\n  libc: glibc\n  versions: "<2.40"\n  verdict: hang\n  cite: "glibc bug 1234"\n- { case: libc/env/setenv, libc: musl, verdict: crash, cite: "musl 167390f0" }\n';
  const f = path.join(d, 'exp.yaml');
  let parsed = 0;
  let reported = 0;
  const entry = fc.record(
    { case: fc.oneof(fc.string(), fc.constant('libc/a/one')), libc: fc.constantFrom('glibc', 'musl', 'uclibc', 1), verdict: fc.constantFrom('hang', 'crash', 'fail', 'wrong', 'maybe'), cite: fc.oneof(fc.string(), fc.integer()), versions: fc.oneof(fc.string(), fc.double(), fc.constant(null)) },
    { requiredKeys: [] },
  );
  const yamlish = fc.array(fc.oneof(entry, fc.jsonValue()), { maxLength: 4 }).map((xs) => xs.map((x) => `- ${JSON.stringify(x)}`).join('\n'));
  fc.assert(
    fc.property(fc.oneof(anyText, yamlish, mutated(real)), (text) => {
      writeFileSync(f, text);
      try {
        readExpectations(f);
      } catch (e) {
        reported++;
        const m = (e as Error).message;
        return e instanceof Error && m.startsWith(`${f}:`) && /^[^:]+:\d+:\d+: /.test(m) && !m.includes('\n');
      }
      parsed++;
      return true;
    }),
    { numRuns: RUNS },
  );
  t.ok(parsed > 0 && reported > 0, `both outcomes generated (${parsed} parsed, ${reported} reported)`);
});
