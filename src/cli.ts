// The forkmatrix command line. Usage errors and broken suites get one clear line each and a non-zero exit;
// a completed run exits 0 whatever the verdicts (the gate is the command that judges).
//
// This module is the dispatcher: the top-level help, the command table and the machine faults as one line. Each
// command is a module of its own (src/commands/<name>.ts: its usage text and main(argv)); what they share is in
// src/commands/shared.ts. bin/forkmatrix.mjs prints a UsageError as one line (exit 2), anything else as an
// internal error (exit 3).

import * as runCmd from './commands/run.ts';
import * as listCmd from './commands/list.ts';
import * as validateCmd from './commands/validate.ts';
import * as reportCmd from './commands/report.ts';
import * as provisionCmd from './commands/provision.ts';
import * as gateCmd from './commands/gate.ts';
import * as diffCmd from './commands/diff.ts';
import * as censusCmd from './commands/census.ts';
import { cmdPlan } from './plan-cmd.ts';
import { REPO, UsageError, adapterOptions, cacheDir, printHelp } from './commands/shared.ts';
import { machineError } from './commands/machine-errors.ts';

export { REPO, UsageError, cacheDir, loadValidSuite, parse } from './commands/shared.ts';

const HELP = `forkmatrix: what works in the child of a multithreaded fork(), per libc, runtime and allocator

Usage: forkmatrix <command> [options]

Commands:
  run        run cases and print the matrix (results/<run>/: TAP, matrix.json, matrix.md, index.html)
  list       list cases, environments and the runtimes found
  validate   check every case file; exit 1 on any problem
  report     build the matrix from TAP streams (results dirs or .tap files)
  plan       split the cells over N CI machines, balanced by their recorded seconds; the predicted makespan
  gate       the libc CI gate: run under a candidate libc/preload, compare with a baseline, exit 1 on a regression
  diff       what changed between two result sets, or two columns of one
  repro      a self-contained reproducer of one cell (a C file or a script) with a bug-report header
  provision  install what an environment needs (host: Debian's ruby, gdb ...)
  census     the lock census: every libc-internal lock, what fork() does with it, the cases covering it
  bisect     the first commit of a musl checkout or an interposer repository where a case changed behaviour

Run 'forkmatrix <command> --help' for the options of a command.`;

async function cmdBisect(argv: string[]): Promise<number> {
  const b = await import('./bisect-cmd.ts');
  try {
    return await b.cmdBisect(argv, { repo: REPO, adapterOptions: (v) => adapterOptions(v), log: (l) => process.stderr.write(`forkmatrix: ${l}\n`) });
  } catch (e) {
    throw e instanceof b.BisectUsage ? new UsageError(e.message) : e;
  }
}

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = { run: runCmd.main, list: listCmd.main, validate: validateCmd.main, report: reportCmd.main, provision: provisionCmd.main, gate: gateCmd.main, diff: diffCmd.main, census: censusCmd.main, repro: (a) => import('./repro/index.ts').then((m) => m.cmdRepro(a, { repo: REPO, cacheDir, usage: (msg) => { throw new UsageError(msg); } })), plan: (a) => cmdPlan(a) , bisect: cmdBisect };

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') return printHelp(HELP);
  const f = COMMANDS[cmd];
  if (!f) throw new UsageError(`unknown command '${cmd}': use one of ${Object.keys(COMMANDS).join(', ')} (forkmatrix --help)`);
  try {
    return await f(rest);
  } catch (e) {
    throw machineError(e) ?? e;
  }
}
