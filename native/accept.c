// A TCP listener whose accept loop runs here, for servers facing unauthenticated floods (gate).
// The kernel's accept queue is first in, first out: under a reconnect flood a legitimate client
// waits behind every queued flood connection, so that wait is the queue's length divided by how
// fast we take connections. Node spends tens of microseconds per accepted socket (a handle, a
// Socket, events) even for one it resets at once; here a connection JS refuses costs accept(2),
// one call into JS with its source address, and close(2) with a reset — a few microseconds.
// JS wraps an admitted descriptor in a net.Socket itself. Linux only.
#define _GNU_SOURCE  // accept4
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>
#include "addon.h"

// Connections taken per readable event before yielding to the loop (other work, timers).
#define MAX_BATCH 512
// After EMFILE/ENFILE the queue stays readable: wait this long instead of spinning on it.
#define FULL_BACKOFF_MS 100

static const napi_type_tag ACCEPTOR_TAG = {0x74756e6b69742d61ULL, 0x6363657074000001ULL};

typedef struct {
  uv_poll_t poll;
  uv_timer_t timer;
  napi_env env;
  napi_ref callback;
  int fd;
  int handles;  // the two libuv handles and the JS external; freed when all three are gone
  bool stopped;
} acceptor_t;

static void on_readable(uv_poll_t* p, int status, int events);

static void release(acceptor_t* a) {
  if (--a->handles > 0) return;
  napi_delete_reference(a->env, a->callback);
  free(a);
}

static void on_closed(uv_handle_t* h) {
  release(h->data);
}

// The external outlives acceptStop (a second stop must still find `stopped`), so it holds a share.
static void on_finalize(napi_env env, void* data, void* hint) {
  release(data);
}

static void reset_close(int fd) {
  // A reset instead of FIN: nothing to flush, no TIME_WAIT, no FIN exchange per refused reconnect.
  struct linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

static void on_timer(uv_timer_t* t) {
  acceptor_t* a = t->data;
  if (!a->stopped) uv_poll_start(&a->poll, UV_READABLE, on_readable);
}

// Calls cb(fd, address, port) for one connection; true means JS took the descriptor.
static bool offer(acceptor_t* a, int fd, const struct sockaddr_storage* ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in* s4 = (const struct sockaddr_in*)ss;
    inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
    port = ntohs(s4->sin_port);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6* s6 = (const struct sockaddr_in6*)ss;
    inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
    port = ntohs(s6->sin6_port);
  }
  napi_env env = a->env;
  napi_value fn, recv, argv[3], result;
  bool taken = false;
  if (napi_get_reference_value(env, a->callback, &fn) != napi_ok || napi_get_global(env, &recv) != napi_ok ||
      napi_create_int32(env, fd, &argv[0]) != napi_ok || napi_create_string_utf8(env, host, NAPI_AUTO_LENGTH, &argv[1]) != napi_ok ||
      napi_create_int32(env, port, &argv[2]) != napi_ok) {
    report_napi(env, "acceptor arguments");
    return false;
  }
  napi_status st = napi_make_callback(env, NULL, recv, fn, 3, argv, &result);
  if (st != napi_ok) {
    napi_value e;
    if (st == napi_pending_exception && napi_get_and_clear_last_exception(env, &e) == napi_ok) napi_fatal_exception(env, e);
    else report_napi(env, "napi_make_callback");
    return false;
  }
  if (napi_get_value_bool(env, result, &taken) != napi_ok) taken = false;
  return taken;
}

static void on_readable(uv_poll_t* p, int status, int events) {
  acceptor_t* a = p->data;
  if (status < 0 || a->stopped) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(a->env, &scope) != napi_ok) return report_napi(a->env, "napi_open_handle_scope");
  for (int i = 0; i < MAX_BATCH && !a->stopped; i++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = accept4(a->fd, (struct sockaddr*)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        uv_poll_stop(&a->poll);
        uv_timer_start(&a->timer, on_timer, FULL_BACKOFF_MS, 0);
      }
      break;  // EAGAIN: the queue is empty
    }
    if (!offer(a, fd, &ss)) reset_close(fd);
  }
  napi_close_handle_scope(a->env, scope);
}

// acceptStart(fd, cb(fd, address, port) -> boolean) -> handle. `fd`: a listening, non-blocking
// socket. A connection for which cb returns anything but true is reset and closed here.
napi_value accept_start(napi_env env, napi_callback_info info) {
  napi_value argv[2], handle;
  if (!get_args(env, info, 2, argv, "expected (fd: number, cb: function)")) return NULL;
  int32_t fd;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  if (!is_function(env, argv[1], "expected (fd: number, cb: function)")) return NULL;
  uv_loop_t* loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  acceptor_t* a = calloc(1, sizeof *a);
  if (!a) return throw_error(env, "EACCEPT", "out of memory");
  a->env = env;
  a->fd = fd;
  if (napi_create_reference(env, argv[1], 1, &a->callback) != napi_ok) {
    free(a);
    return throw_napi(env, "napi_create_reference");
  }
  int uerr = uv_poll_init(loop, &a->poll, fd);
  if (uerr) {
    napi_delete_reference(env, a->callback);
    free(a);
    return throw_error(env, "EACCEPT", "uv_poll_init: %s", uv_strerror(uerr));
  }
  uv_timer_init(loop, &a->timer);
  a->poll.data = a->timer.data = a;
  a->handles = 3;
  uerr = uv_poll_start(&a->poll, UV_READABLE, on_readable);
  if (uerr) {
    a->stopped = true;
    a->handles = 2;
    uv_close((uv_handle_t*)&a->poll, on_closed);
    uv_close((uv_handle_t*)&a->timer, on_closed);
    return throw_error(env, "EACCEPT", "uv_poll_start: %s", uv_strerror(uerr));
  }
  if (napi_create_external(env, a, on_finalize, NULL, &handle) != napi_ok) {
    // Without the external nobody can stop it: stop now (the share it would have held goes too).
    a->stopped = true;
    a->handles = 2;
    uv_poll_stop(&a->poll);
    uv_close((uv_handle_t*)&a->poll, on_closed);
    uv_close((uv_handle_t*)&a->timer, on_closed);
    return throw_napi(env, "napi_create_external");
  }
  NAPI_CALL(env, napi_type_tag_object(env, handle, &ACCEPTOR_TAG));
  return handle;
}

// acceptStop(handle): stops accepting; the listening descriptor stays open (the caller owns it).
napi_value accept_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, "expected (handle: external)")) return NULL;
  bool ok = false;
  NAPI_CALL(env, napi_check_object_type_tag(env, argv[0], &ACCEPTOR_TAG, &ok));
  if (!ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected an acceptor handle");
    return NULL;
  }
  acceptor_t* a;
  NAPI_CALL(env, napi_get_value_external(env, argv[0], (void**)&a));
  if (a->stopped) return NULL;
  a->stopped = true;
  uv_poll_stop(&a->poll);
  uv_timer_stop(&a->timer);
  uv_close((uv_handle_t*)&a->poll, on_closed);
  uv_close((uv_handle_t*)&a->timer, on_closed);
  return NULL;
}

// acceptListen(address, port, backlog, v6only) -> [fd, port]: a non-blocking listening TCP socket on an IP
// literal (JS resolves names first). Errors carry the errno name as code (EADDRINUSE, EACCES…).
napi_value accept_listen(napi_env env, napi_callback_info info) {
  napi_value argv[4], out;
  if (!get_args(env, info, 4, argv, "expected (address: string, port: number, backlog: number, v6only: boolean)")) return NULL;
  char host[INET6_ADDRSTRLEN + 1] = {0};
  size_t len;
  int32_t port, backlog;
  bool v6only;
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], host, sizeof host, &len));
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &port));
  NAPI_CALL(env, napi_get_value_int32(env, argv[2], &backlog));
  NAPI_CALL(env, napi_get_value_bool(env, argv[3], &v6only));
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sslen;
  struct sockaddr_in* s4 = (struct sockaddr_in*)&ss;
  struct sockaddr_in6* s6 = (struct sockaddr_in6*)&ss;
  if (port < 0 || port > 65535) return throw_error(env, "EINVAL", "port %d out of range", port);
  if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    sslen = sizeof *s4;
  } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    sslen = sizeof *s6;
  } else {
    return throw_error(env, "EINVAL", "\"%s\" is not an IP address", host);
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, strerrorname_np(errno), "socket", errno);
  int one = 1, v6 = v6only ? 1 : 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
  if (bind(fd, (struct sockaddr*)&ss, sslen) < 0 || listen(fd, backlog) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, strerrorname_np(err), "listen", err);
  }
  if (getsockname(fd, (struct sockaddr*)&ss, &sslen) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, strerrorname_np(err), "getsockname", err);
  }
  int bound = ntohs(ss.ss_family == AF_INET ? s4->sin_port : s6->sin6_port);
  napi_value jfd, jport;
  NAPI_CALL_OR(env, napi_create_array_with_length(env, 2, &out), fail);
  NAPI_CALL_OR(env, napi_create_int32(env, fd, &jfd), fail);
  NAPI_CALL_OR(env, napi_create_int32(env, bound, &jport), fail);
  NAPI_CALL_OR(env, napi_set_element(env, out, 0, jfd), fail);
  NAPI_CALL_OR(env, napi_set_element(env, out, 1, jport), fail);
  return out;
fail:
  close(fd);
  return NULL;
}
