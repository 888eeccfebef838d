// Cache locks: one forkmatrix at a time builds a given thing in a cache; a second one waits (saying so) and then
// reuses what the first one built. A lock is a file created with O_EXCL holding its owner's pid and the owner's
// start time (from /proc), so a lock whose owner died (SIGKILL, a crash, a power cut of a container) is recognised
// as stale and taken over, never waited on forever. Within one process, callers of the same lock queue in order.

import { closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

export interface LockOwner {
  pid: number;
  start: string; // field 22 of /proc/PID/stat: tells a reused pid from the owner
  what: string;
  since: string;
}

/** The start time of a process (clock ticks since boot), or null when it is gone. */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Is the process that wrote this owner record still the one running under its pid? */
export function ownerAlive(o: Pick<LockOwner, 'pid' | 'start'>): boolean {
  if (!Number.isInteger(o.pid) || o.pid <= 0) return false;
  const now = processStart(o.pid);
  return now != null && (!o.start || now === o.start);
}

function readOwner(file: string): LockOwner | null {
  try {
    const o = JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
    return typeof o?.pid === 'number' ? o : null;
  } catch {
    return null;
  }
}

const held = new Map<string, number>(); // lock files this process holds -> depth (a sync lock may nest)

type Try = { ok: true } | { ok: false; owner: LockOwner | null };

function tryTake(file: string, what: string): Try {
  mkdirSync(path.dirname(file), { recursive: true });
  const me: LockOwner = { pid: process.pid, start: processStart(process.pid) ?? '', what, since: new Date().toISOString() };
  // written whole beside the lock, then linked into place: link(2) fails with EEXIST like O_EXCL, and a reader
  // never sees a half-written owner record
  const tmp = `${file}.${process.pid}.new`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, JSON.stringify(me) + '\n');
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
    return { ok: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      /* gone */
    }
  }
  const owner = readOwner(file);
  if (owner && ownerAlive(owner)) return { ok: false, owner };
  if (!owner) {
    // unreadable: a record from before link() was used, or garbage; give its writer a moment, then take it over
    return { ok: false, owner: null };
  }
  // stale: move it aside under a name of our own, check that what we moved is the dead owner's lock (not a live
  // lock another waiter made in between), and try again
  const aside = `${file}.${process.pid}.stale`;
  try {
    renameSync(file, aside);
  } catch {
    return { ok: false, owner: null }; // someone else moved it first
  }
  const moved = readOwner(aside);
  if (moved && ownerAlive(moved)) {
    try {
      linkSync(aside, file); // put the live lock back (fails only if yet another lock is there)
    } catch {
      /* another one is there */
    }
  }
  try {
    unlinkSync(aside);
  } catch {
    /* gone */
  }
  return { ok: false, owner: moved && ownerAlive(moved) ? moved : null };
}

function release(file: string): void {
  const depth = (held.get(file) ?? 1) - 1;
  if (depth > 0) {
    held.set(file, depth);
    return;
  }
  held.delete(file);
  const o = readOwner(file);
  if (o && o.pid !== process.pid) return; // not ours any more: leave it
  try {
    unlinkSync(file);
  } catch {
    /* gone */
  }
}

const waitingLine = (what: string, o: LockOwner | null, file: string) =>
  `waiting: another forkmatrix${o ? ` (pid ${o.pid}, since ${o.since})` : ''} is ${o?.what ?? what}; this one goes on when it is done (lock ${file})`;

let exitHook = false;
function releaseAllOnExit() {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const f of held.keys()) {
      held.set(f, 1);
      release(f);
    }
  });
}

/**
 * One attempt at the lock: true when taken. Says once (through `log`) whom it waits for; a lock file nobody can read
 * for 2 s is garbage, not a lock, and is removed.
 */
function attempt(file: string, what: string, log: (l: string) => void, st: { said: boolean; unreadableSince: number }): boolean {
  const r = tryTake(file, what);
  if (r.ok) return true;
  if (!st.said) {
    log(waitingLine(what, r.owner, file));
    st.said = true;
  }
  if (!r.owner) {
    st.unreadableSince ||= Date.now();
    if (Date.now() - st.unreadableSince > 2000) {
      try {
        unlinkSync(file);
      } catch {
        /* gone */
      }
    }
  } else st.unreadableSince = 0;
  return false;
}

/** Take a lock synchronously (for the synchronous apt steps); returns its release. Re-entrant within a process. */
export function lockSync(file: string, what: string, log: (l: string) => void = () => {}, pollMs = 250): () => void {
  releaseAllOnExit();
  if (held.has(file)) {
    held.set(file, held.get(file)! + 1);
    return () => release(file);
  }
  const st = { said: false, unreadableSince: 0 };
  while (!attempt(file, what, log, st)) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pollMs);
  }
  held.set(file, 1);
  return () => release(file);
}

const queues = new Map<string, Promise<unknown>>();

/**
 * Run `fn` holding the lock `file`: other processes wait (one message through `log`), and callers in this process
 * queue behind each other. The lock goes with the process: released on return, on a throw and at exit; a SIGKILLed
 * owner's lock is stale and taken over.
 */
export async function withLock<T>(file: string, what: string, log: (l: string) => void, fn: () => Promise<T> | T, pollMs = 250): Promise<T> {
  releaseAllOnExit();
  const prev = queues.get(file) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((r) => (done = r));
  const chain = prev.then(() => mine);
  queues.set(file, chain);
  await prev.catch(() => {});
  try {
    const st = { said: false, unreadableSince: 0 };
    while (!attempt(file, what, log, st)) {
      await new Promise((res) => setTimeout(res, pollMs));
    }
    held.set(file, 1);
    try {
      return await fn();
    } finally {
      release(file);
    }
  } finally {
    done();
    if (queues.get(file) === chain) queues.delete(file);
  }
}

/** Where the cache's locks live. */
export function lockFile(cacheDir: string, name: string): string {
  return path.join(cacheDir, 'locks', `${name.replace(/[^A-Za-z0-9._-]/g, '_')}.lock`);
}
