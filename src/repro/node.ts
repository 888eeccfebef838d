import type { Generated, GenInput } from './common.ts';
export function nodeRepro(g: GenInput): Generated {
  throw new Error(`node reproducers: not yet (${g.c.key})`);
}
