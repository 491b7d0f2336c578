// Zero-copy relaying for `tunkit relay`: once a RELAY frame has been forwarded, the two TCP
// connections are joined in the kernel with splice(2) through a pipe per direction, so the bytes
// never reach JavaScript (the relay never reads them anyway: TLS is end to end). Runs on the main
// loop with uv_poll; half-close is passed on with shutdown(SHUT_WR). Linux only.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>
#include "addon.h"

#define CHUNK (256 * 1024)

// One direction: bytes from `from` into `pipe`, then from `pipe` into `to`.
typedef struct {
  int pipe[2];
  size_t queued;   // bytes sitting in the pipe
  int eof;         // `from` reached end of stream
  int shut;        // EOF passed on to `to`
  double bytes;    // total moved
} flow_t;

typedef struct splice_s {
  napi_env env;
  napi_ref cb;
  napi_ref self;
  int fd[2];
  uv_poll_t poll[2];
  int polling[2];
  flow_t flow[2];  // flow[0]: fd[0] -> fd[1]; flow[1]: fd[1] -> fd[0]
  int err;
  int finished;
  int closing;
} splice_t;

static void on_poll(uv_poll_t* p, int status, int events);

static void free_box(uv_handle_t* h) {
  splice_t* s = (splice_t*)h->data;
  if (--s->closing == 0) free(s);
}

// Reports to JS once, then releases everything.
static void finish(splice_t* s, int err) {
  if (s->finished) return;
  s->finished = 1;
  s->err = err;
  // Polls first: closing them takes the descriptors out of the loop's epoll set while they are
  // still ours (a descriptor number closed first could be reused before that).
  s->closing = 2;
  for (int i = 0; i < 2; i++) {
    uv_poll_stop(&s->poll[i]);
    uv_close((uv_handle_t*)&s->poll[i], free_box);
  }
  for (int i = 0; i < 2; i++) {
    close(s->flow[i].pipe[0]);
    close(s->flow[i].pipe[1]);
    close(s->fd[i]);
  }
  napi_handle_scope scope;
  napi_open_handle_scope(s->env, &scope);
  napi_value cb, global, args[3], ignored;
  napi_get_reference_value(s->env, s->cb, &cb);
  napi_get_global(s->env, &global);
  if (err) napi_create_string_utf8(s->env, strerror(err), NAPI_AUTO_LENGTH, &args[0]);
  else napi_get_null(s->env, &args[0]);
  napi_create_double(s->env, s->flow[0].bytes, &args[1]);
  napi_create_double(s->env, s->flow[1].bytes, &args[2]);
  napi_delete_reference(s->env, s->cb);
  napi_delete_reference(s->env, s->self);
  // make_callback, not call_function: Node then runs the nextTick and microtask queues.
  napi_make_callback(s->env, NULL, global, cb, 3, args, &ignored);
  napi_close_handle_scope(s->env, scope);
}

// Moves what it can in direction d; returns 0 or an errno.
static int pump(splice_t* s, int d) {
  flow_t* f = &s->flow[d];
  int from = s->fd[d], to = s->fd[1 - d];
  for (;;) {
    if (f->queued) {
      ssize_t n = splice(f->pipe[0], NULL, to, NULL, f->queued, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n < 0) return errno == EAGAIN ? 0 : errno;
      f->queued -= (size_t)n;
      f->bytes += (double)n;
      if (f->queued) return 0;
    }
    if (f->eof) {
      if (!f->shut) {
        f->shut = 1;
        shutdown(to, SHUT_WR);
      }
      return 0;
    }
    ssize_t n = splice(from, NULL, f->pipe[1], NULL, CHUNK, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n == 0) f->eof = 1;
    else if (n < 0) return errno == EAGAIN ? 0 : errno;
    else f->queued = (size_t)n;
  }
}

// Each descriptor waits to read while its outgoing flow's pipe is empty, and to write while the
// other flow has bytes queued for it.
static void rearm(splice_t* s) {
  for (int i = 0; i < 2; i++) {
    int ev = 0;
    if (!s->flow[i].eof && !s->flow[i].queued) ev |= UV_READABLE;
    if (s->flow[1 - i].queued) ev |= UV_WRITABLE;
    if (ev) {
      uv_poll_start(&s->poll[i], ev, on_poll);
      s->polling[i] = 1;
    } else if (s->polling[i]) {
      uv_poll_stop(&s->poll[i]);
      s->polling[i] = 0;
    }
  }
}

static void on_poll(uv_poll_t* p, int status, int events) {
  splice_t* s = (splice_t*)p->data;
  if (s->finished) return;
  int err = status < 0 ? EIO : 0;
  for (int d = 0; d < 2 && !err; d++) err = pump(s, d);
  if (err || (s->flow[0].shut && s->flow[1].shut)) return finish(s, err);
  rearm(s);
}

// splice(fdA: number, fdB: number, done: (err: string | null, aToB: number, bToA: number) => void)
// Takes duplicates of both descriptors (the caller then closes its sockets); returns a handle
// for spliceAbort.
static napi_value Splice(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], handle;
  int32_t a, b;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &a) != napi_ok || napi_get_value_int32(env, argv[1], &b) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (fdA, fdB, done)");
    return NULL;
  }
  splice_t* s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->env = env;
  s->fd[0] = fcntl(a, F_DUPFD_CLOEXEC, 0);
  s->fd[1] = fcntl(b, F_DUPFD_CLOEXEC, 0);
  int ok = s->fd[0] >= 0 && s->fd[1] >= 0 &&
           pipe2(s->flow[0].pipe, O_NONBLOCK | O_CLOEXEC) == 0 && pipe2(s->flow[1].pipe, O_NONBLOCK | O_CLOEXEC) == 0;
  if (!ok) {
    int e = errno;
    for (int i = 0; i < 2; i++) {
      if (s->fd[i] >= 0) close(s->fd[i]);
      if (s->flow[i].pipe[0] > 0) { close(s->flow[i].pipe[0]); close(s->flow[i].pipe[1]); }
    }
    free(s);
    napi_throw_error(env, "ESPLICE", strerror(e));
    return NULL;
  }
  for (int i = 0; i < 2; i++) {
    fcntl(s->fd[i], F_SETFL, fcntl(s->fd[i], F_GETFL) | O_NONBLOCK);
    fcntl(s->flow[i].pipe[0], F_SETPIPE_SZ, CHUNK);
  }
  uv_loop_t* loop;
  napi_get_uv_event_loop(env, &loop);
  for (int i = 0; i < 2; i++) {
    uv_poll_init(loop, &s->poll[i], s->fd[i]);
    s->poll[i].data = s;
  }
  napi_create_reference(env, argv[2], 1, &s->cb);
  napi_create_external(env, s, NULL, NULL, &handle);
  napi_create_reference(env, handle, 1, &s->self);
  rearm(s);
  return handle;
}

// spliceAbort(handle): closes both connections now (relay shutting down).
static napi_value SpliceAbort(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  splice_t* s;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_external(env, argv[0], (void**)&s) != napi_ok) return NULL;
  if (!s->finished) finish(s, ECONNABORTED);
  return NULL;
}

void register_splice(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    EXPORT("splice", Splice),
    EXPORT("spliceAbort", SpliceAbort),
  };
  napi_define_properties(env, exports, 2, props);
}
