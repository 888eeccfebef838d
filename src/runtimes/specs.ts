// The runtimes: one line per runtime (its spec lives in runners/<rt>/index.ts). RUNTIMES, FOUND_RUNTIMES, the
// runner registry, the matrix order and every adapter's per-runtime knowledge derive from this list.

import { libcSpec } from '../../runners/libc/index.ts';
import { libuvSpec } from '../../runners/libuv/index.ts';
import { pythonSpec } from '../../runners/python/index.ts';
import { rubySpec } from '../../runners/ruby/index.ts';
import { nodeSpec } from '../../runners/node/index.ts';
import type { FoundRuntime, RuntimeName } from '../types.ts';
import type { FindSpec, RuntimeSpec } from './spec.ts';

export const RUNTIME_SPECS: RuntimeSpec[] = [libcSpec, libuvSpec, pythonSpec, rubySpec, nodeSpec].sort((a, b) => a.order - b.order);

/** The runtimes a case can name (the folders of suites/), in matrix order. */
export const RUNTIMES: RuntimeName[] = RUNTIME_SPECS.map((s) => s.runtime);

/** The runtimes an environment looks for itself (an interpreter, or the C compiler for libc). */
export const FOUND_RUNTIMES = RUNTIME_SPECS.filter((s) => s.find).map((s) => s.runtime) as FoundRuntime[];

export const specOf = (rt: RuntimeName): RuntimeSpec => {
  const s = RUNTIME_SPECS.find((x) => x.runtime === rt);
  if (!s) throw new Error(`no runtime spec for '${rt}'`);
  return s;
};

/** The find part of a runtime environments look for. */
export const findOf = (rt: FoundRuntime): FindSpec => specOf(rt).find!;

/** Matrix order of a runtime (unknown names last). */
export const runtimeOrder = (rt: string): number => RUNTIME_SPECS.find((s) => s.runtime === rt)?.order ?? 99;
