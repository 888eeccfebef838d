// Debian packages without root and without touching /etc: a private apt state (sources list, lists, cache) under
// the forkmatrix cache, `apt-get download`, and `dpkg-deb -x` to unpack. The mirror is the one this machine's apt
// already uses (read from /etc/apt), or $FORKMATRIX_DEBIAN_MIRROR.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { capture, cleanBaseEnv } from '../src/proc.ts';
import { lockSync, processStart, withLock } from '../src/lock.ts';

export const SUITES = ['bullseye', 'bookworm', 'trixie', 'sid'] as const;
export type DebianSuite = (typeof SUITES)[number];

const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** The Debian mirror this machine's apt is set up with (the entry that is not -security). */
export function debianMirror(): string {
  if (process.env.FORKMATRIX_DEBIAN_MIRROR) return process.env.FORKMATRIX_DEBIAN_MIRROR.replace(/\/$/, '');
  const texts: string[] = [];
  for (const f of ['/etc/apt/sources.list', ...safeList('/etc/apt/sources.list.d').map((x) => path.join('/etc/apt/sources.list.d', x))]) {
    if (!/\.(list|sources)$/.test(f) && f !== '/etc/apt/sources.list') continue;
    try {
      texts.push(readFileSync(f, 'utf8'));
    } catch {
      /* unreadable */
    }
  }
  for (const t of texts) {
    // deb822: a stanza with URIs: and Suites: (not -security)
    for (const stanza of t.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1] ?? '';
      if (uri && /debian\/?$/.test(uri) && !/security/.test(suites)) return uri.replace(/\/$/, '');
    }
    for (const line of t.split('\n')) {
      const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line.trim());
      if (m && /debian\/?$/.test(m[1]) && !/security/.test(m[2])) return m[1].replace(/\/$/, '');
    }
  }
  throw new Error('no Debian mirror in /etc/apt (set FORKMATRIX_DEBIAN_MIRROR=URL of a Debian archive)');
}

function safeList(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}

export class PrivateApt {
  readonly dir: string;
  constructor(cacheDir: string) {
    this.dir = path.join(cacheDir, 'apt');
  }

  private opts(): string[] {
    return [
      '-q', '-o', `Dir::Etc::SourceList=${path.join(this.dir, 'sources.list')}`, '-o', 'Dir::Etc::SourceParts=/dev/null',
      '-o', `Dir::State::Lists=${path.join(this.dir, 'lists')}`, '-o', `Dir::Cache=${path.join(this.dir, 'cache')}`,
      '-o', `Dir::State::status=${path.join(this.dir, 'status')}`, '-o', 'APT::Get::List-Cleanup=0', '-o', 'Debug::NoLocking=1',
      '-o', 'APT::Sandbox::User=root',
      // a mirror snapshot older than this machine's clock must not expire its suites (sid's Valid-Until is a week);
      // the Release signatures are still checked
      '-o', 'Acquire::Check-Valid-Until=false',
      // Debian's container images turn the binary caches off (docker-clean); without them every call re-parses
      // ~100 MB of lists (16 s instead of 4 s)
      '-o', 'Dir::Cache::pkgcache=pkgcache.bin', '-o', 'Dir::Cache::srcpkgcache=srcpkgcache.bin',
    ];
  }

  /** Write the sources list (binary and source packages of every suite) and update when older than a day. */
  update(log: (l: string) => void = () => {}): void {
    const unlock = this.lock(log);
    try {
      this.update1(log);
    } finally {
      unlock();
    }
  }

  /** One forkmatrix at a time uses this apt state (its lists, caches and download folders). */
  private lock(log: (l: string) => void): () => void {
    return lockSync(path.join(this.dir, '.lock'), 'using the private apt state', log);
  }

  private update1(log: (l: string) => void): void {
    for (const d of ['lists/partial', 'cache/archives/partial']) mkdirSync(path.join(this.dir, d), { recursive: true });
    const mirror = debianMirror();
    const signed = existsSync(KEYRING) ? `[signed-by=${KEYRING}] ` : '';
    const list = SUITES.flatMap((s) => [`deb ${signed}${mirror} ${s} main`, `deb-src ${signed}${mirror} ${s} main`]).join('\n') + '\n';
    const listFile = path.join(this.dir, 'sources.list');
    const stamp = path.join(this.dir, 'updated');
    const fresh = existsSync(stamp) && existsSync(listFile) && readFileSync(listFile, 'utf8') === list && Date.now() - statSync(stamp).mtimeMs < 86_400_000;
    if (fresh) return;
    rmSync(stamp, { force: true }); // written back only when this update completes: an interrupted one is redone
    writeFileSync(listFile, list);
    writeFileSync(path.join(this.dir, 'status'), '');
    log(`apt: updating the private package lists (${SUITES.join(', ')})`);
    const r = capture('apt-get', [...this.opts(), 'update'], { env: cleanBaseEnv(), timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`apt-get update (private state in ${this.dir}) failed: ${(r.stderr || r.error || '').trim().split('\n').slice(-3).join(' ')}`);
    writeFileSync(stamp, new Date().toISOString());
  }

  /** Download `pkg/suite` specs into `dest`; returns the .deb paths (in the order asked). */
  download(specs: string[], dest: string, log: (l: string) => void = () => {}): string[] {
    const unlock = this.lock(log);
    try {
      return this.download1(specs, dest, log);
    } finally {
      unlock();
    }
  }

  private download1(specs: string[], dest: string, log: (l: string) => void): string[] {
    this.update(log);
    mkdirSync(dest, { recursive: true });
    return specs.map((spec) => {
      // one spec per call, into its own folder: the same package from two suites must not be confused
      const one = path.join(dest, '.dl-' + spec.replace(/[^A-Za-z0-9.+-]/g, '_'));
      rmSync(one, { recursive: true, force: true });
      mkdirSync(one, { recursive: true });
      const r = capture('apt-get', [...this.opts(), 'download', spec], { env: cleanBaseEnv(), cwd: one, timeoutMs: 600_000 });
      const got = safeList(one).filter((f) => f.endsWith('.deb'));
      if (r.code !== 0 || got.length !== 1) {
        rmSync(one, { recursive: true, force: true });
        throw new Error(`apt-get download ${spec} failed: ${(r.stderr || r.error || 'no .deb').trim().split('\n').slice(-2).join(' ')}`);
      }
      const final = path.join(dest, got[0]);
      renameSync(path.join(one, got[0]), final);
      rmSync(one, { recursive: true, force: true });
      return final;
    });
  }

  /** Fetch a source package (`apt-get source --download-only`) into dest; returns dest. */
  source(spec: string, dest: string, log: (l: string) => void = () => {}): string {
    const unlock = this.lock(log);
    try {
      return this.source1(spec, dest, log);
    } finally {
      unlock();
    }
  }

  private source1(spec: string, dest: string, log: (l: string) => void): string {
    this.update(log);
    mkdirSync(dest, { recursive: true });
    const r = capture('apt-get', [...this.opts(), 'source', '--download-only', spec], { env: cleanBaseEnv(), cwd: dest, timeoutMs: 900_000 });
    if (r.code !== 0) throw new Error(`apt-get source ${spec} failed: ${(r.stderr || r.error || '').trim().split('\n').slice(-2).join(' ')}`);
    return dest;
  }
}

/** Unpack a .deb into dir (no root needed). */
export function unpackDeb(deb: string, dir: string): void {
  mkdirSync(dir, { recursive: true });
  const r = capture('dpkg-deb', ['-x', deb, dir], { env: cleanBaseEnv(), timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`dpkg-deb -x ${deb} failed: ${r.stderr.trim()}`);
}

/** Version of a .deb file from its name (pkg_VERSION_arch.deb). */
export function debVersion(deb: string): string {
  return decodeURIComponent(path.basename(deb).split('_')[1] ?? '?').replace(/^\d+:/, '');
}

/**
 * Build a directory atomically: `fill(tmp)` writes into a temporary sibling that is renamed into place only when
 * it succeeds, so a broken, partial or interrupted (Ctrl-C, SIGKILL) provision is never cached: the directory
 * existing is what "complete" means. A lock beside it makes a second forkmatrix building the same directory wait
 * (saying so) and then reuse the first one's result; temporaries of dead processes are removed.
 */
export async function buildAtomically(dir: string, fill: (tmp: string) => Promise<void> | void, log: (l: string) => void = () => {}): Promise<string> {
  if (existsSync(dir)) return dir;
  mkdirSync(path.dirname(dir), { recursive: true });
  return withLock(path.join(path.dirname(dir), `.${path.basename(dir)}.lock`), `building ${dir}`, log, async () => {
    if (existsSync(dir)) {
      log(`reusing ${dir}: another forkmatrix built it meanwhile`);
      return dir;
    }
    removeDeadTemporaries(dir);
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    try {
      await fill(tmp);
      renameSync(tmp, dir);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      if (existsSync(dir)) return dir; // made by a forkmatrix that does not take the lock: theirs is as good
      throw e;
    }
    return dir;
  });
}

/** Remove `${dir}.tmp-PID` siblings whose process is gone (a provision killed mid-way). */
export function removeDeadTemporaries(dir: string): void {
  const base = path.basename(dir) + '.tmp-';
  for (const f of safeList(path.dirname(dir))) {
    if (!f.startsWith(base)) continue;
    const pid = Number(/^(\d+)/.exec(f.slice(base.length))?.[1]);
    if (pid && pid !== process.pid && processStart(pid) == null) rmSync(path.join(path.dirname(dir), f), { recursive: true, force: true });
  }
}
