#!/usr/bin/env node
// forkmatrix harness for Node: `node harness.mjs config.json` (see runners/PROTOCOL.md and
// runners/node/README.md). Node has no fork(2): `child` is the body of an async function run once per
// iteration in the main thread; it spawns (child_process, or the raw-fork addon) and throws on a wrong
// result. `loop` runs in `threads` worker_threads. A watchdog worker decides hangs (the main thread may
// be blocked inside uv_spawn or spawnSync, so it cannot time itself out), diagnoses the live child
// processes and SIGKILLs them. Stdlib only.
import { Worker, isMainThread, workerData, parentPort, receiveMessageOnPort, MessageChannel, SHARE_ENV } from 'worker_threads';
import { createRequire } from 'module';
import fs from 'fs';
import os from 'os';
import path from 'path';
import vm from 'vm';
import { spawnSync } from 'child_process';
// built-in modules without the node: prefix: import knows it from Node 12.20 and 14.13.1 only (the harness runs on 12.17+)

const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------------------------
// Old Nodes (12.17+, 14): the harness itself avoids ?? and ?. (Node 12 has neither). Cases are written for
// Node >= CASES_NODE: they require('node:fs'), which require() knows from Node 14.18 and 16 only, so on older
// Nodes CommonJS resolution drops the prefix, in this thread, in the loop workers (they run this file) and in
// workers a snippet starts from code (`new Worker(code, { eval: true })`). What a case uses that this Node lacks
// otherwise (a function such as fs.rm on 12, a newer syntax) makes the cell a skip naming it (missingFeature), never a
// `wrong` verdict; a case whose function has an older name with the same behaviour uses it (the cluster case falls back
// to cluster.setupMaster where setupPrimary, new in 16, is missing).
// ---------------------------------------------------------------------------------------------
const CASES_NODE = 16;
const NODE_MAJOR = parseInt(process.versions.node, 10);
const NODE_PREFIX_SHIM = "{const M=require('module'),r=M._resolveFilename;M._resolveFilename=function(q,...a){return r.call(this,typeof q==='string'&&q.startsWith('node:')?q.slice(5):q,...a)}};";
const PREFIX_OK = (() => { try { require('node:fs'); return true; } catch { return false; } })();
if (!PREFIX_OK) {
  const Module = require('module');
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (q, ...rest) {
    return resolve.call(this, typeof q === 'string' && q.startsWith('node:') ? q.slice(5) : q, ...rest);
  };
  const wt = require('worker_threads');
  const RealWorker = wt.Worker;
  // the shim goes on the code's first line: the snippet's line numbers stay exact
  wt.Worker = class Worker extends RealWorker {
    constructor(what, opts) { super(opts && opts.eval && typeof what === 'string' ? NODE_PREFIX_SHIM + what : what, opts); }
  };
}

/**
 * On a Node older than the cases are written for: the reason a snippet's error means this Node lacks something the
 * case uses (a syntax, a function, a global, a module), or null (a real error, judged as usual).
 */
function missingFeature(e, where) {
  if (NODE_MAJOR >= CASES_NODE || !e) return null;
  const msg = String(e.message || '');
  const lacks = e.name === 'SyntaxError'
    || (e.name === 'TypeError' && /is not a (function|constructor)\b/.test(msg))
    || (e.name === 'ReferenceError' && /is not defined\b/.test(msg))
    || ((e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_UNKNOWN_BUILTIN_MODULE') && /'(node:)?[a-z_/]+'/.test(msg));
  if (!lacks) return null;
  return `Node ${process.versions.node} lacks what the case's ${where} uses (written for Node >= ${CASES_NODE}): ${e.name}: ${tail(msg.split('\n')[0], 300)}`;
}
const HARNESS_URL = new URL(import.meta.url);

// ---------------------------------------------------------------------------------------------
// Shared memory layout (Int32Array over a SharedArrayBuffer, plus a BigInt64Array for times)
// ---------------------------------------------------------------------------------------------
const S_STOP = 0;          // 1 = workers stop
const S_OWNER = 1;         // i+1 while iteration i runs; -(i+1) once the watchdog claimed it as a hang; 0 idle
const S_FORKS = 2, S_OK = 3, S_HANG = 4, S_CRASH = 5, S_WRONG = 6;
const S_LOOP_ERR = 7;      // loop workers that threw
const S_TICK = 8;          // Atomics.wait target (never notified)
const S_LOAD = 9;          // 9..12: load ops completed (dns, fs, crypto, zlib); 13: load errors
const S_LOAD_ERR = 13;
const S_LOAD_RUNNING = 14; // load worker: 1 running, 2 stopped
const S_MEDIAN_US = 15;    // median ok iteration time in us (0: fewer than 5 ok iterations), for the early look
const S_ITERS = 16;        // 16..16+63: loop iterations finished per worker thread (pressure)
const S_INSIDE = 80;       // 80..80+63: 1 while worker thread t is inside its loop body
const S_FORKS_INSIDE = 150; // pressure: forks at which a loop thread was inside its body
const S_LEN = 160;
const MAX_T = 64;
const B_ITER_START = 0, B_LOOP_START = 1; // ns (process.hrtime.bigint(), CLOCK_MONOTONIC: same in all threads)
const B_LAST = 8;          // 8..8+63: when worker thread t last finished an iteration (ns)
const B_LEN = 8 + MAX_T;
const LOAD_KINDS = ['dns', 'fs', 'crypto', 'zlib'];

// Node 12 has no ?? or ?. (the harness runs on Node 12.17+: ESM, worker_threads with SHARE_ENV, BigInt64Array)
const orElse = (v, d) => (v === undefined || v === null ? d : v);
const nowNs = () => process.hrtime.bigint();
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const yieldLoop = () => new Promise((r) => setImmediate(r));

// ---------------------------------------------------------------------------------------------
// Snippet helpers (installed as globals in every thread that evaluates snippets)
// ---------------------------------------------------------------------------------------------
class SkipSignal extends Error {
  constructor(reason) { super(String(reason)); this.name = 'SkipSignal'; this.fmSkip = String(reason); }
}

const SIGNUMS = os.constants.signals;
function signalNumber(sig) {
  if (typeof sig === 'number') return sig;
  if (typeof sig === 'string' && sig in SIGNUMS) return SIGNUMS[sig];
  return null;
}
function signalName(num) {
  for (const [k, v] of Object.entries(SIGNUMS)) if (v === num) return k;
  return `SIG${num}`;
}
function tail(s, n = 1000) {
  s = s == null ? '' : String(s);
  return s.length > n ? s.slice(s.length - n) : s;
}

function crash(signal, output) {
  const num = signalNumber(signal);
  const name = num != null ? signalName(num) : String(signal);
  const e = new Error(`killed by ${name} (${orElse(num, '?')})${output ? ': ' + tail(output, 900) : ''}`);
  e.fmCrash = true;
  e.signal = num;
  e.signame = name;
  return e;
}

function skip(reason) { throw new SkipSignal(reason); }

// Collect a ChildProcess's stdout/stderr (when piped) and wait for 'close'.
function exited(child, { max = 65536 } = {}) {
  return new Promise((resolve, reject) => {
    const out = { stdout: '', stderr: '' };
    for (const k of ['stdout', 'stderr']) {
      const s = child[k];
      if (!s) continue;
      s.setEncoding('utf8');
      s.on('data', (d) => { if (out[k].length < max) out[k] += d; });
    }
    child.once('error', reject);
    child.once('close', (status, signal) => resolve({ status, signal, stdout: out.stdout, stderr: out.stderr, pid: child.pid }));
  });
}

// Judge a {status, signal, stdout, stderr, error} record (what `exited` and spawnSync return).
function expectExit(res, status = 0, stdoutRe = null) {
  if (res.error) throw res.error;
  const output = `${orElse(res.stdout, '')}${orElse(res.stderr, '')}`;
  if (res.signal) throw crash(res.signal, output);
  if (res.status !== status) throw new Error(`exit status ${res.status}, expected ${status}${output ? ': ' + tail(output, 300) : ''}`);
  if (stdoutRe) {
    const re = stdoutRe instanceof RegExp ? stdoutRe : new RegExp(stdoutRe);
    const so = String(orElse(res.stdout, ''));
    if (!re.test(so)) throw new Error(`stdout ${JSON.stringify(tail(so, 300))} does not match ${re}`);
  }
  return res.stdout;
}

function makeHelpers(ctx) {
  // ctx: { addon, addonError, isMain, thread, config }
  const addon = ctx.addon;
  const requireAddon = () => {
    if (!addon) skip(`raw-fork addon not available${ctx.addonError ? ': ' + ctx.addonError : ''}`);
    return addon;
  };
  // Wait for a raw-forked child {pid, fd}: drain its output pipe, poll waitpid(WNOHANG). Never blocks the
  // event loop; polls with setImmediate for the first ~2 ms, then every 1 ms.
  async function rawWait(handle, { max = 4096 } = {}) {
    const a = requireAddon();
    const chunks = [];
    let size = 0;
    const drain = () => {
      if (handle.fd < 0) return;
      for (;;) {
        const b = a.read(handle.fd);
        if (!b || b.length === 0) return b; // null: would block; empty: EOF
        if (size < max) { chunks.push(b); size += b.length; }
      }
    };
    const t0 = nowMs();
    let w = null;
    for (;;) {
      drain();
      w = a.waitpid(handle.pid);
      if (w) break;
      if (nowMs() - t0 < 2) await yieldLoop(); else await sleep(1);
    }
    drain();
    if (handle.fd >= 0) { try { a.close(handle.fd); } catch {} handle.fd = -1; }
    const output = Buffer.concat(chunks).subarray(0, max).toString('utf8');
    return { pid: handle.pid, status: w.status, signal: w.signal, output, stdout: output, stderr: '' };
  }
  const g = {
    require,
    skip,
    crash,
    exited,
    expectExit,
    addon,
    requireAddon,
    rawWait,
    SHARE_ENV,
    fm: { isMain: ctx.isMain, thread: ctx.thread, config: ctx.config, addon, addonError: orElse(ctx.addonError, null) },
  };
  return g;
}

function installGlobals(helpers) {
  for (const [k, v] of Object.entries(helpers)) {
    Object.defineProperty(globalThis, k, { value: v, writable: true, configurable: true, enumerable: false });
  }
}

// Compile snippets so stack traces name the case file and its lines.
const DYN_IMPORT = vm.constants && vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER;
function scriptOptions(cfg, which) {
  const line = (cfg.lines && cfg.lines[which]) || 1;
  const o = { filename: cfg.file || `<${which}>`, lineOffset: line - 1 };
  if (DYN_IMPORT) o.importModuleDynamically = DYN_IMPORT;
  return o;
}
function runPrelude(cfg) {
  if (!cfg.prelude || !cfg.prelude.trim()) return;
  new vm.Script(cfg.prelude, scriptOptions(cfg, 'prelude')).runInThisContext();
}
function compileBody(cfg, which, params) {
  const body = cfg[which] || '';
  // header on the body's first line: line numbers stay exact
  const src = `(async function ${which}(${params}) {${body}\n})`;
  return new vm.Script(src, scriptOptions(cfg, which)).runInThisContext();
}

function describeError(e, cfg) {
  if (e instanceof Error) {
    let msg = e.message || e.name || 'Error';
    if (e.name && e.name !== 'Error' && !msg.startsWith(e.name)) msg = `${e.name}: ${msg}`;
    if (e.code && typeof e.code === 'string' && !msg.includes(e.code)) msg += ` [${e.code}]`;
    const where = cfg && cfg.file && typeof e.stack === 'string'
      ? e.stack.split('\n').find((l) => l.includes(cfg.file)) : null;
    if (where) msg += ` (${where.trim().replace(/^at /, 'at ')})`;
    return tail(msg, 1000);
  }
  return tail(String(e), 1000);
}

// ---------------------------------------------------------------------------------------------
// /proc helpers (children of the harness, diagnosis)
// ---------------------------------------------------------------------------------------------
function readProcStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const r = s.lastIndexOf(')');
    const f = s.slice(r + 2).split(' ');
    return { pid, comm: s.slice(s.indexOf('(') + 1, r), state: f[0], ppid: Number(f[1]), pgid: Number(f[2]), start: Number(f[19]) };
  } catch { return null; }
}
function allProcs() {
  const out = [];
  let names = [];
  try { names = fs.readdirSync('/proc'); } catch { return out; }
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    const st = readProcStat(Number(n));
    if (st) out.push(st);
  }
  return out;
}
function childrenOf(ppid, exclude = new Set()) {
  return allProcs().filter((p) => p.ppid === ppid && !exclude.has(p.pid)).sort((a, b) => a.start - b.start);
}
function descendantsOf(root, exclude = new Set()) {
  const procs = allProcs();
  const byParent = new Map();
  for (const p of procs) {
    if (!byParent.has(p.ppid)) byParent.set(p.ppid, []);
    byParent.get(p.ppid).push(p);
  }
  const out = [];
  const walk = (pid) => {
    for (const c of byParent.get(pid) || []) {
      if (exclude.has(c.pid)) continue;
      out.push(c);
      walk(c.pid);
    }
  };
  walk(root);
  return out;
}
// The hang proof (PROTOCOL.md 'hang'): a sample lists each process with its state and its threads' states, and
// the CPU time (utime + stime) of all of them; blocked = no thread R in either of two samples and no CPU time
// spent between them. Node's spawned processes share the harness's process group (unless detached), so the
// group sampled is the iteration's processes: the harness's descendants that were not there before the fork loop.
const CLK_TCK = 100; // USER_HZ: /proc reports times in 1/100 s on Linux
// The stricter rule of the C harness (PROTOCOL.md: "a harness may make blocked harder to reach"): per thread also
// its schedstat (run time in ns, times scheduled: a poller with short sleeps moves neither tick counter but is
// scheduled again and again), and a thread in a timed wait (x86_64 syscall with a timeout, from
// /proc/P/task/T/syscall; `~` in the proof) or in state D is not blocked before the last look.
function timedWait(sc) {
  if (!sc) return false;
  const f = sc.trim().split(/\s+/);
  if (f[0] === 'running' || !/^\d+$/.test(f[0])) return false;
  const nr = Number(f[0]);
  const arg = (k) => BigInt.asIntN(64, BigInt(orElse(f[k], '0')));
  switch (nr) {
    case 35: case 230: return true;                       // nanosleep, clock_nanosleep
    case 202: return arg(4) !== 0n;                        // futex(uaddr, op, val, timeout)
    case 7: return BigInt.asIntN(32, arg(3)) >= 0n;        // poll(fds, n, timeout_ms)
    case 232: case 281: return BigInt.asIntN(32, arg(4)) >= 0n; // epoll_wait/epoll_pwait(epfd, events, max, timeout_ms)
    case 441: case 271: return arg(nr === 441 ? 4 : 3) !== 0n;  // epoll_pwait2(.., timeout*), ppoll(fds, n, tsp, ..)
    case 23: case 270: return arg(5) !== 0n;              // select/pselect6(.., timeout)
    default: return false;
  }
}
function threadSample(pid, tid) {
  const base = `/proc/${pid}/task/${tid}`;
  let st;
  try { st = fs.readFileSync(`${base}/stat`, 'utf8'); } catch { return null; }
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  let runNs = 0, slices = 0;
  try { const ss = fs.readFileSync(`${base}/schedstat`, 'utf8').trim().split(/\s+/); runNs = Number(ss[0]) || 0; slices = Number(ss[2]) || 0; } catch {}
  let timed = false;
  try { timed = timedWait(fs.readFileSync(`${base}/syscall`, 'utf8')); } catch {}
  return { state: f[0], cpuMs: ((Number(f[11]) || 0) + (Number(f[12]) || 0)) * (1000 / CLK_TCK), runNs, slices, timed };
}
function procCpuAndThreads(pid) {
  let stat;
  try { stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return null; }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuMs = ((Number(f[11]) || 0) + (Number(f[12]) || 0)) * (1000 / CLK_TCK);
  const threads = [];
  let tids = [];
  try { tids = fs.readdirSync(`/proc/${pid}/task`).filter((t) => /^\d+$/.test(t)).map(Number).sort((a, b) => a - b); } catch {}
  let runNs = 0, slices = 0, waiting = false;
  for (const t of tids) {
    const th = threadSample(pid, t);
    if (!th) continue; // exited meanwhile
    threads.push(th.state + (th.timed ? '~' : ''));
    runNs += th.runNs; slices += th.slices;
    if (th.timed || th.state === 'D') waiting = true;
  }
  return { pid, state: f[0], cpuMs, threads, runNs, slices, waiting };
}
function sampleProcs(pids) {
  const procs = [];
  for (const pid of pids) { const p = procCpuAndThreads(pid); if (p) procs.push(p); }
  return {
    procs,
    cpuMs: procs.reduce((a, p) => a + p.cpuMs, 0),
    runNs: procs.reduce((a, p) => a + p.runNs, 0),
    slices: procs.reduce((a, p) => a + p.slices, 0),
    running: procs.some((p) => p.state === 'R' || p.threads.some((t) => t[0] === 'R')),
    waiting: procs.some((p) => p.waiting),
  };
}
// one proof line: `+2000 ms: cpu 12 ms; 4123 S [S S], 4130 Z`
function proofLine(offsetMs, smp, extra = '') {
  const ps = smp.procs.map((p) => `${p.pid} ${p.state}${p.threads.length > 1 || (p.threads.length === 1 && p.threads[0] !== p.state) ? ` [${p.threads.join(' ')}]` : ''}`);
  return `+${Math.round(offsetMs)} ms: cpu ${Math.round(smp.cpuMs)} ms; ${ps.length ? ps.join(', ') : 'no process'}${extra}`;
}
// the harness's main thread (the event loop): state and CPU time of task <pid>
function mainThreadSample() {
  return orElse(threadSample(process.pid, process.pid), { state: '?', cpuMs: 0, runNs: 0, slices: 0, timed: false });
}

function readProcText(p) {
  try { return fs.readFileSync(p, 'utf8').trim(); } catch (e) { return `(unreadable: ${e.code || e.message})`; }
}
function cmdline(pid) {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' '); } catch { return '?'; }
}
function diagnose(pid, gdb, task = null) {
  const base = task ? `/proc/${pid}/task/${task}` : `/proc/${pid}`;
  const d = {
    wchan: readProcText(`${base}/wchan`),
    syscall: readProcText(`${base}/syscall`),
    stack: tail(readProcText(`${base}/stack`), 4000),
    gdb: null,
  };
  if (gdb) {
    try {
      const r = spawnSync(gdb, ['-batch', '-nx', '-p', String(pid), '-ex', 'thread apply all bt'], {
        env: { PATH: '/usr/bin:/bin' }, timeout: 20000, killSignal: 'SIGKILL', encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024,
      });
      const txt = `${r.stdout || ''}${r.stderr || ''}${r.error ? `\n(gdb: ${r.error.message})` : ''}`;
      d.gdb = tail(txt, 8000);
    } catch (e) { d.gdb = `(gdb failed: ${e.message})`; }
  }
  return d;
}
function killTree(pid) {
  const victims = [{ pid }, ...descendantsOf(pid)];
  for (const v of victims) { try { process.kill(v.pid, 'SIGKILL'); } catch {} }
  return victims.length;
}

// ---------------------------------------------------------------------------------------------
// Result plumbing
// ---------------------------------------------------------------------------------------------
function libcInfo() {
  const info = { path: null, self_reported: null };
  try {
    for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const m = line.match(/\s(\/\S.*)$/);
      if (!m) continue;
      const base = path.basename(m[1]);
      if (/^(libc\.so\.6|libc-\d+\.\d+(?:\.\d+)?\.so|libc\.musl-.*\.so\.1|ld-musl-.*\.so\.1|libc\.so)$/.test(base)) { info.path = m[1]; break; }
    }
  } catch {}
  try {
    const report = process.report && process.report.getReport ? process.report.getReport() : null; // Node 12: experimental, may be absent
    const h = report && report.header;
    if (h && h.glibcVersionRuntime) info.self_reported = `glibc ${h.glibcVersionRuntime}`;
  } catch {}
  return info;
}
// every file-backed shared object in /proc/self/maps (.so, .so.N, a .node addon), deduplicated, in map order
function mappedObjects() {
  const out = [];
  const seen = new Set();
  try {
    for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const m = line.match(/\s(\/\S.*)$/);
      if (!m) continue;
      const f = m[1].replace(/ \(deleted\)$/, '');
      if (!/\.so(\.[\w.]+)?$|\.node$/.test(path.basename(f)) || seen.has(f)) continue;
      seen.add(f);
      out.push(f);
    }
  } catch {}
  return out;
}
function runtimeInfo() {
  return { name: 'node', version: process.versions.node, executable: process.execPath };
}
function writeResultFile(file, obj) {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(obj, null, 1));
  fs.renameSync(tmp, file);
}
function quantile(sorted, q) {
  if (!sorted.length) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return Math.round(sorted[idx] * 1000) / 1000;
}
function median(sorted) {
  if (!sorted.length) return null;
  const m = sorted.length >> 1;
  const v = sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
  return Math.round(v * 1000) / 1000;
}

// mulberry32: the seeded delay schedule
function mulberry32(a) {
  return function () {
    a |= 0; a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
async function sleepUs(us) {
  if (us <= 0) return;
  const end = nowNs() + BigInt(Math.round(us * 1000));
  if (us >= 2000) await sleep(Math.floor(us / 1000) - 1);
  while (nowNs() < end) { /* spin the remainder: setTimeout has 1 ms granularity */ }
}

function loadAddon(p) {
  if (!p) return { addon: null, error: 'no addon path in config (the build failed or was not requested)' };
  try { return { addon: require(p), error: null }; } catch (e) { return { addon: null, error: `cannot load ${p}: ${e.message}` }; }
}

// ---------------------------------------------------------------------------------------------
// Worker roles: loop, load, watchdog
// ---------------------------------------------------------------------------------------------
async function loopWorker() {
  const { cfg, sab, bsab, thread } = workerData;
  const sh = new Int32Array(sab);
  const big = new BigInt64Array(bsab);
  const { addon, error } = loadAddon(cfg.addon);
  installGlobals({ ...makeHelpers({ addon, addonError: error, isMain: false, thread, config: cfg }), ...pressureHelpers(sh, cfg) });
  let fn;
  try {
    runPrelude(cfg);
    fn = cfg.loop && cfg.loop.trim() ? compileBody(cfg, 'loop', 'i, thread') : null;
  } catch (e) {
    const lacks = missingFeature(e, 'prelude or loop');
    if (e && e.fmSkip) parentPort.postMessage({ type: 'skip', reason: e.fmSkip });
    else if (lacks) parentPort.postMessage({ type: 'skip', reason: lacks });
    else parentPort.postMessage({ type: 'error', message: `prelude raised in worker ${thread}: ${describeError(e, cfg)}` });
    return;
  }
  parentPort.postMessage({ type: 'ready', thread });
  if (!fn) return;
  // pressure counters around every iteration (PROTOCOL.md step 2): inside[t] = 1 before the body; inside[t] = 0,
  // iterations[t] += 1, last_done[t] = now after it. Threads beyond 64 run uncounted.
  const counted = thread < MAX_T;
  let i = 0;
  let lastYield = nowMs();
  try {
    while (Atomics.load(sh, S_STOP) === 0) {
      if (counted) Atomics.store(sh, S_INSIDE + thread, 1);
      await fn(i++, thread);
      if (counted) {
        Atomics.store(sh, S_INSIDE + thread, 0);
        Atomics.add(sh, S_ITERS + thread, 1);
        Atomics.store(big, B_LAST + thread, nowNs());
      }
      if ((i & 15) === 0) {
        const t = nowMs();
        if (t - lastYield > 5) { await yieldLoop(); lastYield = nowMs(); }
      }
    }
  } catch (e) {
    // a body that raises ends this thread; its first error is kept (pressure.threads[t].error)
    if (counted) Atomics.store(sh, S_INSIDE + thread, 0);
    Atomics.add(sh, S_LOOP_ERR, 1);
    parentPort.postMessage({ type: 'loop-error', thread, iteration: i - 1, message: describeError(e, cfg), lacks: missingFeature(e, 'loop') });
  }
}

// inside(): loop threads inside their body right now; iterations(): iterations finished by all loop threads so far
function pressureHelpers(sh, cfg) {
  const n = Math.min(MAX_T, Math.max(0, cfg.threads | 0));
  return {
    inside: () => { let k = 0; for (let t = 0; t < n; t++) k += Atomics.load(sh, S_INSIDE + t); return k; },
    iterations: () => { let k = 0; for (let t = 0; t < n; t++) k += Atomics.load(sh, S_ITERS + t); return k; },
  };
}

async function loadWorker() {
  const { opts, sab } = workerData;
  const sh = new Int32Array(sab);
  const dns = require('dns');
  const zlib = require('zlib');
  const crypto = require('crypto');
  const payload = Buffer.alloc(64 * 1024);
  for (let k = 0; k < payload.length; k++) payload[k] = (k * 2654435761) >>> 24;
  const files = ['/etc/hosts', '/etc/passwd', '/proc/self/status', process.execPath];
  let inflight = 0;
  const stopped = () => Atomics.load(sh, S_STOP) !== 0;
  const ops = {
    dns: (cb) => dns.lookup('localhost', { all: true }, cb),
    fs: (cb, n) => (n & 1 ? fs.stat(files[n % files.length], cb) : fs.readFile(files[n % 3], cb)),
    crypto: (cb) => crypto.pbkdf2('forkmatrix', 'salt', orElse(opts.pbkdf2_iterations, 20000), 32, 'sha256', cb),
    zlib: (cb) => zlib.gzip(payload, cb),
  };
  const firstDone = {};
  const start = (kind, idx) => {
    let n = 0;
    const go = () => {
      if (stopped()) { if (--inflight === 0) finish(); return; }
      ops[kind]((err) => {
        Atomics.add(sh, S_LOAD + idx, 1);
        if (err) Atomics.add(sh, S_LOAD_ERR, 1);
        if (!firstDone[kind]) { firstDone[kind] = true; checkStarted(); }
        go();
      }, n++);
    };
    inflight++;
    go();
  };
  const wanted = LOAD_KINDS.filter((k) => (opts[k] | 0) > 0);
  let announced = false;
  const checkStarted = () => {
    if (!announced && wanted.every((k) => firstDone[k])) { announced = true; parentPort.postMessage({ type: 'load-started' }); }
  };
  const finish = () => { Atomics.store(sh, S_LOAD_RUNNING, 2); parentPort.postMessage({ type: 'load-stopped' }); };
  Atomics.store(sh, S_LOAD_RUNNING, 1);
  LOAD_KINDS.forEach((kind, idx) => { for (let j = 0; j < (opts[kind] | 0); j++) start(kind, idx); });
  if (!wanted.length) { announced = true; finish(); parentPort.postMessage({ type: 'load-started' }); }
}

function hangProofConfig(cfg) {
  const h = cfg.hang_proof || {};
  const num = (v, d) => (Number.isFinite(Number(v)) && Number(v) > 0 ? Number(v) : d);
  return { sample_ms: num(h.sample_ms, 100), early_min_ms: num(h.early_min_ms, 200), early_factor: num(h.early_factor, 20), hard_factor: num(h.hard_factor, 5) };
}

function watchdogWorker() {
  const { cfg, sab, bsab, port } = workerData;
  const sh = new Int32Array(sab);
  const big = new BigInt64Array(bsab);
  const timeoutMs = Math.max(1, cfg.timeout_ms | 0);
  const hp = hangProofConfig(cfg);
  const hardMs = hp.hard_factor * timeoutMs;
  const gdb = cfg.diag && cfg.diag.gdb ? cfg.diag.gdb : null;
  const diagMax = cfg.diag && Number.isFinite(cfg.diag.max) ? cfg.diag.max : 1;
  const stuckMs = Math.max(5000, 2 * timeoutMs);
  const mirror = { first_failures: [], libc: null, runtime: null, threads_started: 0, child_ms: { median: null, p99: null }, baseline: [] };
  let baseline = new Set();
  let diagDone = 0;
  const pollMirror = () => {
    let m;
    while ((m = receiveMessageOnPort(port))) {
      Object.assign(mirror, m.message);
      if (m.message.baseline) baseline = new Set(m.message.baseline);
    }
  };
  const waitMs = (ms) => Atomics.wait(sh, S_TICK, 0, ms);
  const selfCmdline = cmdline(process.pid);
  // the processes of the running iteration: the harness's descendants in its process group (a detached spawn, e.g.
  // by a loop thread, is a group of its own), minus those there before the fork loop
  const ownStat = readProcStat(process.pid);
  const ownPgid = ownStat ? ownStat.pgid : null;
  const iterProcs = () => descendantsOf(process.pid, baseline).filter((p) => ownPgid == null || p.pgid === ownPgid);
  const ageMs = () => Number(nowNs() - big[B_ITER_START]) / 1e6;

  // Two samples sample_ms apart (watching for the iteration to settle meanwhile). Returns null when it settled.
  const prove = (owner, last = false) => {
    const take = () => {
      // zombies have exited: no evidence of a block (libuv reaps them when its loop runs; nodejs/node#46569 never)
      const pids = iterProcs().filter((p) => p.state !== 'Z').map((p) => p.pid);
      const smp = sampleProcs(pids);
      const main = mainThreadSample();
      const zombies = iterProcs().filter((p) => p.state === 'Z').map((p) => `${p.pid} Z`);
      const extra = (zombies.length ? `; exited, unreaped: ${zombies.slice(0, 8).join(', ')}` : '') + (pids.length ? `; harness main thread ${main.state}`
        : `; no live process from this iteration: it waits in the harness's event loop (main thread ${main.state}${main.timed ? '~' : ''}, cpu ${Math.round(main.cpuMs)} ms)`);
      return { at: ageMs(), pids, smp, main, line: proofLine(ageMs(), smp, extra) };
    };
    const s1 = take();
    const end = nowMs() + hp.sample_ms;
    while (nowMs() < end) {
      waitMs(Math.min(5, Math.max(1, end - nowMs())));
      if (Atomics.load(sh, S_OWNER) !== owner) return null;
    }
    const s2 = take();
    if (Atomics.load(sh, S_OWNER) !== owner) return null;
    let blocked;
    if (!s1.pids.length && !s2.pids.length) {
      // nothing of the iteration's is alive: the event loop waits for something that does not come (or spins)
      const m1 = s1.main, m2 = s2.main;
      blocked = m1.state !== 'R' && m2.state !== 'R' && m2.cpuMs <= m1.cpuMs && m2.runNs === m1.runNs && m2.slices === m1.slices
        && (last || (!m2.timed && m2.state !== 'D'));
    } else {
      const same = s1.pids.length === s2.pids.length && s1.pids.every((p, k) => p === s2.pids[k]);
      const a = s1.smp, b = s2.smp;
      blocked = same && !a.running && !b.running && b.cpuMs <= a.cpuMs && b.runNs === a.runNs && b.slices === a.slices
        && (last || !b.waiting);
    }
    return { blocked, lines: [s1.line, s2.line], eventLoop: !s2.pids.length, pids: s2.pids };
  };

  const handleHang = (iter, proof) => {
    const kids = childrenOf(process.pid, baseline);
    const parts = kids.slice(0, 4).map((k) => {
      const cl = cmdline(k.pid);
      const preExec = cl === selfCmdline ? ' (pre-exec: still a copy of the harness)' : '';
      return `${k.pid} [${k.comm}, state ${k.state}] ${tail(cl, 160)}${preExec}`;
    });
    const how = proof.blocked === 'yes' ? `proved blocked at +${Math.round(proof.at)} ms` : `still running at ${hp.hard_factor} x the timeout (${Math.round(proof.at)} ms)`;
    let message = `iteration did not settle (${how}); `
      + (kids.length ? `live children: ${parts.join('; ')}${kids.length > 4 ? ` (+${kids.length - 4} more)` : ''}`
        : 'no live child process: the iteration waits in the harness\'s event loop');
    const diag = { proof: proof.lines.join('\n'), blocked: proof.blocked };
    if (kids.length) {
      diag.children = descendantsOf(process.pid, baseline).slice(0, 20)
        .map((p) => `${p.pid} ${p.state} ${p.comm} ${readProcText(`/proc/${p.pid}/wchan`)}`).join('\n');
    }
    if (diagDone < diagMax) {
      diagDone++;
      // the oldest live process that is not a zombie; none: the harness itself (its main thread's
      // wchan/syscall/stack, gdb of all its threads)
      const target = kids.find((k) => k.state !== 'Z') || descendantsOf(process.pid, baseline).find((k) => k.state !== 'Z');
      Object.assign(diag, target ? diagnose(target.pid, gdb) : diagnose(process.pid, gdb, process.pid));
    }
    let killed = 0;
    for (const k of kids) killed += killTree(k.pid);
    if (killed) message += `; SIGKILLed ${killed} process(es)`;
    return { message, diag, harnessDiagnosed: !kids.length && diag.wchan != null };
  };

  // the pressure so far, from shared memory (the main thread that would compute it is blocked)
  const emergencyPressure = () => {
    const start = mirror.itersAtStart;
    if (!Array.isArray(start)) return undefined;
    const endNs = nowNs();
    return {
      window_ms: Number(endNs - big[B_LOOP_START]) / 1e6,
      threads: start.map((n, t) => {
        const last = Atomics.load(big, B_LAST + t);
        return { iterations: Atomics.load(sh, S_ITERS + t) - n, last_ms: last > 0n ? Math.max(0, Number(endNs - last) / 1e6) : null, error: null };
      }),
      forks_inside: Atomics.load(sh, S_FORKS_INSIDE),
      forks_sampled: Atomics.load(sh, S_FORKS),
    };
  };

  const emergency = (iter, hang, startLoopNs) => {
    // The main thread did not come back after its children were killed: it is blocked in native code.
    pollMirror();
    const d = hang.harnessDiagnosed ? hang.diag : diagnose(process.pid, gdb, process.pid);
    const failure = {
      kind: 'hang', iteration: iter, elapsed_ms: Number(nowNs() - startLoopNs) / 1e6,
      message: `${hang.message}; the main thread stayed blocked ${stuckMs} ms after that: harness abandoned`,
      signal: null, status: null, diag: hang.diag,
    };
    if (!hang.harnessDiagnosed) failure.harness_diag = d;
    const ff = mirror.first_failures.slice(0, 4);
    ff.push(failure);
    const res = {
      forks: Atomics.load(sh, S_FORKS), ok: Atomics.load(sh, S_OK), hang: Atomics.load(sh, S_HANG) + 1,
      crash: Atomics.load(sh, S_CRASH), wrong: Atomics.load(sh, S_WRONG),
      elapsed_ms: Number(nowNs() - startLoopNs) / 1e6, child_ms: mirror.child_ms, first_failures: ff,
      libc: mirror.libc, runtime: mirror.runtime, threads_started: mirror.threads_started,
      pressure: emergencyPressure(), mapped: orElse(mirror.mapped, undefined), slow: orElse(mirror.slow, 0),
      skipped: null, error: null,
    };
    if (cfg.env_check) res.environ = { ...process.env };
    try { writeResultFile(cfg.result, res); } catch (e) { process.stderr.write(`watchdog: cannot write result: ${e.message}\n`); }
    process.stderr.write(`watchdog: main thread blocked, result written, exiting\n`);
    const { addon } = loadAddon(cfg.addon);
    if (addon) addon.exit(0);
    process.kill(process.pid, 'SIGKILL');
  };

  let cur = null; // the running iteration: { owner, earlyDone, nextAt, lines }
  for (;;) {
    waitMs(4);
    if (Atomics.load(sh, S_STOP) === 2) return;
    pollMirror();
    const owner = Atomics.load(sh, S_OWNER);
    if (owner <= 0) { cur = null; continue; }
    if (!cur || cur.owner !== owner) cur = { owner, earlyDone: false, nextAt: timeoutMs, lines: [] };
    const age = ageMs();
    let verdict = null;
    // 1. early look: once 5 iterations were ok, an iteration with live processes still running at
    //    max(early_min_ms, early_factor x median) is sampled; proved blocked, it is a hang now
    if (!cur.earlyDone) {
      const med = Atomics.load(sh, S_MEDIAN_US) / 1000;
      const earlyAt = Math.max(hp.early_min_ms, hp.early_factor * med);
      if (med <= 0 || earlyAt >= timeoutMs) cur.earlyDone = true;
      else if (age >= earlyAt) {
        cur.earlyDone = true;
        if (iterProcs().length) {
          const r = prove(owner);
          if (!r) continue;
          if (r.blocked) verdict = { blocked: 'yes', lines: r.lines, at: age };
          else cur.lines.push(...r.lines);
        }
      }
    }
    // 2./3. at timeout_ms: sample; not blocked = slow: sample again every max(sample_ms, timeout/4) until
    //    blocked (a hang) or settled, at most until hard_factor x timeout (then a hang that says `running`)
    if (!verdict && age >= cur.nextAt) {
      const r = prove(owner, age >= hardMs);
      if (!r) continue;
      cur.lines.push(...r.lines);
      if (r.blocked) verdict = { blocked: 'yes', lines: cur.lines.slice(-6), at: age };
      else if (age >= hardMs) verdict = { blocked: 'running', lines: cur.lines.slice(-6), at: age };
      else cur.nextAt = Math.min(hardMs, ageMs() + Math.max(hp.sample_ms, timeoutMs / 4));
    }
    if (!verdict) continue;
    if (Atomics.compareExchange(sh, S_OWNER, owner, -owner) !== owner) continue; // settled meanwhile
    const iter = owner - 1;
    cur = null;
    const hang = handleHang(iter, verdict);
    parentPort.postMessage({ type: 'hang', iter, ...hang });
    const t0 = nowMs();
    while (Atomics.load(sh, S_OWNER) === -owner && nowMs() - t0 < stuckMs) {
      waitMs(10);
      if (nowMs() - t0 > 200) for (const k of childrenOf(process.pid, baseline)) killTree(k.pid); // late forks of the hung iteration
    }
    if (Atomics.load(sh, S_OWNER) === -owner) emergency(iter, hang, big[B_LOOP_START]);
  }
}

// ---------------------------------------------------------------------------------------------
// Main thread
// ---------------------------------------------------------------------------------------------
async function main() {
  const cfgPath = process.argv[2];
  if (!cfgPath) { process.stderr.write('usage: node harness.mjs config.json\n'); process.exit(2); }
  const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  const result = {
    forks: 0, ok: 0, hang: 0, crash: 0, wrong: 0, elapsed_ms: 0,
    child_ms: { median: null, p99: null }, first_failures: [],
    libc: libcInfo(), runtime: runtimeInfo(), threads_started: 0, slow: 0, slow_examples: [], skipped: null, error: null,
  };
  if (cfg.env_check) result.environ = { ...process.env };

  const sab = new SharedArrayBuffer(S_LEN * 4);
  const bsab = new SharedArrayBuffer(B_LEN * 8);
  const sh = new Int32Array(sab);
  const big = new BigInt64Array(bsab);
  const workers = [];
  let loadWorkerRef = null;
  const loopErrors = [];
  const { addon, error: addonError } = loadAddon(cfg.addon);
  let workerEnv = undefined;

  const finish = async () => {
    Atomics.store(sh, S_STOP, 1);
    // kill whatever the abandoned iterations left running
    for (const k of childrenOf(process.pid)) killTree(k.pid);
    if (!addon && loadWorkerRef && Atomics.load(sh, S_LOAD_RUNNING) === 1) {
      // process.exit() joins the threadpool: let the load's in-flight requests drain first
      const t0 = nowMs();
      while (Atomics.load(sh, S_LOAD_RUNNING) === 1 && nowMs() - t0 < 500) await sleep(5);
    }
    try {
      const it = [];
      for (let t = 0; t < Math.min(64, cfg.threads | 0); t++) it.push(Atomics.load(sh, S_ITERS + t));
      const load = LOAD_KINDS.map((k, j) => `${k} ${Atomics.load(sh, S_LOAD + j)}`).join(', ');
      process.stderr.write(`harness: ${cfg.case}: loop iterations per thread [${it.join(', ')}]; `
        + `load ops completed: ${load}, errors ${Atomics.load(sh, S_LOAD_ERR)}\n`);
    } catch {}
    writeResultFile(cfg.result, result);
    Atomics.store(sh, S_STOP, 2);
    // _exit when we can: process.exit() joins the libuv threadpool (uv_library_shutdown), which a
    // stuck request would turn into a hang of the harness itself.
    if (addon) addon.exit(0);
    process.exit(0);
  };

  // ---- helpers visible to main-thread snippets
  const helpers = makeHelpers({ addon, addonError, isMain: true, thread: -1, config: cfg });
  helpers.saturate = (opts = {}) => {
    if (loadWorkerRef) throw new Error('saturate() already called');
    const o = { dns: 0, fs: 0, crypto: 0, zlib: 0, ...opts };
    const w = new Worker(HARNESS_URL, { workerData: { role: 'load', opts: o, sab } });
    loadWorkerRef = w;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`saturate(): not every kind of request completed within 30 s (${
        JSON.stringify(helpers.fm.load())})`)), 30000);
      w.on('message', (m) => {
        if (m.type === 'load-started') { clearTimeout(t); resolve({ stop: () => Atomics.store(sh, S_STOP, 1) }); }
      });
      w.once('error', (e) => { clearTimeout(t); reject(new Error(`load worker died: ${e.message}`)); });
    });
  };
  helpers.shareEnv = () => { workerEnv = SHARE_ENV; };
  helpers.workerOptions = (o) => { if (o && 'env' in o) workerEnv = o.env; };
  helpers.fm.load = () => Object.fromEntries(LOAD_KINDS.map((k, j) => [k, Atomics.load(sh, S_LOAD + j)]));
  installGlobals({ ...helpers, ...pressureHelpers(sh, cfg) });

  // uncaught errors from snippet code (e.g. an 'error' event nobody listens to) fail the running iteration
  let strayHandler = null;
  const onStray = (e) => {
    if (strayHandler) strayHandler(e);
    else process.stderr.write(`harness: uncaught outside an iteration: ${describeError(e, cfg)}\n`);
  };
  process.on('uncaughtException', onStray);
  process.on('unhandledRejection', onStray);

  // ---- 1. prelude + setup
  let phase = 'prelude';
  try {
    runPrelude(cfg);
    phase = 'setup';
    if (cfg.setup && cfg.setup.trim()) {
      let t;
      const limit = new Promise((_, rej) => { t = setTimeout(() => rej(new Error('setup did not finish within 60 s')), 60000); });
      try { await Promise.race([compileBody(cfg, 'setup', '')(), limit]); } finally { clearTimeout(t); }
    }
  } catch (e) {
    if (e && e.fmSkip) result.skipped = e.fmSkip;
    else if (missingFeature(e, phase)) result.skipped = missingFeature(e, phase);
    else result.error = `${phase} raised: ${describeError(e, cfg)}`;
    return finish();
  }
  let childFn, beforeFn = null, preFn = null;
  try {
    childFn = compileBody(cfg, 'child', 'i');
    if (cfg.before_fork && cfg.before_fork.trim()) beforeFn = compileBody(cfg, 'before_fork', 'i');
    if (cfg.precondition && cfg.precondition.trim()) preFn = compileBody(cfg, 'precondition', '');
  } catch (e) {
    if (missingFeature(e, 'snippets')) { result.skipped = missingFeature(e, 'snippets'); return finish(); }
    result.error = `snippet does not compile: ${describeError(e, cfg)}`;
    return finish();
  }

  // ---- watchdog
  const mirror = new MessageChannel();
  const hangWaiters = new Map();
  const hangMessages = new Map();
  const watchdog = new Worker(HARNESS_URL, {
    workerData: { role: 'watchdog', cfg, sab, bsab, port: mirror.port2 }, transferList: [mirror.port2],
  });
  watchdog.on('message', (m) => {
    if (m.type !== 'hang') return;
    const w = hangWaiters.get(m.iter);
    if (w) { hangWaiters.delete(m.iter); w(m); } else hangMessages.set(m.iter, m);
  });
  let watchdogDead = null;
  watchdog.on('error', (e) => { watchdogDead = e; process.stderr.write(`harness: watchdog died: ${e.stack}\n`); });
  watchdog.unref();
  const hangMessage = (iter) => {
    if (hangMessages.has(iter)) { const m = hangMessages.get(iter); hangMessages.delete(iter); return Promise.resolve(m); }
    return new Promise((r) => hangWaiters.set(iter, r));
  };
  const sendMirror = (extra = {}) => mirror.port1.postMessage({
    first_failures: result.first_failures, libc: result.libc, runtime: result.runtime,
    threads_started: result.threads_started, child_ms: result.child_ms, slow: result.slow, mapped: result.mapped, ...extra,
  });

  // ---- 2. threads
  const nThreads = Math.max(0, cfg.threads | 0);
  const readyP = [];
  let startError = null;
  let startSkip = null;
  for (let t = 0; t < nThreads; t++) {
    const opts = { workerData: { role: 'loop', cfg, sab, bsab, thread: t } };
    if (workerEnv !== undefined) opts.env = workerEnv;
    const w = new Worker(HARNESS_URL, opts);
    workers.push(w);
    readyP.push(new Promise((resolve) => {
      let settled = false;
      w.on('message', (m) => {
        if (m.type === 'ready' && !settled) { settled = true; result.threads_started++; resolve(); }
        else if (m.type === 'error' && !settled) { settled = true; startError = startError || m.message; resolve(); }
        else if (m.type === 'skip' && !settled) { settled = true; startSkip = startSkip || m.reason; resolve(); }
        else if (m.type === 'loop-error') loopErrors.push(m);
      });
      w.on('error', (e) => {
        const msg = `worker ${t} died: ${describeError(e, cfg)}`;
        if (!settled) { settled = true; startError = startError || msg; resolve(); } else loopErrors.push({ thread: t, message: msg });
      });
      w.on('exit', () => { if (!settled) { settled = true; startError = startError || `worker ${t} exited during start`; resolve(); } });
    }));
  }
  await Promise.race([Promise.all(readyP), sleep(20000)]);
  if (startSkip) { result.skipped = startSkip; return finish(); }
  if (startError) { result.error = startError; return finish(); }
  if (result.threads_started < nThreads) { result.error = `only ${result.threads_started}/${nThreads} worker threads started within 20 s`; return finish(); }
  if (cfg.warmup_ms > 0) await sleep(cfg.warmup_ms);

  // ---- precondition (once, threads running, before the first fork), then what is mapped
  if (preFn) {
    let failed = null;
    try {
      const v = await preFn();
      if (v === false) failed = 'returned false';
    } catch (e) {
      failed = e && e.fmSkip ? `skip() called in precondition: ${e.fmSkip}` : describeError(e, cfg);
    }
    if (failed) {
      result.mapped = mappedObjects();
      result.error = `precondition failed: ${failed}`;
      return finish();
    }
  }
  result.mapped = mappedObjects();
  // processes alive now (started by setup, e.g. cluster workers) are not any iteration's
  const baseline = descendantsOf(process.pid).map((p) => p.pid);
  sendMirror({ baseline });
  const nT = Math.min(MAX_T, nThreads);
  const itersAtStart = [];
  for (let t = 0; t < nT; t++) itersAtStart.push(Atomics.load(sh, S_ITERS + t));
  sendMirror({ itersAtStart });
  let forksInside = 0;

  // ---- 3. iterations
  const rng = mulberry32((cfg.seed >>> 0) || 0);
  const maxForks = Math.max(1, cfg.forks | 0);
  const maxMs = Math.max(0, Number(cfg.seconds) || 0) * 1000;
  const maxDelay = Math.max(0, cfg.max_delay_us | 0);
  const timeoutMs = Math.max(1, cfg.timeout_ms | 0);
  const hp = hangProofConfig(cfg);
  const expectRe = cfg.expect_output != null ? new RegExp(cfg.expect_output) : null;
  const lat = [];
  const loopStart = nowNs();
  big[B_LOOP_START] = loopStart;
  const elapsed = () => Number(nowNs() - loopStart) / 1e6;

  const record = (f) => {
    result[f.kind]++;
    Atomics.add(sh, f.kind === 'hang' ? S_HANG : f.kind === 'crash' ? S_CRASH : S_WRONG, 1);
    if (result.first_failures.length < 5) {
      result.first_failures.push(f);
      sendMirror();
    }
  };

  // a case this Node cannot run (missingFeature) is a skip: nothing it counted is a verdict
  let lacksInChild = null;
  const notHere = (reason) => {
    Object.assign(result, { forks: 0, ok: 0, hang: 0, crash: 0, wrong: 0, first_failures: [], skipped: reason, error: null });
    return finish();
  };
  for (let i = 0; i < maxForks && (i === 0 || elapsed() < maxMs); i++) {
    if (loopErrors.length) break;
    await sleepUs(Math.floor(rng() * (maxDelay + 1)));
    if (beforeFn) {
      try { await beforeFn(i); } catch (e) { result.error = `before_fork raised at iteration ${i}: ${describeError(e, cfg)}`; break; }
    }
    for (let t = 0; t < nT; t++) if (Atomics.load(sh, S_INSIDE + t)) { forksInside++; Atomics.store(sh, S_FORKS_INSIDE, forksInside); break; }
    result.forks++;
    Atomics.store(sh, S_FORKS, result.forks);
    let strayReject;
    const stray = new Promise((_, rej) => { strayReject = rej; });
    strayHandler = (e) => strayReject(e);
    const t0 = nowNs();
    big[B_ITER_START] = t0;
    Atomics.store(sh, S_OWNER, i + 1);
    const iterP = Promise.race([childFn(i), stray]).then((v) => ({ v }), (e) => ({ e }));
    const hangP = hangMessage(i).then((m) => ({ hang: m }));
    let backstopTimer;
    const backstop = new Promise((r) => { backstopTimer = setTimeout(() => r({ backstop: true }), hp.hard_factor * timeoutMs + 30000); });
    const out = await Promise.race([iterP, hangP, backstop]);
    clearTimeout(backstopTimer);
    const t1 = nowNs();
    const at = Number(t0 - loopStart) / 1e6;
    strayHandler = null;

    let hang = null;
    if (out.hang) {
      hang = out.hang;
      // the watchdog killed the children: give the iteration a moment to settle, then abandon it
      await Promise.race([iterP, sleep(Math.min(2000, timeoutMs))]);
    } else if (out.backstop) {
      if (Atomics.compareExchange(sh, S_OWNER, i + 1, -(i + 1)) === i + 1) {
        hang = { message: `iteration did not settle within ${hp.hard_factor * timeoutMs + 30000} ms and the watchdog did not answer${watchdogDead ? ` (watchdog died: ${watchdogDead.message})` : ''}`, diag: { proof: '', blocked: 'running' } };
      } else {
        hang = await hangP.then((m) => m.hang);
      }
    } else if (Atomics.compareExchange(sh, S_OWNER, i + 1, 0) !== i + 1) {
      // settled, but the watchdog had already claimed it (and killed its children): a hang
      hang = (await hangP).hang;
    }
    const iterMs = Number(t1 - t0) / 1e6;
    if (!hang && iterMs >= timeoutMs) {
      // alive at the timeout, not proved blocked, then settled: slow, judged by its result below
      result.slow++;
      if (result.slow_examples.length < 5) result.slow_examples.push({ iteration: i, ms: Math.round(iterMs) });
    }
    if (hang) {
      hangWaiters.delete(i);
      record({ kind: 'hang', iteration: i, elapsed_ms: at, message: hang.message, signal: null, status: null, diag: orElse(hang.diag, null) });
      Atomics.store(sh, S_OWNER, 0);
    } else if ('e' in out) {
      hangWaiters.delete(i);
      const e = out.e;
      if (missingFeature(e, 'child')) {
        lacksInChild = missingFeature(e, 'child');
        break;
      } else if (e && e.fmSkip) {
        record({ kind: 'wrong', iteration: i, elapsed_ms: at, message: `skip() called in child: ${e.fmSkip}`, signal: null, status: null });
      } else if (e && e.fmCrash) {
        record({ kind: 'crash', iteration: i, elapsed_ms: at, message: e.message, signal: e.signal, signame: e.signame, status: null });
      } else {
        const status = e && Number.isInteger(e.status) ? e.status : e && Number.isInteger(e.code) ? e.code : null;
        record({ kind: 'wrong', iteration: i, elapsed_ms: at, message: describeError(e, cfg), signal: null, status });
      }
    } else {
      hangWaiters.delete(i);
      const v = out.v;
      const output = typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : '';
      if (expectRe && !expectRe.test(output)) {
        record({ kind: 'wrong', iteration: i, elapsed_ms: at, message: tail(`output did not match /${cfg.expect_output}/: ${output}`), signal: null, status: 0 });
      } else {
        result.ok++;
        Atomics.store(sh, S_OK, result.ok);
        lat.push(iterMs);
        if (lat.length >= 5 && (lat.length <= 64 || (lat.length & 15) === 0)) {
          const m = median(lat.slice().sort((a, b) => a - b));
          Atomics.store(sh, S_MEDIAN_US, Math.max(1, Math.round(m * 1000)));
        }
      }
    }
    if (cfg.fail_fast && result.ok < result.forks) break;
    if ((i & 7) === 7) {
      const s = lat.slice().sort((a, b) => a - b);
      result.child_ms = { median: median(s), p99: quantile(s, 0.99) };
      if (result.first_failures.length) sendMirror();
    }
    await yieldLoop();
  }
  if (lacksInChild) return notHere(lacksInChild);
  result.elapsed_ms = Math.round(elapsed() * 1000) / 1000;
  const endNs = nowNs();
  result.pressure = {
    window_ms: result.elapsed_ms,
    threads: Array.from({ length: nT }, (_, t) => {
      const last = Atomics.load(big, B_LAST + t);
      const err = loopErrors.find((le) => le.thread === t);
      return {
        iterations: Atomics.load(sh, S_ITERS + t) - itersAtStart[t],
        last_ms: last > 0n ? Math.max(0, Math.round(Number(endNs - last) / 1e3) / 1e3) : null,
        error: err ? err.message : null,
      };
    }),
    forks_inside: forksInside,
    forks_sampled: result.forks,
  };
  const s = lat.sort((a, b) => a - b);
  result.child_ms = { median: median(s), p99: quantile(s, 0.99) };
  if (loopErrors.length && loopErrors[0].lacks) return notHere(loopErrors[0].lacks);
  if (loopErrors.length) {
    const le = loopErrors[0];
    result.error = `loop raised in worker ${le.thread}${le.iteration != null ? ` at iteration ${le.iteration}` : ''}: ${le.message}`;
  }
  return finish();
}

// ---------------------------------------------------------------------------------------------
if (isMainThread) {
  main().catch((e) => {
    // a harness bug: still try to produce a result
    try {
      const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
      writeResultFile(cfg.result, {
        forks: 0, ok: 0, hang: 0, crash: 0, wrong: 0, elapsed_ms: 0, child_ms: { median: null, p99: null },
        first_failures: [], libc: libcInfo(), runtime: runtimeInfo(), threads_started: 0, skipped: null,
        error: `harness failed: ${e && e.stack ? e.stack : e}`,
      });
      process.exit(0);
    } catch (e2) {
      process.stderr.write(`harness failed: ${e && e.stack ? e.stack : e}\n${e2}\n`);
      process.exit(1);
    }
  });
} else if (workerData && workerData.role === 'loop') {
  loopWorker().catch((e) => parentPort.postMessage({ type: 'error', message: `worker failed: ${e && e.stack}` }));
} else if (workerData && workerData.role === 'load') {
  loadWorker().catch((e) => { throw e; });
} else if (workerData && workerData.role === 'watchdog') {
  watchdogWorker();
}
