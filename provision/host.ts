// Provisioner `host`: Debian's packages for this machine's own runtimes and the hang diagnosis (HOST_PACKAGES in
// adapters/host.ts: each runtime's spec names its own, plus gdb), installed with apt-get where the program is
// missing. Needs root; without it, the line says what to run as root. Writes nothing under the cache.

import { $ } from 'zx';
import { HOST_PACKAGES, which } from '../adapters/host.ts';
import { cleanBaseEnv } from '../src/proc.ts';
import type { Provisioner } from './provisioner.ts';

// a second provision (or any apt) at the same time: wait for dpkg's lock instead of failing on it
const WAIT = ['-o', 'DPkg::Lock::Timeout=600'];

export async function provisionHost(log: (l: string) => void): Promise<void> {
  const need = Object.entries(HOST_PACKAGES).filter(([exe]) => !which(exe)).map(([, pkg]) => pkg);
  if (!need.length) return log(`host: ${Object.keys(HOST_PACKAGES).join(', ')} are all present`);
  if (process.getuid?.() !== 0) throw new Error(`host: missing ${need.join(', ')}; as root run: apt-get install -y ${need.join(' ')}`);
  log(`host: apt-get install ${need.join(' ')}`);
  const sh = $({ quiet: true, nothrow: true, env: { ...cleanBaseEnv(), DEBIAN_FRONTEND: 'noninteractive', SHLVL: '1' } }); // SHLVL: no ~/.bashrc
  const install = () => sh({ timeout: '15m' })`apt-get ${WAIT} install -y -q ${need}`;
  let r = await install();
  if (r.exitCode !== 0) {
    await sh({ timeout: '10m' })`apt-get ${WAIT} update -q`;
    r = await install();
  }
  if (r.exitCode !== 0) throw new Error(`host: apt-get install ${need.join(' ')} failed: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
}

export const hostProvisioner: Provisioner = {
  name: 'host',
  needs: 'root, apt-get and a Debian mirror',
  writes: 'nothing in the cache: Debian packages on this machine (apt-get install)',
  accepts: (word) => word === 'host',
  check: () => null,
  provision: (_words, _opts, log) => provisionHost(log),
};
