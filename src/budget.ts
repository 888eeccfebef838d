// Budgets: how many forks and seconds a cell gets.

import type { CaseDef } from './types.ts';

export type BudgetSpec = { kind: 'quick' } | { kind: 'full' } | { kind: 'forks'; forks: number };

export const QUICK = { forks: 400, seconds: 3 };

export function parseBudget(s: string): BudgetSpec | null {
  if (s === 'quick') return { kind: 'quick' };
  if (s === 'full') return { kind: 'full' };
  if (/^\d+$/.test(s) && Number(s) > 0) return { kind: 'forks', forks: Number(s) };
  return null;
}

export function budgetFor(c: CaseDef, b: BudgetSpec): { forks: number; seconds: number; timeoutMs: number } {
  switch (b.kind) {
    case 'quick':
      return { forks: Math.min(c.forks, QUICK.forks), seconds: Math.min(c.seconds, QUICK.seconds), timeoutMs: c.timeoutMs };
    case 'full':
      return { forks: c.forks, seconds: c.seconds, timeoutMs: c.timeoutMs };
    case 'forks':
      // an explicit fork count is what the user wants: give it the time it needs (bounded by the harness timeout)
      return { forks: b.forks, seconds: Math.max(c.seconds, 60), timeoutMs: c.timeoutMs };
  }
}

export function budgetLabel(b: BudgetSpec): string {
  return b.kind === 'forks' ? String(b.forks) : b.kind;
}
