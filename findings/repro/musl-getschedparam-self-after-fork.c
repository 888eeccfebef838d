/* musl: pthread_getschedparam(pthread_self()) blocks forever in the child of a fork that happened while another
   thread was inside pthread_getschedparam (or pthread_kill, pthread_setschedparam, pthread_setschedprio) on the
   forking thread. The child's only thread is the forking thread; its descriptor's killlock was held by the
   other thread at fork and nothing releases it in the child.
   Build: musl-gcc -O1 -pthread musl-getschedparam-self-after-fork.c -o gsp
   Run:   ./gsp [forks]   (prints how many children were still blocked after 1 s)
   With -DUSE_KILL the watchers call pthread_kill(forker, 0) (a liveness check) and the child pthread_kill(pthread_self(), 0). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pthread_t forker;
static volatile int inside;

static void *watch(void *arg) {
  (void)arg;
  for (;;) {
    int pol; struct sched_param sp;
    __atomic_add_fetch(&inside, 1, __ATOMIC_SEQ_CST);
#ifdef USE_KILL
    (void)pol; (void)sp;
    pthread_kill(forker, 0);                  /* a monitoring thread checking that the main thread is alive */
#else
    pthread_getschedparam(forker, &pol, &sp); /* a monitoring thread reading the main thread's priority */
#endif
    __atomic_sub_fetch(&inside, 1, __ATOMIC_SEQ_CST);
  }
  return NULL;
}

static double now_ms(void) {
  struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  int forks = argc > 1 ? atoi(argv[1]) : 100, hung = 0, failed = 0;
  forker = pthread_self();
  pthread_t th;
  for (int i = 0; i < 2; i++) pthread_create(&th, NULL, watch, NULL);
  for (int i = 0; i < forks; i++) {
    double until = now_ms() + 2;
    while (!__atomic_load_n(&inside, __ATOMIC_SEQ_CST) && now_ms() < until) { } /* fork while a watcher is inside */
    pid_t pid = fork();
    if (pid == 0) {
      int pol; struct sched_param sp;
#ifdef USE_KILL
      (void)pol; (void)sp;
      _exit(pthread_kill(pthread_self(), 0) ? 1 : 0);
#else
      _exit(pthread_getschedparam(pthread_self(), &pol, &sp) ? 1 : 0);
#endif
    }
    int st = 0; pid_t r = 0;
    for (int ms = 0; ms < 1000 && (r = waitpid(pid, &st, WNOHANG)) == 0; ms++) usleep(1000);
    if (r == 0) { hung++; kill(pid, SIGKILL); waitpid(pid, &st, 0); }
    else if (!WIFEXITED(st) || WEXITSTATUS(st)) failed++;
  }
  printf("%d of %d children blocked for 1 s in %s(pthread_self()), %d failed\n", hung, forks,
#ifdef USE_KILL
         "pthread_kill",
#else
         "pthread_getschedparam",
#endif
         failed);
  return hung || failed;
}
