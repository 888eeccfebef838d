// The node runner: Node has no fork(2); harness.mjs spawns through libuv while worker threads and the threadpool
// are busy. Cases that `requires: [addon]` use a raw-fork N-API addon built here with node-gyp; where it cannot be
// built they are skipped with the compiler's reason.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Runner } from '../../src/types.ts';

const MIN_NODE = 16; // worker_threads SHARE_ENV, ??, top-level await in the harness
const HARNESS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'harness.mjs');
type Build = { ok: true; path: string } | { ok: false; reason: string };
const builds = new Map<string, Promise<Build>>();

export const nodeRunner: Runner = {
  runtime: 'node',
  language: 'javascript',
  async prepare(c, ctx) {
    const major = parseInt(ctx.runtime.version, 10);
    if (major < MIN_NODE) return { skip: `harness.mjs needs Node >= ${MIN_NODE}; this is Node ${ctx.runtime.version}` };
    let addon: string | null = null;
    if (c.requires.includes('addon')) {
      const key = ctx.runtime.executable;
      if (!builds.has(key)) builds.set(key, import('./addon.ts').then((m) => m.buildAddon(ctx.cacheDir, ctx.runtime.executable)));
      const b = await builds.get(key)!;
      if (!b.ok) return { skip: `the raw-fork addon could not be built: ${b.reason}` };
      addon = b.path;
    }
    return { argv: [ctx.runtime.executable, HARNESS], config: { addon } };
  },
};
