// TUN/TAP devices for Node (the role node-tun would have had): open a device, read packets in
// batches on the main loop when the descriptor is readable (uv_poll, no thread pool), write packets
// with one non-blocking write(2) each. Linux only. The addon also holds the DATA frame digest (mac.c).
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include "addon.h"
#include <sys/ioctl.h>
#include <unistd.h>
#include <uv.h>

#define MAX_BATCH 64
#define MAX_PACKET 65536

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)

static napi_value throw_errno(napi_env env, const char* what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value code, text, error;
  napi_create_string_utf8(env, err == EPERM || err == EACCES ? "EPERM" : "ETUN", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_throw(env, error);
  return NULL;
}

// open(name: string, tap: boolean) -> [fd, actualName]
static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[IFNAMSIZ] = {0};
  size_t len = 0;
  CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len));
  bool tap = false;
  CHECK(napi_get_value_bool(env, argv[1], &tap));
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "open /dev/net/tun", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = (tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI;
  memcpy(ifr.ifr_name, name, len < IFNAMSIZ ? len : IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "TUNSETIFF", err);
  }
  napi_value result, jfd, jname;
  CHECK(napi_create_array_with_length(env, 2, &result));
  CHECK(napi_create_int32(env, fd, &jfd));
  CHECK(napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &jname));
  CHECK(napi_set_element(env, result, 0, jfd));
  CHECK(napi_set_element(env, result, 1, jname));
  return result;
}

// write(fd, buffer) -> bytes written, or -errno (EAGAIN: the device queue is full; drop, like a NIC)
static napi_value Write(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  void* data;
  size_t len;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &len));
  ssize_t n = write(fd, data, len);
  napi_value out;
  CHECK(napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &out));
  return out;
}

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  int fd;
  char* buf;
} reader_t;

// What the JS handle owns: the reader until it is stopped, then NULL (the reader is freed once
// libuv has closed its poll handle).
typedef struct {
  reader_t* r;
} box_t;

static void on_closed(uv_handle_t* h) {
  reader_t* r = (reader_t*)h->data;
  free(r->buf);
  free(r);
}

static void stop(box_t* box) {
  reader_t* r = box->r;
  if (!r) return;
  box->r = NULL;
  uv_poll_stop(&r->poll);
  napi_delete_reference(r->env, r->callback);
  uv_close((uv_handle_t*)&r->poll, on_closed);
}

// Readable: drain up to MAX_BATCH packets and hand them to JS as one array.
static void on_readable(uv_poll_t* p, int status, int events) {
  reader_t* r = (reader_t*)p->data;
  napi_env env = r->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value batch;
  napi_create_array(env, &batch);
  uint32_t count = 0;
  int err = status < 0 ? -status : 0;
  while (!err && count < MAX_BATCH) {
    ssize_t n = read(r->fd, r->buf, MAX_PACKET);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) err = errno;
      break;
    }
    void* copy;
    napi_value b;
    if (napi_create_buffer_copy(env, (size_t)n, r->buf, &copy, &b) != napi_ok) break;
    napi_set_element(env, batch, count++, b);
  }
  napi_value cb, global, args[2], ignored;
  napi_get_reference_value(env, r->callback, &cb);
  napi_get_global(env, &global);
  if (err) napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &args[0]);
  else napi_get_null(env, &args[0]);
  args[1] = batch;
  napi_make_callback(env, NULL, global, cb, 2, args, &ignored);
  napi_close_handle_scope(env, scope);
}

static void finalize_box(napi_env env, void* data, void* hint) {
  (void)env; (void)hint;
  stop((box_t*)data);
  free(data);
}

// startReading(fd, callback(err, packets[])) -> handle; stopReading(handle)
static napi_value StartReading(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  uv_loop_t* loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  reader_t* r = calloc(1, sizeof *r);
  box_t* box = calloc(1, sizeof *box);
  r->buf = malloc(MAX_PACKET);
  r->env = env;
  r->fd = fd;
  if (!r->buf || uv_poll_init(loop, &r->poll, fd) != 0) {
    free(r->buf);
    free(r);
    free(box);
    return throw_errno(env, "uv_poll_init", EINVAL);
  }
  CHECK(napi_create_reference(env, argv[1], 1, &r->callback));
  r->poll.data = r;
  box->r = r;
  uv_poll_start(&r->poll, UV_READABLE, on_readable);
  napi_value handle;
  CHECK(napi_create_external(env, box, finalize_box, NULL, &handle));
  return handle;
}

static napi_value StopReading(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  box_t* box;
  CHECK(napi_get_value_external(env, argv[0], (void**)&box));
  stop(box);
  return NULL;
}

static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  close(fd);
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    EXPORT("open", Open),
    EXPORT("write", Write),
    EXPORT("startReading", StartReading),
    EXPORT("stopReading", StopReading),
    EXPORT("close", Close),
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  register_mac(env, exports);
  register_process(env, exports);
  register_splice(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
