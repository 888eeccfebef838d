/* harness.c: the forkmatrix harness for the `libc` runtime (C).
 *
 * Implements runners/PROTOCOL.md. The driver generates case.c (fm_setup/fm_loop/fm_precondition/fm_before_fork/
 * fm_child from the case's YAML) and builds:
 *     cc -std=gnu11 -O1 -g -fno-omit-frame-pointer -fno-builtin -pthread -I runners/libc \
 *        case.c runners/libc/harness.c -o case.bin -ldl -lrt
 * (same flags with musl-gcc for musl) and runs  case.bin config.json .  See runners/libc/README.md.
 *
 * Portable to glibc and musl 1.2.2+: glibc-only functions are reached through weak symbols; pidfd_open is
 * called as syscall 434 with a fallback.
 *
 * Parent: parse config, fm_setup(), start `threads` pthreads looping fm_loop() (at nice +10, see loop_thread;
 * each iteration wrapped in the pressure counters), warm up, fm_precondition(), read `mapped`, then fork
 * repeatedly with seeded random delays (splitmix64 on `seed`), fm_before_fork() and a look at the counters
 * before each fork. Child: own process group (so a hung child's descendants die with it),
 * PR_SET_PDEATHSIG(SIGKILL) (no child outlives the harness), fds 1+2 onto the output pipe, fm_child(), then
 * _exit(0) or exit(0). The parent waits with pidfd_open + poll (fallback: poll the pipe + waitid(WNOHANG|WNOWAIT)
 * in 1 ms steps), reads the output meanwhile (first 4096 bytes kept), classifies ok/wrong/crash; a child still
 * alive at the early look or the timeout is sampled through /proc (the hang proof, see prove()): blocked = a hang,
 * else slow (waited on, up to hard_factor x timeout). The first diag.max hangs are diagnosed
 * (/proc/PID/{wchan,syscall,stack} + gdb); then the harness SIGKILLs the child's process group and reaps the child
 * and whatever it left behind (the harness is a child subreaper). At the end it stops the loops, runs the case's
 * fm_at_end cleanups, writes the result JSON (result.tmp, then rename) and _exit(0)s without joining the loop
 * threads (they may be stuck in a snippet).
 *
 * Cost per fork on top of fork+_exit+waitpid: the seeded delay (0..max_delay_us; up to 50 us it spins on the
 * vDSO clock, as a nanosleep costs more than that), fm_before_fork() (empty unless the case says), one relaxed
 * load per loop thread (forks_inside), pidfd_open, poll, close, read, kill, waitpid in the parent (one output
 * pipe serves all children); setpgid, prctl, getppid, 2 dup2, 2 close in the child. /proc is read only for a child
 * still alive at the early look or the timeout. Per loop iteration: 3 relaxed stores and a coarse vDSO clock read.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fm.h"

#include <limits.h>
#include <poll.h>
#include <regex.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <dirent.h>

#ifndef PR_SET_CHILD_SUBREAPER
#define PR_SET_CHILD_SUBREAPER 36
#endif
#ifndef PR_SET_TIMERSLACK
#define PR_SET_TIMERSLACK 29
#endif
#ifndef PR_SET_PDEATHSIG
#define PR_SET_PDEATHSIG 1
#endif
#define FM_SYS_pidfd_open 434
#define FM_SYS_getdents64 217 /* x86_64; overridden below when the headers know better */
#ifdef SYS_getdents64
#undef FM_SYS_getdents64
#define FM_SYS_getdents64 SYS_getdents64
#endif

extern char **environ;

/* The build command links no libm (glibc keeps ceil/fmod there): small local versions. */
static long ceil_ms(double v) {
    long l = (long)v;
    return (double)l < v ? l + 1 : l;
}
static int finite_num(double v) { return v == v && v < 1e300 && v > -1e300; }
/* glibc only; NULL under musl. */
extern const char *gnu_get_libc_version(void) __attribute__((weak));

/* ------------------------------------------------------------------------------------------------ */
/* snippet API                                                                                       */

__thread int fm_thread_index = -1;
int fm_threads = 0;
volatile int fm_in_child = 0;
volatile int fm_stop = 0;

/* Pressure (PROTOCOL.md step 2): one slot per loop thread, each on its own cache lines (no false sharing between
 * the threads, or with the forking thread that reads them). Written only by its thread, with relaxed atomics; read
 * by the forking thread right before each fork (one load per thread: no syscall) and by fm_inside/fm_iterations.
 * last_done is CLOCK_MONOTONIC_COARSE (vDSO, ~12 ns here against ~80-120 ns for CLOCK_MONOTONIC; resolution one
 * tick, 4 ms): good enough to tell a stalled thread, cheap enough not to thin the loop out. */
typedef struct {
    _Alignas(128) int inside;  /* 1 while the thread is inside fm_loop() */
    long iterations;           /* fm_loop() calls finished */
    double last_done;          /* coarse monotonic ms at the end of the last finished iteration; 0: none yet */
} pressure_slot_t;
static pressure_slot_t *P;     /* cfg.threads slots (NULL when threads = 0) */

static double coarse_ms(void) {
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0) return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
#endif
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int fm_inside(void) {
    int n = 0;
    for (int t = 0; P && t < fm_threads; t++) n += __atomic_load_n(&P[t].inside, __ATOMIC_RELAXED) != 0;
    return n;
}

long fm_iterations(void) {
    long n = 0;
    for (int t = 0; P && t < fm_threads; t++) n += __atomic_load_n(&P[t].iterations, __ATOMIC_RELAXED);
    return n;
}

__attribute__((noinline)) void fm_use(void *p) { __asm__ __volatile__("" : : "r"(p) : "memory"); }

void fm_write(int fd, const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

double fm_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void fm_sleep_ms(double ms) {
    if (ms <= 0) return;
    long long ns = (long long)(ms * 1e6);
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int fm_thread_count(void) {
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[4096];
    int count = 0;
    for (;;) {
        long n = syscall(FM_SYS_getdents64, fd, buf, sizeof buf);
        if (n < 0) {
            close(fd);
            return -1;
        }
        if (n == 0) break;
        for (long off = 0; off < n;) {
            /* struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; } */
            unsigned short reclen;
            memcpy(&reclen, buf + off + 16, sizeof reclen);
            const char *name = buf + off + 19;
            if (name[0] != '.') count++;
            off += reclen;
        }
    }
    close(fd);
    return count;
}

/* ------------------------------------------------------------------------------------------------ */
/* growable string buffer + JSON output                                                              */

typedef struct {
    char *p;
    size_t n, cap;
} sb_t;

static void sb_add(sb_t *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (b->n + n + 1 > cap) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            fm_write(2, "forkmatrix harness: out of memory\n");
            _exit(3);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_puts(sb_t *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb_t *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sb_add(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) return;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, (size_t)n);
    free(big);
}

/* Length of a valid UTF-8 sequence at s (max n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, min = 0x10000;
    else return 0;
    if (len > n) return 0;
    unsigned cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/* A JSON string literal of n bytes: escapes quotes, backslashes and control characters; invalid UTF-8
 * bytes become U+FFFD so the document is always valid JSON. */
static void sb_jstrn(sb_t *b, const char *s, size_t n) {
    sb_add(b, "\"", 1);
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        if (c == '"') sb_add(b, "\\\"", 2), i++;
        else if (c == '\\') sb_add(b, "\\\\", 2), i++;
        else if (c == '\n') sb_add(b, "\\n", 2), i++;
        else if (c == '\r') sb_add(b, "\\r", 2), i++;
        else if (c == '\t') sb_add(b, "\\t", 2), i++;
        else if (c < 0x20 || c == 0x7f) sb_printf(b, "\\u%04x", c), i++;
        else if (c < 0x80) sb_add(b, s + i, 1), i++;
        else {
            size_t l = utf8_len(u + i, n - i);
            if (l == 0) sb_add(b, "\\ufffd", 6), i++;
            else sb_add(b, s + i, l), i += l;
        }
    }
    sb_add(b, "\"", 1);
}
static void sb_jstr(sb_t *b, const char *s) {
    if (!s) sb_puts(b, "null");
    else sb_jstrn(b, s, strlen(s));
}
static void sb_jnum(sb_t *b, double v) {
    if (!finite_num(v)) sb_puts(b, "null");
    else sb_printf(b, "%.3f", v);
}

/* ------------------------------------------------------------------------------------------------ */
/* config: a small, strict-enough JSON scanner for the flat config object                           */

static const char *jws(const char *p) {
    while (p && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}
static const char *jskip_str(const char *p) {
    if (*p != '"') return NULL;
    for (p++; *p; p++) {
        if (*p == '\\') {
            if (!p[1]) return NULL;
            p++;
        } else if (*p == '"') return p + 1;
    }
    return NULL;
}
static const char *jskip(const char *p, int depth) {
    p = jws(p);
    if (!p || depth > 64) return NULL;
    if (*p == '"') return jskip_str(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int obj = *p == '{';
        p = jws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (obj) {
                p = jskip_str(jws(p));
                if (!p) return NULL;
                p = jws(p);
                if (*p != ':') return NULL;
                p++;
            }
            p = jws(jskip(p, depth + 1));
            if (!p) return NULL;
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p == close) return p + 1;
            return NULL;
        }
    }
    if (!strncmp(p, "true", 4)) return p + 4;
    if (!strncmp(p, "false", 5)) return p + 5;
    if (!strncmp(p, "null", 4)) return p + 4;
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
        char *end;
        strtod(p, &end);
        return end == p ? NULL : end;
    }
    return NULL;
}
static int hexval(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    return v;
}
static void put_utf8(sb_t *b, unsigned cp) {
    char t[4];
    size_t n;
    if (cp < 0x80) t[0] = (char)cp, n = 1;
    else if (cp < 0x800) t[0] = (char)(0xc0 | cp >> 6), t[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        t[0] = (char)(0xe0 | cp >> 12), t[1] = (char)(0x80 | ((cp >> 6) & 0x3f)), t[2] = (char)(0x80 | (cp & 0x3f)),
        n = 3;
    else
        t[0] = (char)(0xf0 | cp >> 18), t[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
        t[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), t[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    sb_add(b, t, n);
}
/* Unescaped copy of the JSON string at p (malloc'd), NULL if p is not a string. */
static char *jstr(const char *p) {
    p = jws(p);
    if (!p || *p != '"') return NULL;
    sb_t b = {0};
    sb_add(&b, "", 0);
    for (p++; *p && *p != '"'; p++) {
        if (*p != '\\') {
            sb_add(&b, p, 1);
            continue;
        }
        p++;
        switch (*p) {
        case 'n': sb_add(&b, "\n", 1); break;
        case 't': sb_add(&b, "\t", 1); break;
        case 'r': sb_add(&b, "\r", 1); break;
        case 'b': sb_add(&b, "\b", 1); break;
        case 'f': sb_add(&b, "\f", 1); break;
        case 'u': {
            int cp = hexval(p + 1);
            if (cp < 0) {
                free(b.p);
                return NULL;
            }
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff && p[1] == '\\' && p[2] == 'u') {
                int lo = hexval(p + 3);
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
            }
            put_utf8(&b, (unsigned)cp);
            break;
        }
        case 0: free(b.p); return NULL;
        default: sb_add(&b, p, 1); /* \" \\ \/ */
        }
    }
    return b.p;
}
/* The value of `key` in the object at obj, or NULL. */
static const char *jget(const char *obj, const char *key) {
    const char *p = jws(obj);
    if (!p || *p != '{') return NULL;
    p = jws(p + 1);
    if (*p == '}') return NULL;
    for (;;) {
        p = jws(p);
        const char *kend = jskip_str(p);
        if (!kend) return NULL;
        char *k = jstr(p);
        p = jws(kend);
        if (*p != ':') {
            free(k);
            return NULL;
        }
        const char *v = jws(p + 1);
        int match = k && !strcmp(k, key);
        free(k);
        if (match) return v;
        p = jws(jskip(v, 0));
        if (!p || *p != ',') return NULL;
        p++;
    }
}
static int jnum(const char *v, double *out) {
    v = jws(v);
    if (!v || !(*v == '-' || (*v >= '0' && *v <= '9'))) return 0;
    char *end;
    *out = strtod(v, &end);
    return end != v;
}
static int jbool(const char *v, int *out) {
    v = jws(v);
    if (!v) return 0;
    if (!strncmp(v, "true", 4)) return *out = 1, 1;
    if (!strncmp(v, "false", 5)) return *out = 0, 1;
    return 0;
}

static struct {
    char *case_id, *result, *file, *expect, *gdb;
    int threads, exit_normal, fail_fast, env_check, diag_max;
    long forks, timeout_ms, max_delay_us, warmup_ms;
    double seconds;
    uint64_t seed;
    /* hang_proof (PROTOCOL.md): samples sample_ms apart; early look at max(early_min_ms, early_factor x median ok
     * child_ms); a child not proved blocked is waited on up to hard_factor x timeout_ms */
    double sample_ms, early_min_ms, early_factor, hard_factor;
} cfg;

/* ------------------------------------------------------------------------------------------------ */
/* result                                                                                            */

#define MAX_FAILS 5
#define OUT_KEEP 4096
#define MSG_TAIL 1000

typedef struct {
    const char *kind;
    long iteration;
    double elapsed_ms;
    char *message;
    int signal, status; /* -1 = null */
    int has_diag;
    char *wchan, *syscall_, *stack, *gdb, *children;
    char *proof;         /* hang: the samples that proved it */
    const char *blocked; /* hang: "yes" or "running" */
} failure_t;

#define MAX_SLOW_EX 5

static struct {
    long forks, ok, hang, crash, wrong, diagnosed;
    double elapsed_ms;
    double *child_ms;
    size_t n_child_ms, cap_child_ms;
    failure_t fails[MAX_FAILS];
    int nfails;
    int threads_started;
    char *libc_path, *libc_self;
    char **environ_copy;
    /* slow children: alive at timeout_ms, not blocked, exited later */
    long slow;
    struct {
        long iteration;
        double ms;
    } slow_ex[MAX_SLOW_EX];
    int n_slow_ex;
    /* pressure over the fork loop */
    int have_pressure;
    double window_ms;
    long forks_inside, forks_sampled;
    long *iter_base;     /* per thread: iterations at the first fork (after precondition) */
    long *iter_window;   /* per thread: iterations made during the fork loop */
    double *last_ms;     /* per thread: end of the window - end of its last iteration; < 0: none finished */
    /* file-backed shared objects mapped after setup and precondition */
    char **mapped;
    size_t n_mapped;
    int have_mapped;
} R;

static const char *argv0 = "";
static const char *sigabbrev(int sig);
static void read_mapped(void);
static volatile int result_written = 0;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void write_result(const char *skipped, const char *error) {
    if (__atomic_exchange_n(&result_written, 1, __ATOMIC_SEQ_CST)) return;
    sb_t b = {0};
    sb_printf(&b, "{\"forks\":%ld,\"ok\":%ld,\"hang\":%ld,\"crash\":%ld,\"wrong\":%ld,\"elapsed_ms\":", R.forks, R.ok,
              R.hang, R.crash, R.wrong);
    sb_jnum(&b, R.elapsed_ms);
    sb_puts(&b, ",\"child_ms\":");
    if (R.n_child_ms == 0) sb_puts(&b, "{\"median\":null,\"p99\":null}");
    else {
        size_t n = R.n_child_ms;
        qsort(R.child_ms, n, sizeof(double), cmp_double);
        double median = n % 2 ? R.child_ms[n / 2] : (R.child_ms[n / 2 - 1] + R.child_ms[n / 2]) / 2;
        size_t k = (size_t)ceil_ms(0.99 * (double)n);
        if (k < 1) k = 1;
        sb_puts(&b, "{\"median\":");
        sb_jnum(&b, median);
        sb_puts(&b, ",\"p99\":");
        sb_jnum(&b, R.child_ms[k - 1]);
        sb_puts(&b, "}");
    }
    sb_puts(&b, ",\"first_failures\":[");
    for (int i = 0; i < R.nfails; i++) {
        failure_t *f = &R.fails[i];
        if (i) sb_puts(&b, ",");
        sb_puts(&b, "{\"kind\":");
        sb_jstr(&b, f->kind);
        sb_printf(&b, ",\"iteration\":%ld,\"elapsed_ms\":", f->iteration);
        sb_jnum(&b, f->elapsed_ms);
        sb_puts(&b, ",\"message\":");
        sb_jstr(&b, f->message);
        if (f->signal >= 0) sb_printf(&b, ",\"signal\":%d", f->signal);
        else sb_puts(&b, ",\"signal\":null");
        if (f->status >= 0) sb_printf(&b, ",\"status\":%d", f->status);
        else sb_puts(&b, ",\"status\":null");
        if (f->signal >= 0) {
            sb_puts(&b, ",\"signame\":");
            sb_jstr(&b, sigabbrev(f->signal));
        }
        if (f->has_diag || f->proof) {
            sb_puts(&b, ",\"diag\":{");
            if (f->has_diag) {
                sb_puts(&b, "\"wchan\":");
                sb_jstr(&b, f->wchan);
                sb_puts(&b, ",\"syscall\":");
                sb_jstr(&b, f->syscall_);
                sb_puts(&b, ",\"stack\":");
                sb_jstr(&b, f->stack);
                sb_puts(&b, ",\"gdb\":");
                sb_jstr(&b, f->gdb);
                sb_puts(&b, ",\"children\":");
                sb_jstr(&b, f->children);
            }
            if (f->proof) {
                sb_puts(&b, f->has_diag ? ",\"proof\":" : "\"proof\":");
                sb_jstr(&b, f->proof);
                sb_puts(&b, ",\"blocked\":");
                sb_jstr(&b, f->blocked);
            }
            sb_puts(&b, "}");
        }
        sb_puts(&b, "}");
    }
    sb_puts(&b, "],\"libc\":{\"path\":");
    sb_jstr(&b, R.libc_path);
    sb_puts(&b, ",\"self_reported\":");
    sb_jstr(&b, R.libc_self);
    sb_puts(&b, "},\"runtime\":{\"name\":\"c\",\"version\":");
#ifdef __VERSION__
    sb_jstr(&b, __VERSION__);
#else
    sb_puts(&b, "null");
#endif
    sb_puts(&b, ",\"executable\":");
    sb_jstr(&b, argv0);
    sb_printf(&b, "},\"threads_started\":%d", R.threads_started);
    sb_puts(&b, ",\"pressure\":");
    if (!R.have_pressure) sb_puts(&b, "null");
    else {
        sb_puts(&b, "{\"window_ms\":");
        sb_jnum(&b, R.window_ms);
        sb_puts(&b, ",\"threads\":[");
        for (int t = 0; t < R.threads_started; t++) {
            sb_printf(&b, "%s{\"iterations\":%ld,\"last_ms\":", t ? "," : "", R.iter_window[t]);
            if (R.last_ms[t] < 0) sb_puts(&b, "null");
            else sb_jnum(&b, R.last_ms[t]);
            sb_puts(&b, ",\"error\":null}");
        }
        sb_printf(&b, "],\"forks_inside\":%ld,\"forks_sampled\":%ld}", R.forks_inside, R.forks_sampled);
    }
    sb_printf(&b, ",\"slow\":%ld,\"slow_examples\":[", R.slow);
    for (int i = 0; i < R.n_slow_ex; i++) {
        sb_printf(&b, "%s{\"iteration\":%ld,\"ms\":", i ? "," : "", R.slow_ex[i].iteration);
        sb_jnum(&b, R.slow_ex[i].ms);
        sb_puts(&b, "}");
    }
    if (!R.have_mapped) read_mapped(); /* a setup that skipped or failed: what was mapped by then */
    sb_puts(&b, "],\"mapped\":[");
    for (size_t i = 0; i < R.n_mapped; i++) {
        if (i) sb_puts(&b, ",");
        sb_jstr(&b, R.mapped[i]);
    }
    sb_puts(&b, "],\"skipped\":");
    sb_jstr(&b, skipped);
    sb_puts(&b, ",\"error\":");
    sb_jstr(&b, error);
    if (cfg.env_check) {
        sb_puts(&b, ",\"environ\":{");
        int first = 1;
        for (char **e = R.environ_copy; e && *e; e++) {
            const char *eq = strchr(*e, '=');
            if (!eq) continue;
            if (!first) sb_puts(&b, ",");
            first = 0;
            sb_jstrn(&b, *e, (size_t)(eq - *e));
            sb_puts(&b, ":");
            sb_jstr(&b, eq + 1);
        }
        sb_puts(&b, "}");
    }
    sb_puts(&b, "}\n");

    if (!cfg.result) {
        fm_write(2, "forkmatrix harness: no result path; result follows\n");
        fm_write(2, b.p);
        _exit(2);
    }
    size_t tl = strlen(cfg.result) + 5;
    char *tmp = malloc(tl);
    snprintf(tmp, tl, "%s.tmp", cfg.result);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "forkmatrix harness: cannot write %s: %s\n", tmp, strerror(errno));
        _exit(3);
    }
    for (size_t off = 0; off < b.n;) {
        ssize_t w = write(fd, b.p + off, b.n - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "forkmatrix harness: write %s: %s\n", tmp, strerror(errno));
            _exit(3);
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 || rename(tmp, cfg.result) != 0) {
        fprintf(stderr, "forkmatrix harness: cannot finish %s: %s\n", cfg.result, strerror(errno));
        _exit(3);
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* end of run: stop the loop threads, run the case's cleanups                                        */

/* What the main thread is running, for fm_fail's message: setup, precondition, before_fork. */
static const char *phase = "setup";

static void (*end_fns[8])(void);
static int n_end_fns;
static volatile int threads_running;
static pthread_t main_thread;

void fm_at_end(void (*fn)(void)) {
    if (n_end_fns < 8) end_fns[n_end_fns++] = fn;
}

/* Main thread only: set the stop flag, give the loops up to 500 ms to finish their iteration, run cleanups. */
static void finish_run(void) {
    fm_stop = 1;
    if (!pthread_equal(pthread_self(), main_thread)) return;
    double deadline = fm_now_ms() + 500;
    while (__atomic_load_n(&threads_running, __ATOMIC_ACQUIRE) > 0 && fm_now_ms() < deadline) fm_sleep_ms(1);
    int n = n_end_fns;
    n_end_fns = 0;
    for (int i = 0; i < n; i++) end_fns[i]();
}

/* ------------------------------------------------------------------------------------------------ */
/* skip / fail                                                                                       */

void fm_fail(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (fm_in_child) {
        size_t n = strlen(buf);
        buf[n] = '\n';
        buf[n + 1] = 0;
        fm_write(2, buf);
        _exit(1);
    }
    char msg[1100];
    if (!strcmp(phase, "precondition") && pthread_equal(pthread_self(), main_thread)) {
        read_mapped();
        snprintf(msg, sizeof msg, "precondition failed: %s", buf);
    } else if (pthread_equal(pthread_self(), main_thread)) snprintf(msg, sizeof msg, "fm_fail in %s: %s", phase, buf);
    else snprintf(msg, sizeof msg, "fm_fail in the parent (loop thread %d): %s", fm_thread_index, buf);
    finish_run();
    write_result(NULL, msg);
    _exit(0);
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
    finish_run();
    write_result(buf, NULL);
    _exit(0);
}

/* ------------------------------------------------------------------------------------------------ */
/* helpers                                                                                           */

static const char *sigabbrev(int sig) {
    switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGUSR1: return "SIGUSR1";
    case SIGSEGV: return "SIGSEGV";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGCHLD: return "SIGCHLD";
    case SIGCONT: return "SIGCONT";
    case SIGSTOP: return "SIGSTOP";
    case SIGTSTP: return "SIGTSTP";
    case SIGTTIN: return "SIGTTIN";
    case SIGTTOU: return "SIGTTOU";
    case SIGURG: return "SIGURG";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    case SIGVTALRM: return "SIGVTALRM";
    case SIGPROF: return "SIGPROF";
    case SIGWINCH: return "SIGWINCH";
    case SIGIO: return "SIGIO";
    case SIGPWR: return "SIGPWR";
    case SIGSYS: return "SIGSYS";
    }
    static char buf[32];
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) snprintf(buf, sizeof buf, "SIGRTMIN+%d", sig - SIGRTMIN);
    else snprintf(buf, sizeof buf, "SIG%d", sig);
    return buf;
}

static uint64_t rng_state;
static uint64_t splitmix64(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static char *read_text_file(const char *path, size_t max) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    sb_t b = {0};
    sb_add(&b, "", 0);
    char tmp[4096];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n < 0 && b.n == 0) {
                int e = errno;
                close(fd);
                free(b.p);
                errno = e;
                return NULL;
            }
            break;
        }
        if (b.n < max) sb_add(&b, tmp, (size_t)n < max - b.n ? (size_t)n : max - b.n);
    }
    close(fd);
    return b.p;
}

/* /proc/PID/<what> or "error: ..." */
static char *proc_read(pid_t pid, const char *what) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what);
    char *s = read_text_file(path, 16384);
    if (!s) {
        sb_t b = {0};
        sb_printf(&b, "error: %s: %s", path, strerror(errno));
        return b.p;
    }
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ')) s[--n] = 0;
    return s;
}

/* What a hung child is waiting for may be its own child (a popen, a spawn): one line per descendant it started
 * ("pid state comm wchan", e.g. "4242 Z true 0": exited, never reaped), NULL when it has none. */
static char *children_of(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    char *list = read_text_file(path, 4096);
    if (!list) return NULL;
    sb_t b = {0};
    for (char *tok = strtok(list, " \n"); tok; tok = strtok(NULL, " \n")) {
        pid_t c = (pid_t)atoi(tok);
        char *stat = proc_read(c, "stat"), *wchan = proc_read(c, "wchan");
        /* stat: pid (comm) state ...; comm may hold spaces and parentheses: the last ')' ends it */
        char *open = strchr(stat, '('), *close = strrchr(stat, ')');
        if (open && close && close > open && close[1] == ' ') {
            *close = 0;
            sb_printf(&b, "%s%d %c %s %s", b.n ? "\n" : "", (int)c, close[2], open + 1, wchan);
        } else sb_printf(&b, "%s%d %s", b.n ? "\n" : "", (int)c, stat);
        free(stat);
        free(wchan);
    }
    free(list);
    return b.p;
}

static char *find_libc_path(void) {
    char *maps = read_text_file("/proc/self/maps", 1 << 22);
    if (!maps) return NULL;
    char *found = NULL;
    for (char *line = maps; line && *line && !found;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char *path = strchr(line, '/');
        if (path) {
            const char *base = strrchr(path, '/') + 1;
            size_t bl = strlen(base);
            if (!strcmp(base, "libc.so.6") || !strcmp(base, "libc.so") ||
                (!strncmp(base, "libc-", 5) && bl > 3 && !strcmp(base + bl - 3, ".so") && base[5] >= '0' && base[5] <= '9') || /* glibc < 2.34 */
                (!strncmp(base, "libc.musl-", 10) && bl > 5 && !strcmp(base + bl - 5, ".so.1")) ||
                (!strncmp(base, "ld-musl-", 8) && bl > 5 && !strcmp(base + bl - 5, ".so.1")))
                found = strdup(path);
        }
        line = nl ? nl + 1 : NULL;
    }
    free(maps);
    return found;
}

/* `mapped`: every file-backed mapping of /proc/self/maps whose name contains ".so", deduplicated, in order. */
static void read_mapped(void) {
    R.have_mapped = 1;
    char *maps = read_text_file("/proc/self/maps", 1 << 22);
    if (!maps) return;
    for (char *line = maps; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char *path = strchr(line, '/');
        if (path && strstr(path, ".so")) {
            size_t i = 0;
            while (i < R.n_mapped && strcmp(R.mapped[i], path)) i++;
            if (i == R.n_mapped) {
                char **m = realloc(R.mapped, (R.n_mapped + 1) * sizeof *m);
                if (m) R.mapped = m, R.mapped[R.n_mapped++] = strdup(path);
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    free(maps);
}

/* Run gdb on pid with a clean environment and a 20 s limit; the last 8000 bytes of its stdout+stderr. */
static char *run_gdb(pid_t pid) {
    char pidstr[32];
    snprintf(pidstr, sizeof pidstr, "%d", (int)pid);
    char *argv[] = {cfg.gdb, "-batch", "-nx", "-p", pidstr, "-ex", "thread apply all bt", NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return strdup("error: pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    /* gdb in its own process group: our cleanup kills only what it started. */
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0);
    pid_t g;
    int rc = posix_spawn(&g, cfg.gdb, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        sb_t b = {0};
        sb_printf(&b, "error: cannot start %s: %s", cfg.gdb, strerror(rc));
        return b.p;
    }
    sb_t b = {0};
    sb_add(&b, "", 0);
    double deadline = fm_now_ms() + 20000;
    int killed = 0;
    for (;;) {
        double left = deadline - fm_now_ms();
        if (left <= 0) {
            kill(g, SIGKILL);
            killed = 1;
            break;
        }
        struct pollfd pf = {p[0], POLLIN, 0};
        int r = poll(&pf, 1, (int)ceil_ms(left));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        char tmp[4096];
        ssize_t n = read(p[0], tmp, sizeof tmp);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        sb_add(&b, tmp, (size_t)n);
        if (b.n > (1u << 20)) { /* keep memory bounded: retain the tail */
            memmove(b.p, b.p + b.n - 8000, 8000);
            b.n = 8000;
            b.p[b.n] = 0;
        }
    }
    close(p[0]);
    int st;
    while (waitpid(g, &st, 0) < 0 && errno == EINTR) {
    }
    if (killed) sb_puts(&b, "\n[gdb killed after 20 s]");
    if (b.n > 8000) {
        memmove(b.p, b.p + b.n - 8000, 8000);
        b.n = 8000;
        b.p[b.n] = 0;
    }
    return b.p;
}

/* ------------------------------------------------------------------------------------------------ */
/* the fork loop                                                                                     */

static char outbuf[OUT_KEEP + 1];
static size_t outlen;
static regex_t expect_re;
static int have_re;

/* Read what is available on the non-blocking fd. Returns 1 at EOF/error, 0 when it would block. */
static int drain(int fd) {
    char scratch[4096];
    for (;;) {
        char *dst = outlen < OUT_KEEP ? outbuf + outlen : scratch;
        size_t room = outlen < OUT_KEEP ? OUT_KEEP - outlen : sizeof scratch;
        ssize_t n = read(fd, dst, room);
        if (n > 0) {
            if (dst != scratch) outlen += (size_t)n;
            continue;
        }
        if (n == 0) return 1;
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
    }
}

/* Output tail: the last MSG_TAIL bytes of what was kept, NUL bytes shown as spaces. */
static const char *out_tail(void) {
    for (size_t i = 0; i < outlen; i++)
        if (!outbuf[i]) outbuf[i] = ' ';
    outbuf[outlen] = 0;
    return outlen > MSG_TAIL ? outbuf + outlen - MSG_TAIL : outbuf;
}

static failure_t *record(const char *kind, long iteration, double elapsed, char *message, int sig, int status,
                         pid_t hung_pid) {
    if (!strcmp(kind, "hang")) R.hang++;
    else if (!strcmp(kind, "crash")) R.crash++;
    else R.wrong++;
    failure_t *f = NULL;
    if (R.nfails < MAX_FAILS) {
        f = &R.fails[R.nfails++];
        memset(f, 0, sizeof *f);
        f->kind = kind;
        f->iteration = iteration;
        f->elapsed_ms = elapsed;
        f->message = message;
        f->signal = sig;
        f->status = status;
    } else free(message);
    if (hung_pid > 0 && R.diagnosed < cfg.diag_max) {
        R.diagnosed++;
        if (f) {
            f->has_diag = 1;
            f->wchan = proc_read(hung_pid, "wchan");
            f->syscall_ = proc_read(hung_pid, "syscall");
            f->stack = proc_read(hung_pid, "stack");
            f->children = children_of(hung_pid);
            f->gdb = cfg.gdb ? run_gdb(hung_pid) : NULL;
        }
    }
    return f;
}

static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

/* Waiting for one child: its pidfd (kept open from the fork to the reap), its output pipe. */
typedef struct {
    pid_t pid;
    int pfd;       /* pidfd, -1: none (kernel < 5.3) or poll failed: the 1 ms polling fallback */
    int rfd;       /* the output pipe's read end (non-blocking) */
    int pipe_open;
    double fast_until;
} waiter_t;

static void waiter_open(waiter_t *w, pid_t pid, int rfd) {
    w->pid = pid;
    w->rfd = rfd;
    w->pipe_open = 1;
    w->pfd = (int)syscall(FM_SYS_pidfd_open, pid, 0);
    /* Fast path: for the first 20 ms wait on the pidfd alone: one wake-up per child. A child that fills the
     * 64 KiB pipe within 20 ms waits at most that long before we start reading. */
    w->fast_until = fm_now_ms() + 20;
}

static void waiter_close(waiter_t *w) {
    if (w->pfd >= 0) close(w->pfd);
    w->pfd = -1;
}

/* 1 when the child has exited (not reaped: the caller reaps it), 0 when `deadline` came first (at least one look
 * is taken, also with a deadline in the past). Reads the child's output meanwhile. */
static int waiter_wait(waiter_t *w, double deadline) {
    if (w->pfd >= 0) {
        struct pollfd p[2] = {{w->pfd, POLLIN, 0}, {w->rfd, POLLIN, 0}};
        for (;;) {
            double now = fm_now_ms(), left = deadline - now;
            if (left < 0) left = 0;
            int watch_pipe = w->pipe_open && now >= w->fast_until;
            double wait = watch_pipe || !w->pipe_open ? left : (w->fast_until - now < left ? w->fast_until - now : left);
            int r = poll(p, watch_pipe ? 2 : 1, (int)ceil_ms(wait));
            if (r < 0) {
                if (errno == EINTR) continue;
                waiter_close(w); /* the polling fallback from now on */
                break;
            }
            if (watch_pipe && p[1].revents) w->pipe_open = !drain(w->rfd);
            if (p[0].revents) return 1;
            if (left <= 0) return 0;
        }
    }
    /* Fallback (no pidfd_open, e.g. kernel < 5.3): 1 ms steps. */
    for (;;) {
        siginfo_t si;
        si.si_pid = 0;
        if (waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == w->pid) return 1;
        if (fm_now_ms() >= deadline) return 0;
        if (w->pipe_open) {
            struct pollfd p = {w->rfd, POLLIN, 0};
            if (poll(&p, 1, 1) > 0) w->pipe_open = !drain(w->rfd);
        } else {
            poll(NULL, 0, 1);
        }
    }
}

/* SIGKILL the child's process group (the child itself and any descendants it left), reap the child, then
 * reap the descendants (they were reparented to us: we are a child subreaper). The child itself is killed by pid
 * too: one stuck inside fork() (an atfork handler, the libc's own child-side reset) never reached setpgid. */
static int kill_and_reap(pid_t pid) {
    int st = 0;
    if (kill(-pid, SIGKILL) != 0) kill(pid, SIGKILL); /* no such group: the child never reached setpgid */
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    int s2;
    while (waitpid(-pid, &s2, 0) > 0 || errno == EINTR) {
    }
    return st;
}

/* ------------------------------------------------------------------------------------------------ */
/* hang proof (PROTOCOL.md step 3, `hang`): is a child that is still alive blocked, or just slow?             */
/*
 * A sample lists every process of the child's process group (/proc/P/stat field 5 == the child's pid; the child
 * itself always, as one stuck inside fork() never reached setpgid) with its state and each thread's state
 * (/proc/P/task/T/stat field 3), the group's CPU time (utime+stime, fields 14+15, in clock ticks), and, where the
 * kernel has schedstats, each thread's CPU time in ns and its number of times scheduled
 * (/proc/P/task/T/schedstat). A thread sleeping (S or D) in a *timed* wait (nanosleep, a futex/poll/select/epoll
 * with a timeout: /proc/P/task/T/syscall) is marked `~`: it will wake up by itself.
 *
 * Blocked = in both samples, no thread R, none in a timed wait and none in D (uninterruptible, in the kernel: an
 * I/O under load), and between them the ticks, the ns, the number of times scheduled and the listing did not
 * change. The two extra measures (ns, times scheduled) only make
 * `blocked` harder to reach: a thread that polls with short sleeps uses too little CPU to move a 10 ms tick, but
 * is scheduled again and again. A timed wait or D is not a block before hard_factor x timeout; at that last look
 * only the "no progress at all" part counts.
 */

typedef struct {
    double at;           /* ms since the fork */
    long long ticks;     /* utime+stime of every process in the group (clock ticks) */
    long long ns;        /* schedstat CPU time of every thread (ns), -1: no schedstats */
    long long slices;    /* schedstat times scheduled, summed */
    int running, timed;  /* threads in R, threads in a timed wait or in D */
    int nproc;
    char child_state;    /* the child's own state, 0: gone */
    sb_t list;           /* "4123 S [S S~], 4130 Z [Z]" */
} psample_t;

static ssize_t read_small(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n;
    do n = read(fd, buf, size - 1); while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0) return -1;
    buf[n] = 0;
    return n;
}

/* The fields after "pid (comm)" of a stat line: out[0] = field 3 (state), out[k] = field k+3. */
static int stat_fields(char *stat, char **out, int max) {
    char *p = strrchr(stat, ')');
    if (!p) return 0;
    int n = 0;
    for (p++; *p && n < max;) {
        while (*p == ' ') p++;
        if (!*p || *p == '\n') break;
        out[n++] = p;
        while (*p && *p != ' ' && *p != '\n') p++;
        if (*p) *p++ = 0;
    }
    return n;
}

/* Is the thread (S or D) in a syscall that returns by itself after a timeout? From "nr a1 .. a6 sp pc". */
static int in_timed_wait(pid_t pid, pid_t tid) {
    char path[96], buf[512];
    snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
    if (read_small(path, buf, sizeof buf) <= 0) return 0;
    char *p = buf, *e;
    long nr = strtol(p, &e, 10);
    if (e == p) return 0; /* "running" */
    unsigned long a[6] = {0};
    p = e;
    for (int i = 0; i < 6; i++) {
        a[i] = strtoul(p, &e, 16);
        if (e == p) return 0; /* "-1 sp pc": blocked, not in a syscall */
        p = e;
    }
    (void)a;
#ifdef SYS_nanosleep
    if (nr == SYS_nanosleep) return 1;
#endif
#ifdef SYS_clock_nanosleep
    if (nr == SYS_clock_nanosleep) return 1;
#endif
#ifdef SYS_futex
    if (nr == SYS_futex) { /* FUTEX_WAIT, FUTEX_LOCK_PI, FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI with a timeout */
        int op = (int)(a[1] & 127);
        return (op == 0 || op == 6 || op == 9 || op == 11) && a[3] != 0;
    }
#endif
#ifdef SYS_futex_waitv
    if (nr == SYS_futex_waitv) return a[3] != 0;
#endif
#ifdef SYS_poll
    if (nr == SYS_poll) return (int)(a[2] & 0xffffffffu) >= 0;
#endif
#ifdef SYS_ppoll
    if (nr == SYS_ppoll) return a[2] != 0;
#endif
#ifdef SYS_select
    if (nr == SYS_select) return a[4] != 0;
#endif
#ifdef SYS_pselect6
    if (nr == SYS_pselect6) return a[4] != 0;
#endif
#ifdef SYS_epoll_wait
    if (nr == SYS_epoll_wait) return (int)(a[3] & 0xffffffffu) >= 0;
#endif
#ifdef SYS_epoll_pwait
    if (nr == SYS_epoll_pwait) return (int)(a[3] & 0xffffffffu) >= 0;
#endif
#ifdef SYS_epoll_pwait2
    if (nr == SYS_epoll_pwait2) return a[3] != 0;
#endif
#ifdef SYS_rt_sigtimedwait
    if (nr == SYS_rt_sigtimedwait) return a[2] != 0;
#endif
#ifdef SYS_semtimedop
    if (nr == SYS_semtimedop) return a[3] != 0;
#endif
#ifdef SYS_mq_timedreceive
    if (nr == SYS_mq_timedreceive) return a[4] != 0;
#endif
#ifdef SYS_mq_timedsend
    if (nr == SYS_mq_timedsend) return a[4] != 0;
#endif
#ifdef SYS_recvmmsg
    if (nr == SYS_recvmmsg) return a[4] != 0;
#endif
#ifdef SYS_io_getevents
    if (nr == SYS_io_getevents) return a[4] != 0;
#endif
    return 0;
}

/* One process of the group into s. */
static void sample_process(psample_t *s, pid_t pid, const char *state, long long ticks) {
    s->nproc++;
    s->ticks += ticks;
    if (s->list.n) sb_puts(&s->list, ", ");
    sb_printf(&s->list, "%d %s [", (int)pid, state);
    char path[96], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int first = 1;
    if (fd >= 0) {
        char dents[4096];
        for (;;) {
            long n = syscall(FM_SYS_getdents64, fd, dents, sizeof dents);
            if (n <= 0) break;
            for (long off = 0; off < n;) {
                unsigned short reclen;
                memcpy(&reclen, dents + off + 16, sizeof reclen);
                const char *name = dents + off + 19;
                off += reclen;
                if (name[0] < '0' || name[0] > '9') continue;
                pid_t tid = (pid_t)atoi(name);
                snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
                char *f[1];
                if (read_small(path, buf, sizeof buf) <= 0 || stat_fields(buf, f, 1) < 1) continue; /* gone */
                char st = f[0][0];
                int timed = (st == 'S' || st == 'D') && in_timed_wait(pid, tid);
                s->running += st == 'R';
                s->timed += timed || st == 'D'; /* D: inside the kernel (I/O), returns by itself */
                sb_printf(&s->list, "%s%c%s", first ? "" : " ", st, timed ? "~" : "");
                first = 0;
                snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
                long long ns, wait, slices;
                if (s->ns >= 0 && read_small(path, buf, sizeof buf) > 0 && sscanf(buf, "%lld %lld %lld", &ns, &wait, &slices) == 3)
                    s->ns += ns, s->slices += slices;
                else s->ns = -1;
            }
        }
        close(fd);
    }
    sb_puts(&s->list, "]");
}

/* A sample of the child's process group at `at` ms after the fork. */
static void take_sample(psample_t *s, pid_t child, double at) {
    memset(s, 0, sizeof *s);
    s->at = at;
    sb_add(&s->list, "", 0);
    DIR *d = opendir("/proc");
    if (!d) return;
    struct dirent *e;
    char path[96], buf[1024];
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        pid_t pid = (pid_t)atoi(e->d_name);
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        char *f[13];
        if (read_small(path, buf, sizeof buf) <= 0 || stat_fields(buf, f, 13) < 13) continue;
        if (pid != child && atoi(f[2]) != (int)child) continue; /* field 5: pgrp */
        if (pid == child) s->child_state = f[0][0];
        sample_process(s, pid, f[0], atoll(f[11]) + atoll(f[12])); /* fields 14, 15 */
    }
    closedir(d);
}

/* "+2000 ms: cpu 12.345 ms, scheduled 17; 4123 S [S S], 4130 Z [Z]" */
static char *sample_line(const psample_t *s) {
    static long tck;
    if (!tck) tck = sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100;
    sb_t b = {0};
    sb_printf(&b, "+%.0f ms: ", s->at);
    if (s->ns >= 0) sb_printf(&b, "cpu %.3f ms, scheduled %lld; ", (double)s->ns / 1e6, s->slices);
    else sb_printf(&b, "cpu %lld ms; ", s->ticks * 1000 / tck);
    sb_puts(&b, s->nproc ? s->list.p : "no process left");
    return b.p;
}

/* The proof lines of one child: the first two samples and the last four (a slow child is sampled many times). */
#define PROOF_HEAD 2
#define PROOF_TAIL 4
typedef struct {
    char *head[PROOF_HEAD], *tail[PROOF_TAIL];
    int nhead, ntail, dropped;
} proof_t;

static void proof_add(proof_t *pr, char *line) {
    if (pr->nhead < PROOF_HEAD) {
        pr->head[pr->nhead++] = line;
        return;
    }
    if (pr->ntail == PROOF_TAIL) {
        free(pr->tail[0]);
        memmove(pr->tail, pr->tail + 1, (PROOF_TAIL - 1) * sizeof *pr->tail);
        pr->ntail--;
        pr->dropped++;
    }
    pr->tail[pr->ntail++] = line;
}

static char *proof_text(proof_t *pr) {
    sb_t b = {0};
    sb_add(&b, "", 0);
    for (int i = 0; i < pr->nhead; i++) sb_printf(&b, "%s%s", b.n ? "\n" : "", pr->head[i]);
    if (pr->dropped) sb_printf(&b, "\n[%d samples between]", pr->dropped);
    for (int i = 0; i < pr->ntail; i++) sb_printf(&b, "%s%s", b.n ? "\n" : "", pr->tail[i]);
    return b.p;
}

static void proof_free(proof_t *pr) {
    for (int i = 0; i < pr->nhead; i++) free(pr->head[i]);
    for (int i = 0; i < pr->ntail; i++) free(pr->tail[i]);
    memset(pr, 0, sizeof *pr);
}

enum { P_EXITED, P_BLOCKED, P_NOT_BLOCKED };

/* Two samples sample_ms apart, waiting for the child's exit meanwhile. `last`: the look at hard_factor x timeout,
 * where a timed wait no longer counts as a way out. */
static int prove(waiter_t *w, double t0, proof_t *pr, int last) {
    psample_t a, b;
    take_sample(&a, w->pid, fm_now_ms() - t0);
    proof_add(pr, sample_line(&a));
    /* the exit is the waiter's to say (a zombie's pidfd is readable at once) */
    if (waiter_wait(w, fm_now_ms() + (a.child_state == 'Z' ? 1000 : cfg.sample_ms))) {
        free(a.list.p);
        return P_EXITED;
    }
    take_sample(&b, w->pid, fm_now_ms() - t0);
    proof_add(pr, sample_line(&b));
    if (b.child_state == 'Z' && waiter_wait(w, fm_now_ms() + 1000)) {
        free(a.list.p);
        free(b.list.p);
        return P_EXITED;
    }
    int r = P_NOT_BLOCKED;
    if (a.nproc && b.nproc && !a.running && !b.running && (last || (!a.timed && !b.timed)) && a.ticks == b.ticks && a.ns == b.ns &&
             a.slices == b.slices && !strcmp(a.list.p, b.list.p))
        r = P_BLOCKED;
    free(a.list.p);
    free(b.list.p);
    return r;
}

/* The loop threads run at nice +10 (per-thread on Linux): with `threads` CPU-bound loops on a small machine the
 * forking thread and its children (nice 0) would otherwise wait whole time slices for a CPU (measured on 2 cores,
 * 4 spinning threads: 28 ms per fork at nice 0, 3.5-7 ms at nice 10). The loops still run whenever the forking
 * thread sleeps or waits, so forks still land at random points inside them. */
/* ------------------------------------------------------------------------------------------------ */
/* Where a crash happened. Installed once in the parent (so forks pay nothing), inherited by every child: on
 * SIGSEGV/SIGBUS/SIGILL/SIGFPE, one line on fd 2 (the child's output pipe) naming the fault address, the pc and
 * the mapping it is in as file+offset, read from /proc/self/maps with raw syscalls only (no dladdr: its lock is
 * one of those a fork can leave held). The driver turns file+offset into a function and line (addr2line).
 * SA_RESETHAND, then returning re-executes the faulting instruction under the default action, so the verdict
 * (killed by the signal) is unchanged. A signal sent with kill() or raise() is re-raised without a line. */
#include <ucontext.h>

static void fh_hex(char **p, uintptr_t v) {
    char t[2 * sizeof v];
    int n = 0;
    do t[n++] = "0123456789abcdef"[v & 15]; while ((v >>= 4) && n < (int)sizeof t);
    *(*p)++ = '0', *(*p)++ = 'x';
    while (n) *(*p)++ = t[--n];
}
static void fh_str(char **p, const char *s, const char *end) {
    while (*s && *p < end) *(*p)++ = *s++;
}
static uintptr_t fh_parse_hex(const char **s) {
    uintptr_t v = 0;
    for (;; (*s)++) {
        int c = **s, d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return v;
        v = v * 16 + (uintptr_t)d;
    }
}
/* The maps line containing pc: writes "path+0xoffset" into out (or nothing). */
static void fh_locate(uintptr_t pc, char **p, const char *end) {
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    static char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0) break;
        have += (size_t)n;
        buf[have] = 0;
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = 0;
            const char *q = line;
            uintptr_t lo = fh_parse_hex(&q);
            q++;
            uintptr_t hi = fh_parse_hex(&q);
            if (pc >= lo && pc < hi) {
                while (*q == ' ') q++;
                while (*q && *q != ' ') q++; /* perms */
                while (*q == ' ') q++;
                uintptr_t off = fh_parse_hex(&q);
                for (int f = 0; f < 2; f++) { /* dev, inode */
                    while (*q == ' ') q++;
                    while (*q && *q != ' ') q++;
                }
                while (*q == ' ') q++;
                fh_str(p, *q ? q : "[anonymous]", end);
                fh_str(p, "+", end);
                if (*p + 20 < end) fh_hex(p, pc - lo + off);
                close(fd);
                return;
            }
            line = nl + 1;
        }
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
        if (have >= sizeof buf - 1) have = 0; /* a line longer than the buffer: drop it */
    }
    close(fd);
}
static void fault_handler(int sig, siginfo_t *si, void *uc_) {
    if (si->si_code <= 0) { /* sent (kill, raise), not a fault: no address to name; the default action now */
        raise(sig);
        return;
    }
    int e = errno;
    uintptr_t pc = 0;
    ucontext_t *uc = uc_;
#if defined(__x86_64__)
    pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    pc = (uintptr_t)uc->uc_mcontext.pc;
#elif defined(__i386__)
    pc = (uintptr_t)uc->uc_mcontext.gregs[REG_EIP];
#else
    (void)uc;
#endif
    static char line[1024];
    char *p = line, *end = line + sizeof line - 2;
    fh_str(&p, "\nforkmatrix: ", end);
    fh_str(&p, sigabbrev(sig), end);
    fh_str(&p, " at address ", end);
    fh_hex(&p, (uintptr_t)si->si_addr);
    if (pc) {
        fh_str(&p, ", pc ", end);
        fh_hex(&p, pc);
        fh_str(&p, " in ", end);
        char *before = p;
        fh_locate(pc, &p, end);
        if (p == before) fh_str(&p, "an unmapped page", end);
    }
    *p++ = '\n';
    ssize_t w = write(2, line, (size_t)(p - line));
    (void)w;
    errno = e;
}
static void install_fault_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fault_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) sigaction(sigs[i], &sa, NULL);
}

/* delays up to this many microseconds spin instead of sleeping */
#define FM_SPIN_US 50

static const int loop_nice = 10;
static void *loop_thread(void *arg) {
    fm_thread_index = (int)(intptr_t)arg;
    pressure_slot_t *me = &P[fm_thread_index];
    if (loop_nice) setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), loop_nice);
    while (!fm_stop) {
        __atomic_store_n(&me->inside, 1, __ATOMIC_RELAXED);
        fm_loop();
        __atomic_store_n(&me->inside, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&me->iterations, me->iterations + 1, __ATOMIC_RELAXED); /* the only writer */
        double t = coarse_ms();
        __atomic_store(&me->last_done, &t, __ATOMIC_RELAXED);
    }
    __atomic_sub_fetch(&threads_running, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* The early look (PROTOCOL.md): max(early_min_ms, early_factor x median ok child_ms), once 5 children were ok;
 * < 0 until then. The median is recomputed (quickselect on a copy) for each of the first 64 ok children, then at
 * every power of two and every 1024th: amortised O(1) per fork. */
static double early_ms = -1;

/* The k-th smallest of a[0..n) (three-way quickselect); afterwards a[0..k) hold the k smaller ones. */
static double select_kth(double *a, size_t n, size_t k) {
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        double pivot = a[lo + (hi - lo) / 2], t;
        size_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            if (a[i] < pivot) t = a[lt], a[lt++] = a[i], a[i++] = t;
            else if (a[i] > pivot) t = a[--gt], a[gt] = a[i], a[i] = t;
            else i++;
        }
        if (k < lt) hi = lt;
        else if (k >= gt) lo = gt;
        else return pivot;
    }
    return a[k];
}

static void update_early(void) {
    static double *tmp;
    static size_t cap;
    size_t n = R.n_child_ms;
    if (n < 5 || !(n <= 64 || (n & (n - 1)) == 0 || n % 1024 == 0)) return;
    if (n > cap) {
        double *p = realloc(tmp, n * 2 * sizeof *p);
        if (!p) return;
        tmp = p, cap = n * 2;
    }
    memcpy(tmp, R.child_ms, n * sizeof *tmp);
    double median = select_kth(tmp, n, n / 2);
    if (n % 2 == 0) { /* the elements before n/2 are now the smaller ones: the largest of them */
        double lower = tmp[0];
        for (size_t i = 1; i < n / 2; i++)
            if (tmp[i] > lower) lower = tmp[i];
        median = (median + lower) / 2;
    }
    double e = cfg.early_factor * median;
    early_ms = e > cfg.early_min_ms ? e : cfg.early_min_ms;
}

static void fork_loop(void) {
    pid_t self = getpid();
    /* One pipe for all children: the parent keeps both ends (the read end non-blocking), so there is no pipe2,
     * fcntl and close per fork, and no EOF to wait for (the pidfd says when the child is gone). Each child's
     * output is what the pipe holds once the child and its process group are dead and reaped. */
    int pp[2];
    if (pipe2(pp, O_CLOEXEC) != 0 || fcntl(pp[0], F_SETFL, O_NONBLOCK) != 0) {
        char *m = strf("pipe2 failed: %s", strerror(errno));
        finish_run();
        write_result(NULL, m);
        _exit(0);
    }
    double start = fm_now_ms();
    double end = start + cfg.seconds * 1e3;
    for (long i = 0; i < cfg.forks; i++) {
        if (i > 0 && fm_now_ms() >= end) break;
        if (cfg.max_delay_us > 0) {
            uint64_t d = splitmix64() % (uint64_t)(cfg.max_delay_us + 1);
            if (d > 0 && d <= FM_SPIN_US) {
                /* short delays spin on the vDSO clock: a nanosleep costs more than the delay itself */
                double until = fm_now_ms() + (double)d / 1e3;
                while (fm_now_ms() < until) {
                }
            } else if (d > 0) {
                struct timespec ts = {(time_t)(d / 1000000), (long)(d % 1000000) * 1000};
                while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
                }
            }
        }
        fm_before_fork();
        int inside = 0;
        for (int t = 0; t < R.threads_started; t++) inside |= __atomic_load_n(&P[t].inside, __ATOMIC_RELAXED);
        R.forks_inside += inside != 0;
        R.forks_sampled++;
        outlen = 0;
        double t0 = fm_now_ms();
        pid_t pid = fork();
        if (pid == 0) {
            fm_in_child = 1;
            setpgid(0, 0);
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != self) _exit(125);
            dup2(pp[1], 1);
            dup2(pp[1], 2);
            if (pp[0] > 2) close(pp[0]);
            if (pp[1] > 2) close(pp[1]);
            int rc = fm_child();
            if (rc != 0) {
                char m[64];
                snprintf(m, sizeof m, "child returned %d\n", rc);
                fm_write(2, m);
                _exit((rc & 0xff) ? (rc & 0xff) : 1);
            }
            if (cfg.exit_normal) exit(0);
            _exit(0);
        }
        if (pid < 0) {
            char *m = strf("fork failed: %s", strerror(errno));
            finish_run();
            write_result(NULL, m);
            _exit(0);
        }
        R.forks++;

        /* Wait: exit, or a proof that the child is blocked (early look, timeout, slow). */
        waiter_t w;
        waiter_open(&w, pid, pp[0]);
        double timeout_at = t0 + (double)cfg.timeout_ms;
        int exited = 0, slow = 0;
        const char *blocked = NULL; /* "yes" | "running": a hang */
        proof_t pr = {0};
        if (early_ms >= 0 && early_ms < (double)cfg.timeout_ms && R.ok >= 5) {
            exited = waiter_wait(&w, t0 + early_ms);
            if (!exited) {
                int r = prove(&w, t0, &pr, 0);
                if (r == P_EXITED) exited = 1;
                else if (r == P_BLOCKED) blocked = "yes";
            }
        }
        if (!exited && !blocked && !(exited = waiter_wait(&w, timeout_at))) {
            /* alive at the timeout: blocked (a hang) or slow (wait on, up to hard_factor x timeout) */
            double hard_at = t0 + cfg.hard_factor * (double)cfg.timeout_ms;
            double step = (double)cfg.timeout_ms / 4 > cfg.sample_ms ? (double)cfg.timeout_ms / 4 : cfg.sample_ms;
            for (;;) {
                int last = fm_now_ms() >= hard_at;
                int r = prove(&w, t0, &pr, last);
                if (r == P_EXITED) {
                    exited = slow = 1;
                    break;
                }
                if (r == P_BLOCKED) {
                    blocked = "yes";
                    break;
                }
                if (last) {
                    blocked = "running";
                    break;
                }
                double next = fm_now_ms() + step;
                if (waiter_wait(&w, next < hard_at ? next : hard_at)) {
                    exited = slow = 1;
                    break;
                }
            }
        }
        double elapsed = fm_now_ms() - start;
        int failed = 1;
        if (!exited) {
            double at = fm_now_ms() - t0;
            drain(pp[0]);
            char *msg = !strcmp(blocked, "yes")
                            ? strf("blocked: no thread runnable or in a timed wait, no CPU time, not scheduled, "
                                   "for %.0f ms (proved %.0f ms after the fork, timeout %ld ms)%s%s",
                                   cfg.sample_ms, at, cfg.timeout_ms, outlen ? "; output: " : "", out_tail())
                            : strf("still running %.0f ms after the fork (%g x the %ld ms timeout), never blocked: "
                                   "a spin or livelock%s%s",
                                   at, cfg.hard_factor, cfg.timeout_ms, outlen ? "; output: " : "", out_tail());
            failure_t *f = record("hang", i, elapsed, msg, -1, -1, pid);
            if (f) f->proof = proof_text(&pr), f->blocked = blocked;
            waiter_close(&w);
            kill_and_reap(pid);
            drain(pp[0]);
        } else {
            waiter_close(&w);
            int st = kill_and_reap(pid);
            double t1 = fm_now_ms();
            drain(pp[0]);
            if (slow) {
                R.slow++;
                if (R.n_slow_ex < MAX_SLOW_EX) R.slow_ex[R.n_slow_ex].iteration = i, R.slow_ex[R.n_slow_ex++].ms = t1 - t0;
            }
            if (WIFSIGNALED(st)) {
                int sig = WTERMSIG(st);
                char *msg = strf("killed by %s (%d)%s%s", sigabbrev(sig), sig, outlen ? "; output: " : "", out_tail());
                record("crash", i, elapsed, msg, sig, -1, 0);
            } else if (WEXITSTATUS(st) != 0) {
                const char *t = out_tail();
                char *msg = outlen ? strdup(t) : strf("exit status %d (no output)", WEXITSTATUS(st));
                record("wrong", i, elapsed, msg, -1, WEXITSTATUS(st), 0);
            } else if (have_re && (out_tail(), regexec(&expect_re, outbuf, 0, NULL, 0) != 0)) {
                /* out_tail() NUL-terminates the kept output (and blanks NUL bytes) for regexec */
                char *msg = strf("output did not match /%s/: %s", cfg.expect, out_tail());
                record("wrong", i, elapsed, msg, -1, 0, 0);
            } else {
                failed = 0;
                R.ok++;
                if (R.n_child_ms == R.cap_child_ms) {
                    size_t cap = R.cap_child_ms ? R.cap_child_ms * 2 : 4096;
                    double *p = realloc(R.child_ms, cap * sizeof(double));
                    if (p) R.child_ms = p, R.cap_child_ms = cap;
                }
                if (R.n_child_ms < R.cap_child_ms) {
                    R.child_ms[R.n_child_ms++] = t1 - t0;
                    update_early();
                }
            }
        }
        proof_free(&pr);
        if (failed && cfg.fail_fast) break;
    }
    double stop = fm_now_ms(), stop_coarse = coarse_ms();
    R.elapsed_ms = stop - start;
    /* pressure over the window: iterations since the first fork, and how long ago each thread last finished one */
    R.have_pressure = 1;
    R.window_ms = R.elapsed_ms;
    for (int t = 0; t < R.threads_started; t++) {
        R.iter_window[t] = __atomic_load_n(&P[t].iterations, __ATOMIC_RELAXED) - R.iter_base[t];
        double last;
        __atomic_load(&P[t].last_done, &last, __ATOMIC_RELAXED);
        R.last_ms[t] = last > 0 ? (stop_coarse - last > 0 ? stop_coarse - last : 0) : -1;
    }
}

/* ------------------------------------------------------------------------------------------------ */

static void die_config(const char *what) {
    if (cfg.result) {
        char *m = strf("bad config: %s", what);
        write_result(NULL, m);
        _exit(0);
    }
    fprintf(stderr, "forkmatrix harness: bad config: %s\n", what);
    _exit(2);
}

static void parse_config(const char *path) {
    char *text = read_text_file(path, 1 << 24);
    if (!text) {
        fprintf(stderr, "forkmatrix harness: cannot read %s: %s\n", path, strerror(errno));
        _exit(2);
    }
    if (!jskip(text, 0)) {
        const char *rv = jget(text, "result"); /* best effort, for the error result */
        if (rv) cfg.result = jstr(rv);
        die_config("not a JSON object");
    }
    const char *v;
    double d;
    int bv;
    cfg.result = jstr(jget(text, "result"));
    if (!cfg.result) die_config("missing \"result\"");
    cfg.case_id = jstr(jget(text, "case"));
    cfg.file = jstr(jget(text, "file"));
    cfg.expect = jstr(jget(text, "expect_output"));
#define NUM(key, field, def, lo, hi)                                                                          \
    do {                                                                                                      \
        v = jget(text, key);                                                                                  \
        if (!v || !strncmp(jws(v), "null", 4)) d = (def);                                                     \
        else if (!jnum(v, &d)) die_config("\"" key "\" is not a number");                                     \
        if (!(d >= (lo) && d <= (hi))) die_config("\"" key "\" out of range");                                \
        field = d;                                                                                            \
    } while (0)
    NUM("threads", cfg.threads, 0, 0, 4096);
    NUM("forks", cfg.forks, 1000, 1, 1e12);
    NUM("seconds", cfg.seconds, 10, 0, 1e9);
    NUM("timeout_ms", cfg.timeout_ms, 2000, 1, 1e9);
    NUM("seed", cfg.seed, 0, 0, 18446744073709551615.0);
    NUM("max_delay_us", cfg.max_delay_us, 0, 0, 1e9);
    NUM("warmup_ms", cfg.warmup_ms, 0, 0, 1e9);
    cfg.fail_fast = 0;
    if ((v = jget(text, "fail_fast")) && strncmp(jws(v), "null", 4) && !jbool(v, &bv))
        die_config("\"fail_fast\" is not a boolean");
    else if (v && jbool(v, &bv)) cfg.fail_fast = bv;
    cfg.env_check = 0;
    if ((v = jget(text, "env_check")) && jbool(v, &bv)) cfg.env_check = bv;
    cfg.exit_normal = 0;
    char *ex = jstr(jget(text, "exit"));
    if (ex) {
        if (!strcmp(ex, "exit")) cfg.exit_normal = 1;
        else if (strcmp(ex, "_exit")) die_config("\"exit\" must be \"_exit\" or \"exit\"");
        free(ex);
    }
    cfg.diag_max = 1;
    cfg.gdb = NULL;
    const char *diag = jget(text, "diag");
    if (diag && *jws(diag) == '{') {
        cfg.gdb = jstr(jget(diag, "gdb"));
        if (cfg.gdb && !*cfg.gdb) cfg.gdb = NULL;
        const char *m = jget(diag, "max");
        if (m && jnum(m, &d) && d >= 0) cfg.diag_max = (int)d;
    }
    cfg.sample_ms = 100, cfg.early_min_ms = 200, cfg.early_factor = 20, cfg.hard_factor = 5;
    const char *hp = jget(text, "hang_proof");
    if (hp && strncmp(jws(hp), "null", 4)) {
        if (*jws(hp) != '{') die_config("\"hang_proof\" is not an object");
        const char *ht = text;
        text = (char *)hp; /* NUM reads from `text` */
        NUM("sample_ms", cfg.sample_ms, 100, 1, 60000);
        NUM("early_min_ms", cfg.early_min_ms, 200, 0, 1e9);
        NUM("early_factor", cfg.early_factor, 20, 0, 1e6);
        NUM("hard_factor", cfg.hard_factor, 5, 1, 1000);
        text = (char *)ht;
    }
#undef NUM
    free(text);
}

int main(int argc, char **argv) {
    /* fds 0-2 must exist so the output pipe never lands on them */
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0) {
            int n = open("/dev/null", O_RDWR);
            if (n >= 0 && n != fd) {
                dup2(n, fd);
                close(n);
            }
        }
    argv0 = argc > 0 ? argv[0] : "";
    if (argc != 2) {
        fprintf(stderr, "usage: %s config.json\n", argv0);
        return 2;
    }
    parse_config(argv[1]);
    fm_threads = cfg.threads;
    rng_state = cfg.seed;

    R.libc_path = find_libc_path();
    if (gnu_get_libc_version) R.libc_self = strf("glibc %s", gnu_get_libc_version());
    if (cfg.env_check) {
        size_t n = 0;
        while (environ && environ[n]) n++;
        R.environ_copy = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) R.environ_copy[i] = strdup(environ[i]);
    }
    if (cfg.expect) {
        int rc = regcomp(&expect_re, cfg.expect, REG_EXTENDED | REG_NEWLINE | REG_NOSUB);
        if (rc != 0) {
            char eb[256];
            regerror(rc, &expect_re, eb, sizeof eb);
            write_result(NULL, strf("expect_output /%s/ does not compile: %s", cfg.expect, eb));
            _exit(0);
        }
        have_re = 1;
    }
    /* Descendants a child leaves behind are reparented to us, so kill_and_reap can reap them. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    main_thread = pthread_self();
    install_fault_handlers();
    fm_setup();

    if (cfg.threads > 0) {
        void *mem = NULL;
        if (posix_memalign(&mem, 128, (size_t)cfg.threads * sizeof(pressure_slot_t)) != 0) {
            finish_run();
            write_result(NULL, strf("out of memory for %d pressure slots", cfg.threads));
            _exit(0);
        }
        memset(mem, 0, (size_t)cfg.threads * sizeof(pressure_slot_t));
        P = mem;
        R.iter_base = calloc((size_t)cfg.threads, sizeof(long));
        R.iter_window = calloc((size_t)cfg.threads, sizeof(long));
        R.last_ms = calloc((size_t)cfg.threads, sizeof(double));
    }
    for (int i = 0; i < cfg.threads; i++) {
        pthread_t t;
        __atomic_add_fetch(&threads_running, 1, __ATOMIC_RELEASE);
        if (pthread_create(&t, NULL, loop_thread, (void *)(intptr_t)i) != 0) {
            __atomic_sub_fetch(&threads_running, 1, __ATOMIC_RELEASE);
            break;
        }
        pthread_detach(t);
        R.threads_started++;
    }
    if (R.threads_started < cfg.threads) {
        finish_run();
        write_result(NULL, strf("pthread_create failed after %d of %d threads", R.threads_started, cfg.threads));
        _exit(0);
    }
    /* precise small delays for the forking thread only (the loop threads keep the default slack) */
    prctl(PR_SET_TIMERSLACK, 1UL);
    fm_sleep_ms((double)cfg.warmup_ms);

    /* the precondition: once, threads running, before the first fork (fm_fail in it names it, see fm_fail) */
    phase = "precondition";
    int pre = fm_precondition();
    read_mapped();
    if (pre != 0) {
        finish_run();
        write_result(NULL, strf("precondition failed: fm_precondition returned %d", pre));
        _exit(0);
    }
    phase = "before_fork";
    /* pressure counts the iterations made during the fork loop only */
    for (int t = 0; t < R.threads_started; t++) R.iter_base[t] = __atomic_load_n(&P[t].iterations, __ATOMIC_RELAXED);

    fork_loop();

    finish_run();
    write_result(NULL, NULL);
    _exit(0);
}
