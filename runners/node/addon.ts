// Builds the node runner's raw-fork N-API addon (runners/node/addon/) with node-gyp, offline, against the
// headers of the Node that will load it, and caches the result under
// `<cacheDir>/node-addon-<hash of the sources + node version + abi + arch + header dir>/`.
// Stdlib only. The driver passes `path` to the harness as config `addon` (null when the build failed; cases
// with `requires: [addon]` are then skipped with `reason`).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type AddonBuild = { ok: true; path: string } | { ok: false; reason: string };

/** The addon's sources, relative to ADDON_SOURCE_DIR; all of them go into the cache key. */
export const ADDON_SOURCES = ['binding.gyp', 'raw_fork.c'] as const;
export const ADDON_SOURCE_DIR = fileURLToPath(new URL('./addon/', import.meta.url));
const TARGET = path.join('build', 'Release', 'forkmatrix_raw.node');
const BUILD_TIMEOUT_MS = 300_000;

interface Run { code: number | null; signal: NodeJS.Signals | null; output: string; error?: string }

function run(cmd: string, args: string[], opts: { cwd?: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Run> {
  return new Promise((resolve) => {
    let output = '';
    let settled = false;
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer): void => {
      output += d.toString('utf8');
      if (output.length > 200_000) output = output.slice(-100_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => {
      output += `\n(killed after ${opts.timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.once('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ code: null, signal: null, output, error: e.message });
    });
    child.once('close', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

function tailLines(text: string, lines = 15, chars = 1500): string {
  // node-gyp's own chatter ('gyp info', 'gyp ERR! stack ...') would push the compiler's message out
  const all = text.trimEnd().split('\n');
  const useful = all.filter((l) => !/^gyp (info|http|verb|sill|ERR! (stack|System|command|cwd|node -v|node-gyp -v|\$npm|not ok))/.test(l));
  const t = (useful.length ? useful : all).slice(-lines).join('\n');
  return t.length > chars ? t.slice(-chars) : t;
}

function failure(what: string, r?: Run): { ok: false; reason: string } {
  if (!r) return { ok: false, reason: what };
  const how = r.error ? r.error : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
  const out = tailLines(r.output);
  return { ok: false, reason: `${what} (${how})${out ? `:\n${out}` : ''}` };
}

interface NodeFacts { version: string; modules: string; napi: string; arch: string; platform: string; execPath: string }

async function probeNode(nodeBin: string, env: NodeJS.ProcessEnv): Promise<NodeFacts | { error: string }> {
  const script = 'process.stdout.write(JSON.stringify({version: process.versions.node, modules: process.versions.modules,'
    + ' napi: process.versions.napi, arch: process.arch, platform: process.platform, execPath: process.execPath}))';
  const r = await run(nodeBin, ['-e', script], { env, timeoutMs: 30_000 });
  if (r.code !== 0) return { error: failure(`${nodeBin} -e did not run`, r).reason };
  try {
    return JSON.parse(r.output) as NodeFacts;
  } catch {
    return { error: `${nodeBin} printed no version: ${tailLines(r.output, 3)}` };
  }
}

/** The install prefix whose include/node has the headers (node-gyp --nodedir), without downloading. */
function findNodeDir(execPath: string): string | null {
  const candidates: string[] = [];
  if (process.env.FORKMATRIX_NODEDIR) candidates.push(process.env.FORKMATRIX_NODEDIR);
  try {
    candidates.push(path.dirname(path.dirname(realpathSync(execPath))));
  } catch { /* not resolvable: try the plain path */ }
  candidates.push(path.dirname(path.dirname(execPath)));
  for (const c of candidates) {
    if (existsSync(path.join(c, 'include', 'node', 'node_api.h'))) return c;
  }
  return null;
}

/** node-gyp's entry script: npm's bundled copy next to this node, or npm's global root. */
async function findNodeGyp(execPath: string, nodeDir: string, env: NodeJS.ProcessEnv): Promise<string | null> {
  const rel = path.join('node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const candidates: string[] = [];
  if (process.env.FORKMATRIX_NODE_GYP) candidates.push(process.env.FORKMATRIX_NODE_GYP);
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  for (const prefix of [nodeDir, path.dirname(path.dirname(execPath)), path.dirname(path.dirname(process.execPath))]) {
    candidates.push(path.join(prefix, 'lib', rel));
  }
  candidates.push('/usr/share/nodejs/node-gyp/bin/node-gyp.js');
  for (const c of candidates) if (existsSync(c)) return c;
  const r = await run('npm', ['root', '-g'], { env, timeoutMs: 30_000 }).catch(() => null);
  if (r && r.code === 0) {
    const c = path.join(r.output.trim(), 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (existsSync(c)) return c;
  }
  return null;
}

async function sourceHash(facts: NodeFacts, nodeDir: string): Promise<string> {
  const h = createHash('sha256');
  for (const f of ADDON_SOURCES) {
    h.update(`${f}\0`);
    h.update(await fsp.readFile(path.join(ADDON_SOURCE_DIR, f)));
    h.update('\0');
  }
  h.update(`node ${facts.version} abi ${facts.modules} napi ${facts.napi} ${facts.platform}-${facts.arch} ${nodeDir}`);
  return h.digest('hex').slice(0, 16);
}

async function loads(nodeBin: string, file: string, env: NodeJS.ProcessEnv): Promise<Run> {
  const script = `const a = require(${JSON.stringify(file)}); for (const f of ['forkWrite','forkExec','forkReturn','waitpid','read','close','write','exit'])`
    + ` if (typeof a[f] !== 'function') throw new Error('addon lacks ' + f);`;
  return run(nodeBin, ['-e', script], { env, timeoutMs: 30_000 });
}

/**
 * Build (or reuse) the raw-fork addon for `nodeBin` (default: the Node running this code).
 * Never downloads: node-gyp gets `--nodedir=<prefix with include/node>`; no headers means `{ok: false}`.
 */
export async function buildAddon(cacheDir: string, nodeBin?: string): Promise<{ ok: true; path: string } | { ok: false; reason: string }> {
  const bin = nodeBin ?? process.execPath;
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_OPTIONS;
  for (const k of Object.keys(env)) {
    if ((k.startsWith('npm_') && k !== 'npm_config_node_gyp') || k === 'INIT_CWD') delete env[k];
  }
  try {
    const facts = await probeNode(bin, env);
    if ('error' in facts) return { ok: false, reason: facts.error };
    const nodeDir = findNodeDir(facts.execPath);
    if (!nodeDir) {
      return failure(`no Node headers (include/node/node_api.h) next to ${facts.execPath}; set FORKMATRIX_NODEDIR (node-gyp would otherwise download them)`);
    }
    const hash = await sourceHash(facts, nodeDir);
    await fsp.mkdir(cacheDir, { recursive: true });
    const finalDir = path.join(cacheDir, `node-addon-${hash}`);
    const finalPath = path.join(finalDir, TARGET);
    if (existsSync(finalPath)) return { ok: true, path: finalPath };

    const gyp = await findNodeGyp(facts.execPath, nodeDir, env);
    if (!gyp) return failure('node-gyp not found (looked for npm\'s bundled copy; set FORKMATRIX_NODE_GYP)');

    const tmp = await fsp.mkdtemp(path.join(cacheDir, `.node-addon-${hash}-`));
    try {
      await fsp.chmod(tmp, 0o755);
      for (const f of ADDON_SOURCES) await fsp.copyFile(path.join(ADDON_SOURCE_DIR, f), path.join(tmp, f));
      // node-gyp and the compiler must find python3/make/cc: keep PATH; put this node first
      env.PATH = [path.dirname(facts.execPath), env.PATH ?? '/usr/bin:/bin'].join(path.delimiter);
      // node-gyp itself runs on forkmatrix's own Node (today's node-gyp needs Node >= 20.17; Node 12 cannot even
      // parse it): --nodedir makes it build for the target's headers, and the load check below uses the target
      const r = await run(process.execPath, [gyp, 'rebuild', `--nodedir=${nodeDir}`, `--devdir=${path.join(tmp, '.devdir')}`, '--jobs=2'], {
        cwd: tmp, env, timeoutMs: BUILD_TIMEOUT_MS,
      });
      const built = path.join(tmp, TARGET);
      if (r.code !== 0 || !existsSync(built)) return failure('node-gyp rebuild failed', r);
      const l = await loads(bin, built, env);
      if (l.code !== 0) return failure(`the built addon does not load in ${bin}`, l);
      await fsp.rm(path.join(tmp, '.devdir'), { recursive: true, force: true });
      await fsp.rm(path.join(tmp, 'build', 'Release', 'obj.target'), { recursive: true, force: true });
      try {
        await fsp.rename(tmp, finalDir);
      } catch (e) {
        // another build won the race: use its result
        if (!existsSync(finalPath)) throw e;
      }
      return { ok: true, path: finalPath };
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    }
  } catch (e) {
    return { ok: false, reason: `addon build failed: ${e instanceof Error ? e.message : String(e)}` };
  }
}
