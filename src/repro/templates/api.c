/* ---- the forkmatrix snippet API (runners/libc/fm.h), declared before the case ---- */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void fm_setup(void);
void fm_loop(void);
int fm_precondition(void);
void fm_before_fork(void);
int fm_child(void);
int fm_inside(void);                 /* loop threads inside fm_loop() right now */
long fm_iterations(void);            /* fm_loop() calls finished by all loop threads */
void fm_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void fm_skip(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void fm_use(void *p);
void fm_at_end(void (*fn)(void));
int fm_thread_count(void);
void fm_write(int fd, const char *s);
double fm_now_ms(void);
void fm_sleep_ms(double ms);
__thread int fm_thread_index = -1;
int fm_threads;
volatile int fm_in_child;
volatile int fm_stop;
