// Node cases: one CommonJS script (sloppy mode, as the harness's vm.Script snippets) that is its own worker: the
// prelude and the snippets live in fmCase(), which the main thread and each loop worker call (the harness runs the
// prelude in both), and templates/harness.cjs does what runners/node/harness.mjs does: loop workers, the load worker
// behind saturate(), the iterations, and a watchdog that owns the timeout. A case that `requires: [addon]` also gets
// the raw-fork addon's C file (runners/node/addon/raw_fork.c), built with cc against the Node headers.

import { existsSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { comment, MAX_DELAY_US, sh, template, WARMUP_MS, type Generated, type GenInput } from './common.ts';
import { headerLines } from './record.ts';

const ADDON_SRC = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'runners', 'node', 'addon', 'raw_fork.c');

const fn = (name: string, params: string, body: string) => `    ${name}: async function ${name}(${params}) {\n${body.replace(/\s+$/, '')}\n    },`;

/** The include directory with node_api.h for the Node at `exe` (as runners/node/addon.ts looks), or a placeholder. */
export function nodeInclude(exe: string): string {
  const dirs: string[] = [];
  try {
    dirs.push(path.dirname(path.dirname(realpathSync(exe))));
  } catch {
    /* not resolvable */
  }
  dirs.push(path.dirname(path.dirname(exe)), '/usr');
  for (const d of dirs) if (existsSync(path.join(d, 'include', 'node', 'node_api.h'))) return path.join(d, 'include', 'node');
  return 'NODE_PREFIX/include/node';
}

export function nodeScript(g: GenInput, header: string, addonFile: string | null): string {
  const c = g.c;
  if (Object.keys(c.library ?? {}).length) throw new Error(`${c.key} builds its own libraries (library:): not supported in a Node reproducer`);
  return [
    '#!/usr/bin/env node',
    header,
    `const FM_FORKS = ${c.forks};`,
    `const FM_SECONDS = ${c.seconds};`,
    `const FM_THREADS = ${c.threads};`,
    `const FM_TIMEOUT_MS = ${c.timeoutMs};`,
    `const FM_MAX_DELAY_US = ${MAX_DELAY_US};`,
    `const FM_WARMUP_MS = ${WARMUP_MS};`,
    `const FM_SEED = ${g.seed};`,
    `const FM_EXPECT = ${c.expectOutput != null ? JSON.stringify(c.expectOutput) : 'null'};`,
    `const FM_ADDON = ${addonFile ? `require('node:path').join(__dirname, ${JSON.stringify(addonFile)})` : 'null'};`,
    ...Object.entries(c.env ?? {}).map(([k, v]) => `process.env[${JSON.stringify(k)}] = ${JSON.stringify(v)};`),
    '',
    `// ==== the case: ${c.key} (${c.file}) ====`,
    '// the prelude runs in the main thread and in each loop worker; the snippets are async functions',
    'function fmCase() {',
    '// prelude',
    c.prelude.trimEnd(),
    '  return {',
    '    // setup: main thread, once, before the workers start',
    fn('setup', '', c.setup),
    '    // loop: each loop worker, again and again (i: its iteration, thread: 0..threads-1)',
    fn('loop', 'i, thread', c.loop),
    '    // precondition: once, workers running, before the first iteration (throw or return false: cannot run)',
    fn('precondition', '', c.precondition ?? ''),
    '    // before_fork: before each iteration',
    fn('before_fork', 'i', c.beforeFork ?? ''),
    '    // child: one iteration (spawn, await, throw on a wrong result; throw crash(signal) for a crash)',
    fn('child', 'i', c.child),
    '  };',
    '}',
    '// ==== end of the case ====',
    template('harness.cjs'),
  ].join('\n');
}

export function nodeRepro(g: GenInput): Generated {
  const file = `${g.name}.cjs`;
  const needsAddon = g.c.requires.includes('addon');
  const addonC = `${g.name}-addon.c`;
  const addonNode = `${g.name}-addon.node`;
  const build = needsAddon
    ? [['cc', '-shared', '-fPIC', '-O2', '-std=gnu11', '-DNAPI_VERSION=8', '-D_GNU_SOURCE', '-I', nodeInclude(g.rt.executable), addonC, '-o', addonNode].map(sh).join(' ')]
    : [];
  const run = g.runLine([g.rt.executable, file]);
  const header = comment(headerLines({ c: g.c, env: g.env, rt: g.rt, record: g.record, build, run, repo: g.repo }), 'slash');
  const files: Generated['files'] = [{ name: file, text: nodeScript(g, header, needsAddon ? addonNode : null), mode: 0o755 }];
  if (needsAddon) files.push({ name: addonC, text: `/* the raw-fork N-API addon of forkmatrix (runners/node/addon/raw_fork.c), for ${file}; build: ${build[0]} */\n${readFileSync(ADDON_SRC, 'utf8')}` });
  return { files, build, run };
}
