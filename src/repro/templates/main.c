/* ---- the fork loop: what forkmatrix's C harness (runners/libc/harness.c) does, without its bookkeeping ---- */

typedef struct { int inside; long iterations; char pad[112]; } __attribute__((aligned(128))) fm_slot_t;
static fm_slot_t *fm_slots;
static int fm_report = 1;        /* the original stdout: this program's own lines; fd 1 and 2 go to /dev/null */
static const char *fm_phase = "setup";
static void (*fm_end_fns[8])(void);
static int fm_n_end;

int fm_inside(void) {
    int n = 0;
    for (int t = 0; t < fm_threads; t++) n += __atomic_load_n(&fm_slots[t].inside, __ATOMIC_RELAXED);
    return n;
}
long fm_iterations(void) {
    long n = 0;
    for (int t = 0; t < fm_threads; t++) n += __atomic_load_n(&fm_slots[t].iterations, __ATOMIC_RELAXED);
    return n;
}
void fm_use(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }
void fm_at_end(void (*fn)(void)) { if (fm_n_end < 8) fm_end_fns[fm_n_end++] = fn; }
void fm_write(int fd, const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        s += w, n -= (size_t)w;
    }
}
double fm_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
void fm_sleep_ms(double ms) {
    if (ms <= 0) return;
    struct timespec ts = {(time_t)(ms / 1e3), (long)((ms - (double)(time_t)(ms / 1e3) * 1e3) * 1e6)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
int fm_thread_count(void) {
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
    if (fd < 0) return -1;
    char buf[4096];
    long got;
    while ((got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
        for (long off = 0; off < got;) {
            unsigned short reclen = *(unsigned short *)(buf + off + 16);
            if (buf[off + 19] != '.') n++;
            off += reclen;
        }
    close(fd);
    return n;
}
static void fm_say(const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fm_write(fm_report, buf);
}
/* In the child: a `wrong` child (message, _exit(1)). In the parent: the case cannot run here (exit 2). */
void fm_fail(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (fm_in_child) {
        strcat(buf, "\n");
        fm_write(2, buf);
        _exit(1);
    }
    fm_say("fm_fail in the parent (%s): %s\nnothing was judged (exit 2)\n", fm_phase, buf);
    _exit(2);
}
void fm_skip(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (fm_in_child) {
        fm_write(2, "fm_skip in child: ");
        fm_write(2, buf);
        fm_write(2, "\n");
        _exit(1);
    }
    fm_say("cannot run here: %s\nnothing was judged (exit 2)\n", buf);
    _exit(2);
}

static void *fm_loop_thread(void *arg) {
    fm_thread_index = (int)(intptr_t)arg;
    fm_slot_t *me = &fm_slots[fm_thread_index];
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10); /* as the harness: the forking thread gets the CPU */
    while (!fm_stop) {
        __atomic_store_n(&me->inside, 1, __ATOMIC_RELAXED);
        fm_loop();
        __atomic_store_n(&me->inside, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&me->iterations, me->iterations + 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static uint64_t fm_rng;
static uint64_t fm_splitmix64(void) {
    uint64_t z = (fm_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const char *fm_signame(int sig) {
    static const struct { int n; const char *s; } t[] = {{SIGSEGV, "SIGSEGV"}, {SIGBUS, "SIGBUS"}, {SIGABRT, "SIGABRT"},
        {SIGILL, "SIGILL"}, {SIGFPE, "SIGFPE"}, {SIGKILL, "SIGKILL"}, {SIGTERM, "SIGTERM"}, {SIGPIPE, "SIGPIPE"},
        {SIGALRM, "SIGALRM"}, {SIGTRAP, "SIGTRAP"}, {SIGSYS, "SIGSYS"}, {SIGINT, "SIGINT"}, {SIGHUP, "SIGHUP"},
        {SIGQUIT, "SIGQUIT"}, {SIGUSR1, "SIGUSR1"}, {SIGUSR2, "SIGUSR2"}, {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (t[i].n == sig) return t[i].s;
    return "signal";
}

#define FM_KEEP 65536
static char fm_out[FM_KEEP + 1];
static size_t fm_outlen;
static void fm_drain(int fd) {
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
        if (n < 0) continue;
        size_t k = (size_t)n < FM_KEEP - fm_outlen ? (size_t)n : FM_KEEP - fm_outlen;
        memcpy(fm_out + fm_outlen, buf, k);
        fm_outlen += k;
    }
}
static const char *fm_tail(void) {
    fm_out[fm_outlen] = 0;
    for (size_t i = 0; i < fm_outlen; i++)
        if (!fm_out[i]) fm_out[i] = ' ';
    while (fm_outlen && fm_out[fm_outlen - 1] == '\n') fm_out[--fm_outlen] = 0;
    return fm_outlen > 300 ? fm_out + fm_outlen - 300 : fm_out;
}

/* Wait for `pid` until `deadline` (ms), draining the output pipe: 1 = exited (*st set), 0 = still alive. */
static int fm_wait(pid_t pid, int out, double deadline, int *st) {
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    for (;;) {
        if (waitpid(pid, st, WNOHANG) == pid) {
            if (pfd >= 0) close(pfd);
            fm_drain(out);
            return 1;
        }
        double left = deadline - fm_now_ms();
        if (left <= 0) {
            if (pfd >= 0) close(pfd);
            return 0;
        }
        struct pollfd f[2] = {{out, POLLIN, 0}, {pfd, POLLIN, 0}};
        poll(f, pfd >= 0 ? 2 : 1, pfd >= 0 ? (int)left + 1 : 1);
        fm_drain(out);
    }
}

/* Is thread `task` (a /proc/P/task/T directory) in a system call that waits with a timeout (x86_64 numbers:
 * nanosleep, clock_nanosleep; futex, futex_waitv, ppoll, select, pselect6, epoll_pwait2 with a timeout pointer; poll,
 * epoll_wait, epoll_pwait with a timeout other than -1)? It wakes by itself: not blocked, as in the harness. */
static int fm_timed_wait(const char *task) {
#ifdef __x86_64__
    char p[400], buf[512];
    snprintf(p, sizeof p, "%s/syscall", task);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    long nr;
    unsigned long a[6] = {0};
    if (sscanf(buf, "%ld %lx %lx %lx %lx %lx %lx", &nr, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5]) < 1) return 0;
    switch (nr) {
    case 35: case 230: return 1;
    case 202: return a[3] != 0;
    case 449: return a[4] != 0;
    case 7: return (a[2] & 0xffffffffUL) != 0xffffffffUL;
    case 271: return a[2] != 0;
    case 23: case 270: return a[4] != 0;
    case 232: case 281: return (a[3] & 0xffffffffUL) != 0xffffffffUL;
    case 441: return a[3] != 0;
    }
#else
    (void)task;
#endif
    return 0;
}

/* One look at the child's process group (every process whose pgid is `pid`, and the child itself): whether a
 * thread of it is running (R), whether one is in a timed wait or in D (it will move by itself: `soft`), and a sum of
 * its CPU ticks and each thread's schedstat run time and times scheduled (`sig`: equal in two looks = no progress). */
typedef struct { int running, soft; unsigned long long sig; } fm_look_t;
static fm_look_t fm_look(pid_t pid) {
    fm_look_t l = {0, 0, 0};
    DIR *d = opendir("/proc");
    if (!d) return (fm_look_t){1, 0, 0};
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[300], buf[1024];
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(p, sizeof p, "/proc/%s/stat", e->d_name);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = 0;
        char *rp = strrchr(buf, ')'), st;
        long ppid, pgrp, f[12];
        if (!rp || sscanf(rp + 2, "%c %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld", &st, &ppid, &pgrp, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10]) < 14) continue;
        if (pgrp != pid && atol(e->d_name) != pid) continue;
        l.sig += (unsigned long long)(f[9] + f[10]); /* utime + stime */
        snprintf(p, sizeof p, "/proc/%s/task", e->d_name);
        DIR *t = opendir(p);
        struct dirent *te;
        while (t && (te = readdir(t))) {
            if (te->d_name[0] == '.') continue;
            char task[300];
            snprintf(task, sizeof task, "/proc/%s/task/%s", e->d_name, te->d_name);
            snprintf(p, sizeof p, "%s/stat", task);
            int tf = open(p, O_RDONLY | O_CLOEXEC);
            if (tf < 0) continue;
            ssize_t k = read(tf, buf, sizeof buf - 1);
            close(tf);
            buf[k > 0 ? k : 0] = 0;
            char *tp = strrchr(buf, ')');
            char ts = tp ? tp[2] : '?';
            if (ts == 'R') l.running = 1;
            else if (ts == 'D' || (ts == 'S' && fm_timed_wait(task))) l.soft = 1;
            snprintf(p, sizeof p, "%s/schedstat", task);
            if ((tf = open(p, O_RDONLY | O_CLOEXEC)) >= 0) {
                k = read(tf, buf, sizeof buf - 1);
                close(tf);
                buf[k > 0 ? k : 0] = 0;
                unsigned long long ns = 0, wait = 0, times = 0;
                if (sscanf(buf, "%llu %llu %llu", &ns, &wait, &times) == 3) l.sig += ns * 31 + times;
            }
        }
        if (t) closedir(t);
    }
    closedir(d);
    return l;
}

/* A child alive at the timeout is a hang when it is blocked: no thread of its group running or in a timed wait in
 * two looks 100 ms apart, and no progress (CPU time, schedstat) between them. One that is not is slow: waited for,
 * looked at every max(100 ms, timeout / 4), up to 5 x the timeout (then a hang), as the harness does.
 * 1 = exited (*st set), 0 = a hang. */
static int fm_wait_slow(pid_t pid, int out, double t0, int *st, int *slow) {
    double hard = t0 + 5 * FM_TIMEOUT_MS, step = FM_TIMEOUT_MS / 4 > 100 ? FM_TIMEOUT_MS / 4 : 100;
    for (;;) {
        fm_look_t a = fm_look(pid);
        if (fm_wait(pid, out, fm_now_ms() + 100, st)) return *slow = 1;
        fm_look_t b = fm_look(pid);
        if (!a.running && !b.running && !a.soft && !b.soft && a.sig == b.sig) return 0;
        if (fm_now_ms() >= hard) return 0;
        if (fm_wait(pid, out, fm_now_ms() + step < hard ? fm_now_ms() + step : hard, st)) return *slow = 1;
    }
}

int main(int argc, char **argv) {
    long forks = argc > 1 ? atol(argv[1]) : FM_FORKS;
    if (forks < 1) forks = FM_FORKS;
    fm_threads = FM_THREADS;
    for (size_t i = 0; i + 1 < sizeof fm_case_env / sizeof *fm_case_env; i += 2) setenv(fm_case_env[i], fm_case_env[i + 1], 1);
    fm_libraries();
    /* this program's lines go to the original stdout; the case's own stdio goes to /dev/null as the harness's
     * goes to a log file (so stdout is fully buffered, as there) */
    fm_report = fcntl(1, F_DUPFD_CLOEXEC, 3);
    int null = open("/dev/null", O_WRONLY);
    if (fm_report < 0 || null < 0) return 2;
    dup2(null, 1), dup2(null, 2), close(null);
    regex_t re;
    if (FM_EXPECT && regcomp(&re, FM_EXPECT, REG_EXTENDED | REG_NEWLINE | REG_NOSUB) != 0) fm_fail("expect_output does not compile");
    fm_rng = FM_SEED;
    fm_setup();
    fm_phase = "loop threads";
    fm_slots = calloc(fm_threads > 0 ? (size_t)fm_threads : 1, sizeof *fm_slots);
    for (int t = 0; t < fm_threads; t++) {
        pthread_t th;
        if (pthread_create(&th, NULL, fm_loop_thread, (void *)(intptr_t)t) != 0) fm_fail("pthread_create failed");
    }
    fm_sleep_ms(FM_WARMUP_MS);
    fm_phase = "precondition";
    if (fm_precondition() != 0) fm_fail("precondition failed");
    fm_phase = "fork loop";
    int pp[2];
    if (pipe2(pp, O_CLOEXEC) != 0 || fcntl(pp[0], F_SETFL, O_NONBLOCK) != 0) fm_fail("pipe2: %s", strerror(errno));
    long it0 = fm_iterations(), n = 0, inside = 0, failed[3] = {0, 0, 0}, n_slow = 0;
    pid_t self = getpid();
    double start = fm_now_ms();
    for (; n < forks && (n == 0 || fm_now_ms() - start < FM_SECONDS * 1e3); n++) {
        uint64_t d = FM_MAX_DELAY_US > 0 ? fm_splitmix64() % (uint64_t)(FM_MAX_DELAY_US + 1) : 0;
        if (d > 0 && d <= 50) {
            double until = fm_now_ms() + (double)d / 1e3;
            while (fm_now_ms() < until) {
            }
        } else if (d > 0) fm_sleep_ms((double)d / 1e3);
        fm_before_fork();
        inside += fm_inside() > 0;
        fm_outlen = 0;
        double t0 = fm_now_ms();
        pid_t pid = fork();
        if (pid == 0) {
            fm_in_child = 1;
            setpgid(0, 0);
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != self) _exit(125);
            dup2(pp[1], 1);
            dup2(pp[1], 2);
            close(fm_report);
            int rc = fm_child();
            if (rc != 0) {
                char m[64];
                snprintf(m, sizeof m, "child returned %d\n", rc);
                fm_write(2, m);
                _exit((rc & 0xff) ? (rc & 0xff) : 1);
            }
            if (FM_EXIT_NORMAL) exit(0);
            _exit(0);
        }
        if (pid < 0) fm_fail("fork: %s", strerror(errno));
        setpgid(pid, pid);
        int st = 0, kind = -1, slow = 0; /* 0 hang, 1 crash, 2 wrong */
        char why[160] = "";
        if (!fm_wait(pid, pp[0], t0 + FM_TIMEOUT_MS, &st) && !fm_wait_slow(pid, pp[0], t0, &st, &slow)) {
            kind = 0;
            snprintf(why, sizeof why, "blocked (or still running after 5 x %d ms): killed %.0f ms after its fork", (int)FM_TIMEOUT_MS, fm_now_ms() - t0);
            kill(-pid, SIGKILL), kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
            fm_drain(pp[0]);
        } else if (WIFSIGNALED(st)) {
            kind = 1;
            snprintf(why, sizeof why, "killed by %s (%d)", fm_signame(WTERMSIG(st)), WTERMSIG(st));
        } else if (WEXITSTATUS(st) != 0) {
            kind = 2;
            snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(st));
        } else if (FM_EXPECT && (fm_tail(), regexec(&re, fm_out, 0, NULL, 0) != 0)) {
            kind = 2;
            snprintf(why, sizeof why, "output did not match /%s/", FM_EXPECT);
        }
        n_slow += slow;
        if (kind >= 0) {
            if (failed[0] + failed[1] + failed[2] < 5)
                fm_say("child %ld: %s: %s%s%s\n", n, kind == 0 ? "hang" : kind == 1 ? "crash" : "wrong", why, fm_outlen ? ": " : "", fm_tail());
            failed[kind]++;
        }
    }
    double ms = fm_now_ms() - start;
    long iters = fm_iterations() - it0;
    fm_stop = 1;
    for (int i = 0; i < 20 && fm_inside() > 0; i++) fm_sleep_ms(25);
    for (int i = 0; i < fm_n_end; i++) fm_end_fns[i]();
    long bad = failed[0] + failed[1] + failed[2];
    fm_say("pressure: %d loop thread(s), %ld iterations in %.0f ms; at %ld of %ld forks a thread was inside its loop body\n", fm_threads, iters, ms, inside, n);
    if (n_slow) fm_say("%ld child(ren) were still running at the %.0f ms timeout and finished later (slow, not hangs)\n", n_slow, FM_TIMEOUT_MS);
    fm_say("%ld of %ld children failed (%ld hang, %ld crash, %ld wrong)\n", bad, n, failed[0], failed[1], failed[2]);
    _exit(bad ? 1 : 0); /* the loop threads may be stuck inside the case's code: do not join them */
}
