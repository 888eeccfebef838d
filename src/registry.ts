// The registries: adding an environment kind is one module plus one line here; adding a runtime is its folder
// (runners/<rt>/index.ts exports its spec) plus one line in src/runtimes/specs.ts.

import { RUNTIME_SPECS } from './runtimes/specs.ts';
import { hostAdapter } from '../adapters/host.ts';
import { muslAdapter, MUSL_PROVISION_NAMES } from '../adapters/musl.ts';
import { glibcAdapter } from '../adapters/glibc.ts';
import { preloadAdapter } from '../adapters/preload.ts';
import { debianRootAdapter, ROOT_PROVISION_NAMES } from '../adapters/debian-root.ts';
import { muslRuntimesAdapter, MUSL_RUNTIME_PROVISION_NAMES } from '../adapters/musl-runtimes.ts';
import { nodeProvisioner } from '../provision/node.ts';
import type { Provisioner } from '../provision/provisioner.ts';
import type { Adapter, Runner, RuntimeName } from './types.ts';

export const runners = Object.fromEntries(RUNTIME_SPECS.map((s) => [s.runtime, s])) as unknown as Record<RuntimeName, Runner>;

export const adapters: Adapter[] = [hostAdapter, glibcAdapter, preloadAdapter, muslAdapter, muslRuntimesAdapter, debianRootAdapter];

/** What `forkmatrix provision` accepts (each adapter provisions the names it knows). */
export const PROVISION_NAMES = ['host', 'glibc', 'allocators', ...MUSL_PROVISION_NAMES, ...ROOT_PROVISION_NAMES, ...MUSL_RUNTIME_PROVISION_NAMES];

/** Provisioners of their own (provision/): one per name; node@18,22 takes versions. */
export const provisioners: Provisioner[] = [nodeProvisioner];
