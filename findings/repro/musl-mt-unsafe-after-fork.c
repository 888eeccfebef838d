/* The child of a fork calls a non-thread-safe libc function (getpwent, fgetpwent, getgrnam, gethostbyname,
   setenv) that another thread of the parent was inside at the fork. The parent's threads are correct: they
   serialise the calls on a mutex of the program's own. The child does not take that mutex (it is held by a
   thread that does not exist in the child), so it re-enters the function on half-updated static state.
   On musl the child crashes (mallocng detects the inconsistent heap state) or hangs (getpwent's static FILE is
   locked); on glibc it hangs on the function's internal lock. With ATFORK=1 the program takes its mutex in a
   pthread_atfork prepare handler (what POSIX's pthread_atfork rationale recommends) and no child fails.
   Build: musl-gcc -O1 -pthread musl-mt-unsafe-after-fork.c -o mtu     (or gcc, for glibc)
   Run:   ./mtu FUNCTION [forks] [atfork]   FUNCTION: getpwent fgetpwent getgrnam gethostbyname setenv */
#define _GNU_SOURCE
#include <grp.h>
#include <netdb.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef WAIT_MS
#define WAIT_MS 1000 /* a child still running after this is counted as hung (and killed) */
#endif

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* the program's own lock around the MT-unsafe calls */
static volatile int inside;
static const char *fn;
static FILE *files[8];

static void lock(void) { pthread_mutex_lock(&mu); }
static void unlock(void) { pthread_mutex_unlock(&mu); }

static int call(int t, unsigned k) {
  if (!strcmp(fn, "getpwent")) {
    setpwent(); int n = 0; while (n < 3 && getpwent()) n++; endpwent(); return n > 0;
  }
  if (!strcmp(fn, "fgetpwent")) {
    FILE *f = files[t]; rewind(f); int n = 0; while (n < 3 && fgetpwent(f)) n++; return n > 0;
  }
  if (!strcmp(fn, "getgrnam")) { struct group *g = getgrnam("root"); return g && g->gr_gid == 0; }
  if (!strcmp(fn, "gethostbyname")) { struct hostent *h = gethostbyname("localhost"); return h && h->h_addr_list[0]; }
  if (!strcmp(fn, "setenv")) { /* grow and shrink environ with names it did not have */
    char name[32]; snprintf(name, sizeof name, "MTU_%d_%u", t, k % 48);
    return ((k / 48) & 1) ? unsetenv(name) == 0 : setenv(name, "v", 1) == 0;
  }
  fprintf(stderr, "unknown function %s\n", fn); exit(2);
}

static void *worker(void *arg) {
  int t = (int)(long)arg;
  for (unsigned k = 0;; k++) {
    lock();
    __atomic_store_n(&inside, 1, __ATOMIC_SEQ_CST);
    call(t, k);
    __atomic_store_n(&inside, 0, __ATOMIC_SEQ_CST);
    unlock();
  }
  return NULL;
}

static double now_ms(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6; }

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s getpwent|fgetpwent|getgrnam|gethostbyname|setenv [forks] [atfork]\n", argv[0]); return 2; }
  fn = argv[1];
  int forks = argc > 2 ? atoi(argv[2]) : 300, atfork = argc > 3 && atoi(argv[3]);
  int crashed = 0, hung = 0, failed = 0;
  for (int i = 0; i < 8; i++) if (!(files[i] = fopen("/etc/passwd", "r"))) { perror("/etc/passwd"); return 2; }
  if (!call(0, 0)) { fprintf(stderr, "%s fails here even without fork\n", fn); return 2; }
  if (atfork) pthread_atfork(lock, unlock, unlock);
  pthread_t th;
  for (long t = 0; t < 4; t++) pthread_create(&th, NULL, worker, (void *)t);
  for (int i = 0; i < forks; i++) {
    double until = now_ms() + 2;
    while (!__atomic_load_n(&inside, __ATOMIC_SEQ_CST) && now_ms() < until) { } /* fork while a thread is inside */
    pid_t pid = fork();
    if (pid == 0) {
      FILE *f = fopen("/etc/passwd", "r");
      if (f) files[0] = f; /* fgetpwent: the child parses a FILE of its own */
      int ok = 1;
      for (unsigned k = 0; k < 8; k++) ok &= call(0, 1000 + k);
      _exit(ok ? 0 : 1);
    }
    int st = 0; pid_t r = 0;
    for (int ms = 0; ms < WAIT_MS && (r = waitpid(pid, &st, WNOHANG)) == 0; ms++) usleep(1000);
    if (r == 0) { hung++; kill(pid, SIGKILL); waitpid(pid, &st, 0); }
    else if (WIFSIGNALED(st)) crashed++;
    else if (WEXITSTATUS(st)) failed++;
  }
  printf("%s%s: of %d children %d crashed, %d hung (1 s), %d failed\n", fn, atfork ? " (mutex taken in pthread_atfork)" : "",
         forks, crashed, hung, failed);
  return crashed || hung || failed;
}
