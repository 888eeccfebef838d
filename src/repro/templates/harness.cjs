
// ---- the harness: what forkmatrix's Node harness (runners/node/harness.mjs) does, without its bookkeeping ----
// `threads` worker_threads (this same file, role "loop") run the loop; a load worker (role "load") keeps the libuv
// threadpool busy when the setup calls saturate(); the main thread runs the child snippet once per iteration; a
// watchdog worker (role "watchdog") owns the timeout, because the main thread may be blocked inside uv_spawn or
// spawnSync: an iteration still running at the timeout whose processes are blocked (no thread running, no CPU time
// used in 100 ms), or any iteration still running at 5 x the timeout, is a hang and its processes are SIGKILLed.
const { Worker, isMainThread, workerData, parentPort, SHARE_ENV } = require('node:worker_threads');
const fs = require('node:fs');
const os = require('node:os');
const ROLE = isMainThread ? 'main' : workerData.role;
const S_STOP = 0, S_OWNER = 1, S_INSIDE = 2, S_ITERS = 70, S_LOAD = 140, S_LEN = 150; // Int32 slots
const SAB = isMainThread ? new SharedArrayBuffer(S_LEN * 4) : workerData.sab;
const SH = new Int32Array(SAB);
const T0 = isMainThread ? new Float64Array(new SharedArrayBuffer(8)) : new Float64Array(workerData.t0); // iteration start
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (s) => fs.writeSync(1, s);

// ---- helpers the snippets call (runners/node/README.md)
function inside() { let k = 0; for (let t = 0; t < Math.min(FM_THREADS, 64); t++) k += Atomics.load(SH, S_INSIDE + t); return k; }
function iterations() { let k = 0; for (let t = 0; t < Math.min(FM_THREADS, 64); t++) k += Atomics.load(SH, S_ITERS + t); return k; }
class SkipSignal extends Error { constructor(r) { super(String(r)); this.fmSkip = String(r); } }
function skip(reason) { throw new SkipSignal(reason); }
function signalName(n) { for (const [k, v] of Object.entries(os.constants.signals)) if (v === n) return k; return `SIG${n}`; }
function crash(signal, output) {
  const num = typeof signal === 'number' ? signal : os.constants.signals[signal];
  const e = new Error(`killed by ${typeof signal === 'number' ? signalName(signal) : signal} (${num})${output ? ': ' + String(output).slice(-900) : ''}`);
  e.fmCrash = true;
  return e;
}
function exited(child, { max = 65536 } = {}) {
  return new Promise((resolve, reject) => {
    const out = { stdout: '', stderr: '' };
    for (const k of ['stdout', 'stderr']) if (child[k]) { child[k].setEncoding('utf8'); child[k].on('data', (d) => { if (out[k].length < max) out[k] += d; }); }
    child.once('error', reject);
    child.once('close', (status, signal) => resolve({ status, signal, stdout: out.stdout, stderr: out.stderr, pid: child.pid }));
  });
}
function expectExit(res, status = 0, stdoutRe = null) {
  if (res.error) throw res.error;
  const output = `${res.stdout == null ? '' : res.stdout}${res.stderr == null ? '' : res.stderr}`;
  if (res.signal) throw crash(res.signal, output);
  if (res.status !== status) throw new Error(`exit status ${res.status}, expected ${status}${output ? ': ' + output.slice(-300) : ''}`);
  if (stdoutRe) {
    const re = stdoutRe instanceof RegExp ? stdoutRe : new RegExp(stdoutRe);
    if (!re.test(String(res.stdout == null ? '' : res.stdout))) throw new Error(`stdout ${JSON.stringify(String(res.stdout).slice(-300))} does not match ${re}`);
  }
  return res.stdout;
}
let addon = null, addonError = 'this reproducer was written without the raw-fork addon';
if (FM_ADDON) {
  try { addon = require(FM_ADDON); addonError = null; } catch (e) { addonError = `cannot load ${FM_ADDON}: ${e.message} (build it: see the header)`; }
}
function requireAddon() { if (!addon) skip(`raw-fork addon not available: ${addonError}`); return addon; }
async function rawWait(handle, { max = 4096 } = {}) {
  const a = requireAddon();
  const chunks = [];
  let size = 0, w = null;
  const drain = () => { for (;;) { if (handle.fd < 0) return; const b = a.read(handle.fd); if (!b || b.length === 0) return; if (size < max) { chunks.push(b); size += b.length; } } };
  const t0 = nowMs();
  for (;;) { drain(); w = a.waitpid(handle.pid); if (w) break; if (nowMs() - t0 < 2) await new Promise((r) => setImmediate(r)); else await sleep(1); }
  drain();
  if (handle.fd >= 0) { try { a.close(handle.fd); } catch {} handle.fd = -1; }
  const output = Buffer.concat(chunks).subarray(0, max).toString('utf8');
  return { pid: handle.pid, status: w.status, signal: w.signal, output, stdout: output, stderr: '' };
}
let workerEnv;
function shareEnv() { workerEnv = SHARE_ENV; }
function workerOptions(o) { if (o && 'env' in o) workerEnv = o.env; }
let loadWorker = null;
function saturate(opts = {}) {
  loadWorker = new Worker(__filename, { workerData: { role: 'load', sab: SAB, t0: T0.buffer, opts: { dns: 0, fs: 0, crypto: 0, zlib: 0, ...opts } } });
  return new Promise((resolve, reject) => {
    loadWorker.on('message', (m) => m === 'load-started' && resolve({ stop: () => Atomics.store(SH, S_STOP, 1) }));
    loadWorker.once('error', reject);
  });
}
const fm = { isMain: isMainThread, thread: ROLE === 'loop' ? workerData.thread : -1, addon, addonError, load: () => ({}) };

// ---- the process tree (for the watchdog)
function stat(pid) {
  try { const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop().split(' '); return { ppid: +f[1], pgrp: +f[2], cpu: +f[11] + +f[12], state: f[0] }; } catch { return null; }
}
function descendants(root, exclude) {
  const kids = new Map();
  for (const p of fs.readdirSync('/proc')) { if (!/^\d+$/.test(p)) continue; const s = stat(p); if (s) kids.set(+p, s); }
  const out = [];
  const walk = (pid) => { for (const [p, s] of kids) if (s.ppid === pid) { if (!exclude.has(p) && s.pgrp === (kids.get(root) || {}).pgrp) out.push(p); walk(p); } };
  walk(root);
  return out;
}
// x86_64 system calls that wait with a timeout: null = always, [argument, 'p'] = a non-NULL timeout pointer,
// [argument, 'i'] = a timeout other than -1 (as the harness)
const TIMED = { 35: null, 230: null, 202: [4, 'p'], 449: [5, 'p'], 7: [3, 'i'], 271: [3, 'p'], 23: [5, 'p'], 270: [5, 'p'], 232: [4, 'i'], 281: [4, 'i'], 441: [4, 'p'] };
function timedWait(task) {
  try {
    const f = fs.readFileSync(`${task}/syscall`, 'utf8').trim().split(/\s+/);
    if (os.arch() !== 'x64' || !(f[0] in TIMED)) return false;
    const how = TIMED[f[0]];
    if (!how) return true;
    const arg = BigInt(f[how[0]]);
    return how[1] === 'p' ? arg !== 0n : (arg & 0xffffffffn) !== 0xffffffffn;
  } catch { return false; }
}
// one look at the iteration's processes: a thread running, a thread in a timed wait or D, a progress sum
function look(pids) {
  let running = false, soft = false, sig = 0;
  for (const p of pids) {
    const s = stat(p);
    if (!s || s.state === 'Z') continue;
    sig += s.cpu;
    try {
      for (const t of fs.readdirSync(`/proc/${p}/task`)) {
        const task = `/proc/${p}/task/${t}`;
        const st = fs.readFileSync(`${task}/stat`, 'utf8').split(') ').pop()[0];
        if (st === 'R') running = true;
        else if (st === 'D' || (st === 'S' && timedWait(task))) soft = true;
        try { const ss = fs.readFileSync(`${task}/schedstat`, 'utf8').split(' '); sig += Number(ss[0]) * 31 + Number(ss[2]); } catch {}
      }
    } catch {}
  }
  return { running, soft, sig };
}
function killTree(pids) { for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch {} } }
const waitMs = (ms) => Atomics.wait(SH, S_LEN - 1, 0, ms);

function watchdog() {
  const { root, baseline } = workerData;
  const exclude = new Set(baseline);
  for (;;) {
    waitMs(20);
    const owner = Atomics.load(SH, S_OWNER);
    if (owner <= 0) continue;
    if (nowMs() - T0[0] < FM_TIMEOUT_MS) continue;
    let verdict = null;
    while (!verdict && Atomics.load(SH, S_OWNER) === owner) {
      const pids = descendants(root, exclude).filter((p) => (stat(p) || {}).state !== 'Z');
      const a = look(pids);
      waitMs(100);
      const b = look(pids);
      if (pids.length && !a.running && !b.running && !a.soft && !b.soft && a.sig === b.sig) verdict = 'blocked';
      else if (nowMs() - T0[0] >= 5 * FM_TIMEOUT_MS) verdict = 'running';
      else waitMs(Math.max(100, FM_TIMEOUT_MS / 4));
    }
    if (!verdict || Atomics.compareExchange(SH, S_OWNER, owner, -owner) !== owner) continue; // settled meanwhile
    const pids = descendants(root, exclude);
    parentPort.postMessage({ iter: owner - 1, verdict, pids: pids.length });
    killTree(pids);
    const t = nowMs();
    while (Atomics.load(SH, S_OWNER) === -owner && nowMs() - t < Math.max(5000, 2 * FM_TIMEOUT_MS)) waitMs(10);
    if (Atomics.load(SH, S_OWNER) === -owner) {
      say(`child ${owner - 1}: hang; the main thread stays blocked in native code after the kill: giving up\n`);
      process.kill(process.pid, 'SIGKILL');
    }
  }
}

async function loadRole() {
  const { opts } = workerData;
  const dns = require('node:dns'), zlib = require('node:zlib'), crypto = require('node:crypto');
  const payload = Buffer.alloc(64 * 1024, 7);
  const files = ['/etc/hosts', '/etc/passwd', '/proc/self/status', process.execPath];
  const ops = {
    dns: (cb) => dns.lookup('localhost', { all: true }, cb),
    fs: (cb, n) => (n & 1 ? fs.stat(files[n % files.length], cb) : fs.readFile(files[n % 3], cb)),
    crypto: (cb) => crypto.pbkdf2('forkmatrix', 'salt', opts.pbkdf2_iterations || 20000, 32, 'sha256', cb),
    zlib: (cb) => zlib.gzip(payload, cb),
  };
  const wanted = Object.keys(ops).filter((k) => (opts[k] | 0) > 0);
  const first = new Set();
  for (const kind of wanted) for (let j = 0; j < opts[kind]; j++) {
    let n = 0;
    const go = () => { if (Atomics.load(SH, S_STOP)) return; ops[kind](() => { Atomics.add(SH, S_LOAD, 1); if (!first.has(kind)) { first.add(kind); if (first.size === wanted.length) parentPort.postMessage('load-started'); } go(); }, n++); };
    go();
  }
  if (!wanted.length) parentPort.postMessage('load-started');
}

async function loopRole() {
  const t = workerData.thread;
  let c;
  try { c = fmCase(); } catch (e) { parentPort.postMessage({ error: e.fmSkip ? `cannot run here: ${e.fmSkip}` : `the prelude raised in worker ${t}: ${e.stack}` }); return; }
  parentPort.postMessage({ ready: t });
  let i = 0, lastYield = nowMs();
  try {
    while (!Atomics.load(SH, S_STOP)) {
      Atomics.store(SH, S_INSIDE + t, 1);
      await c.loop(i++, t);
      Atomics.store(SH, S_INSIDE + t, 0);
      Atomics.add(SH, S_ITERS + t, 1);
      if ((i & 15) === 0 && nowMs() - lastYield > 5) { await new Promise((r) => setImmediate(r)); lastYield = nowMs(); }
    }
  } catch (e) {
    Atomics.store(SH, S_INSIDE + t, 0);
    parentPort.postMessage({ loopError: `loop thread ${t} stopped: ${e && e.message}` });
  }
}

function mulberry32(a) {
  return () => { a |= 0; a = (a + 0x6d2b79f5) | 0; let t = Math.imul(a ^ (a >>> 15), 1 | a); t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t; return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}

async function main() {
  const forks = Number(process.argv[2]) > 0 ? Number(process.argv[2]) : FM_FORKS;
  const end = (code) => { Atomics.store(SH, S_STOP, 1); if (addon) addon.exit(code); process.exit(code); };
  const giveUp = (msg) => { say(`${msg}\nnothing was judged (exit 2)\n`); end(2); };
  let c;
  try {
    c = fmCase();
    await c.setup();
  } catch (e) {
    return giveUp(e && e.fmSkip ? `cannot run here: ${e.fmSkip}` : `the prelude or setup raised: ${e && e.stack}`);
  }
  const loopErrors = [];
  const ready = [];
  for (let t = 0; t < FM_THREADS; t++) {
    const opts = { workerData: { role: 'loop', thread: t, sab: SAB, t0: T0.buffer } };
    if (workerEnv !== undefined) opts.env = workerEnv;
    const w = new Worker(__filename, opts);
    ready.push(new Promise((resolve) => w.on('message', (m) => { if (m.ready !== undefined) resolve(null); else if (m.error) resolve(m.error); else if (m.loopError) loopErrors.push(m.loopError); })));
    w.on('error', (e) => loopErrors.push(`worker ${t} died: ${e.message}`));
  }
  for (const why of await Promise.all(ready)) if (why) return giveUp(why);
  await sleep(FM_WARMUP_MS);
  try {
    if ((await c.precondition()) === false) throw new Error('returned false');
  } catch (e) {
    return giveUp(`precondition failed: ${e && e.message}`);
  }
  const baseline = descendants(process.pid, new Set());
  const hangs = new Map();
  const dog = new Worker(__filename, { workerData: { role: 'watchdog', sab: SAB, t0: T0.buffer, root: process.pid, baseline } });
  dog.on('message', (m) => { const w = hangs.get(m.iter); if (w) w(m); });
  dog.unref();
  let stray = null;
  process.on('uncaughtException', (e) => stray && stray(e));
  process.on('unhandledRejection', (e) => stray && stray(e));
  const rng = mulberry32(FM_SEED);
  const counts = { hang: 0, crash: 0, wrong: 0 };
  const it0 = iterations();
  let n = 0, insideN = 0, slow = 0;
  const start = nowMs();
  for (; n < forks && (n === 0 || nowMs() - start < FM_SECONDS * 1000) && !loopErrors.length; n++) {
    const d = Math.floor(rng() * (FM_MAX_DELAY_US + 1));
    const until = nowMs() + d / 1000;
    while (nowMs() < until) { /* spin: the delay is shorter than a timer's granularity */ }
    try { await c.before_fork(n); } catch (e) { return giveUp(`before_fork raised: ${e && e.stack}`); }
    if (inside() > 0) insideN++;
    T0[0] = nowMs();
    Atomics.store(SH, S_OWNER, n + 1);
    const hangP = new Promise((r) => hangs.set(n, (m) => r({ hang: m })));
    const strayP = new Promise((_, rej) => { stray = rej; });
    const out = await Promise.race([Promise.race([c.child(n), strayP]).then((v) => ({ v }), (e) => ({ e })), hangP]);
    stray = null;
    let hang = out.hang || null;
    if (!hang && Atomics.compareExchange(SH, S_OWNER, n + 1, 0) !== n + 1) hang = (await hangP).hang; // claimed meanwhile
    if (hang) Atomics.store(SH, S_OWNER, 0);
    hangs.delete(n);
    if (!hang && nowMs() - T0[0] >= FM_TIMEOUT_MS) slow++;
    let kind = null, why = '';
    if (hang) {
      kind = 'hang';
      why = `${hang.verdict === 'blocked' ? 'blocked' : `still running after 5 x ${FM_TIMEOUT_MS} ms`}: ${hang.pids} process(es) killed ${Math.round(nowMs() - T0[0])} ms after the iteration started`;
    } else if ('e' in out) {
      const e = out.e;
      kind = e && e.fmCrash ? 'crash' : 'wrong';
      why = e && e.fmSkip ? `skip() called in child: ${e.fmSkip}` : String((e && e.stack) || e).split('\n').slice(0, 2).join('\n');
    } else if (FM_EXPECT !== null) {
      const v = out.v;
      const output = typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : '';
      if (!new RegExp(FM_EXPECT).test(output)) { kind = 'wrong'; why = `output did not match /${FM_EXPECT}/: ${output.slice(-300)}`; }
    }
    if (kind) {
      if (counts.hang + counts.crash + counts.wrong < 5) say(`child ${n}: ${kind}: ${why}\n`);
      counts[kind]++;
    }
  }
  const ms = nowMs() - start;
  const bad = counts.hang + counts.crash + counts.wrong;
  for (const e of loopErrors.slice(0, 3)) say(`${e}\n`);
  say(`pressure: ${FM_THREADS} loop thread(s), ${iterations() - it0} iterations in ${Math.round(ms)} ms; at ${insideN} of ${n} forks a thread was inside its loop body\n`);
  if (slow) say(`${slow} iteration(s) were still running at the ${FM_TIMEOUT_MS} ms timeout and finished later (slow, not hangs)\n`);
  say(`${bad} of ${n} children failed (${counts.hang} hang, ${counts.crash} crash, ${counts.wrong} wrong)\n`);
  for (const p of descendants(process.pid, new Set(baseline))) try { process.kill(p, 'SIGKILL'); } catch {}
  end(bad ? 1 : 0);
}

if (ROLE === 'main') main();
else if (ROLE === 'loop') loopRole();
else if (ROLE === 'load') loadRole();
else if (ROLE === 'watchdog') watchdog();
