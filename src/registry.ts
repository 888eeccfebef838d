// The registries: adding a runtime or an environment kind is one module plus one line here.

import { libcRunner } from '../runners/libc/index.ts';
import { pythonRunner } from '../runners/python/index.ts';
import { rubyRunner } from '../runners/ruby/index.ts';
import { nodeRunner } from '../runners/node/index.ts';
import { libuvRunner } from '../runners/libuv/index.ts';
import { hostAdapter } from '../adapters/host.ts';
import { muslAdapter, MUSL_PROVISION_NAMES } from '../adapters/musl.ts';
import { glibcAdapter } from '../adapters/glibc.ts';
import { preloadAdapter } from '../adapters/preload.ts';
import { debianRootAdapter, ROOT_PROVISION_NAMES } from '../adapters/debian-root.ts';
import { muslRuntimesAdapter, MUSL_RUNTIME_PROVISION_NAMES } from '../adapters/musl-runtimes.ts';
import type { Adapter, Runner, RuntimeName } from './types.ts';

export const runners: Record<RuntimeName, Runner> = {
  libc: libcRunner,
  libuv: libuvRunner,
  python: pythonRunner,
  ruby: rubyRunner,
  node: nodeRunner,
};

export const adapters: Adapter[] = [hostAdapter, glibcAdapter, preloadAdapter, muslAdapter, muslRuntimesAdapter, debianRootAdapter];

/** What `forkmatrix provision` accepts (each adapter provisions the names it knows). */
export const PROVISION_NAMES = ['host', 'glibc', 'allocators', ...MUSL_PROVISION_NAMES, ...ROOT_PROVISION_NAMES, ...MUSL_RUNTIME_PROVISION_NAMES];
