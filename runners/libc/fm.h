/* fm.h: the snippet API of the forkmatrix libc harness (runners/libc/harness.c).
 *
 * A case's snippets (suites/libc/<family>.yaml) are compiled into case.c, which includes this header,
 * together with harness.c. Portable to glibc and musl (1.2.2+): nothing here needs a glibc-only symbol.
 *
 *   fm_setup()        runs once in the parent before the threads start (may call fm_skip).
 *   fm_loop()         one iteration of a parent thread; called again and again until the harness stops.
 *   fm_precondition() once in the forking thread after the warm-up, threads running, before the first fork;
 *                     non-zero or fm_fail(msg) = the cell is an `error` "precondition failed: ...", no fork.
 *   fm_before_fork()  in the forking thread right before each fork() (after the random delay), e.g. wait until
 *                     fm_inside() > 0 to time the fork into the threads' critical section.
 *   fm_child()        runs in the child after each fork(); 0 = success, anything else = `wrong`.
 * Absent snippets are empty bodies (fm_precondition then returns 0).
 *
 * A case's `library:` shared objects are in the environment as FM_LIB_<NAME>; case.c defines the same-named
 * macro as getenv("FM_LIB_<NAME>"), so a snippet writes dlopen(FM_LIB_FMLIB, RTLD_NOW).
 */
#ifndef FORKMATRIX_FM_H
#define FORKMATRIX_FM_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The snippet functions (generated into case.c). */
void fm_setup(void);
void fm_loop(void);
int fm_precondition(void);
void fm_before_fork(void);
int fm_child(void);

/* Pressure: how many loop threads are inside fm_loop() right now, and how many fm_loop() calls all of them have
 * finished since they started. Relaxed loads, no syscall: cheap enough to spin on in fm_before_fork. */
int fm_inside(void);
long fm_iterations(void);

/* In the child: print the message (plus a newline) to stderr with write(2) and _exit(1): a `wrong`.
 * In the parent (setup, before_fork, a loop thread): the case is broken: the harness writes {"error": message} and
 * exits. In the precondition: {"error": "precondition failed: message"}. */
void fm_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* In setup (or code called from it): this case cannot run here; the harness writes {"skipped": reason}
 * and exits without forking. Called in the child it is a `wrong` ("fm_skip in child: ..."). */
void fm_skip(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* An opaque sink: the compiler can never prove a pointer passed here unused (a malloc/free pair stays). */
void fm_use(void *p);

/* Which parent thread runs this fm_loop: 0 .. fm_threads-1; -1 in the main (forking) thread and the child. */
extern __thread int fm_thread_index;
/* The number of loop threads the config asked for. */
extern int fm_threads;
/* 1 in the forked child (set right after fork() returns 0), 0 in the parent. */
extern volatile int fm_in_child;
/* Set when the harness stops the loop threads (a loop that waits on something may poll it). */
extern volatile int fm_stop;

/* Register a cleanup (at most 8) that the harness runs in the parent at the end: after the fork loop, once the
 * loop threads have finished their current iteration (it waits up to 500 ms for stuck ones), before the result
 * is written; also when setup skips or fails. For files the case creates (named semaphores, temp files). */
void fm_at_end(void (*fn)(void));

/* Async-signal-safe helpers for the child (no malloc, no stdio, no locks). */
int fm_thread_count(void);            /* entries in /proc/self/task (getdents64), -1 on error */
void fm_write(int fd, const char *s); /* write(2) the whole string */
double fm_now_ms(void);               /* CLOCK_MONOTONIC in milliseconds */
void fm_sleep_ms(double ms);          /* nanosleep, restarted on EINTR */

#ifdef __cplusplus
}
#endif

#endif /* FORKMATRIX_FM_H */
