// The census engine's types: what a dialect tells the engine, what the engine returns, and its units and definitions.

import type { CFile, CFunction } from './cparse.ts';

export type LockStatus = 'reset' | 'taken' | 'none';

export interface RawDef {
  /** variable name, or member name when struct is set */
  name: string;
  struct: string | null;
  kind: string;
  offset: number;
  /** a function-local static: the function's name */
  fn?: string;
}

export interface RawOp {
  op: 'take' | 'reset';
  /** the lock expression as written (first argument) */
  expr: string;
  /** what kind of lock the operation implies (for objects found through their use) */
  kind: string;
  offset: number;
  /** the member belongs to this struct (e.g. a FILE's lock) */
  struct?: string;
  /** an unresolved expression is no problem worth reporting (a guess at an assignment) */
  quiet?: boolean;
}

export interface Dialect {
  libc: string;
  /** every candidate source file (relative to root, '/'-separated): .c and .h */
  files(root: string): string[];
  /** quick text test: may this file define or use a lock? */
  relevant(text: string): boolean;
  /** the TU roots actually built (e.g. glibc's sysdeps override: the most specific file of a name wins) */
  selectRoots(roots: string[]): string[];
  /** lock objects declared by their lock macro or type (file scope and struct members) */
  patternDefs(f: CFile): RawDef[];
  /** lock operations in a function body */
  ops(body: string): RawOp[];
  /** the fork function and the file that defines it; `after` (a runtime's after-fork-in-the-child hook) counts only
   * re-initialisations, `before` only acquisitions */
  fork: { fn: string; files: string[]; also?: { fn: string; files: string[]; counts: 'take' | 'reset' }[] };
  /** which names are public (default: not static and not starting with '_') */
  publicName?(name: string, isStatic: boolean): boolean;
  /** extra fork handling the call walk cannot see (musl's atfork_locks table) */
  forkExtras?(read: (rel: string) => string | null, files: string[], lockIn: (file: string, name: string) => string | null): { id: string; status: 'taken' | 'reset'; how: string }[];
  /** functions the fork walk does not enter (error paths) */
  forkSkip?: string[];
  /** other names a function is known by (macros in headers the census does not read) */
  nameVariants?(name: string): string[];
  /** read static inline functions of the headers a unit includes, and functions a file-scope macro defines, as part of
   * the unit (musl's mallocng: rdlock() in glue.h, __malloc_atfork in its LOCK_OBJ_DEF macro) */
  headerInlines?: boolean;
  /** structs with one object only: a member lock is named by its member name alone */
  singletonStructs?: string[];
  /** structs that are a lock type's own implementation, not objects holding a lock */
  ignoreStruct?: RegExp;
  /** where `#include "x.h"` is searched besides the including file's directory */
  includeDirs?: string[];
  /** functions whose name is the lock operation (musl __tl_lock takes __thread_list_lock) */
  lockFunctions?: Record<string, { target: string; op: 'take' | 'reset' }>;
}

export interface CensusLock {
  id: string;
  name: string;
  /** where the object is defined (file:line) */
  file: string;
  line: number;
  kind: string;
  status: LockStatus;
  /** how fork handles it: the operation and the call chain from the fork function */
  how: string[];
  /** functions that take it: file:function */
  takers: string[];
  /** exported functions that reach it in the same translation unit */
  public: string[];
  /** exported functions elsewhere that reach it through an internal function, "name (file) -> internal" */
  via: string[];
}

export interface CensusResult {
  locks: CensusLock[];
  /** lock operations whose object could not be resolved (expression as written, file:line) */
  unresolved: string[];
  files: number;
  units: number;
  forkFile: string | null;
}

export interface Unit {
  root: string;
  parts: string[];
  /** names a call may be written as: object-like macros of the unit (DCIGETTEXT -> __dcigettext) */
  rename?: Map<string, string>;
  functions: (CFunction & { part: string; fullName: string; publicNames: string[] })[];
}

export interface Def {
  id: string;
  name: string;
  struct: string | null;
  part: string;
  /** the unit it belongs to (file scope) or null (struct members: a type) */
  unit: string | null;
  isStatic: boolean;
  kind: string;
  line: number;
  /** a function-local static: the function */
  fn?: string;
}

/** one function of a unit */
export type UnitFunction = Unit['functions'][number];
