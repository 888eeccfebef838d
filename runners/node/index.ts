// The node runtime: Node has no fork(2); harness.mjs spawns through libuv while worker threads and the threadpool
// are busy. Cases that `requires: [addon]` use a raw-fork N-API addon built here with node-gyp; where it cannot be
// built they are skipped with the compiler's reason.

import { existsSync, mkdirSync, realpathSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RuntimeSpec } from '../../src/runtimes/spec.ts';
import { compareVersions } from '../../src/util.ts';

// harness.mjs needs ES modules unflagged (12.17.0); what a case uses that an older Node lacks is a skip per cell
// naming it (harness.mjs missingFeature)
const MIN_NODE = '12.17.0';
const HARNESS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'harness.mjs');
type Build = { ok: true; path: string } | { ok: false; reason: string };
const builds = new Map<string, Promise<Build>>();

const realOr = (p: string) => {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
};

export const nodeSpec: RuntimeSpec = {
  runtime: 'node',
  language: 'javascript',
  order: 4,
  hostPackages: { node: 'nodejs' },
  find: {
    names: ['node'],
    query: ['-e', 'console.log(process.versions.node);console.log(require("fs").realpathSync(process.execPath))'],
    install: 'apt-get install nodejs',
    debian: { packages: ['nodejs'], exe: '/usr/bin/node' },
    glibcCopy: {
      verify: ['-e', 'require("crypto"); require("zlib"); console.log(process.execPath); console.log(require("fs").readFileSync("/proc/self/maps", "utf8"))'],
      // node-gyp (the raw-fork addon) and global modules are found relative to process.execPath: link the
      // original prefix's include/ and lib/node_modules/ next to the copy
      prepare(dir, rt) {
        const prefix = path.dirname(path.dirname(realOr(rt.executable)));
        for (const sub of [['include', 'node'], ['lib', 'node_modules']]) {
          if (!existsSync(path.join(prefix, ...sub))) continue;
          mkdirSync(path.join(dir, sub[0]), { recursive: true });
          symlinkSync(path.join(prefix, ...sub), path.join(dir, ...sub));
        }
      },
    },
  },
  async prepare(c, ctx) {
    if (compareVersions(ctx.runtime.version, MIN_NODE) < 0) return { skip: `harness.mjs needs Node >= ${MIN_NODE}; this is Node ${ctx.runtime.version}` };
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

export const nodeRunner = nodeSpec;
