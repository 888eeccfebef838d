// matrix.md and the terminal show one line of a failure: the line that says what went wrong, not the last frame.
import t from 'tap';
import { errorLine } from '../src/matrix.ts';

t.test('a Ruby failure shows its exception line, not the last backtrace frame', async (t) => {
  const ruby = [
    "suites/ruby/require.yaml:31:in `require': cannot load such file -- fm_feature (LoadError)",
    "\tfrom suites/ruby/require.yaml:31:in `block in <main>'",
    "\tfrom /work/main/runners/ruby/harness.rb:212:in `run_child'",
  ].join('\n');
  t.equal(errorLine(ruby), "suites/ruby/require.yaml:31:in `require': cannot load such file -- fm_feature (LoadError)");
  const ruby34 = "suites/ruby/thread.yaml:12:in 'Thread#value': killed thread (ThreadError)\n\tfrom x.rb:1:in 'y'";
  t.match(errorLine(ruby34), /killed thread \(ThreadError\)$/);
});

t.test('a Python failure shows its exception line (Python prints it last)', async (t) => {
  const py = ['Traceback (most recent call last):', '  File "suites/python/import.yaml", line 40, in child', '    import fm_slow', 'ImportError: cannot import name x'].join('\n');
  t.equal(errorLine(py), 'ImportError: cannot import name x');
  t.equal(errorLine('child returned 3'), 'child returned 3');
  t.equal(errorLine('no exit after 2000 ms; output: a|b'), 'no exit after 2000 ms; output: a\\|b', 'table pipes are escaped');
  t.equal(errorLine(null), '');
});
