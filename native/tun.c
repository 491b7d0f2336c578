// TUN/TAP devices for Node (the role node-tun would have had): open a device, read packets in
// batches on the main loop when the descriptor is readable (uv_poll, no thread pool), write packets
// with one non-blocking write(2) each. A TUN device may be opened with offloads: each packet then
// carries a virtio-net header (IFF_VNET_HDR), and the kernel hands over and accepts TCP
// super-packets of up to 64 KiB and packets whose checksum is left to finish (TUNSETOFFLOAD), as
// it does for a virtual machine's NIC: one read instead of about 44.
#define _GNU_SOURCE  // strerrorname_np
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>
#include "addon.h"

#define MAX_BATCH 64
#define MAX_PACKET 65536
// struct virtio_net_hdr, the header TUNSETVNETHDRSZ leaves at its default size.
#define VNET_HDR 10
#define MAX_READ (MAX_PACKET + VNET_HDR)
// Every packet handed to JS has this much room in front of it, which the reader may overwrite: a
// DATA frame's header and digest (tunnel/codec/data-frame.ts) go there without copying the packet.
#define HEADROOM 32
// From this size a packet is handed over in the memory it was read into: no copy.
#define HAND_OVER 16384

// Marks reader handles, so that stopReading given any other external throws instead of freeing it.
static const napi_type_tag READER_TAG = {0x74756e6b69742d72ULL, 0x6561646572000001ULL};

// A descriptor attached to the device `ifr` names (and, with IFF_VNET_HDR, with the offloads on),
// or -errno. ifr->ifr_name gets the actual name.
static int attach(struct ifreq* ifr, short flags) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -errno;
  ifr->ifr_flags = flags;
  // TCP over IPv4 and IPv6 in super-packets, and checksums left to finish. No ECN: the kernel then
  // segments packets with CWR itself. No UFO/USO: UDP arrives as plain packets.
  if (ioctl(fd, TUNSETIFF, ifr) < 0 ||
      ((flags & IFF_VNET_HDR) && ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) < 0)) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

// open(name: string, tap: boolean, offload: boolean) -> [fd, actualName, offloaded]. offloaded is
// false when the device cannot have them (TAP here; an existing device opened without them; an
// old kernel): it then works as without them.
napi_value tun_open(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv, "expected (name: string, tap: boolean, offload: boolean)")) return NULL;
  char name[IFNAMSIZ] = {0};
  size_t len = 0;
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], NULL, 0, &len));
  if (len >= IFNAMSIZ) return throw_error(env, "ETUN", "interface name longer than %d bytes", IFNAMSIZ - 1);
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len));
  bool tap = false, offload = false;
  NAPI_CALL(env, napi_get_value_bool(env, argv[1], &tap));
  NAPI_CALL(env, napi_get_value_bool(env, argv[2], &offload));
  offload = offload && !tap;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, len);
  short flags = (tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI;
  int fd = offload ? attach(&ifr, flags | IFF_VNET_HDR) : -EINVAL;
  if (fd == -EPERM || fd == -EACCES) offload = false;
  else if (fd < 0) {
    offload = false;
    memcpy(ifr.ifr_name, name, len + 1);
    fd = attach(&ifr, flags);
  }
  if (fd < 0) return throw_errno(env, fd == -EPERM || fd == -EACCES ? "EPERM" : "ETUN", "open /dev/net/tun (TUNSETIFF)", -fd);
  napi_value result, jfd, jname, joff;
  NAPI_CALL_OR(env, napi_create_array_with_length(env, 3, &result), fail);
  NAPI_CALL_OR(env, napi_create_int32(env, fd, &jfd), fail);
  NAPI_CALL_OR(env, napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &jname), fail);
  NAPI_CALL_OR(env, napi_get_boolean(env, offload, &joff), fail);
  NAPI_CALL_OR(env, napi_set_element(env, result, 0, jfd), fail);
  NAPI_CALL_OR(env, napi_set_element(env, result, 1, jname), fail);
  NAPI_CALL_OR(env, napi_set_element(env, result, 2, joff), fail);
  return result;
fail:
  close(fd);
  return NULL;
}

// write(fd, buffer[, vnetHeader]) -> bytes written, or -errno (EAGAIN: the device queue is full;
// drop, like a NIC). A device opened with offloads takes its virtio-net header in front of the
// packet, gathered here rather than copied in front of 64 KiB in JS.
napi_value tun_write(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected (fd: number, packet: Buffer[, header: Buffer])");
    return NULL;
  }
  int32_t fd;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  struct iovec iov[2];
  int n_iov = 0;
  if (argc > 2) {
    NAPI_CALL(env, napi_get_buffer_info(env, argv[2], &iov[0].iov_base, &iov[0].iov_len));
    n_iov++;
  }
  NAPI_CALL(env, napi_get_buffer_info(env, argv[1], &iov[n_iov].iov_base, &iov[n_iov].iov_len));
  ssize_t n = writev(fd, iov, n_iov + 1);
  int32_t result = n < 0 ? -errno : (int32_t)n;
  NAPI_CALL(env, napi_create_int32(env, result, &out));
  return out;
}

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  int fd;
  bool failed;  // a read failed for good: polling stays stopped
  char* buf;    // HEADROOM + MAX_READ bytes, read into; a big packet takes it along
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

static void free_packet(napi_env env, void* data, void* hint) {
  free(data);
}

static void stop(box_t* box) {
  reader_t* r = box->r;
  if (!r) return;
  box->r = NULL;
  uv_poll_stop(&r->poll);
  if (r->callback) napi_delete_reference(r->env, r->callback);
  uv_close((uv_handle_t*)&r->poll, on_closed);
}

// {errno, code, message}: code is the errno's name (EBADFD), which neither libuv's nor Node's
// tables have for every errno a TUN device can give.
static napi_status errno_object(napi_env env, int err, napi_value* out) {
  char fallback[32];
  const char* name = NULL;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  name = strerrorname_np(err);
#endif
  if (!name) {
    snprintf(fallback, sizeof fallback, "errno %d", err);
    name = fallback;
  }
  napi_value jerrno, jcode, jmessage;
  napi_status st;
  if ((st = napi_create_object(env, out)) != napi_ok || (st = napi_create_int32(env, err, &jerrno)) != napi_ok ||
      (st = napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &jcode)) != napi_ok ||
      (st = napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &jmessage)) != napi_ok ||
      (st = napi_set_named_property(env, *out, "errno", jerrno)) != napi_ok ||
      (st = napi_set_named_property(env, *out, "code", jcode)) != napi_ok ||
      (st = napi_set_named_property(env, *out, "message", jmessage)) != napi_ok) return st;
  return napi_ok;
}

// Readable: drain up to MAX_BATCH packets and hand them to JS as one array, with the error of a
// read that failed for good (the interface was deleted: EBADFD) — then polling stops, so one
// failure is reported once, not on every turn of the loop.
static void on_readable(uv_poll_t* p, int status, int events) {
  reader_t* r = (reader_t*)p->data;
  napi_env env = r->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return report_napi(env, "napi_open_handle_scope");
  napi_value batch, args[2];
  if (napi_create_array(env, &batch) != napi_ok) {
    report_napi(env, "napi_create_array");
    goto done;
  }
  uint32_t count = 0;
  int err = 0;
  while (count < MAX_BATCH) {
    // Out of memory for a buffer: reading stops until the next readable event, as a NIC drops.
    char* buf = r->buf ? r->buf : malloc(HEADROOM + MAX_READ);
    if (!buf) break;
    r->buf = buf;
    ssize_t n = read(r->fd, buf + HEADROOM, MAX_READ);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) err = errno;
      break;
    }
    void* copy;
    napi_value b;
    if (n >= HAND_OVER) {
      if (napi_create_external_buffer(env, HEADROOM + (size_t)n, buf, free_packet, NULL, &b) != napi_ok) {
        report_napi(env, "napi_create_external_buffer");
        break;
      }
      r->buf = NULL;
    } else if (napi_create_buffer_copy(env, HEADROOM + (size_t)n, buf, &copy, &b) != napi_ok) {
      report_napi(env, "napi_create_buffer_copy");
      break;
    }
    if (napi_set_element(env, batch, count, b) != napi_ok) {
      report_napi(env, "napi_set_element");
      break;
    }
    count++;
  }
  // libuv reports POLLERR as a status (UV_EBADF for a deleted interface); read(2) above named the
  // cause when it could.
  if (!err && status < 0) err = -status;
  if (err) {
    r->failed = true;
    uv_poll_stop(&r->poll);
  }
  if (!count && !err) goto done;
  if ((err ? errno_object(env, err, &args[0]) : napi_get_null(env, &args[0])) != napi_ok) {
    report_napi(env, "creating the read error");
    goto done;
  }
  args[1] = batch;
  call_back(env, r->callback, 2, args);
done:
  napi_close_handle_scope(env, scope);
}

static void finalize_box(napi_env env, void* data, void* hint) {
  stop((box_t*)data);
  free(data);
}

// startReading(fd, callback(err: {errno, code, message} | null, packets: Buffer[])) -> handle;
// each packet Buffer starts with HEADROOM bytes that are not part of it;
// stopReading(handle)
napi_value tun_start_reading(napi_env env, napi_callback_info info) {
  static const char usage[] = "expected (fd: number, callback: function)";
  napi_value argv[2], handle;
  if (!get_args(env, info, 2, argv, usage) || !is_function(env, argv[1], usage)) return NULL;
  int32_t fd;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  uv_loop_t* loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  reader_t* r = calloc(1, sizeof *r);
  box_t* box = calloc(1, sizeof *box);
  char* buf = malloc(HEADROOM + MAX_READ);
  if (!r || !box || !buf) {
    free(r);
    free(box);
    free(buf);
    return throw_errno(env, "ENOMEM", "startReading", ENOMEM);
  }
  r->buf = buf;
  r->env = env;
  r->fd = fd;
  r->poll.data = r;
  int uerr = uv_poll_init(loop, &r->poll, fd);
  if (uerr) {
    free(buf);
    free(r);
    free(box);
    return throw_error(env, "ETUN", "uv_poll_init: %s", uv_strerror(uerr));
  }
  // From here on stop(box) releases everything: the reference if made, then the poll handle,
  // whose close callback frees the reader.
  box->r = r;
  NAPI_CALL_OR(env, napi_create_reference(env, argv[1], 1, &r->callback), fail);
  if (napi_create_external(env, box, finalize_box, NULL, &handle) != napi_ok) {
    throw_napi(env, "napi_create_external");
    goto fail;
  }
  // The handle now owns the box: failures below stop the reader and leave the box to the GC.
  if (napi_type_tag_object(env, handle, &READER_TAG) != napi_ok) {
    throw_napi(env, "napi_type_tag_object");
    stop(box);
    return NULL;
  }
  uerr = uv_poll_start(&r->poll, UV_READABLE, on_readable);
  if (uerr) {
    stop(box);
    return throw_error(env, "ETUN", "uv_poll_start: %s", uv_strerror(uerr));
  }
  return handle;
fail:
  stop(box);
  free(box);
  return NULL;
}

// The reader of a JS handle, or NULL (and a TypeError thrown) for anything else.
static box_t* reader_box(napi_env env, napi_value handle) {
  bool ours = false;
  box_t* box;
  if (napi_check_object_type_tag(env, handle, &READER_TAG, &ours) != napi_ok || !ours ||
      napi_get_value_external(env, handle, (void**)&box) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "not a reader handle");
    return NULL;
  }
  return box;
}

napi_value tun_stop_reading(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, "expected (handle)")) return NULL;
  box_t* box = reader_box(env, argv[0]);
  if (box) stop(box);
  return NULL;
}

// pauseReading(handle, paused): stop or restart polling. While paused, packets wait in the device's
// queue, and a local TCP sender is held back there (TCP small queues) instead of losing packets.
napi_value tun_pause_reading(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, "expected (handle, paused: boolean)")) return NULL;
  box_t* box = reader_box(env, argv[0]);
  if (!box) return NULL;
  bool paused;
  NAPI_CALL(env, napi_get_value_bool(env, argv[1], &paused));
  reader_t* r = box->r;
  if (!r || r->failed) return NULL;
  int uerr = paused ? uv_poll_stop(&r->poll) : uv_poll_start(&r->poll, UV_READABLE, on_readable);
  if (uerr) return throw_error(env, "ETUN", "uv_poll_start: %s", uv_strerror(uerr));
  return NULL;
}

napi_value tun_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, "expected (fd: number)")) return NULL;
  int32_t fd;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  // The descriptor is gone whatever close(2) says (Linux never retries an interrupted close).
  close(fd);
  return NULL;
}
