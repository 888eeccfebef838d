import t from 'tap';
import { readFileSync } from 'node:fs';
import { parseSuiteFile, formatProblem, parseDuration, knownApplies } from '../src/schema.ts';
import { loadSuite } from '../src/cases.ts';
import { REPO } from '../src/cli.ts';

const BROKEN = 'test/fixtures/broken/python/stdio.yaml';

t.test('every problem names file:line:col, the path and the fix', async (t) => {
  const { cases, problems } = parseSuiteFile(readFileSync(`${REPO}/${BROKEN}`, 'utf8'), BROKEN);
  const lines = problems.map(formatProblem);
  t.same(cases.map((c) => c.id), ['first-case'], 'only the valid case survives');
  t.match(lines, [
    /^test\/fixtures\/broken\/python\/stdio\.yaml:11:5: cases\[1\]\.child: missing required key 'child'$/,
    /^test\/fixtures\/broken\/python\/stdio\.yaml:22:14: cases\[2\]\.timeout: expected a duration like 2s or 500ms$/,
    /:23:9: cases\[3\]\.id: duplicate id 'first-case' \(first at line 4\)/,
    /:26:5: cases\[3\]\.chidl: unknown key \(did you mean 'child'\?\)/,
    /:30:22: cases\[3\]\.budget\.forks: expected a whole number from 1 to 10000000$/,
  ]);
  t.equal(lines.length, 5);
});

t.test('bad YAML, unknown runtime, misplaced file', async (t) => {
  const bad = parseSuiteFile('runtime: python\nfamily: x\ncases:\n  - id: a\n    title: [unclosed\n', 'suites/python/x.yaml');
  t.match(formatProblem(bad.problems[0]), /^suites\/python\/x\.yaml:\d+:\d+: YAML: /);
  const rt = parseSuiteFile('runtime: java\nfamily: x\ncases: []\n', 'suites/python/x.yaml');
  t.match(rt.problems.map(formatProblem), [/suites\/python\/x\.yaml:1:10: runtime: expected one of libc, python, ruby, node, libuv/, /3:8: cases: expected a non-empty list of cases/]);
  const moved = parseSuiteFile('runtime: ruby\nfamily: y\ncases:\n  - id: a\n    title: t\n    promise: {level: none, cite: c}\n    child: "1"\n    budget: {forks: 1, seconds: 1}\n    timeout: 1s\n', 'suites/python/x.yaml');
  t.match(moved.problems.map(formatProblem), [/1:10: runtime: is 'ruby' but the file lives in suites\/python\//, /2:9: family: is 'y' but the file is named x\.yaml/]);
  const types = parseSuiteFile('runtime: python\nfamily: x\ncases:\n  - id: a\n    title: t\n    promise: {level: always, cite: c}\n    parent: {threads: -1, loop: "x"}\n    child: "1"\n    budget: {forks: 1, seconds: 1}\n    timeout: 1s\n', 'suites/python/x.yaml');
  t.match(types.problems.map(formatProblem), [/6:22: cases\[0\]\.promise\.level: expected one of guaranteed, tested, libc, none/, /7:23: cases\[0\]\.parent\.threads: expected a whole number from 0 to 64/]);
});

t.test('a valid case keeps its snippets and the YAML lines they start on', async (t) => {
  const text = 'runtime: libc\nfamily: f\ncases:\n  - id: a-b\n    title: t\n    promise: { level: libc, cite: [c] }\n    env: { TZ: UTC }\n    parent:\n      threads: 2\n      loop: |\n        x();\n    child: |\n      return 0;\n    budget: { forks: 5, seconds: 1 }\n    timeout: 250ms\n    known:\n      - { libc: glibc, versions: "<2.40", verdict: hang, cite: "bug 12345" }\n';
  const { cases, problems } = parseSuiteFile(text, 'suites/libc/f.yaml');
  t.same(problems, []);
  t.match(cases[0], { key: 'libc/f/a-b', threads: 2, loop: 'x();\n', timeoutMs: 250, env: { TZ: 'UTC' }, lines: { loop: 11, child: 13 }, line: 4 });
  t.ok(knownApplies(cases[0].known[0], { name: 'glibc', version: '2.36' }));
  t.notOk(knownApplies(cases[0].known[0], { name: 'glibc', version: '2.41' }));
  t.notOk(knownApplies(cases[0].known[0], { name: 'musl', version: '1.2.5' }));
  t.equal(parseDuration('2s'), 2000);
  t.equal(parseDuration('2'), null);
});

t.test('the shipped suites are valid', async (t) => {
  const s = await loadSuite(REPO);
  t.same(s.problems.map(formatProblem), [], 'no problems in suites/');
  t.ok(s.cases.length > 0);
});
