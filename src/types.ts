// The words of forkmatrix (DESIGN.md section 1) as types. Runners and adapters import only this module
// from the core.

import type { PressureSummary } from './verdict.ts';

/**
 * The runtimes a case can name (the folders of suites/). Each has a spec in runners/<rt>/index.ts; the values
 * (RUNTIMES, FOUND_RUNTIMES, in matrix order) derive from those specs in src/runtimes/specs.ts.
 */
export type RuntimeName = 'libc' | 'libuv' | 'python' | 'ruby' | 'node';

/**
 * The runtimes an environment looks for itself: an interpreter, or the C compiler for libc. Every other case
 * runtime runs on one of these (Runner.builtOn): libuv cases are C, built with the environment's compiler.
 */
export type FoundRuntime = Exclude<RuntimeName, BuiltOnRuntime>;
/** runtimes whose spec has builtOn instead of find */
export type BuiltOnRuntime = 'libuv';

// the values, derived from the specs (a runtime import: runners and adapters import this module's types only)
export { RUNTIMES, FOUND_RUNTIMES } from './runtimes/specs.ts';

/** guaranteed: documented (quoted); tested: the runtime's own test suite asserts it; libc: POSIX leaves it to the libc; none: recorded */
export const LEVELS = ['guaranteed', 'tested', 'libc', 'none'] as const;
export type PromiseLevel = (typeof LEVELS)[number];

export const FAIL_KINDS = ['hang', 'crash', 'wrong'] as const;
export type FailKind = (typeof FAIL_KINDS)[number];

/**
 * pass | fail (with a kind) | inconclusive (no failure, but too few forks or processes, or no proof of pressure, to
 * call it a pass) | skip (could not run here) | error (the case or harness is broken)
 */
export type Verdict = 'pass' | 'fail' | 'inconclusive' | 'skip' | 'error';

/** Where an expected failure applies: a libc (and its versions) and/or versions of the case's runtime. */
export interface Scope {
  libc?: string; // glibc | musl; absent: every libc
  versions?: string; // libc versions, e.g. "<2.40", ">=1.2.2,<1.2.4"
  runtime_versions?: string; // versions of the case's runtime (python, ruby, node, libuv)
  fixed_in?: string; // the runtime (or libc, when no runtime scope) version that fixed it
  verdict: 'fail' | FailKind;
}

/** A failure an upstream source documents (bug, commit, source line). */
export interface Known extends Scope {
  cite: string;
}

/** A failure measured here with no upstream report: a finding of this project. */
export interface Found extends Scope {
  measured: string;
  report?: string; // findings/<name>.md
}

/** One case as declared in a suite file, validated. */
export interface CaseDef {
  runtime: RuntimeName;
  family: string;
  id: string;
  /** runtime/family/id: unique across the suite */
  key: string;
  title: string;
  level: PromiseLevel;
  cite: string[];
  env: Record<string, string>;
  threads: number;
  prelude: string;
  setup: string;
  loop: string;
  child: string;
  exit: '_exit' | 'exit';
  expectOutput: string | null;
  forks: number;
  seconds: number;
  timeoutMs: number;
  requires: string[];
  known: Known[];
  found: Found[];
  /** internal locks the case exercises (census ids, e.g. "glibc:time/tzset:tzset_lock") */
  locks: string[];
  /** tiny shared objects built per environment (name -> C source): $FM_LIB_<NAME> */
  library: Record<string, string>;
  precondition: string;
  beforeFork: string;
  /** repo-relative path of the case file */
  file: string;
  /** 1-based line of the case's `- id:` entry */
  line: number;
  /** 1-based first line of each snippet's text in the file (0: absent) */
  lines: { prelude: number; setup: number; loop: number; child: number; precondition: number; before_fork: number };
  /** the case's YAML text, for the matrix page's detail view */
  source: string;
}

/** What the libc that really ran says about itself (never a label). */
export interface LibcProof {
  name: 'glibc' | 'musl' | 'unknown';
  version: string;
  /** the file mapped into the process */
  path: string;
  /** the banner the libc printed when executed */
  banner: string;
}

/** How to start a program inside an environment. */
export interface Launcher {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
}

/** A runtime found in an environment. */
export interface RuntimeInstance {
  runtime: RuntimeName;
  /** e.g. "3.11.7" (python), "3.1.2" (ruby), "20.20.2" (node), "gcc 12.2.0" (libc: the compiler) */
  version: string;
  /** the interpreter, or the C compiler for libc */
  executable: string;
  /** extra compiler flags (libc runtime only) */
  cflags?: string[];
}

export interface MissingRuntime {
  runtime: RuntimeName;
  reason: string;
}

/** An environment (DESIGN.md section 4): a libc (+ allocator/preload) with the runtimes it offers. */
export interface Environment {
  id: string;
  adapter: string;
  /** what this environment claims; proved by probe() */
  expect: { libc: 'glibc' | 'musl'; version?: string };
  /** variables the adapter adds to the clean environment (e.g. LD_PRELOAD) */
  env: Record<string, string>;
  runtimes: RuntimeInstance[];
  missing: MissingRuntime[];
  /** a directory the environment's paths are relative to (a chroot), '' for the host's file system */
  root?: string;
  /** how to run argv (program first) inside the environment */
  launch(argv: string[], env: Record<string, string>): Launcher;
  /** the libc a tiny program really loads here */
  probe(): Promise<LibcProof>;
}

export interface AdapterStatus {
  id: string;
  state: 'available' | 'provisionable' | 'impossible';
  detail: string;
}

export interface Adapter {
  name: string;
  /** environments ready to run now */
  environments(opts: AdapterOptions): Promise<Environment[]>;
  /** what this adapter could offer, for `forkmatrix list` */
  status(opts: AdapterOptions): Promise<AdapterStatus[]>;
  // provisioning is not an adapter's: each provision name is a provisioner (provision/provisioner.ts)
}

export interface AdapterOptions {
  cacheDir: string;
  /** --runtime name=/path additions */
  extraRuntimes: { runtime: FoundRuntime; path: string }[];
  /** --preload PATH.so */
  preload: string[];
  /** --libc PATH */
  libc: string[];
}

/** The JSON a harness is given (runners/PROTOCOL.md). */
export interface HarnessConfig {
  case: string;
  file: string;
  lines: CaseDef['lines'];
  threads: number;
  prelude: string;
  setup: string;
  loop: string;
  child: string;
  exit: '_exit' | 'exit';
  expect_output: string | null;
  forks: number;
  seconds: number;
  timeout_ms: number;
  seed: number;
  max_delay_us: number;
  warmup_ms: number;
  fail_fast: boolean;
  diag: { gdb: string | null; max: number };
  result: string;
  env_check: boolean;
  addon: string | null;
  precondition: string;
  before_fork: string;
  hang_proof: { sample_ms: number; early_min_ms: number; early_factor: number; hard_factor: number };
}

export interface FailureRecord {
  kind: FailKind;
  iteration: number;
  elapsed_ms?: number;
  message: string;
  signal?: number | null;
  signame?: string | null;
  status?: number | null;
  diag?: Record<string, string | null>;
}

/** The loop threads' work during the fork loop (runners/PROTOCOL.md). */
export interface Pressure {
  window_ms: number;
  threads: { iterations: number; last_ms: number | null; error: string | null }[];
  forks_inside: number;
  forks_sampled: number;
}

/** The JSON a harness writes (runners/PROTOCOL.md). */
export interface HarnessResult {
  forks: number;
  ok: number;
  hang: number;
  crash: number;
  wrong: number;
  elapsed_ms: number;
  child_ms?: { median: number | null; p99: number | null } | null;
  first_failures: FailureRecord[];
  libc?: { path?: string | null; self_reported?: string | null } | null;
  runtime?: { name?: string; version?: string; executable?: string } | null;
  threads_started?: number;
  pressure?: Pressure | null;
  slow?: number;
  slow_examples?: { iteration: number; ms: number }[];
  mapped?: string[];
  skipped?: string | null;
  error?: string | null;
  environ?: Record<string, string>;
}

/** What a runner hands the cell executor: how to start the harness for one case. */
export interface PreparedCell {
  argv: string[];
  /** extra config keys (e.g. addon) */
  config?: Partial<HarnessConfig>;
}

export interface RunnerContext {
  env: Environment;
  runtime: RuntimeInstance;
  cacheDir: string;
  repoDir: string;
}

export interface Runner {
  runtime: RuntimeName;
  /** language of the snippets, for the matrix page */
  language: string;
  /**
   * Turn a case into a harness invocation for one environment (compile C, locate the harness script, build an addon).
   * Returns a skip reason where the case cannot run there.
   */
  prepare(c: CaseDef, ctx: RunnerContext): Promise<PreparedCell | { skip: string } | { error: string }>;
  /**
   * For a runtime no environment looks for: the found runtime its cells run on, and the instance made from it
   * (libuv: the environment's C compiler, versioned "1.44.2 (gcc 12.2.0)").
   */
  builtOn?: { runtime: FoundRuntime; instance(base: RuntimeInstance, cacheDir: string): RuntimeInstance | RuntimeInstance[] };
}

/** A finished cell, as written to TAP and read back from it. */
export interface CellResult {
  case: string; // key runtime/family/id
  title: string;
  family: string;
  cite: string[];
  file: string;
  source: string;
  env: string;
  libc: LibcProof | null;
  runtime: RuntimeName;
  runtime_version: string;
  runtime_executable: string;
  verdict: Verdict;
  kind: FailKind | null;
  level: PromiseLevel;
  known: Known | null;
  /** a failure measured here with no upstream report (a finding), when the case declares it */
  found?: Found | null;
  reason: string | null; // skip, error or inconclusive reason
  forks: number;
  failures: number;
  counts: { ok: number; hang: number; crash: number; wrong: number };
  rate: number;
  interval: [number, number];
  /** the failure rate a pass could have missed at 95% confidence (rule of three) */
  missable: number | null;
  seed: number;
  elapsed_ms: number;
  child_ms: { median: number | null; p99: number | null } | null;
  first_failure: FailureRecord | null;
  failures_seen: FailureRecord[];
  budget: { forks: number; seconds: number; timeout_ms: number };
  clean_env: Record<string, string>;
  replay: string;
  /** fresh harness processes the forks were spread over */
  processes?: number;
  /** children alive at the timeout that were not blocked and then finished (not hangs) */
  slow?: number;
  /** the loop threads' work during the forks (src/verdict.ts) */
  pressure?: PressureSummary | null;
  /** harness crashes that were re-run before the verdict (the error did not reproduce), or that reproduced */
  reruns?: string[];
  /** the slices an adaptive quick budget gave the cell (src/adaptive.ts), when more than one */
  rounds?: { seed: number; forks: number; failures: number; elapsed_ms: number }[];
}
