// What every command shares: the UsageError, the common flags and their parsing, the checks of the paths
// forkmatrix reads and writes (--cache, --out, --suites, --runtime), and the suite every running command loads.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { accessSync, constants as fsc, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSuite, formatProblems } from '../cases.ts';
import { identifyRuntime } from '../../adapters/host.ts';
import { sources } from '../runtimes/index.ts';
import { elfInterpreter } from '../../adapters/musl.ts';
import { FOUND_RUNTIMES, type FoundRuntime, type AdapterOptions } from '../types.ts';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export class UsageError extends Error {}

const COMMON = {
  help: { type: 'boolean', short: 'h' },
  runtime: { type: 'string', multiple: true },
  preload: { type: 'string', multiple: true },
  libc: { type: 'string', multiple: true },
  cache: { type: 'string' },
  suites: { type: 'string' },
  'libc-git': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** A command's --help: its usage text on stdout, exit 0. */
export function printHelp(usage: string): number {
  process.stdout.write(usage + '\n');
  return 0;
}

export function parse<T extends ParseArgsConfig['options']>(argv: string[], options: T, cmd: string) {
  try {
    return parseArgs({ args: argv, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message.replace(/\. To specify.*$/s, '')}\n(see 'forkmatrix ${cmd} --help')`);
  }
}

export function adapterOptions(v: { runtime?: string[]; preload?: string[]; libc?: string[]; cache?: string }): AdapterOptions {
  const extraRuntimes = (v.runtime ?? []).map((s) => {
    const m = /^([a-z]+)=(.+)$/.exec(s);
    if (!m || !FOUND_RUNTIMES.includes(m[1] as FoundRuntime)) throw new UsageError(`--runtime ${s}: expected NAME=PATH with NAME one of ${FOUND_RUNTIMES.join(', ')}, e.g. --runtime python=/usr/bin/python3.11`);
    const exe = path.resolve(m[2]);
    const why = executableProblem(exe);
    if (why) throw new UsageError(`--runtime ${s}: ${why}; give the path of the ${m[1] === 'libc' ? 'C compiler' : m[1]} executable, e.g. --runtime python=/usr/bin/python3.11`);
    // it must answer its runtime's version query here (a musl-linked one is asked through musl's loader later)
    const id = /ld-musl-/.test(elfInterpreter(exe) ?? '') ? null : identifyRuntime(m[1] as FoundRuntime, exe);
    if (id && 'reason' in id) throw new UsageError(`--runtime ${s}: ${id.reason.replace(`${exe}: `, '')}; give the path of a working ${m[1] === 'libc' ? 'C compiler' : m[1]} executable`);
    return { runtime: m[1] as FoundRuntime, path: exe };
  });
  const names = sources().map((x) => x.name);
  const bad = (process.env.FORKMATRIX_SOURCES ?? '').split(',').map((x) => x.trim()).filter((x) => x && !names.includes(x));
  if (bad.length) throw new UsageError(`FORKMATRIX_SOURCES: no runtime source ${bad.map((b) => `'${b}'`).join(', ')}; the sources are ${names.join(', ')} (unset it for all)`);
  return { cacheDir: usableDir(cacheDir(v.cache), '--cache'), extraRuntimes, preload: v.preload ?? [], libc: v.libc ?? [] };
}

/** Why `p` cannot be run as a program (null: it can). */
function executableProblem(p: string): string | null {
  let st;
  try {
    st = statSync(p);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `cannot reach it (${(e as NodeJS.ErrnoException).code})`;
  }
  if (st.isDirectory()) return 'a directory, not a program';
  if (!st.isFile()) return 'not a regular file';
  try {
    accessSync(p, fsc.X_OK);
  } catch {
    return 'not executable';
  }
  return null;
}

/** A directory forkmatrix writes to (--out, --cache): created when absent; one line naming the flag when it cannot be. */
export function usableDir(dir: string, flag: string): string {
  try {
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UsageError(`${flag} ${dir}: a file, not a directory: give a directory`);
    mkdirSync(dir, { recursive: true });
    accessSync(dir, fsc.W_OK);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${flag} ${dir}: cannot write there (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give a writable directory`);
  }
  return dir;
}

export function cacheDir(flag?: string): string {
  return path.resolve(flag ?? process.env.FORKMATRIX_CACHE ?? path.join(os.homedir(), '.cache', 'forkmatrix'));
}

export function suitesDir(flag?: string): string | undefined {
  if (!flag) return undefined;
  const dir = path.resolve(flag);
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new UsageError(`${flag}: no such directory (case files live in DIR/<runtime>/<family>.yaml; see suites/README.md)`);
  }
  if (!st.isDirectory()) throw new UsageError(`${flag}: a file, not a directory of case files (DIR/<runtime>/<family>.yaml; see suites/README.md)`);
  const hasYaml = readdirSync(dir, { withFileTypes: true }).some((d) => {
    if (!d.isDirectory()) return false;
    try {
      return readdirSync(path.join(dir, d.name)).some((f) => /\.ya?ml$/.test(f));
    } catch {
      return false;
    }
  });
  if (!hasYaml) throw new UsageError(`${flag}: no case files in it (expected DIR/<runtime>/<family>.yaml, e.g. ${flag}/libc/time.yaml; see suites/README.md)`);
  return dir;
}

export async function loadValidSuite(dir?: string) {
  const suite = await loadSuite(REPO, suitesDir(dir));
  if (suite.problems.length === 1) throw new UsageError(`${formatProblems(suite.problems)} (fix it, see suites/README.md; nothing was run)`);
  if (suite.problems.length) {
    throw new UsageError(`${formatProblems(suite.problems)}\n${suite.problems.length} problem(s) in the case files: fix them (see suites/README.md); nothing was run`);
  }
  return suite;
}

export const list = (s: string | undefined) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : null);
