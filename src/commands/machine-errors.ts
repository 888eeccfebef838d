// Faults of the machine (a full disk, a read-only mount): one line naming the path, not a stack trace.

import { UsageError } from './shared.ts';

const MACHINE_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on the device: free some, or give another --out / --cache',
  EDQUOT: 'disk quota exceeded: free some, or give another --out / --cache',
  EROFS: 'a read-only file system: give a writable --out / --cache',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EIO: 'an I/O error of the device',
  EMFILE: 'too many open files (raise ulimit -n)',
  ENFILE: 'too many open files on the system',
  ENOMEM: 'out of memory',
};

/** A fault of the machine under --out (a full disk) names that directory when the error itself names no file. */
export const atOut = (dir: string) => (e: unknown): never => {
  const err = e as NodeJS.ErrnoException;
  if (err?.code && MACHINE_ERRORS[err.code] && !err.path) err.path = dir;
  throw e;
};

/** A fault of the machine (a full disk, a read-only mount) as one line naming the path, not a stack trace. */
export function machineError(e: unknown): UsageError | null {
  if (e instanceof UsageError) return null;
  const err = e as NodeJS.ErrnoException;
  const what = err?.code ? MACHINE_ERRORS[err.code] : undefined;
  if (!what) return null;
  return new UsageError(`${err.path ? `${err.path}: ` : ''}${what}${err.syscall ? ` (${err.syscall})` : ''}; nothing was written in its place`);
}
