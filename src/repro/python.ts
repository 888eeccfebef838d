// Python cases: one script. The case's prelude runs at module level and its snippets are functions of the same
// module (as runners/python/harness.py compiles them), then the fork loop (templates/harness.py) judges each child
// as the harness does: ok = no exception (SystemExit(0) included) and not `False`, then `expect_output`; `exit:
// exit` ends an ok child with a normal interpreter exit, `_exit` with os._exit(0).

import { comment, MAX_DELAY_US, template, WARMUP_MS, type Generated, type GenInput } from './common.ts';
import { headerLines } from './record.ts';

/** A multi-line triple-quoted string would change if indented: such a snippet is compiled from a string instead. */
const opensTripleQuote = (text: string) => text.split('\n').some((l) => ((l.match(/"""/g)?.length ?? 0) + (l.match(/'''/g)?.length ?? 0)) % 2 === 1);

/** The snippet as a module-level function `name` (the snippet is its body, so `return` works). */
export function pyFunction(name: string, text: string): string {
  const body = text.replace(/\s+$/, '');
  if (!body.trim()) return `def ${name}():\n    pass\n`;
  if (opensTripleQuote(body)) return `${name} = _fm_function(${JSON.stringify(name)}, ${JSON.stringify(body + '\n')})\n`;
  return `def ${name}():\n${body.split('\n').map((l) => (l.trim() ? `    ${l}` : '')).join('\n')}\n`;
}

const FUNCTION_HELPER = `def _fm_function(name, src):
    """A snippet that holds a multi-line string, compiled as the body of a function \`name\` (as the harness does)."""
    import ast
    tree = ast.parse(src)
    fdef = ast.parse("def %s():\\n    pass\\n" % name).body[0]
    if tree.body:
        fdef.body = tree.body
    mod = ast.Module(body=[fdef], type_ignores=[])
    ast.fix_missing_locations(mod)
    ns = {}
    exec(compile(mod, "<%s>" % name, "exec"), globals(), ns)
    fn = ns[name]
    return type(fn)(fn.__code__, globals(), name)
`;

export function pythonScript(g: GenInput, header: string): string {
  const c = g.c;
  if (Object.keys(c.library ?? {}).length) throw new Error(`${c.key} builds its own libraries (library:): not supported in a Python reproducer`);
  const snippets = [c.setup, c.loop, c.precondition ?? '', c.beforeFork ?? '', c.child];
  const needHelper = snippets.some((s) => opensTripleQuote(s));
  return [
    '#!/usr/bin/env python3',
    header,
    'import os, random, re, select, signal, sys, time',
    '',
    `FM_FORKS = ${c.forks}`,
    `FM_SECONDS = ${c.seconds}`,
    `FM_THREADS = ${c.threads}`,
    `FM_HAS_LOOP = ${c.loop.trim() ? 'True' : 'False'}`,
    `FM_TIMEOUT_MS = ${c.timeoutMs}`,
    `FM_MAX_DELAY_US = ${MAX_DELAY_US}`,
    `FM_WARMUP_MS = ${WARMUP_MS}`,
    `FM_SEED = ${g.seed}`,
    `FM_EXIT_NORMAL = ${c.exit === 'exit' ? 'True' : 'False'}`,
    `FM_EXPECT = ${c.expectOutput != null ? JSON.stringify(c.expectOutput) : 'None'}`,
    '_INSIDE, _ITERS, _FM_ERRORS = [], [], []',
    '_FM_REPORT = 1',
    '_FM_IN_CHILD = False',
    '',
    '',
    'class _Skip(BaseException):',
    '    pass',
    '',
    '',
    'def skip(reason="skipped"):',
    '    """The case cannot run here (in the prelude or setup)."""',
    '    raise _Skip(str(reason))',
    '',
    '',
    'def inside():',
    '    """Loop threads inside their loop body right now."""',
    '    return sum(_INSIDE)',
    '',
    '',
    'def iterations():',
    '    """Loop iterations finished by all loop threads so far."""',
    '    return sum(_ITERS)',
    '',
    '',
    ...(needHelper ? [FUNCTION_HELPER, ''] : []),
    'def _fm_prelude_failed(t, e, tb):',
    '    import traceback',
    '    sys.__excepthook__(t, e, tb)',
    '    sys.stderr.write("%s\\nnothing was judged (exit 2)\\n" % ("cannot run here: %s" % e if t is _Skip else "the prelude raised"))',
    '    sys.stderr.flush()',
    '    os._exit(2)',
    '',
    '',
    ...(Object.keys(c.env ?? {}).length ? [`os.environ.update(${JSON.stringify(c.env)})`] : []),
    'sys.excepthook = _fm_prelude_failed',
    `# ==== the case: ${c.key} (${c.file}) ====`,
    '# prelude',
    c.prelude.trimEnd(),
    'sys.excepthook = sys.__excepthook__',
    '',
    '',
    '# setup: once in the parent, before the threads start',
    pyFunction('_fm_setup', c.setup),
    '',
    '# loop: one iteration of each parent thread, again and again',
    pyFunction('_fm_loop', c.loop),
    '',
    '# precondition: once, threads running, before the first fork (raise or return False: cannot run)',
    pyFunction('_fm_precondition', c.precondition ?? ''),
    '',
    '# before_fork: in the forking thread right before each fork',
    pyFunction('_fm_before_fork', c.beforeFork ?? ''),
    '',
    '# child: in each child; an exception or `return False` = wrong',
    pyFunction('_fm_child', c.child),
    '# ==== end of the case ====',
    template('harness.py'),
  ].join('\n');
}

export function pythonRepro(g: GenInput): Generated {
  const file = `${g.name}.py`;
  const run = g.runLine([g.rt.executable, file]);
  const header = comment(headerLines({ c: g.c, env: g.env, rt: g.rt, record: g.record, build: [], run, repo: g.repo }), 'hash');
  return { files: [{ name: file, text: pythonScript(g, header), mode: 0o755 }], build: [], run };
}
