// The registries: adding an environment kind is one module plus one line here; adding a runtime is its folder
// (runners/<rt>/index.ts exports its spec) plus one line in src/runtimes/specs.ts.

import { RUNTIME_SPECS } from './runtimes/specs.ts';
import { hostAdapter } from '../adapters/host.ts';
import { muslAdapter } from '../adapters/musl.ts';
import { glibcAdapter } from '../adapters/glibc.ts';
import { preloadAdapter } from '../adapters/preload.ts';
import { debianRootAdapter, ROOT_PROVISION_NAMES } from '../adapters/debian-root.ts';
import { muslRuntimesAdapter } from '../adapters/musl-runtimes.ts';
import { allocatorsProvisioner } from '../provision/allocators.ts';
import { glibcProvisioner } from '../provision/glibc.ts';
import { libuvProvisioner } from '../provision/libuv.ts';
import { muslProvisioner, MUSL_PROVISION_NAMES } from '../provision/musl.ts';
import { muslRuntimesProvisioner, MUSL_RUNTIME_PROVISION_NAMES } from '../provision/musl-runtimes.ts';
import { hostProvisioner } from '../provision/host.ts';
import { rootsProvisioner } from '../provision/roots.ts';
import { nodeProvisioner } from '../provision/node.ts';
import { pythonFtProvisioners } from '../provision/python-ft-build.ts';
import type { Provisioner } from '../provision/provisioner.ts';
import type { Adapter, Runner, RuntimeName } from './types.ts';

export const runners = Object.fromEntries(RUNTIME_SPECS.map((s) => [s.runtime, s])) as unknown as Record<RuntimeName, Runner>;

export const adapters: Adapter[] = [hostAdapter, glibcAdapter, preloadAdapter, muslAdapter, muslRuntimesAdapter, debianRootAdapter];

/** What `forkmatrix provision` accepts besides NAME@VERSION words (in the order `provision: unknown` lists them). */
export const PROVISION_NAMES = ['host', 'glibc', 'allocators', ...MUSL_PROVISION_NAMES, ...ROOT_PROVISION_NAMES, ...MUSL_RUNTIME_PROVISION_NAMES];

/**
 * Every provisioner (provision/), in the order they run: one per name (musl also takes musl-<version> and
 * musl-debug, musl-python also musl-ruby); node@18,22 takes versions.
 */
export const provisioners: Provisioner[] = [
  hostProvisioner, glibcProvisioner, allocatorsProvisioner, muslProvisioner, libuvProvisioner, muslRuntimesProvisioner,
  rootsProvisioner, nodeProvisioner, ...pythonFtProvisioners,
];
