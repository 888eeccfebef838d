// What every reproducer generator gets and gives.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CaseDef, Environment, RuntimeInstance } from '../types.ts';
import type { CellRecord } from './record.ts';

export const TEMPLATES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'templates');
export const template = (name: string) => readFileSync(path.join(TEMPLATES, name), 'utf8');

/** The harness defaults a reproducer copies (src/cell.ts). */
export const MAX_DELAY_US = 20;
export const WARMUP_MS = 20;

export interface GenInput {
  c: CaseDef;
  env: Environment;
  rt: RuntimeInstance;
  record: CellRecord | null;
  cacheDir: string;
  repo: string;
  /** seed of the fork-delay schedule (the record's, else fixed) */
  seed: number;
  /** base name of the files (the case id) */
  name: string;
  /** how to run argv in the environment, as a shell line (env.launch) */
  runLine(argv: string[]): string;
}

export interface Generated {
  /** files to write, relative to --out */
  files: { name: string; text: string; mode?: number }[];
  /** the build steps (shell lines run in --out), none for a script */
  build: string[];
  /** the run line */
  run: string;
}

/** A header's lines as a comment block in `style`. `*\/` never ends a C comment early. */
export function comment(lines: string[], style: 'c' | 'hash' | 'slash'): string {
  if (style === 'c') return `/*\n${lines.map((l) => ` * ${l.replace(/\*\//g, '* /')}`.trimEnd()).join('\n')}\n */\n`;
  const p = style === 'hash' ? '#' : '//';
  return lines.map((l) => `${p} ${l}`.trimEnd()).join('\n') + '\n';
}

/** A C string literal. */
export const cString = (s: string) => JSON.stringify(s).replace(/\?\?/g, '?\\?');

/** Shell quoting for the printed lines. */
export const sh = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
