#!/usr/bin/env python3
"""forkmatrix Python harness: implements runners/PROTOCOL.md for CPython 3.7+.

    python3 harness.py config.json

Runs a case's `prelude` and `setup`, starts `threads` daemon threads looping `loop`, then forks again and again
(seeded random delays), runs `child` in each child and classifies how every child ended (ok, wrong, crash, hang).
Writes one JSON result to config["result"] (atomically: .tmp + rename) and ends with os._exit(0).

Standard library only, and only what is needed, so that it also runs on a minimal (e.g. musl-linked) CPython:
`select` and `subprocess` are optional (the wait falls back to 1 ms steps; hang diagnosis loses gdb).
"""
import json
import os
import re
import signal
import sys
import time
import warnings

# Imported only when needed: every module that registers an os.register_at_fork hook makes every child pay for it
# (threading: ~130 page faults per fork, random: ~35, measured on CPython 3.11) and changes what the child runs.
# So `threading` is imported only when the case asks for threads, `random` only when there are delays, and the
# child's failure report is formatted without the traceback module (no import in a possibly broken child).

try:
    import select
except ImportError:  # pragma: no cover - minimal builds
    select = None

# Our own fork() would emit the 3.12+ DeprecationWarning ("This process (pid=N) is multi-threaded, use of fork() may
# lead to deadlocks in the child.") in the parent after every fork. It says nothing about the child, and turned into
# an error (-W error, PYTHONWARNINGS) it would break the fork loop, so it must never decide a verdict: ignore it, but
# only where the harness (module __main__) forks. Forks made by case snippets (module `forkmatrix_case`) keep the
# interpreter's normal warning behaviour; the case that checks the warning uses simplefilter("always") anyway, which
# is inserted in front of this filter.
warnings.filterwarnings("ignore", category=DeprecationWarning, module="__main__",
                        message=r"This process .*is multi-threaded, use of fork\(\) may lead to deadlocks")

CASE_MODULE = "forkmatrix_case"
MAX_FIRST_FAILURES = 5
HEAD_BYTES = 4096       # kept for expect_output
TAIL_BYTES = 1000       # kept for the failure message
GDB_TAIL = 8000
GDB_TIMEOUT_S = 20
CO_GENERATORS = 0x20 | 0x80 | 0x200 | 0x100  # generator, coroutine, async generator, iterable coroutine

_PARENT_PID = os.getpid()
_IN_CHILD = False


class _Skip(BaseException):
    """Raised by skip(reason). A BaseException so that `except Exception` in a snippet does not swallow it."""


class _Stopped(BaseException):
    """Raised in the parent on SIGTERM/SIGINT so the fork loop's finally kills and reaps the current child."""


def skip(reason="skipped"):
    raise _Skip(str(reason))


# Pressure (PROTOCOL.md step 0 and 2): one slot per loop thread, each written only by its own thread (plain list
# slots: an int store is atomic under the GIL and on a free-threaded build alike).
_INSIDE = []    # 1 while thread t is inside its loop body
_ITERS = []     # iterations thread t finished
_LAST = []      # perf_counter() when thread t last finished one (0.0: never)
_ERRS = []      # the error that ended thread t's loop (None: still looping)


def inside():
    """How many loop threads are inside their loop body right now (a before_fork may wait for > 0)."""
    return sum(_INSIDE)


def iterations():
    """Iterations finished by all loop threads so far."""
    return sum(_ITERS)


# ---------------------------------------------------------------------------------------------------------------
# Compiling the snippets


class CaseError(Exception):
    pass


def _place_source(filename, first_line, text, virtual):
    """Record `text` at 1-based `first_line` in the virtual file used to prime linecache."""
    lines = text.splitlines(True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    need = first_line - 1 + len(lines)
    while len(virtual) < need:
        virtual.append("\n")
    for k, line in enumerate(lines):
        virtual[first_line - 1 + k] = line


def _parse(text, filename, first_line):
    import ast
    # Pad with newlines so every node (and any SyntaxError) carries its line number in the YAML file.
    src = "\n" * (first_line - 1) + text
    try:
        return ast.parse(src, filename, "exec")
    except SyntaxError as e:
        raise CaseError("SyntaxError: %s (%s, line %s)" % (e.msg, e.filename or filename, e.lineno))


def _as_function(name, text, filename, first_line, namespace):
    """Compile `text` as the body of a function `name` (so `return` works) whose globals are `namespace`."""
    import ast
    tree = _parse(text, filename, first_line)
    template = ast.parse("def %s():\n    pass\n" % name, filename, "exec")
    fdef = template.body[0]
    if tree.body:
        fdef.body = tree.body
    ast.fix_missing_locations(template)
    try:
        code = compile(template, filename, "exec")
    except SyntaxError as e:
        raise CaseError("SyntaxError: %s (%s, line %s)" % (e.msg, e.filename or filename, e.lineno))
    missing = object()
    previous = namespace.get(name, missing)
    exec(code, namespace)
    fn = namespace[name]
    if previous is missing:  # keep the snippet's own globals untouched (a prelude may define `setup` itself)
        del namespace[name]
    else:
        namespace[name] = previous
    if fn.__code__.co_flags & CO_GENERATORS:
        raise CaseError("%s (%s, line %d): a snippet must not contain yield/await" % (name, filename, first_line))
    return fn


_SOURCES = {}  # filename -> list of lines (the snippets placed at their YAML line numbers), for tracebacks


def _source_line(filename, lineno):
    lines = _SOURCES.get(filename)
    if lines is not None:
        if lineno is not None and 0 < lineno <= len(lines):
            return lines[lineno - 1].strip()
        return ""
    lc = sys.modules.get("linecache")  # never imported here just for this
    if lc is not None and lineno:
        try:
            return lc.getline(filename, lineno).strip()
        except Exception:
            return ""
    return ""


def _exc_line(exc):
    t = type(exc)
    name = getattr(t, "__qualname__", t.__name__)
    mod = getattr(t, "__module__", None)
    if mod not in (None, "builtins", "__main__"):
        name = "%s.%s" % (mod, name)
    try:
        text = str(exc)
    except BaseException:
        text = "<exception str() failed>"
    return "%s: %s" % (name, text) if text else name


def _format_exc(exc, skip_frames=1, limit=4):
    """'Traceback ... Class: message' like the interpreter prints it, with the harness's own frame(s) left out and
    at most `limit` frames (the innermost). Pure: imports nothing, so it also works in a child whose import
    machinery is broken."""
    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    frames = []
    while tb is not None:
        co = tb.tb_frame.f_code
        frames.append((co.co_filename, tb.tb_lineno, co.co_name))
        tb = tb.tb_next
    out = []
    if frames:
        out.append("Traceback (most recent call last):")
        if len(frames) > limit:
            out.append("  ... %d more frames" % (len(frames) - limit))
            frames = frames[-limit:]
        for filename, lineno, name in frames:
            out.append('  File "%s", line %s, in %s' % (filename, lineno, name))
            src = _source_line(filename, lineno)
            if src:
                out.append("    " + src)
    out.append(_exc_line(exc))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------------
# Facts about the process


def _libc_info():
    path = None
    pat = re.compile(r"^(libc\.so\.6|libc-\d+\.\d+(?:\.\d+)?\.so|libc\.musl-.*\.so\.1|ld-musl-.*\.so\.1|libc\.so)$")
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6:
                    p = parts[5].strip()
                    if pat.match(os.path.basename(p)):
                        path = p
                        break
    except OSError:
        pass
    reported = None
    try:
        v = os.confstr("CS_GNU_LIBC_VERSION")
        if v:
            reported = v
    except (ValueError, OSError, AttributeError):
        pass
    return {"path": path, "self_reported": reported}


def _gil_enabled():
    """sys._is_gil_enabled() (3.13+): False when a free-threaded build runs without the GIL; None before 3.13."""
    f = getattr(sys, "_is_gil_enabled", None)
    return bool(f()) if f is not None else None


def _runtime_info():
    import platform  # only here: one module, pure Python
    return {"name": "python", "version": platform.python_version(), "executable": sys.executable,
            "gil": _gil_enabled()}


def _signame(sig):
    try:
        return signal.Signals(sig).name
    except (ValueError, AttributeError):
        return "SIG%d" % sig


def _descendants(pid):
    """All descendants of pid (children first), from /proc: used to kill what a hung child started."""
    parent_of = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for n in names:
        if not n.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % n, "rb") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parent_of.setdefault(ppid, []).append(int(n))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in parent_of.get(p, ()):
            out.append(c)
            todo.append(c)
    return out


def _read_proc(pid, name):
    try:
        with open("/proc/%d/%s" % (pid, name), "rb") as f:
            return f.read().decode("utf-8", "replace").strip()
    except OSError as e:
        return "unreadable: %s" % e


def _diagnose(pid, gdb):
    diag = {"wchan": _read_proc(pid, "wchan"), "syscall": _read_proc(pid, "syscall"),
            "stack": _read_proc(pid, "stack"), "gdb": None}
    if gdb:
        try:
            import subprocess
            r = subprocess.run([gdb, "-batch", "-nx", "-p", str(pid), "-ex", "thread apply all bt"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={"PATH": "/usr/bin:/bin"}, timeout=GDB_TIMEOUT_S)
            diag["gdb"] = r.stdout[-GDB_TAIL:].decode("utf-8", "replace")
        except Exception as e:  # timeout, no gdb, no subprocess module...
            diag["gdb"] = "gdb failed: %s: %s" % (type(e).__name__, e)
    return diag


# ---------------------------------------------------------------------------------------------------------------
# The child
#
# stdout/stderr in the child: fds 1 and 2 are redirected onto the pipe with dup2, and sys.stdout / sys.stderr are
# deliberately NOT rebuilt. The child keeps the very objects it inherited (TextIOWrapper -> BufferedWriter ->
# FileIO(fd 1)), with their buffered bytes and the state of their internal locks at the moment of fork, exactly as a
# real program's child would: that is what a case about print() after fork must observe (gh-84579). Consequences,
# kept on purpose: with exit `_exit`, text still buffered in sys.stdout is lost (flush it, or use exit: exit), and
# with exit `exit` the interpreter's final flush also writes whatever the parent had buffered before the fork.
# The harness itself reports a failure with os.write(2, ...) only, never through sys.stderr.
#
# The child's path is inline in the fork loop (see run()): each page the child writes costs a copy-on-write fault,
# so it runs as little Python as it can before and after the snippet.


def _child_write(text):
    data = text.encode("utf-8", "replace")
    try:
        while data:
            n = os.write(2, data)
            data = data[n:]
    except OSError:
        pass


def _child_exception(exc):
    """The child snippet raised. SystemExit(0 or None) is a clean end (returns); anything else is reported: _exit(1)."""
    if isinstance(exc, SystemExit) and (exc.code is None or exc.code == 0):
        return None
    try:
        msg = _format_exc(exc, skip_frames=1)
    except BaseException:
        msg = "%s: %s" % (type(exc).__name__, exc)
    _child_write(msg + "\n")
    os._exit(1)


def _child_false():
    _child_write("child returned false\n")
    os._exit(1)


def _child_normal_exit():
    """exit: exit -- unwind to a normal interpreter exit with status 0 (atexit handlers, threading._shutdown,
    stdio flush). The parent's finally blocks on the way check _IN_CHILD and do nothing."""
    global _IN_CHILD
    _IN_CHILD = True
    raise SystemExit(0)


# ---------------------------------------------------------------------------------------------------------------
# The parent


def _collect(out, data):
    """out: None or [head, tail, total]: the first HEAD_BYTES (for expect_output) and the last TAIL_BYTES."""
    if out is None:
        out = [b"", b"", 0]
    out[2] += len(data)
    if len(out[0]) < HEAD_BYTES:
        out[0] += data[:HEAD_BYTES - len(out[0])]
    out[1] = (out[1] + data)[-TAIL_BYTES:]
    return out


def _drain(r, out):
    """Read what is in the pipe now without blocking (the writer may be a grandchild that never closes it)."""
    if select is not None:
        p = select.poll()
        p.register(r, select.POLLIN)
        while p.poll(0):
            data = os.read(r, 65536)
            if not data:
                break
            out = _collect(out, data)
    else:
        while True:
            try:
                data = os.read(r, 65536)  # r is non-blocking in this mode
            except (BlockingIOError, InterruptedError):
                break
            if not data:
                break
            out = _collect(out, data)
    return out


def _wait_steps(pid, r, out, deadline):
    """Fallback without pidfd_open (Python < 3.9, kernel < 5.3, seccomp): pipe EOF + waitpid(WNOHANG), 1 ms steps.
    Returns (status or None when still alive at deadline, out)."""
    poller = None
    if select is not None:
        poller = select.poll()
        poller.register(r, select.POLLIN)
    pipe_open = True
    perf = time.perf_counter
    while True:
        if pipe_open and poller is not None:
            for _fd, _ev in poller.poll(1):
                data = os.read(r, 65536)
                if data:
                    out = _collect(out, data)
                else:
                    poller.unregister(r)
                    pipe_open = False
        elif pipe_open:
            try:
                data = os.read(r, 65536)
                if data:
                    out = _collect(out, data)
                else:
                    pipe_open = False
            except (BlockingIOError, InterruptedError):
                time.sleep(0.001)
        else:
            time.sleep(0.001)
        wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            if pipe_open:
                out = _drain(r, out)
            return status, out
        if perf() >= deadline:
            return None, out


def _kill_and_reap(pid):
    for d in _descendants(pid):  # what a hung child started (e.g. a grandchild) goes too
        try:
            os.kill(d, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except InterruptedError:
            continue
        except ChildProcessError:
            return


def _loop_thread(k, loop, stop):
    """Thread k: run `loop` until `stop`, inside pressure counters. A body that raises ends the thread: its first
    error is kept (pressure.threads[k].error), and the verdict decides what a thread that stopped working means."""
    ins, its, last = _INSIDE, _ITERS, _LAST
    perf = time.perf_counter
    is_set = stop.is_set
    try:
        while not is_set():
            ins[k] = 1
            loop()
            ins[k] = 0
            its[k] += 1
            last[k] = perf()
    except BaseException as e:
        ins[k] = 0
        try:
            _ERRS[k] = _format_exc(e, skip_frames=1)
        except BaseException:
            _ERRS[k] = "%s: %s" % (type(e).__name__, e)


_SO_RE = re.compile(r"\.so(\.[0-9]+)*$")


def _mapped():
    """Every file-backed shared object in /proc/self/maps, deduplicated, in map order."""
    seen, out = set(), []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) < 6:
                    continue
                path = parts[5].strip()
                if path.endswith(" (deleted)"):
                    path = path[:-len(" (deleted)")]
                if path.startswith("/") and _SO_RE.search(path) and path not in seen:
                    seen.add(path)
                    out.append(path)
    except OSError:
        pass
    return out


# ---------------------------------------------------------------------------------------------------------------
# The hang proof (PROTOCOL.md step 3, "hang")
#
# The child stays in the harness's process group: CPython has no prctl(PR_SET_PDEATHSIG) without ctypes, so a child
# in a group of its own would outlive a harness the driver SIGKILLs by group. The group a sample covers is therefore
# the child and every descendant of it (the /proc ppid tree), which is what its own process group would hold.

try:
    _CLK_TCK = os.sysconf("SC_CLK_TCK") or 100
except (ValueError, OSError, AttributeError):  # pragma: no cover
    _CLK_TCK = 100


def _stat_fields(path):
    """Fields 3.. of a /proc stat file (after 'pid (comm)'), or None when gone."""
    try:
        with open(path, "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:].split()
    except (OSError, ValueError):
        return None


# x86_64 system calls that wait with a timeout, and which argument (1-based) holds it: "p" a pointer (non-null: timed),
# "i" an int (not -1: timed); None: always timed. Read from /proc/P/task/T/syscall ("nr arg1 ... arg6 sp pc").
_TIMED_SYSCALLS = {35: None, 230: None,                       # nanosleep, clock_nanosleep
                   202: (4, "p"), 449: (5, "p"),              # futex, futex_waitv
                   7: (3, "i"), 271: (3, "p"),                # poll, ppoll
                   23: (5, "p"), 270: (5, "p"),               # select, pselect6
                   232: (4, "i"), 281: (4, "i"), 441: (4, "p")}  # epoll_wait, epoll_pwait, epoll_pwait2
_IS_X86_64 = os.uname().machine == "x86_64"


def _timed_wait(p, tid):
    """Is thread tid of process p in a system call that waits with a timeout (it will wake up by itself)?"""
    if not _IS_X86_64:
        return False
    try:
        with open("/proc/%d/task/%s/syscall" % (p, tid)) as f:
            fields = f.read().split()
        nr = int(fields[0])
    except (OSError, ValueError, IndexError):
        return False
    if nr not in _TIMED_SYSCALLS:
        return False
    how = _TIMED_SYSCALLS[nr]
    if how is None:
        return True
    try:
        arg = int(fields[how[0]], 16)
    except (ValueError, IndexError):
        return False
    if how[1] == "p":
        return arg != 0
    return (arg & 0xffffffff) != 0xffffffff


def _sample(pid):
    """One look at the child's process tree. Returns (running, cpu_ms, root_state, text, sched, soft): running: some
    thread is R; sched: every thread's (run time ns, times scheduled) from schedstat; soft: some thread is in a timed
    wait (marked ~) or in state D, so it is not called blocked before the last look."""
    procs = []
    running = soft = False
    cpu_ticks = 0
    root_state = None
    sched = []
    for p in [pid] + _descendants(pid):
        f = _stat_fields("/proc/%d/stat" % p)
        if f is None:
            continue
        state = f[0].decode("ascii", "replace")
        if p == pid:
            root_state = state
        try:
            cpu_ticks += int(f[11]) + int(f[12])
        except (IndexError, ValueError):
            pass
        tasks = []
        try:
            tids = sorted(os.listdir("/proc/%d/task" % p), key=lambda x: int(x) if x.isdigit() else 0)
        except OSError:
            tids = []
        for tid in tids:
            tf = _stat_fields("/proc/%d/task/%s/stat" % (p, tid))
            if tf is None:
                continue
            ts = tf[0].decode("ascii", "replace")
            try:
                with open("/proc/%d/task/%s/schedstat" % (p, tid)) as sf:
                    ss = sf.read().split()
                sched.append((p, tid, int(ss[0]), int(ss[2])))
            except (OSError, ValueError, IndexError):
                pass
            if ts == "D":
                soft = True
            elif ts == "S" and _timed_wait(p, tid):
                soft = True
                ts += "~"
            tasks.append(ts)
        if state == "R" or "R" in tasks:
            running = True
        procs.append("%d %s [%s]" % (p, state, " ".join(tasks)) if tasks else "%d %s" % (p, state))
    cpu_ms = int(round(cpu_ticks * 1000.0 / _CLK_TCK))
    return running, cpu_ms, root_state, "cpu %d ms; %s" % (cpu_ms, ", ".join(procs) or "gone"), tuple(sched), soft


def _wait_until(pid, pfd, r, r_open, out, deadline):
    """Wait for the child's exit until `deadline` (perf_counter seconds), reading its output meanwhile.
    Returns (status or None when still alive, out, r_open)."""
    perf = time.perf_counter
    if pfd < 0 or select is None:
        status, out = _wait_steps(pid, r, out, deadline)
        return status, out, r_open
    p = select.poll()
    p.register(pfd, select.POLLIN)
    if r_open:
        p.register(r, select.POLLIN)
    while True:
        remaining = deadline - perf()
        ms = int(remaining * 1000.0) + 1 if remaining > 0 else 0
        exited = False
        for fd, ev in p.poll(ms):
            if fd == pfd:
                exited = True
            elif fd == r and r_open:
                data = os.read(r, 65536) if ev & select.POLLIN else None
                if data:
                    out = _collect(out, data)
                else:
                    r_open = False
                    p.unregister(r)
        if exited:
            return os.waitpid(pid, 0)[1], out, r_open
        if ms == 0:
            return None, out, r_open


def _reap_if_zombie(pid):
    """The child's leader is a zombie: its status, when the whole process is gone (else None: threads live on)."""
    try:
        wpid, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return status if wpid == pid else None


class _Proof:
    """What the hang proof of one child found: status (it exited), or blocked = "yes" / "running" (a hang)."""
    __slots__ = ("status", "blocked", "slow", "lines", "out", "r_open", "at_ms")

    def __init__(self, out, r_open):
        self.status = None
        self.blocked = None
        self.slow = False
        self.lines = []
        self.out = out
        self.r_open = r_open
        self.at_ms = 0


def _prove(pid, pfd, r, r_open, out, t_fork, first_deadline, timeout_s, hp):
    """The child was still alive at `first_deadline` (the early look, or timeout_ms). Decide: exited (judged by its
    status; `slow` when it was still alive at timeout_ms), or a hang proved blocked (or still running at
    hard_factor x timeout_ms). Never kills: the caller does."""
    perf = time.perf_counter
    pr = _Proof(out, r_open)
    sample_s = hp["sample_ms"] / 1000.0
    timeout_at = t_fork + timeout_s
    hard_at = t_fork + hp["hard_factor"] * timeout_s

    def pair(last=False):
        """Two samples sample_s apart, waiting for the exit meanwhile. True: blocked; False: not; None: exited.
        Blocked: no thread R in either sample, neither CPU ticks nor any thread's schedstat (run time, times
        scheduled) moved, and, before the last look, no thread in a timed wait or in state D."""
        run1, cpu1, st1, text1, sched1, soft1 = _sample(pid)
        pr.lines.append("+%d ms: %s" % (int((perf() - t_fork) * 1000.0), text1))
        if st1 == "Z" or st1 is None:
            pr.status = _reap_if_zombie(pid)
            if pr.status is not None:
                return None
        pr.status, pr.out, pr.r_open = _wait_until(pid, pfd, r, pr.r_open, pr.out, perf() + sample_s)
        if pr.status is not None:
            return None
        run2, cpu2, st2, text2, sched2, soft2 = _sample(pid)
        pr.lines.append("+%d ms: %s" % (int((perf() - t_fork) * 1000.0), text2))
        if st2 == "Z" or st2 is None:
            pr.status = _reap_if_zombie(pid)
            if pr.status is not None:
                return None
        if run1 or run2 or cpu1 != cpu2 or sched1 != sched2:
            return False
        return last or not (soft1 or soft2)

    if first_deadline < timeout_at:  # the early look
        b = pair()
        if b is None:
            return pr
        if b:
            pr.blocked = "yes"
            return pr
        pr.status, pr.out, pr.r_open = _wait_until(pid, pfd, r, pr.r_open, pr.out, timeout_at)
        if pr.status is not None:
            return pr
    # alive at timeout_ms: from here on an exit is a slow child
    pr.slow = True
    step = max(sample_s, timeout_s / 4.0)
    while True:
        b = pair()
        if b is None:
            return pr
        if b:
            pr.blocked = "yes"
            return pr
        now = perf()
        if now < hard_at:
            pr.status, pr.out, pr.r_open = _wait_until(pid, pfd, r, pr.r_open, pr.out, min(now + step, hard_at))
            if pr.status is not None:
                return pr
        if perf() >= hard_at:  # the last look: a timed wait or D that did not move is blocked now
            b = pair(last=True)
            if b is None:
                return pr
            pr.blocked = "yes" if b else "running"
            return pr


def _percentile(sorted_seconds, q):
    if not sorted_seconds:
        return None
    k = min(len(sorted_seconds) - 1, max(0, int(round(q * (len(sorted_seconds) - 1)))))
    return round(sorted_seconds[k] * 1000.0, 3)


def _write_result(path, result):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def _on_signal(signum, frame):
    if os.getpid() != _PARENT_PID:  # inherited by a child: just go
        os._exit(128 + signum)
    raise _Stopped("harness got signal %d" % signum)


def run(cfg, result):
    case = cfg.get("case") or "case"
    filename = cfg.get("file") or "<%s>" % case
    lines = cfg.get("lines") or {}
    threads_n = int(cfg.get("threads") or 0)
    forks_max = int(cfg.get("forks") if cfg.get("forks") is not None else 1)
    seconds = float(cfg.get("seconds") if cfg.get("seconds") is not None else 1)
    timeout_s = int(cfg.get("timeout_ms") or 2000) / 1000.0
    seed = int(cfg.get("seed") or 0)
    max_delay_us = int(cfg.get("max_delay_us") or 0)
    warmup_s = int(cfg.get("warmup_ms") or 0) / 1000.0
    fail_fast = bool(cfg.get("fail_fast"))
    diag_cfg = cfg.get("diag") or {}
    gdb = diag_cfg.get("gdb")
    diag_max = int(diag_cfg.get("max") if diag_cfg.get("max") is not None else 1)
    hp = {"sample_ms": 100, "early_min_ms": 200, "early_factor": 20, "hard_factor": 5}
    for k, v in (cfg.get("hang_proof") or {}).items():
        if k in hp and v is not None:
            hp[k] = float(v)
    if hp["hard_factor"] < 1:
        hp["hard_factor"] = 1.0
    exit_mode = cfg.get("exit") or "_exit"
    if exit_mode not in ("_exit", "exit"):
        raise CaseError("exit must be _exit or exit, not %r" % exit_mode)
    expect = cfg.get("expect_output")
    expect_re = None
    if expect is not None:
        try:
            expect_re = re.compile(expect.encode("utf-8"), re.M)
        except re.error as e:
            raise CaseError("expect_output %r: %s" % (expect, e))
    if not cfg.get("child"):
        raise CaseError("no child snippet")

    # --- compile: one module namespace; tracebacks point into the YAML file
    import types
    module = types.ModuleType(CASE_MODULE)
    module.__file__ = filename
    module.skip = skip
    module.inside = inside
    module.iterations = iterations
    sys.modules[CASE_MODULE] = module
    ns = module.__dict__
    snippets = {}
    for name in ("prelude", "setup", "loop", "child", "precondition", "before_fork"):
        text = cfg.get(name)
        if not text:
            continue
        first = int(lines.get(name) or 0)
        fname = filename
        if first < 1:  # no line information: each snippet is its own pseudo file
            first, fname = 1, "<%s:%s>" % (case, name)
        snippets[name] = (text, fname, first)
        _place_source(fname, first, text, _SOURCES.setdefault(fname, []))
    # Also prime linecache (mtime None: checkcache() leaves such entries alone), so that tracebacks printed by
    # the interpreter itself (threading.excepthook, warnings) show the snippet lines too.
    import linecache
    for fname, src in _SOURCES.items():
        linecache.cache[fname] = (sum(map(len, src)), None, src, fname)

    prelude_code = None
    if "prelude" in snippets:
        text, fname, first = snippets["prelude"]
        prelude_code = compile(_parse(text, fname, first), fname, "exec")
    fns = {}
    for name in ("setup", "loop", "child", "precondition", "before_fork"):
        if name in snippets:
            text, fname, first = snippets[name]
            fns[name] = _as_function(name, text, fname, first, ns)

    # --- prelude and setup (skip() -> skipped; an exception -> error)
    stage = "prelude"
    try:
        if prelude_code is not None:
            exec(prelude_code, ns)
        stage = "setup"
        if "setup" in fns:
            if fns["setup"]() is False:
                result["error"] = "setup returned False"
                return
    except _Skip as e:
        result["skipped"] = str(e) or "skipped"
        result["mapped"] = _mapped()
        return
    except Exception as e:
        result["error"] = "%s raised %s" % (stage, _format_exc(e, skip_frames=1))
        result["mapped"] = _mapped()
        return

    child = fns["child"]
    loop = fns.get("loop")

    # --- threads (threading is imported only here: see the note at the imports)
    stop = None
    n_loops = threads_n if loop is not None else 0
    _INSIDE[:] = [0] * n_loops
    _ITERS[:] = [0] * n_loops
    _LAST[:] = [0.0] * n_loops
    _ERRS[:] = [None] * n_loops
    if threads_n > 0:
        import threading
        stop = threading.Event()
        for k in range(threads_n):
            if loop is not None:
                t = threading.Thread(target=_loop_thread, args=(k, loop, stop), name="fm-loop-%d" % k, daemon=True)
            else:  # no loop: the threads just exist (blocked on an Event) while the parent forks
                t = threading.Thread(target=stop.wait, name="fm-idle-%d" % k, daemon=True)
            t.start()
            result["threads_started"] += 1
    if warmup_s > 0:
        time.sleep(warmup_s)

    # --- precondition: once, threads running, before the first fork
    if "precondition" in fns:
        why = None
        try:
            if fns["precondition"]() is False:
                why = "returned False"
        except _Skip as e:
            result["skipped"] = str(e) or "skipped"
            result["mapped"] = _mapped()
            return
        except Exception as e:
            why = _format_exc(e, skip_frames=1)
        if why is not None:
            result["error"] = "precondition failed: %s" % why
            result["mapped"] = _mapped()
            return
    result["mapped"] = _mapped()
    before_fork = fns.get("before_fork")
    iters_base = list(_ITERS)  # pressure counts the iterations made during the fork loop only

    # Nothing of ours may sit in a stdio buffer that every child would inherit and flush.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass

    # --- the fork loop
    # Cost model (measured, CPython 3.11): after each fork every page the parent or the child writes takes a
    # copy-on-write fault, so the loop below is written to touch few objects: locals only, one poll object for the
    # whole run, no read when the pipe only reports EOF, failure bookkeeping out of the fast path.
    rng = None
    if max_delay_us > 0:
        import random
        rng = random.Random(seed)  # the same seed gives the same delay schedule
    poller = select.poll() if select is not None else None
    use_pidfd = poller is not None and hasattr(os, "pidfd_open")
    result["wait"] = "pidfd" if use_pidfd else ("pipe-poll" if poller is not None else "sleep")
    POLLIN = select.POLLIN if select is not None else 1
    n_ok = n_hang = n_crash = n_wrong = 0
    n_slow = 0
    slow_examples = []
    forks_inside = 0
    ins = _INSIDE
    failures = []
    ok_ms = []
    diagnosed = 0
    pid = 0
    r = w = pfd = -1
    reg_a = reg_b = -1  # the fds registered in `poller`
    fork = os.fork
    pipe = os.pipe
    close = os.close
    dup2 = os.dup2
    _exit = os._exit
    waitpid = os.waitpid
    read = os.read
    pidfd_open = getattr(os, "pidfd_open", None)
    perf = time.perf_counter
    sleep = time.sleep
    exit_normally = exit_mode == "exit"
    # The first wait ends at the early look (max(early_min_ms, early_factor x median ok child_ms), once 5 children
    # were ok) or at timeout_ms; the median is refreshed when the ok count doubles, not at every fork.
    first_wait_s = timeout_s
    next_median_at = 5
    i = 0
    t_start = now = perf()
    t_end = t_start + seconds
    try:
        while i == 0 or (i < forks_max and now < t_end):  # t_end moves on by the time spent diagnosing hangs
            if rng is not None:
                d = rng.randint(0, max_delay_us)
                if d > 50:
                    sleep(d * 1e-6)
                elif d:  # short delays spin: a sleep costs more than the delay itself
                    until = perf() + d * 1e-6
                    while perf() < until:
                        pass
            if before_fork is not None:
                try:
                    before_fork()
                except Exception as e:
                    result["error"] = "before_fork raised %s" % _format_exc(e, skip_frames=1)
                    break
            if n_ok >= next_median_at:
                next_median_at = n_ok * 2
                med = sorted(ok_ms)[len(ok_ms) // 2]
                first_wait_s = min(timeout_s, max(hp["early_min_ms"] / 1000.0, hp["early_factor"] * med))
            r, w = pipe()  # O_CLOEXEC: not inherited by what the parent's threads exec
            if poller is None:
                os.set_blocking(r, False)
            if 1 in ins:
                forks_inside += 1
            t_fork = perf()
            try:
                pid = fork()
            except OSError as e:
                result["error"] = "fork() failed at iteration %d: %s" % (i, e)
                break
            if pid == 0:
                # ---- the child (see "The child" above) ----
                try:
                    dup2(w, 1)
                    dup2(w, 2)
                    if w > 2:
                        close(w)
                    close(r)
                    # the interpreter's own dispositions, not the harness's: a process the child starts (a Pool
                    # worker, a grandchild) must die of SIGTERM as in any program, not only at its next bytecode
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    signal.signal(signal.SIGINT, signal.default_int_handler)
                    ret = child()
                except BaseException as e:
                    ret = _child_exception(e)  # returns only for SystemExit(0)
                if ret is False:
                    _child_false()
                if exit_normally:
                    _child_normal_exit()
                _exit(0)
            # ---- the parent ----
            close(w)
            w = -1
            i += 1
            deadline = t_fork + first_wait_s
            status = None
            out = None
            r_open = True  # no EOF seen on the pipe yet
            if use_pidfd:
                try:
                    pfd = pidfd_open(pid)
                except OSError:  # ENOSYS (kernel < 5.3), EPERM (seccomp): fall back for good
                    use_pidfd = False
                    result["wait"] = "pipe-poll"
            if pfd >= 0:
                # The pipe and the pidfd usually get the same two fd numbers every iteration: they stay registered
                # (both with POLLIN) instead of being registered and unregistered each time.
                if not ((r == reg_a and pfd == reg_b) or (r == reg_b and pfd == reg_a)):
                    for fd in (reg_a, reg_b):
                        if fd >= 0:
                            poller.unregister(fd)
                    poller.register(r, POLLIN)
                    poller.register(pfd, POLLIN)
                    reg_a, reg_b = r, pfd
                poll_ms = int(first_wait_s * 1000.0) + 1  # first poll: the fork just returned, no need to read the clock
                while True:
                    events = poller.poll(poll_ms)
                    exited = False
                    for fd, ev in events:
                        if fd == pfd:
                            exited = True
                        elif fd == r and r_open:
                            data = read(r, 65536) if ev & POLLIN else None
                            if data:
                                out = _collect(out, data)
                            else:  # EOF: the child (and whatever it started) closed the pipe
                                r_open = False
                    if exited:
                        status = waitpid(pid, 0)[1]
                        break
                    if poll_ms == 0:
                        break
                    if not r_open and r in (reg_a, reg_b):  # EOF before the exit: stop polling the pipe
                        poller.unregister(r)
                        if reg_a == r:
                            reg_a = -1
                        else:
                            reg_b = -1
                    remaining = deadline - perf()
                    poll_ms = int(remaining * 1000.0) + 1 if remaining > 0 else 0
            else:
                status, out = _wait_steps(pid, r, out, deadline)
                r_open = status is None  # _wait_steps drained the pipe of an exited child
            proof = None
            if status is None:  # alive at the early look or at timeout_ms: prove it blocked, or wait for it
                proof = _prove(pid, pfd, r, r_open, out, t_fork, deadline, timeout_s, hp)
                status, out, r_open = proof.status, proof.out, proof.r_open
                if status is not None and proof.slow:
                    n_slow += 1
                    if len(slow_examples) < MAX_FIRST_FAILURES:
                        slow_examples.append({"iteration": i - 1, "ms": round((perf() - t_fork) * 1000.0, 1)})
            if pfd >= 0:
                close(pfd)
                pfd = -1
            if status is not None:
                if r_open:  # exited, but the pipe is not at EOF yet (a grandchild holds it?): take what is there
                    out = _drain(r, out)
                pid = 0

            now = perf()
            if status == 0 and expect_re is None:
                n_ok += 1
                ok_ms.append(now - t_fork)
                close(r)
                r = -1
                continue

            # ---- anything but a plain ok ----
            failure = None
            if status is None:
                n_hang += 1
                at_ms = int((perf() - t_fork) * 1000.0)
                if proof.blocked == "yes":
                    msg = "blocked: no thread running and no CPU time over %d ms, at +%d ms" % (hp["sample_ms"], at_ms)
                else:
                    msg = "still running after %d ms (%g x the %d ms timeout): not blocked, no end" \
                          % (at_ms, hp["hard_factor"], int(timeout_s * 1000))
                failure = {"kind": "hang", "signal": None, "status": None, "message": msg,
                           "diag": {"proof": "\n".join(proof.lines), "blocked": proof.blocked}}
                if diagnosed < diag_max:
                    diagnosed += 1
                    t_diag = perf()
                    failure["diag"].update(_diagnose(pid, gdb))
                    t_end += perf() - t_diag  # gdb on a big interpreter takes seconds: not forking time
                _kill_and_reap(pid)
                pid = 0
                out = _drain(r, out)
                if out is not None:
                    failure["message"] += "; output: " + out[1].decode("utf-8", "replace")
            elif os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                n_crash += 1
                msg = "killed by %s (%d)" % (_signame(sig), sig)
                if out is not None:
                    msg += ": " + out[1].decode("utf-8", "replace")
                failure = {"kind": "crash", "signal": sig, "signame": _signame(sig), "status": None,
                           "message": msg}
            else:
                code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
                if code != 0:
                    n_wrong += 1
                    msg = out[1].decode("utf-8", "replace") if out is not None else ""
                    failure = {"kind": "wrong", "signal": None, "status": code,
                               "message": msg or "exit status %d, no output" % code}
                elif not expect_re.search(out[0] if out is not None else b""):
                    n_wrong += 1
                    head = out[0] if out is not None else b""
                    failure = {"kind": "wrong", "signal": None, "status": 0,
                               "message": "output did not match /%s/: %s"
                                          % (expect, head[-TAIL_BYTES:].decode("utf-8", "replace"))}
                else:
                    n_ok += 1
                    ok_ms.append(now - t_fork)
            close(r)
            r = -1
            now = perf()
            if failure is not None:
                if len(failures) < MAX_FIRST_FAILURES:
                    failure["iteration"] = i - 1
                    failure["elapsed_ms"] = round((t_fork - t_start) * 1000.0, 1)
                    failures.append(failure)
                if fail_fast:
                    break
    finally:
        if not _IN_CHILD:
            if pid > 0:  # interrupted while a child was running: it must not outlive us
                _kill_and_reap(pid)
            for fd in (r, w, pfd):
                if fd >= 0:
                    try:
                        close(fd)
                    except OSError:
                        pass
            result["elapsed_ms"] = round((perf() - t_start) * 1000.0, 1)
            result["forks"] = i
            result.update({"ok": n_ok, "hang": n_hang, "crash": n_crash, "wrong": n_wrong})
            ok_ms.sort()
            result["child_ms"] = {"median": _percentile(ok_ms, 0.5), "p99": _percentile(ok_ms, 0.99)}
            result["first_failures"] = failures
            result["slow"] = n_slow
            result["slow_examples"] = slow_examples
            t_stop = perf()
            its = list(_ITERS)
            result["pressure"] = {
                "window_ms": result["elapsed_ms"],
                "threads": [{"iterations": its[k] - iters_base[k],
                             "last_ms": round((t_stop - _LAST[k]) * 1000.0, 1) if _LAST[k] else None,
                             "error": _ERRS[k]} for k in range(len(its))],
                "forks_inside": forks_inside,
                "forks_sampled": i,
            }
            if stop is not None:
                stop.set()


def main():
    result = {"forks": 0, "ok": 0, "hang": 0, "crash": 0, "wrong": 0, "elapsed_ms": 0.0,
              "child_ms": {"median": None, "p99": None}, "first_failures": [], "libc": None, "runtime": None,
              "threads_started": 0, "skipped": None, "error": None}
    if len(sys.argv) != 2:
        sys.stderr.write("usage: harness.py config.json\n")
        os._exit(2)
    try:
        with open(sys.argv[1]) as f:
            cfg = json.load(f)
        out_path = cfg["result"]
    except Exception as e:
        sys.stderr.write("harness: cannot read config %s: %s\n" % (sys.argv[1], e))
        os._exit(2)
    try:
        result["libc"] = _libc_info()
        result["runtime"] = _runtime_info()
        if cfg.get("env_check"):
            result["environ"] = dict(os.environ)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _on_signal)
        run(cfg, result)
        result["runtime"]["gil"] = _gil_enabled()  # after the case: importing an extension may have enabled it
    except SystemExit:
        if _IN_CHILD:  # a child ending with `exit: exit` unwinds through here to a normal interpreter exit
            raise
        result["error"] = "harness: unexpected SystemExit"
    except CaseError as e:
        result["error"] = str(e)
    except _Stopped as e:
        result["error"] = str(e)
    except BaseException as e:
        if _IN_CHILD:
            os._exit(4)
        result["error"] = "harness failed: %s" % _format_exc(e, skip_frames=0, limit=6)
    try:
        _write_result(out_path, result)
    except Exception as e:
        sys.stderr.write("harness: cannot write result %s: %s\n" % (out_path, e))
        sys.stderr.flush()
        os._exit(2)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    os._exit(0)  # the loop threads may be stuck inside a snippet: do not wait for them


if __name__ == "__main__":
    main()
