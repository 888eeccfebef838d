// The ruby runner: one interpreter per cell runs harness.rb, which forks in-process in a loop.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Runner } from '../../src/types.ts';

const HARNESS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'harness.rb');

export const rubyRunner: Runner = {
  runtime: 'ruby',
  language: 'ruby',
  async prepare(_c, ctx) {
    return { argv: [ctx.runtime.executable, HARNESS] };
  },
};
