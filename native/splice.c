// Zero-copy relaying for `tunkit relay`: once a RELAY frame has been forwarded, the two TCP
// connections are joined in the kernel with splice(2) through a pipe per direction, so the bytes
// never reach JavaScript (the relay never reads them anyway: TLS is end to end). Runs on the main
// loop with uv_poll; half-close is passed on with shutdown(SHUT_WR). Linux only.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
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

typedef struct splice_s splice_t;

// What the JS handle owns: the splice while it runs, then NULL. The handle may outlive the splice
// (JS keeps it for spliceAbort) and the splice the handle (at exit the GC takes all handles).
typedef struct {
  splice_t* s;
} box_t;

struct splice_s {
  napi_env env;
  napi_ref cb;
  napi_ref self;   // keeps the handle, and so the box, alive while the splice runs
  box_t* box;
  int fd[2];
  uv_poll_t poll[2];
  int inited;      // poll handles initialised, 0..2
  int polling[2];
  flow_t flow[2];  // flow[0]: fd[0] -> fd[1]; flow[1]: fd[1] -> fd[0]
  int finished;
  int closing;
};

// Marks splice handles, so that spliceAbort given any other external throws instead of using it.
static const napi_type_tag SPLICE_TAG = {0x74756e6b69742d73ULL, 0x706c696365000001ULL};

static void on_poll(uv_poll_t* p, int status, int events);

static void free_splice(uv_handle_t* h) {
  splice_t* s = (splice_t*)h->data;
  if (--s->closing == 0) free(s);
}

// Releases everything but the memory, which goes when libuv has closed the poll handles (at
// once when there are none). Polls first: closing them takes the descriptors out of the loop's
// epoll set while they are still ours (a descriptor number closed first could be reused before
// that). The caller may use `s` until it returns to the loop.
static void release(splice_t* s) {
  if (s->box) s->box->s = NULL;
  s->box = NULL;
  s->closing = s->inited;
  for (int i = 0; i < s->inited; i++) {
    uv_poll_stop(&s->poll[i]);
    uv_close((uv_handle_t*)&s->poll[i], free_splice);
  }
  for (int i = 0; i < 2; i++) {
    if (s->flow[i].pipe[0] >= 0) close(s->flow[i].pipe[0]);
    if (s->flow[i].pipe[1] >= 0) close(s->flow[i].pipe[1]);
    if (s->fd[i] >= 0) close(s->fd[i]);
    s->flow[i].pipe[0] = s->flow[i].pipe[1] = s->fd[i] = -1;
  }
}

static void drop_refs(splice_t* s) {
  if (s->cb) napi_delete_reference(s->env, s->cb);
  if (s->self) napi_delete_reference(s->env, s->self);
  s->cb = s->self = NULL;
}

// Reports to JS once, then releases everything.
static void finish(splice_t* s, int err) {
  if (s->finished) return;
  s->finished = 1;
  napi_env env = s->env;
  release(s);
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    report_napi(env, "napi_open_handle_scope");
  } else {
    napi_value args[3];
    if ((err ? napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &args[0]) : napi_get_null(env, &args[0])) != napi_ok ||
        napi_create_double(env, s->flow[0].bytes, &args[1]) != napi_ok || napi_create_double(env, s->flow[1].bytes, &args[2]) != napi_ok)
      report_napi(env, "creating the splice's results");
    else
      call_back(env, s->cb, 3, args);
    napi_close_handle_scope(env, scope);
  }
  drop_refs(s);
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
// other flow has bytes queued for it. Returns 0 or an errno.
static int rearm(splice_t* s) {
  for (int i = 0; i < 2; i++) {
    int ev = 0;
    if (!s->flow[i].eof && !s->flow[i].queued) ev |= UV_READABLE;
    if (s->flow[1 - i].queued) ev |= UV_WRITABLE;
    if (ev) {
      int uerr = uv_poll_start(&s->poll[i], ev, on_poll);
      if (uerr) return -uerr;
      s->polling[i] = 1;
    } else if (s->polling[i]) {
      uv_poll_stop(&s->poll[i]);
      s->polling[i] = 0;
    }
  }
  return 0;
}

static void on_poll(uv_poll_t* p, int status, int events) {
  splice_t* s = (splice_t*)p->data;
  if (s->finished) return;
  int err = status < 0 ? -status : 0;
  for (int d = 0; d < 2 && !err; d++) err = pump(s, d);
  if (!err && !(s->flow[0].shut && s->flow[1].shut)) err = rearm(s);
  if (err || (s->flow[0].shut && s->flow[1].shut)) finish(s, err);
}

// The handle was collected: after the splice ended, or at exit with it still running (then it
// stops without a callback: JS is going away).
static void finalize_box(napi_env env, void* data, void* hint) {
  box_t* box = (box_t*)data;
  splice_t* s = box->s;
  if (s) {
    s->finished = 1;
    release(s);
    drop_refs(s);
  }
  free(box);
}

// Setup failed after `s` was allocated: releases what was set up, throws nothing itself.
static void abandon(splice_t* s) {
  s->finished = 1;
  int none = s->inited == 0;
  release(s);
  drop_refs(s);
  if (none) free(s);
}

// splice(fdA: number, fdB: number, done: (err: string | null, aToB: number, bToA: number) => void)
// Takes duplicates of both descriptors (the caller then closes its sockets); returns a handle
// for spliceAbort. Throws when it cannot start (code ESPLICE: out of descriptors, say), having
// released what it had taken.
napi_value splice_start(napi_env env, napi_callback_info info) {
  static const char usage[] = "expected (fdA: number, fdB: number, done: function)";
  napi_value argv[3], handle;
  if (!get_args(env, info, 3, argv, usage) || !is_function(env, argv[2], usage)) return NULL;
  int32_t a, b;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &a));
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &b));
  uv_loop_t* loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  splice_t* s = calloc(1, sizeof *s);
  box_t* box = calloc(1, sizeof *box);
  if (!s || !box) {
    free(s);
    free(box);
    return throw_errno(env, "ENOMEM", "splice", ENOMEM);
  }
  s->env = env;
  for (int i = 0; i < 2; i++) s->fd[i] = s->flow[i].pipe[0] = s->flow[i].pipe[1] = -1;
  const char* what = "dup";
  if ((s->fd[0] = fcntl(a, F_DUPFD_CLOEXEC, 0)) < 0 || (s->fd[1] = fcntl(b, F_DUPFD_CLOEXEC, 0)) < 0) goto sys_fail;
  what = "pipe2";
  if (pipe2(s->flow[0].pipe, O_NONBLOCK | O_CLOEXEC) != 0 || pipe2(s->flow[1].pipe, O_NONBLOCK | O_CLOEXEC) != 0) goto sys_fail;
  what = "fcntl";
  for (int i = 0; i < 2; i++) {
    int fl = fcntl(s->fd[i], F_GETFL);
    if (fl < 0 || fcntl(s->fd[i], F_SETFL, fl | O_NONBLOCK) < 0) goto sys_fail;
    // A bigger pipe moves more per call; refused (over pipe-max-size), the default still works.
    (void)fcntl(s->flow[i].pipe[0], F_SETPIPE_SZ, CHUNK);
  }
  for (int i = 0; i < 2; i++) {
    int uerr = uv_poll_init(loop, &s->poll[i], s->fd[i]);
    if (uerr) {
      abandon(s);
      free(box);
      return throw_error(env, "ESPLICE", "uv_poll_init: %s", uv_strerror(uerr));
    }
    s->poll[i].data = s;
    s->inited++;
  }
  NAPI_CALL_OR(env, napi_create_reference(env, argv[2], 1, &s->cb), napi_fail);
  NAPI_CALL_OR(env, napi_create_external(env, box, finalize_box, NULL, &handle), napi_fail);
  // The handle owns the box now: failures below leave it to the GC.
  box->s = s;
  s->box = box;
  if (napi_type_tag_object(env, handle, &SPLICE_TAG) != napi_ok) {
    throw_napi(env, "napi_type_tag_object");
    abandon(s);
    return NULL;
  }
  if (napi_create_reference(env, handle, 1, &s->self) != napi_ok) {
    throw_napi(env, "napi_create_reference");
    abandon(s);
    return NULL;
  }
  int err = rearm(s);
  if (err) {
    abandon(s);
    return throw_errno(env, "ESPLICE", "uv_poll_start", err);
  }
  return handle;
sys_fail: {
    int e = errno;
    abandon(s);
    free(box);
    return throw_errno(env, "ESPLICE", what, e);
  }
napi_fail:
  abandon(s);
  free(box);
  return NULL;
}

// spliceAbort(handle): closes both connections now (relay shutting down); after the end, nothing.
napi_value splice_abort(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, "expected (handle)")) return NULL;
  bool ours = false;
  NAPI_CALL(env, napi_check_object_type_tag(env, argv[0], &SPLICE_TAG, &ours));
  if (!ours) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "not a splice handle");
    return NULL;
  }
  box_t* box;
  NAPI_CALL(env, napi_get_value_external(env, argv[0], (void**)&box));
  if (box->s) finish(box->s, ECONNABORTED);
  return NULL;
}
