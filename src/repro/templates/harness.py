
# ---- the fork loop: what forkmatrix's harness (runners/python/harness.py) does, without its bookkeeping ----

def _fm_say(text):
    data = text.encode("utf-8", "replace")
    while data:
        data = data[os.write(_FM_REPORT, data):]


def _fm_loop_thread(k, stop):
    try:
        while not stop.is_set():
            _INSIDE[k] = 1
            _fm_loop()
            _INSIDE[k] = 0
            _ITERS[k] += 1
    except BaseException as e:  # a body that raises ends its thread (the harness keeps the first error)
        _INSIDE[k] = 0
        _FM_ERRORS.append("loop thread %d stopped: %s: %s" % (k, type(e).__name__, e))


def _fm_wait(pid, r, deadline):
    """Wait for pid until deadline, reading its output: (status or None when still alive, output)."""
    out = b""
    pfd = -1
    if hasattr(os, "pidfd_open"):
        try:
            pfd = os.pidfd_open(pid)
        except OSError:
            pfd = -1
    poller = select.poll()
    poller.register(r, select.POLLIN)
    if pfd >= 0:
        poller.register(pfd, select.POLLIN)
    r_open = True
    try:
        while True:
            wpid, status = os.waitpid(pid, os.WNOHANG)
            if wpid == pid:
                while r_open and poller.poll(0):
                    data = os.read(r, 65536)
                    if not data:
                        break
                    out += data
                return status, out
            left = deadline - time.monotonic()
            if left <= 0:
                return None, out
            for fd, _ev in poller.poll(int(left * 1000) + 1 if pfd >= 0 else 1):
                if fd == r and r_open:
                    data = os.read(r, 65536)
                    if data:
                        out += data
                    else:
                        r_open = False
                        poller.unregister(r)
    finally:
        if pfd >= 0:
            os.close(pfd)


# x86_64 system calls that wait with a timeout: None = always, (argument, "p") = a non-NULL timeout pointer,
# (argument, "i") = a timeout other than -1 (as runners/python/harness.py)
_FM_TIMED = {35: None, 230: None, 202: (4, "p"), 449: (5, "p"), 7: (3, "i"), 271: (3, "p"), 23: (5, "p"), 270: (5, "p"),
             232: (4, "i"), 281: (4, "i"), 441: (4, "p")}


def _fm_timed_wait(task):
    if os.uname().machine != "x86_64":
        return False
    try:
        with open(task + "/syscall") as f:
            fields = f.read().split()
        how = _FM_TIMED[int(fields[0])]
        if how is None:
            return True
        arg = int(fields[how[0]], 16)
    except (OSError, ValueError, IndexError, KeyError):
        return False
    return arg != 0 if how[1] == "p" else (arg & 0xffffffff) != 0xffffffff


def _fm_look(pid):
    """One look at the child's process group: (a thread is running, a thread is in a timed wait or D, progress sum:
    CPU ticks plus each thread's schedstat run time and times scheduled)."""
    running = soft = False
    sig = 0
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pid and int(p) != pid:
                continue
            sig += int(fields[11]) + int(fields[12])
            for t in os.listdir("/proc/%s/task" % p):
                task = "/proc/%s/task/%s" % (p, t)
                with open(task + "/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                if state == "R":
                    running = True
                elif state == "D" or (state == "S" and _fm_timed_wait(task)):
                    soft = True
                try:
                    with open(task + "/schedstat") as f:
                        ss = f.read().split()
                    sig += int(ss[0]) * 31 + int(ss[2])
                except (OSError, ValueError, IndexError):
                    pass
        except (OSError, IndexError, ValueError):
            continue
    return running, soft, sig


def _fm_wait_slow(pid, r, t0, out):
    """A child alive at the timeout is a hang when blocked: no thread of its group running or in a timed wait in two
    looks 100 ms apart, and no progress between them. One that is not is slow: waited for up to 5 x the timeout,
    as the harness does. Returns (status or None for a hang, output)."""
    timeout = FM_TIMEOUT_MS / 1000.0
    hard, step = t0 + 5 * timeout, max(0.1, timeout / 4)
    while True:
        a = _fm_look(pid)
        status, more = _fm_wait(pid, r, time.monotonic() + 0.1)
        out += more
        if status is not None:
            return status, out
        b = _fm_look(pid)
        if (not a[0] and not b[0] and not a[1] and not b[1] and a[2] == b[2]) or time.monotonic() >= hard:
            return None, out
        status, more = _fm_wait(pid, r, min(hard, time.monotonic() + step))
        out += more
        if status is not None:
            return status, out


def _fm_child_exception(e):
    if isinstance(e, SystemExit) and (e.code is None or e.code == 0):
        return None
    import traceback
    lines = traceback.format_exception(type(e), e, e.__traceback__)
    os.write(2, ("".join(lines[-6:])).encode("utf-8", "replace"))
    os._exit(1)


def _fm_main():
    global _FM_REPORT, _FM_IN_CHILD
    forks = int(sys.argv[1]) if len(sys.argv) > 1 else FM_FORKS
    # this program's lines go to the original stdout; the case's own stdio goes to /dev/null, as the harness's
    # goes to a log file (so sys.stdout is block-buffered, as there)
    _FM_REPORT = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    if getattr(sys.stdout, "line_buffering", False) and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=False)
    expect = re.compile(FM_EXPECT.encode("utf-8"), re.M) if FM_EXPECT is not None else None
    try:
        if _fm_setup() is False:
            raise RuntimeError("setup returned False")
    except _Skip as e:
        _fm_say("cannot run here: %s\nnothing was judged (exit 2)\n" % e)
        os._exit(2)
    except Exception as e:
        _fm_say("setup raised %s: %s\nnothing was judged (exit 2)\n" % (type(e).__name__, e))
        os._exit(2)
    import threading
    stop = threading.Event()
    _INSIDE[:] = [0] * FM_THREADS
    _ITERS[:] = [0] * FM_THREADS
    for k in range(FM_THREADS):
        target, args = (_fm_loop_thread, (k, stop)) if FM_HAS_LOOP else (stop.wait, ())
        threading.Thread(target=target, args=args, name="fm-loop-%d" % k, daemon=True).start()
    time.sleep(FM_WARMUP_MS / 1000.0)
    try:
        if _fm_precondition() is False:
            raise RuntimeError("returned False")
    except BaseException as e:
        _fm_say("precondition failed: %s: %s\nnothing was judged (exit 2)\n" % (type(e).__name__, e))
        os._exit(2)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    rng = random.Random(FM_SEED)
    counts = {"hang": 0, "crash": 0, "wrong": 0}
    it0 = sum(_ITERS)
    inside_n = n = slow = 0
    start = time.monotonic()
    while n < forks and (n == 0 or time.monotonic() - start < FM_SECONDS):
        d = rng.randint(0, FM_MAX_DELAY_US) if FM_MAX_DELAY_US > 0 else 0
        if d > 50:
            time.sleep(d * 1e-6)
        elif d:
            until = time.perf_counter() + d * 1e-6
            while time.perf_counter() < until:
                pass
        _fm_before_fork()
        r, w = os.pipe()
        if 1 in _INSIDE:
            inside_n += 1
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _FM_IN_CHILD = True
            try:
                os.setpgid(0, 0)
                os.dup2(w, 1)
                os.dup2(w, 2)
                if w > 2:
                    os.close(w)
                os.close(r)
                ret = _fm_child()
            except BaseException as e:
                ret = _fm_child_exception(e)  # returns only for SystemExit(0)
            if ret is False:
                os.write(2, b"child returned false\n")
                os._exit(1)
            if FM_EXIT_NORMAL:
                raise SystemExit(0)  # a normal interpreter exit: atexit handlers, threading._shutdown, stdio flush
            os._exit(0)
        os.close(w)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        status, out = _fm_wait(pid, r, t0 + FM_TIMEOUT_MS / 1000.0)
        if status is None:
            status, out = _fm_wait_slow(pid, r, t0, out)
            slow += status is not None
        kind = why = None
        if status is None:
            kind, why = "hang", "blocked (or still running after 5 x %d ms): killed %.0f ms after its fork" % (FM_TIMEOUT_MS, (time.monotonic() - t0) * 1000)
            for k in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                try:
                    k()
                except OSError:
                    pass
            os.waitpid(pid, 0)
        elif os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            kind, why = "crash", "killed by %s (%d)" % (signal.Signals(sig).name, sig)
        elif os.WEXITSTATUS(status) != 0:
            kind, why = "wrong", "exit status %d" % os.WEXITSTATUS(status)
        elif expect is not None and not expect.search(out[:4096]):
            kind, why = "wrong", "output did not match /%s/" % FM_EXPECT
        os.close(r)
        if kind:
            if sum(counts.values()) < 5:
                tail = out.decode("utf-8", "replace").strip()[-400:]
                _fm_say("child %d: %s: %s%s\n" % (n, kind, why, (": " + tail) if tail else ""))
            counts[kind] += 1
        n += 1
    ms = (time.monotonic() - start) * 1000
    iters = sum(_ITERS) - it0
    stop.set()
    bad = sum(counts.values())
    for e in _FM_ERRORS[:3]:
        _fm_say(e + "\n")
    _fm_say("pressure: %d loop thread(s), %d iterations in %.0f ms; at %d of %d forks a thread was inside its loop body\n"
            % (FM_THREADS, iters, ms, inside_n, n))
    if slow:
        _fm_say("%d child(ren) were still running at the %d ms timeout and finished later (slow, not hangs)\n" % (slow, FM_TIMEOUT_MS))
    _fm_say("%d of %d children failed (%d hang, %d crash, %d wrong)\n" % (bad, n, counts["hang"], counts["crash"], counts["wrong"]))
    os._exit(1 if bad else 0)  # the loop threads may be stuck inside the case's code: do not wait for them


if __name__ == "__main__":
    _fm_main()
