// The python runner: one interpreter per cell runs harness.py, which forks in-process in a loop.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Runner } from '../../src/types.ts';

const HARNESS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'harness.py');

export const pythonRunner: Runner = {
  runtime: 'python',
  language: 'python',
  async prepare(_c, ctx) {
    return { argv: [ctx.runtime.executable, HARNESS] };
  },
};
