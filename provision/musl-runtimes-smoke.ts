// What a musl-linked interpreter must pass before it is kept (provision musl-python, musl-ruby, musl-python-ft):
// the smoke test (threads + fork + socketpair, the required modules, the libc proved from the interpreter's own
// /proc/self/maps) through a musl's loader, and the `nm -D` check of which symbols a build needs that a musl lacks.

import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { capture, cleanBaseEnv, runGrouped } from '../src/proc.ts';
import type { LibcProof } from '../src/types.ts';
import { OPTIONAL_MODULES, proveFromMaps, REQUIRED_MODULES, type MuslRuntime } from '../adapters/musl-runtimes.ts';
import { tail } from './debian-source.ts';

/** Smoke test: threads + fork + socketpair, modules, the libc from the process's own maps. Prints one JSON line. */
export function smokeScript(rt: MuslRuntime): string[] {
  if (rt === 'python') {
    const req = JSON.stringify(REQUIRED_MODULES.python);
    const opt = JSON.stringify(OPTIONAL_MODULES.python);
    return ['-I', '-c', `
import importlib, json, os, platform, socket, sys, threading, time
mods = {}
for m in ${req} + ${opt}:
    try:
        importlib.import_module(m); mods[m] = True
    except Exception:
        mods[m] = False
stop = False
def spin():
    while not stop:
        time.localtime(); os.getpid(); [x for x in range(50)]
ts = [threading.Thread(target=spin, daemon=True) for _ in range(2)]
for t in ts: t.start()
forks = 0
for i in range(20):
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            a.close(); b.sendall(b"ok%d" % i); os._exit(0)
        except BaseException:
            os._exit(1)
    b.close()
    got = a.recv(16); a.close()
    _, st = os.waitpid(pid, 0)
    if got != b"ok%d" % i or st != 0: raise SystemExit("fork %d: child said %r, status %d" % (i, got, st))
    forks += 1
stop = True
import ctypes
assert ctypes.CDLL(None).getpid() == os.getpid()
print(json.dumps({"version": platform.python_version(), "forks": forks, "modules": mods, "maps": open("/proc/self/maps").read()}))
`];
  }
  const req = JSON.stringify(REQUIRED_MODULES.ruby);
  const opt = JSON.stringify(OPTIONAL_MODULES.ruby);
  return ['--disable-gems', '-e', `
mods = {}
(${req} + ${opt}).each { |m| begin; require m; mods[m] = true; rescue LoadError, StandardError; mods[m] = false; end }
require "json"
require "socket"
stop = false
ts = 2.times.map { Thread.new { until stop; Time.now.localtime; Process.pid; Thread.pass; end } }
forks = 0
20.times do |i|
  a, b = UNIXSocket.pair
  pid = fork do
    a.close; b.write("ok#{i}"); b.close
    exit!(0)
  end
  b.close
  got = a.read; a.close
  _, st = Process.wait2(pid)
  raise "fork #{i}: child said #{got.inspect}, #{st.inspect}" unless got == "ok#{i}" && st.success?
  forks += 1
end
stop = true
ts.each(&:join)
if mods["fiddle"]
  raise "fiddle: getpid differs" unless Fiddle::Function.new(Fiddle.dlopen(nil)["getpid"], [], Fiddle::TYPE_INT).call == Process.pid
end
puts JSON.generate({"version" => RUBY_VERSION, "forks" => forks, "modules" => mods, "maps" => File.read("/proc/self/maps")})
`];
}
/** Run the smoke test with `exe` through `loader`; returns the interpreter's report. */
export async function smokeTest(rt: MuslRuntime, exe: string, loader: string, scratch: string): Promise<{ version: string; forks: number; modules: Record<string, boolean>; libc: LibcProof }> {
  mkdirSync(scratch, { recursive: true });
  const logFile = path.join(scratch, `smoke-${rt}-${process.pid}-${Date.now()}.log`);
  const r = await runGrouped(loader, [exe, ...smokeScript(rt)], { env: cleanBaseEnv({ HOME: scratch }), logFile, timeoutMs: 120_000 });
  let out = '';
  try {
    out = readFileSync(logFile, 'utf8');
  } finally {
    rmSync(logFile, { force: true });
  }
  const line = out.split('\n').find((l) => l.startsWith('{"'));
  if (r.code !== 0 || !line) throw new Error(`${exe} through ${loader}: smoke test failed (${r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`}): ${tail(out, 6)}`);
  const rep = JSON.parse(line) as { version: string; forks: number; modules: Record<string, boolean>; maps: string };
  const libc = proveFromMaps(rep.maps);
  if (!libc) throw new Error(`${exe} through ${loader}: no libc in its mappings`);
  const missing = REQUIRED_MODULES[rt].filter((m) => !rep.modules[m]);
  if (missing.length) throw new Error(`${exe}: required modules missing: ${missing.join(', ')}`);
  return { version: rep.version, forks: rep.forks, modules: rep.modules, libc };
}

/** Dynamic symbols of an ELF file (`nm -D`): defined or undefined (weak references left out). */
function dynSymbols(file: string, which: 'defined' | 'undefined'): string[] {
  const r = capture('nm', ['-D', `--${which}-only`, file], { env: cleanBaseEnv(), timeoutMs: 60_000 });
  if (r.code !== 0) return [];
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 2 && !/^[wv]$/.test(f[f.length - 2])).map((f) => f[f.length - 1]);
}

function elfFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && (e.name.endsWith('.so') || path.basename(d) === 'bin')) {
        try {
          const b = readFileSync(p).subarray(0, 4);
          if (b.length === 4 && b.readUInt32BE(0) === 0x7f454c46) out.push(p);
        } catch {
          /* unreadable */
        }
      }
    }
  };
  walk(dir);
  return out;
}

/**
 * Which symbols of a build no musl version provides: per version, file (relative) -> missing symbols. The
 * interpreter's own exports count as provided (extension modules link against it). A gap in the interpreter itself
 * means it cannot start on that version; a gap in a module means that module cannot be loaded there.
 */
export function symbolGaps(buildDir: string, exe: string, libcs: Record<string, string>): Record<string, Record<string, string[]>> {
  const own = new Set(dynSymbols(exe, 'defined'));
  const files = elfFiles(buildDir).map((f) => ({ f, und: dynSymbols(f, 'undefined') }));
  const ignore = /^(_ITM_|__gmon_start__|_Jv_|__cxa_finalize$|__register_frame_info$|__deregister_frame_info$)/;
  const gaps: Record<string, Record<string, string[]>> = {};
  for (const [version, libc] of Object.entries(libcs)) {
    const have = new Set([...own, ...dynSymbols(libc, 'defined')]);
    for (const { f, und } of files) {
      const miss = und.filter((u) => !have.has(u) && !ignore.test(u));
      if (miss.length) (gaps[version] ??= {})[path.relative(buildDir, f)] = miss;
    }
  }
  return gaps;
}

