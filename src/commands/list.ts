// forkmatrix list: the cases, the environments with their state, and the runtimes found.

import { loadSuite } from '../cases.ts';
import { adapters } from '../registry.ts';
import { RUNTIMES } from '../types.ts';
import { REPO, UsageError, adapterOptions, parse, printHelp, suitesDir } from './shared.ts';
import { allEnvironments } from './environments.ts';

export const usage = `Usage: forkmatrix list [--runtime R=PATH]

Lists the cases (by runtime and family), the environments with their state, and the runtimes found.`;

export async function main(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, {}, 'list');
  if (v.help) return printHelp(usage);
  const suite = await loadSuite(REPO, suitesDir(v.suites));
  const aopts = adapterOptions(v);
  let out = 'Cases:\n';
  for (const rt of RUNTIMES) {
    const cs = suite.cases.filter((c) => c.runtime === rt);
    if (!cs.length) continue;
    out += `  ${rt} (${cs.length})\n`;
    for (const fam of [...new Set(cs.map((c) => c.family))]) out += `    ${fam}: ${cs.filter((c) => c.family === fam).map((c) => c.id).join(', ')}\n`;
  }
  if (suite.problems.length) out += `  (${suite.problems.length} problem(s) in the case files: run 'forkmatrix validate')\n`;
  out += '\nEnvironments:\n';
  for (const a of adapters) for (const s of await a.status(aopts).catch((e: Error) => { throw new UsageError(e.message); })) out += `  ${s.id.padEnd(24)} ${s.state.padEnd(13)} ${s.detail}\n`;
  out += '\nRuntimes:\n';
  for (const e of await allEnvironments(aopts)) {
    for (const r of e.runtimes) out += `  ${e.id.padEnd(24)} ${r.runtime.padEnd(7)} ${r.version.padEnd(14)} ${r.executable}\n`;
    for (const m of e.missing) out += `  ${e.id.padEnd(24)} ${m.runtime.padEnd(7)} ${'missing'.padEnd(14)} ${m.reason}\n`;
  }
  process.stdout.write(out);
  return 0;
}
