/*
 * forkmatrix raw-fork addon (N-API, C).
 *
 * Node has no fork(2). This addon gives the node harness a real fork() from
 * a process full of threads (worker_threads, the libuv threadpool, V8's
 * platform threads), with three kinds of child:
 *
 *   forkWrite(text, status)      child: write(2) text to its stdout, _exit(status)
 *   forkExec(path, argv, env?)   child: execve(path, argv, env or environ)
 *   forkReturn(alarmSeconds?)    child: returns into JavaScript ({pid: 0, fd: -1})
 *
 * Every fork creates a pipe (O_CLOEXEC) whose write end becomes the child's
 * fd 1 and 2; the parent gets {pid, fd} with fd the non-blocking read end.
 * Everything the first two children need is prepared *before* fork(): after
 * it they only call async-signal-safe functions (dup2, signal, sigprocmask,
 * write, execve, _exit), as POSIX requires of the child of a multithreaded
 * process. forkReturn's child does not obey that rule on purpose: it is the
 * "recorded, not judged" case (V8 marks its heap MADV_DONTFORK on Linux, so
 * the child has no JavaScript heap to return to).
 *
 * Support functions: waitpid(pid) (WNOHANG, never -1: libuv reaps its own
 * children by pid), read(fd), close(fd), write(fd, text), exit(code) (_exit).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <pthread.h>

#include <node_api.h>

extern char **environ;

#define CHECK_NAPI(env, call)                                              \
  do {                                                                     \
    napi_status status_ = (call);                                          \
    if (status_ != napi_ok) {                                              \
      const napi_extended_error_info *info_ = NULL;                        \
      napi_get_last_error_info((env), &info_);                             \
      bool pending_ = false;                                               \
      napi_is_exception_pending((env), &pending_);                         \
      if (!pending_)                                                       \
        napi_throw_error((env), NULL,                                      \
                         info_ && info_->error_message                     \
                             ? info_->error_message                        \
                             : "N-API call failed: " #call);               \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s (errno %d)", what, strerror(err), err);
  napi_throw_error(env, NULL, msg);
  return NULL;
}

/* Copy a JS string (or Buffer) into a malloc'd NUL-terminated buffer. */
static char *get_bytes(napi_env env, napi_value v, size_t *len_out) {
  bool is_buf = false;
  if (napi_is_buffer(env, v, &is_buf) == napi_ok && is_buf) {
    void *data = NULL;
    size_t len = 0;
    if (napi_get_buffer_info(env, v, &data, &len) != napi_ok) return NULL;
    char *copy = malloc(len + 1);
    if (!copy) return NULL;
    memcpy(copy, data, len);
    copy[len] = 0;
    if (len_out) *len_out = len;
    return copy;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a string or a Buffer");
    return NULL;
  }
  char *s = malloc(len + 1);
  if (!s) return NULL;
  if (napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
    free(s);
    return NULL;
  }
  if (len_out) *len_out = len;
  return s;
}

/* NULL-terminated char*[] from a JS array of strings. */
static char **get_string_array(napi_env env, napi_value arr) {
  bool is_arr = false;
  if (napi_is_array(env, arr, &is_arr) != napi_ok || !is_arr) {
    napi_throw_type_error(env, NULL, "expected an array of strings");
    return NULL;
  }
  uint32_t n = 0;
  napi_get_array_length(env, arr, &n);
  char **out = calloc((size_t)n + 1, sizeof(char *));
  if (!out) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    if (napi_get_element(env, arr, i, &el) != napi_ok ||
        !(out[i] = get_bytes(env, el, NULL))) {
      for (uint32_t j = 0; j < i; j++) free(out[j]);
      free(out);
      return NULL;
    }
  }
  return out;
}

static void free_string_array(char **a) {
  if (!a) return;
  for (char **p = a; *p; p++) free(*p);
  free(a);
}

/* ---- async-signal-safe helpers for the child ---------------------------- */

static void child_write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, buf, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    buf += w;
    len -= (size_t)w;
  }
}

static void child_write_str(int fd, const char *s) {
  child_write_all(fd, s, strlen(s));
}

static void child_write_int(int fd, int v) {
  char buf[16];
  int i = (int)sizeof buf;
  unsigned u = v < 0 ? (unsigned)-v : (unsigned)v;
  do {
    buf[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u && i > 1);
  if (v < 0) buf[--i] = '-';
  child_write_all(fd, buf + i, sizeof buf - (size_t)i);
}

/* In the child: the pipe becomes fd 1 and 2. */
static void child_stdio(int pipe_w) {
  dup2(pipe_w, 1);
  dup2(pipe_w, 2);
  if (pipe_w > 2) close(pipe_w);
}

/* In the child: default dispositions (Node ignores SIGPIPE, libuv handles
 * SIGCHLD...) and an empty mask, like libuv's uv__process_child_init does.
 * RT signals are left alone (glibc uses some internally). */
static void child_reset_signals(void) {
  for (int n = 1; n < 32; n++) {
    if (n == SIGKILL || n == SIGSTOP) continue;
    signal(n, SIG_DFL);
  }
  sigset_t empty;
  sigemptyset(&empty);
  sigprocmask(SIG_SETMASK, &empty, NULL);
}

/* ---- fork core ------------------------------------------------------------ */

typedef struct {
  int pipe_r, pipe_w;
  sigset_t old_mask;
} fork_ctx;

/* Returns pid (>0 parent, 0 child) or -errno. Signals are blocked across
 * fork() so no handler runs in the child before it is ready (libuv #3251). */
static pid_t begin_fork(fork_ctx *c) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -errno;
  c->pipe_r = p[0];
  c->pipe_w = p[1];
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &c->old_mask);
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &c->old_mask, NULL);
    close(p[0]);
    close(p[1]);
    return -e;
  }
  if (pid > 0) {
    pthread_sigmask(SIG_SETMASK, &c->old_mask, NULL);
    close(c->pipe_w);
    int fl = fcntl(c->pipe_r, F_GETFL);
    if (fl >= 0) fcntl(c->pipe_r, F_SETFL, fl | O_NONBLOCK);
  }
  return pid;
}

static napi_value make_result(napi_env env, int pid, int fd) {
  napi_value obj, vpid, vfd;
  CHECK_NAPI(env, napi_create_object(env, &obj));
  CHECK_NAPI(env, napi_create_int32(env, pid, &vpid));
  CHECK_NAPI(env, napi_create_int32(env, fd, &vfd));
  CHECK_NAPI(env, napi_set_named_property(env, obj, "pid", vpid));
  CHECK_NAPI(env, napi_set_named_property(env, obj, "fd", vfd));
  return obj;
}

/* forkWrite(text: string | Buffer, status = 0): {pid, fd} */
static napi_value ForkWrite(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "forkWrite(text, status?)");
    return NULL;
  }
  size_t len = 0;
  char *text = get_bytes(env, argv[0], &len);
  if (!text) return NULL;
  int status = 0;
  if (argc >= 2) napi_get_value_int32(env, argv[1], &status);

  fork_ctx c;
  pid_t pid = begin_fork(&c);
  if (pid == 0) {
    /* child: async-signal-safe only */
    child_reset_signals();
    child_stdio(c.pipe_w);
    child_write_all(1, text, len);
    _exit(status & 0xff);
  }
  free(text);
  if (pid < 0) return throw_errno(env, "fork", (int)-pid);
  return make_result(env, pid, c.pipe_r);
}

/* forkExec(path: string, argv: string[], env?: string[] | null): {pid, fd} */
static napi_value ForkExec(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "forkExec(path, argv, env?)");
    return NULL;
  }
  char *path = get_bytes(env, argv[0], NULL);
  if (!path) return NULL;
  char **args = get_string_array(env, argv[1]);
  if (!args) {
    free(path);
    return NULL;
  }
  char **envp = NULL;
  if (argc >= 3) {
    napi_valuetype t;
    napi_typeof(env, argv[2], &t);
    if (t != napi_undefined && t != napi_null) {
      envp = get_string_array(env, argv[2]);
      if (!envp) {
        free(path);
        free_string_array(args);
        return NULL;
      }
    }
  }

  fork_ctx c;
  pid_t pid = begin_fork(&c);
  if (pid == 0) {
    child_reset_signals();
    child_stdio(c.pipe_w);
    execve(path, args, envp ? envp : environ);
    int e = errno;
    child_write_str(2, "execve failed: errno ");
    child_write_int(2, e);
    child_write_str(2, "\n");
    _exit(127);
  }
  free(path);
  free_string_array(args);
  free_string_array(envp);
  if (pid < 0) return throw_errno(env, "fork", (int)-pid);
  return make_result(env, pid, c.pipe_r);
}

/* forkReturn(alarmSeconds = 10): parent {pid, fd}; child {pid: 0, fd: -1}.
 * The child gets fd 1/2 on the pipe and an alarm() so that a child which
 * survives and wanders off into the harness's code cannot live forever. */
static napi_value ForkReturn(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int alarm_s = 10;
  if (argc >= 1) napi_get_value_int32(env, argv[0], &alarm_s);

  fork_ctx c;
  pid_t pid = begin_fork(&c);
  if (pid == 0) {
    child_stdio(c.pipe_w);
    struct rlimit no_core = {0, 0}; /* hundreds of expected SIGSEGVs: no core files */
    setrlimit(RLIMIT_CORE, &no_core);
    signal(SIGALRM, SIG_DFL);
    if (alarm_s > 0) alarm((unsigned)alarm_s);
    pthread_sigmask(SIG_SETMASK, &c.old_mask, NULL);
    close(c.pipe_r);
    return make_result(env, 0, -1); /* into JavaScript: V8 allocates here */
  }
  if (pid < 0) return throw_errno(env, "fork", (int)-pid);
  return make_result(env, pid, c.pipe_r);
}

/* waitpid(pid): null while running, else {status, signal, core}. */
static napi_value WaitPid(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t pid = 0;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &pid) != napi_ok ||
      pid <= 0) {
    napi_throw_type_error(env, NULL, "waitpid(pid > 0)");
    return NULL;
  }
  int st = 0;
  pid_t r;
  do
    r = waitpid(pid, &st, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, "waitpid", errno);
  napi_value out;
  if (r == 0) {
    CHECK_NAPI(env, napi_get_null(env, &out));
    return out;
  }
  napi_value status, sig, core;
  CHECK_NAPI(env, napi_create_object(env, &out));
  if (WIFEXITED(st)) {
    CHECK_NAPI(env, napi_create_int32(env, WEXITSTATUS(st), &status));
    CHECK_NAPI(env, napi_get_null(env, &sig));
  } else {
    CHECK_NAPI(env, napi_get_null(env, &status));
    CHECK_NAPI(env, napi_create_int32(env, WIFSIGNALED(st) ? WTERMSIG(st) : 0, &sig));
  }
  CHECK_NAPI(env, napi_get_boolean(env, WIFSIGNALED(st) && WCOREDUMP(st), &core));
  CHECK_NAPI(env, napi_set_named_property(env, out, "status", status));
  CHECK_NAPI(env, napi_set_named_property(env, out, "signal", sig));
  CHECK_NAPI(env, napi_set_named_property(env, out, "core", core));
  return out;
}

/* read(fd, max = 65536): Buffer with data, empty Buffer at EOF, null if it
 * would block. */
static napi_value Read(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1, max = 65536;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "read(fd, max?)");
    return NULL;
  }
  if (argc >= 2) napi_get_value_int32(env, argv[1], &max);
  if (max <= 0) max = 65536;
  char *buf = malloc((size_t)max);
  if (!buf) return throw_errno(env, "malloc", ENOMEM);
  ssize_t r;
  do
    r = read(fd, buf, (size_t)max);
  while (r < 0 && errno == EINTR);
  napi_value out;
  if (r < 0) {
    int e = errno;
    free(buf);
    if (e == EAGAIN || e == EWOULDBLOCK) {
      CHECK_NAPI(env, napi_get_null(env, &out));
      return out;
    }
    return throw_errno(env, "read", e);
  }
  void *data = NULL;
  napi_status s = napi_create_buffer_copy(env, (size_t)r, buf, &data, &out);
  free(buf);
  CHECK_NAPI(env, s);
  return out;
}

static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "close(fd)");
    return NULL;
  }
  if (close(fd) != 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return NULL;
}

/* write(fd, text): raw write(2), for a forkReturn child that survived. */
static napi_value Write(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "write(fd, text)");
    return NULL;
  }
  size_t len = 0;
  char *text = get_bytes(env, argv[1], &len);
  if (!text) return NULL;
  child_write_all(fd, text, len);
  free(text);
  return NULL;
}

/* exit(code): _exit(2) the whole process, from any thread. */
static napi_value Exit(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t code = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 1)
    napi_get_value_int32(env, argv[0], &code);
  _exit(code & 0xff);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"forkWrite", NULL, ForkWrite, NULL, NULL, NULL, napi_enumerable, NULL},
      {"forkExec", NULL, ForkExec, NULL, NULL, NULL, napi_enumerable, NULL},
      {"forkReturn", NULL, ForkReturn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"waitpid", NULL, WaitPid, NULL, NULL, NULL, napi_enumerable, NULL},
      {"read", NULL, Read, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, Close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"write", NULL, Write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"exit", NULL, Exit, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok)
    return NULL;
  return exports;
}
