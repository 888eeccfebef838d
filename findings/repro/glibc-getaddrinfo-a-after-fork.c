/* glibc: getaddrinfo_a(GAI_WAIT) in the child of a fork never returns when the parent had called getaddrinfo_a
   within the last second (gai_idle_time): the child inherits nthreads/idle_thread_count, counts the parent's
   idle helper thread (which does not exist in the child) as available, signals it instead of starting one,
   and waits forever. The program itself starts no thread.
   Build: cc -O1 glibc-getaddrinfo-a-after-fork.c -o gai -lanl   (glibc < 2.34 needs -lanl; later ones accept it)
   Run:   ./gai [forks] [delay-ms]   (delay between the parent's lookup and the fork; >= 1000 ms: helper has exited) */
#define _GNU_SOURCE
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int lookup(void) {
  struct gaicb cb; memset(&cb, 0, sizeof cb);
  cb.ar_name = "localhost";
  struct gaicb *l[1] = { &cb };
  int rc = getaddrinfo_a(GAI_WAIT, l, 1, NULL);
  if (rc == 0 && cb.ar_result) freeaddrinfo(cb.ar_result);
  return rc ? rc : gai_error(&cb);
}

int main(int argc, char **argv) {
  int forks = argc > 1 ? atoi(argv[1]) : 20, delay = argc > 2 ? atoi(argv[2]) : 10, hung = 0, failed = 0;
  for (int i = 0; i < forks; i++) {
    if (lookup()) { fprintf(stderr, "getaddrinfo_a(localhost) fails here even without fork\n"); return 2; }
    usleep(delay * 1000);
    pid_t pid = fork();
    if (pid == 0) _exit(lookup() ? 1 : 0);
    int st = 0; pid_t r = 0;
    for (int ms = 0; ms < 2000 && (r = waitpid(pid, &st, WNOHANG)) == 0; ms++) usleep(1000);
    if (r == 0) { hung++; kill(pid, SIGKILL); waitpid(pid, &st, 0); }
    else if (!WIFEXITED(st) || WEXITSTATUS(st)) failed++;
  }
  printf("%d of %d children still inside getaddrinfo_a after 2 s, %d failed\n", hung, forks, failed);
  return hung || failed;
}
