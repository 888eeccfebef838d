// Ruby cases: one script. The prelude runs at the top level and the snippets are lambdas defined there (as
// runners/ruby/harness.rb evals them in TOPLEVEL_BINDING), then the fork loop (templates/harness.rb) judges each
// child as the harness does: ok = no exception and not `false`, then `expect_output`; `exit: exit` ends an ok child
// with exit(0) (at_exit handlers), `_exit` with exit!(0). A case's `library:` sources are compiled with $CC (or
// cc) into a temporary directory at start, as forkmatrix builds them (lib<name>.so and <name>.so).

import { comment, MAX_DELAY_US, template, WARMUP_MS, type Generated, type GenInput } from './common.ts';
import { headerLines } from './record.ts';

const rbString = (s: string) => JSON.stringify(s).replace(/#\{/g, '\\#{');

const lambda = (name: string, text: string) => `${name} = lambda do\n${text.replace(/\s+$/, '')}\nend\n`;

function libraries(lib: Record<string, string>): string[] {
  const names = Object.keys(lib).sort();
  if (!names.length) return [];
  return [
    '# the case\'s own libraries, built here as forkmatrix builds them (src/library.ts)',
    'FM_LIBRARIES = {',
    ...names.map((n) => `  ${rbString(n)} => ${rbString(lib[n].trimEnd() + '\n')},`),
    '}.freeze',
    'require "tmpdir"',
    'require "fileutils"',
    'fm_libdir = Dir.mktmpdir("fm-repro-lib-")',
    'FM_CLEANUP << -> { FileUtils.rm_rf(fm_libdir) }',
    'FM_LIBRARIES.each do |name, src|',
    '  c = File.join(fm_libdir, "#{name}.c")',
    '  File.write(c, src)',
    '  so = File.join(fm_libdir, "lib#{name}.so")',
    '  unless system(ENV.fetch("CC", "cc"), "-shared", "-fPIC", "-O1", "-g", c, "-o", so)',
    '    warn "cannot build library #{name} with #{ENV.fetch("CC", "cc")}\\nnothing was judged (exit 2)"',
    '    exit!(2)',
    '  end',
    '  FileUtils.cp(so, File.join(fm_libdir, "#{name}.so"))',
    '  ENV["FM_LIB_#{name.upcase.gsub(/[^A-Z0-9_]/, "_")}"] = so',
    'end',
    'ENV["FM_LIBDIR"] = fm_libdir',
    '',
  ];
}

export function rubyScript(g: GenInput, header: string): string {
  const c = g.c;
  return [
    '#!/usr/bin/env ruby',
    header,
    `FM_FORKS = ${c.forks}`,
    `FM_SECONDS = ${c.seconds}`,
    `FM_THREADS = ${c.threads}`,
    `FM_HAS_LOOP = ${c.loop.trim() ? 'true' : 'false'}`,
    `FM_TIMEOUT_MS = ${c.timeoutMs}`,
    `FM_MAX_DELAY_US = ${MAX_DELAY_US}`,
    `FM_WARMUP_MS = ${WARMUP_MS}`,
    `FM_SEED = ${g.seed}`,
    `FM_EXIT_NORMAL = ${c.exit === 'exit' ? 'true' : 'false'}`,
    `FM_EXPECT = ${c.expectOutput != null ? rbString(c.expectOutput) : 'nil'}`,
    'FM_INSIDE = []',
    'FM_ITERS = []',
    'FM_CLEANUP = []',
    'REPORT = [STDOUT]',
    'class ForkMatrixSkip < StandardError; end',
    '',
    '# the case cannot run here (in the prelude or setup)',
    'def skip(reason = "skipped")',
    '  raise ForkMatrixSkip, reason.to_s',
    'end',
    '',
    '# loop threads inside their loop body right now',
    'def inside',
    '  FM_INSIDE.sum',
    'end',
    '',
    '# loop iterations finished by all loop threads so far',
    'def iterations',
    '  FM_ITERS.sum',
    'end',
    '',
    ...Object.entries(c.env ?? {}).map(([k, v]) => `ENV[${rbString(k)}] = ${rbString(v)}`),
    ...libraries(c.library ?? {}),
    `# ==== the case: ${c.key} (${c.file}) ====`,
    'begin',
    '# prelude',
    c.prelude.trimEnd(),
    'rescue ForkMatrixSkip => e',
    '  warn "cannot run here: #{e.message}\\nnothing was judged (exit 2)"',
    '  exit!(2)',
    'rescue Exception => e # rubocop:disable Lint/RescueException',
    '  warn "the prelude raised #{e.class}: #{e.message}\\nnothing was judged (exit 2)"',
    '  exit!(2)',
    'end',
    '',
    '# setup: once in the parent, before the threads start',
    lambda('fm_setup', c.setup),
    '# loop: one iteration of each parent thread, again and again',
    lambda('fm_loop', c.loop),
    '# precondition: once, threads running, before the first fork (raise or return false: cannot run)',
    lambda('fm_precondition', c.precondition ?? ''),
    '# before_fork: in the forking thread right before each fork',
    lambda('fm_before_fork', c.beforeFork ?? ''),
    '# child: in each child; an exception or `false` = wrong',
    lambda('fm_child', c.child),
    '# ==== end of the case ====',
    template('harness.rb'),
  ].join('\n');
}

export function rubyRepro(g: GenInput): Generated {
  const file = `${g.name}.rb`;
  const run = g.runLine([g.rt.executable, file]);
  const header = comment(headerLines({ c: g.c, env: g.env, rt: g.rt, record: g.record, build: [], run, repo: g.repo }), 'hash');
  return { files: [{ name: file, text: rubyScript(g, header), mode: 0o755 }], build: [], run };
}
