#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx: no build step that could go stale.
import { register } from 'tsx/esm/api';

register();
const { main, UsageError } = await import('../src/cli.ts');
try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  if (e instanceof UsageError) {
    process.stderr.write(`forkmatrix: ${e.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`forkmatrix: internal error: ${e?.stack ?? e}\n`);
    process.exitCode = 3;
  }
}
