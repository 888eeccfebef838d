/* glibc: dlopen in the child of a fork that happened while another thread was inside dlopen/dlclose.
   posix/fork.c re-initialises dl_load_lock in the child (it does not take it before forking), so the child's
   dlopen runs on link-map state the dead thread left half updated: ld.so aborts with "Inconsistency detected by
   ld.so" (exit 127), or the child blocks on dl_load_write_lock, which fork does not reset at all.
   Build: cc -O1 -pthread glibc-dlopen-in-child-after-fork.c -o dlc -ldl
   Run:   ./dlc [forks] [lib1 lib2 lib3 lib4]
          the threads dlopen/dlclose the four libraries given (e.g. libxml2.so.2 libsqlite3.so.0 libncursesw.so.6
          libexpat.so.1: ones the program has not loaded; the ld.so assertion needs these), or four tiny ones it
          builds in /tmp (needs cc on PATH; the child then only hangs) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char libs[4][64];
static volatile int inside;

static void *worker(void *arg) {
  const char *lib = libs[(long)arg]; /* each thread its own library: every dlopen maps it, every dlclose unmaps it */
  for (;;) {
    __atomic_add_fetch(&inside, 1, __ATOMIC_SEQ_CST);
    void *h = dlopen(lib, RTLD_NOW);
    if (h) dlclose(h);
    __atomic_sub_fetch(&inside, 1, __ATOMIC_SEQ_CST);
  }
  return NULL;
}

static double now_ms(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6; }

int main(int argc, char **argv) {
  int forks = argc > 1 ? atoi(argv[1]) : 200, aborted = 0, hung = 0, failed = 0;
  char cmd[512];
  int given = argc > 5;
  for (int i = 0; i < 4 && given; i++) snprintf(libs[i], sizeof libs[i], "%s", argv[2 + i]);
  for (int i = 0; i < 4 && !given; i++) {
    snprintf(libs[i], sizeof libs[i], "/tmp/libfm-dlc-%d-%d.so", (int)getpid(), i);
    snprintf(cmd, sizeof cmd, "echo 'int fm_dlc_%d(void) { return %d; }' | cc -shared -fPIC -x c - -o %s", i, i, libs[i]);
    if (system(cmd) != 0) { fprintf(stderr, "cannot build %s\n", libs[i]); return 2; }
  }
  pthread_t th;
  for (long t = 0; t < 4; t++) pthread_create(&th, NULL, worker, (void *)t);
  for (int i = 0; i < forks; i++) {
    double until = now_ms() + 2;
    while (!__atomic_load_n(&inside, __ATOMIC_SEQ_CST) && now_ms() < until) { }
    pid_t pid = fork();
    if (pid == 0) {
      /* libm (a dependency of libxml2 and libsqlite3, so the threads load and unload it too), then a library
         of one of the threads */
      void *m = dlopen("libm.so.6", RTLD_NOW);
      if (!m) { dprintf(2, "child: dlopen(libm.so.6): %s\n", dlerror()); _exit(1); }
      void *n = dlopen(libs[0], RTLD_NOW);
      if (!n) { dprintf(2, "child: dlopen(%s): %s\n", libs[0], dlerror()); _exit(1); }
      _exit(0);
    }
    int st = 0; pid_t r = 0;
    for (int ms = 0; ms < 2000 && (r = waitpid(pid, &st, WNOHANG)) == 0; ms++) usleep(1000);
    if (r == 0) { hung++; kill(pid, SIGKILL); waitpid(pid, &st, 0); }
    else if (WIFEXITED(st) && WEXITSTATUS(st) == 127) aborted++;
    else if (!WIFEXITED(st) || WEXITSTATUS(st)) {
      failed++;
      if (WIFSIGNALED(st)) fprintf(stderr, "fork %d: child killed by signal %d\n", i, WTERMSIG(st));
      else fprintf(stderr, "fork %d: child exit %d (a dlopen returned NULL)\n", i, WEXITSTATUS(st));
    }
  }
  for (int i = 0; i < 4 && !given; i++) unlink(libs[i]);
  printf("of %d children: %d aborted by ld.so (exit 127), %d hung (2 s), %d failed otherwise\n", forks, aborted, hung, failed);
  return aborted || hung || failed;
}
