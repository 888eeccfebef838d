// The `repro` command of a cell, for `run`'s summary and matrix.json (pure: no file system).

import type { CellResult } from '../types.ts';

/**
 * `npx forkmatrix repro KEY --env ENV`, plus `--runtime-version V` for every runtime but libc (an environment may
 * offer several pythons, rubies, nodes or libuv versions: V names the column's, e.g. 3.11.7, or 1.44.2 for libuv).
 */
export function reproCommand(cell: Pick<CellResult, 'case' | 'env' | 'runtime' | 'runtime_version'>): string {
  const v = cell.runtime === 'libc' ? undefined : cell.runtime === 'libuv' ? /^\d+\.\d+\.\d+/.exec(cell.runtime_version)?.[0] : cell.runtime_version;
  return `npx forkmatrix repro ${cell.case} --env ${cell.env}${v && /^[\w.+-]+$/.test(v) ? ` --runtime-version ${v}` : ''}`;
}
