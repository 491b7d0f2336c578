// The native data path (issue 12 item 2, behind --data-path native): once portal and gate have
// agreed on it and exchanged SWITCH frames inside TLS, the tunnel's bytes no longer go through
// Node's TLS stack. This part owns a duplicate of the TCP descriptor and protects the frame
// stream itself with AES-256-GCM records (docs/protocol.md, "Native data path"):
//
//   u32 LENGTH (plaintext bytes, at most DP_MAX_PLAIN) | ciphertext (LENGTH bytes) | 16-byte tag
//
// AAD = the 4 length bytes; nonce = the direction's 12-byte IV XOR the record's u64 sequence
// number (as TLS 1.3 does), so a replayed, dropped, reordered or altered record fails its tag.
// Reads fill a large buffer (many records per system call) and every complete record is opened
// straight into one Buffer per batch; writes seal the chunks JS hands over into one output
// buffer, one record per DP_SEAL_PLAIN bytes (GCM is streamed across chunk boundaries: no
// staging copy), sent with one write per batch. Runs on the main loop with uv_poll.
//
// Every byte from the peer is untrusted: a length over the bound, a bad tag or a stream that
// ends inside a record ends the path with an error code (EOVERSIZE, EBADTAG, ETRUNC), reported
// once; buffers are bounded (DP_RX_CAP in, DP_TX_MAX out). Key material is wiped when freed.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>
#include "addon.h"

#define DP_HDR 4
#define DP_TAG 16
#define DP_KEY 32
#define DP_IV 12
// The receiver's bound on one record's plaintext; a sender never seals more than DP_SEAL_PLAIN.
#define DP_MAX_PLAIN (64 * 1024)
#define DP_SEAL_PLAIN (32 * 1024)
// Input buffer: always room for one whole largest record after a partial one, so reads never stall.
#define DP_RX_CAP (512 * 1024)
// Sealed bytes not yet taken by the kernel: beyond this the peer is not reading (JS drops the
// tunnel well before, at its own write backlog limit; this is the addon's own backstop).
#define DP_TX_MAX (96 * 1024 * 1024)
// Bytes read per readiness event before returning to the loop (fairness between tunnels).
#define DP_READ_BUDGET (2 * 1024 * 1024)

typedef struct {
  EVP_CIPHER_CTX* ctx;
  uint8_t iv[DP_IV];
  uint64_t seq;
} dir_t;

typedef struct {
  dir_t d;
  uint8_t* buf;   // DP_RX_CAP bytes
  size_t len;     // bytes held (a partial record at most, between batches)
  int failed;     // an error was reported: nothing more is opened
} rx_t;

static void wipe_dir(dir_t* d) {
  EVP_CIPHER_CTX_free(d->ctx);
  d->ctx = NULL;
  OPENSSL_cleanse(d->iv, sizeof d->iv);
}

static int init_dir(dir_t* d, const uint8_t* key, const uint8_t* iv, int encrypt) {
  d->ctx = EVP_CIPHER_CTX_new();
  if (!d->ctx) return 0;
  memcpy(d->iv, iv, DP_IV);
  d->seq = 0;
  int ok = encrypt ? EVP_EncryptInit_ex(d->ctx, EVP_aes_256_gcm(), NULL, key, NULL)
                   : EVP_DecryptInit_ex(d->ctx, EVP_aes_256_gcm(), NULL, key, NULL);
  return ok == 1;
}

static void nonce_for(const dir_t* d, uint8_t* nonce) {
  memcpy(nonce, d->iv, DP_IV);
  for (int i = 0; i < 8; i++) nonce[DP_IV - 1 - i] ^= (uint8_t)(d->seq >> (8 * i));
}

// A record header; the AAD of the record.
static void put_len(uint8_t* p, uint32_t n) {
  p[0] = (uint8_t)(n >> 24); p[1] = (uint8_t)(n >> 16); p[2] = (uint8_t)(n >> 8); p[3] = (uint8_t)n;
}
static uint32_t get_len(const uint8_t* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

// One record over the plaintext pieces (iov, from offset `skip` in the first), `n` bytes in all,
// written at `out` (n + DP_HDR + DP_TAG bytes). Returns 1, or 0 when OpenSSL fails.
static int seal_record(dir_t* d, const uint8_t* const* piece, const size_t* plen, size_t pieces, size_t skip, size_t n, uint8_t* out) {
  uint8_t nonce[DP_IV];
  int l;
  if (d->seq == UINT64_MAX) return 0;  // never reached in practice; a nonce must not repeat
  nonce_for(d, nonce);
  put_len(out, (uint32_t)n);
  if (EVP_EncryptInit_ex(d->ctx, NULL, NULL, NULL, nonce) != 1) return 0;
  if (EVP_EncryptUpdate(d->ctx, NULL, &l, out, DP_HDR) != 1) return 0;
  uint8_t* w = out + DP_HDR;
  size_t left = n;
  for (size_t i = 0; i < pieces && left; i++) {
    size_t avail = plen[i] - (i == 0 ? skip : 0);
    size_t take = avail < left ? avail : left;
    if (take == 0) continue;
    if (EVP_EncryptUpdate(d->ctx, w, &l, piece[i] + (i == 0 ? skip : 0), (int)take) != 1) return 0;
    w += l;
    left -= take;
  }
  if (EVP_EncryptFinal_ex(d->ctx, w, &l) != 1) return 0;
  w += l;
  if (EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_GCM_GET_TAG, DP_TAG, w) != 1) return 0;
  d->seq++;
  return 1;
}

// Complete records at the front of rx->buf: how many bytes they take and hold in plaintext.
// Returns NULL, or the error code with *why set (a length over the bound).
static const char* rx_scan(const rx_t* rx, size_t* rec_bytes, size_t* plain, char* why, size_t whylen) {
  size_t off = 0, p = 0;
  while (rx->len - off >= DP_HDR) {
    uint32_t n = get_len(rx->buf + off);
    if (n > DP_MAX_PLAIN) {
      snprintf(why, whylen, "native record of %u bytes, over the %d-byte limit", n, DP_MAX_PLAIN);
      return "EOVERSIZE";
    }
    if (rx->len - off < DP_HDR + (size_t)n + DP_TAG) break;
    off += DP_HDR + n + DP_TAG;
    p += n;
  }
  *rec_bytes = off;
  *plain = p;
  return NULL;
}

// Opens the records scanned (rec_bytes of them) into `out`, then drops them from the buffer.
// Returns NULL, or "EBADTAG"/"EOPENSSL" with *why set.
static const char* rx_open(rx_t* rx, size_t rec_bytes, uint8_t* out, char* why, size_t whylen) {
  size_t off = 0;
  while (off < rec_bytes) {
    const uint8_t* r = rx->buf + off;
    uint32_t n = get_len(r);
    uint8_t nonce[DP_IV];
    int l;
    if (rx->d.seq == UINT64_MAX) {
      snprintf(why, whylen, "native record sequence exhausted");
      return "EBADTAG";
    }
    nonce_for(&rx->d, nonce);
    if (EVP_DecryptInit_ex(rx->d.ctx, NULL, NULL, NULL, nonce) != 1 ||
        EVP_DecryptUpdate(rx->d.ctx, NULL, &l, r, DP_HDR) != 1 ||
        (n && EVP_DecryptUpdate(rx->d.ctx, out, &l, r + DP_HDR, (int)n) != 1) ||
        EVP_CIPHER_CTX_ctrl(rx->d.ctx, EVP_CTRL_GCM_SET_TAG, DP_TAG, (void*)(r + DP_HDR + n)) != 1) {
      snprintf(why, whylen, "OpenSSL failed to open a native record");
      return "EOPENSSL";
    }
    if (EVP_DecryptFinal_ex(rx->d.ctx, out + n, &l) != 1) {
      snprintf(why, whylen, "native record %llu failed authentication (bad tag: altered, replayed or out of order)", (unsigned long long)rx->d.seq);
      return "EBADTAG";
    }
    rx->d.seq++;
    out += n;
    off += DP_HDR + n + DP_TAG;
  }
  memmove(rx->buf, rx->buf + rec_bytes, rx->len - rec_bytes);
  rx->len -= rec_bytes;
  return NULL;
}

// Scans and opens whatever is complete into a new Buffer (*result; NULL when no record was
// complete). On a peer error: returns its code, with the message in `why`; *result stays NULL.
// JS errors (N-API failures) return "ENAPI" with an exception possibly pending.
static const char* rx_drain(napi_env env, rx_t* rx, napi_value* result, size_t* records_plain, int* any, char* why, size_t whylen) {
  size_t rec_bytes = 0, plain = 0;
  *result = NULL;
  *any = 0;
  const char* code = rx_scan(rx, &rec_bytes, &plain, why, whylen);
  // Records before an oversized header are still opened first: they are genuine.
  if (rec_bytes == 0) return code;
  void* data = NULL;
  napi_value buf = NULL;
  if (plain > 0) {
    if (napi_create_buffer(env, plain, &data, &buf) != napi_ok) {
      snprintf(why, whylen, "napi_create_buffer failed");
      return "ENAPI";
    }
  } else {
    // Only empty records (the SWITCH acknowledgement): open them into scratch space.
    static uint8_t scratch[1];
    data = scratch;
  }
  const char* bad = rx_open(rx, rec_bytes, data, why, whylen);
  if (bad) return bad;
  *any = 1;
  *result = buf;
  *records_plain = plain;
  return code;
}

// ---- the path on a descriptor -------------------------------------------------------------

typedef struct dp_s dp_t;
typedef struct {
  dp_t* p;
} dp_box_t;

struct dp_s {
  napi_env env;
  napi_ref cb;
  napi_ref self;
  dp_box_t* box;
  int fd;
  uv_poll_t poll;
  int inited;
  int polling_events;
  rx_t rx;
  dir_t tx;
  uint8_t* out;      // sealed bytes: [out_off, out_len) not yet written
  size_t out_off, out_len, out_cap;
  int hold_tx;       // sealed output waits for the peer's first record (it then reads natively)
  int reading;       // JS wants input (paused by holdReading otherwise)
  int read_eof;      // the peer's end of stream was seen
  int end_wanted;    // shut down the write side once `out` is empty
  int write_shut;
  int done;          // released; the memory goes when libuv has closed the poll handle
  double bytes_in, bytes_out;
};

static const napi_type_tag DP_TAG_T = {0x74756e6b69742d64ULL, 0x6174617061746801ULL};
static const napi_type_tag DEC_TAG_T = {0x74756e6b69742d64ULL, 0x6174617061746802ULL};

static void dp_free_mem(dp_t* p) {
  wipe_dir(&p->rx.d);
  wipe_dir(&p->tx);
  free(p->rx.buf);
  free(p->out);
  free(p);
}

static void dp_on_closed(uv_handle_t* h) {
  dp_free_mem((dp_t*)h->data);
}

// Stops polling and closes our descriptor (the poll handle first: the descriptor must leave
// the loop's epoll set while it is still ours). Callbacks end here; memory goes later.
static void dp_release(dp_t* p) {
  if (p->done) return;
  p->done = 1;
  if (p->box) p->box->p = NULL;
  p->box = NULL;
  if (p->cb) napi_delete_reference(p->env, p->cb);
  if (p->self) napi_delete_reference(p->env, p->self);
  p->cb = p->self = NULL;
  if (p->inited) {
    uv_poll_stop(&p->poll);
    uv_close((uv_handle_t*)&p->poll, dp_on_closed);
  }
  if (p->fd >= 0) close(p->fd);
  p->fd = -1;
  if (!p->inited) dp_free_mem(p);
}

// cb(kind, a, b): 0 data (Buffer), 1 end of stream, 2 error (message, code). After 1 the path
// still writes; after 2 it is released.
static void dp_emit(dp_t* p, int kind, napi_value a, const char* msg, const char* code) {
  napi_env env = p->env;
  if (!p->cb) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return report_napi(env, "napi_open_handle_scope");
  napi_value args[3];
  if (napi_create_int32(env, kind, &args[0]) != napi_ok ||
      (a ? (args[1] = a, napi_ok) : msg ? napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &args[1]) : napi_get_null(env, &args[1])) != napi_ok ||
      (code ? napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &args[2]) : napi_get_null(env, &args[2])) != napi_ok) {
    report_napi(env, "creating the data path's callback arguments");
  } else {
    // The callback runs JS, which may write, pause or close this path: callers re-check p->done.
    napi_ref keep = p->cb;
    call_back(env, keep, 3, args);
  }
  napi_close_handle_scope(env, scope);
}

static void dp_fail(dp_t* p, const char* msg, const char* code) {
  if (p->done) return;
  p->rx.failed = 1;
  // The callback may not free p: release below does, after it (the memory outlives this call).
  dp_emit(p, 2, NULL, msg, code);
  dp_release(p);
}

static void dp_on_poll(uv_poll_t* h, int status, int events);

// Polls for what is wanted now: input while JS reads, output while sealed bytes wait.
static int dp_rearm(dp_t* p) {
  if (p->done) return 0;
  int ev = 0;
  if (p->reading && !p->read_eof && !p->rx.failed) ev |= UV_READABLE;
  if (!p->hold_tx && p->out_off < p->out_len) ev |= UV_WRITABLE;
  if (ev == p->polling_events) return 0;
  p->polling_events = ev;
  if (!ev) return uv_poll_stop(&p->poll);
  return uv_poll_start(&p->poll, ev, dp_on_poll);
}

// Writes what it can; returns 0 or an errno.
static int dp_flush(dp_t* p) {
  while (!p->hold_tx && p->out_off < p->out_len) {
    ssize_t n = send(p->fd, p->out + p->out_off, p->out_len - p->out_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : errno;
    }
    p->out_off += (size_t)n;
    p->bytes_out += (double)n;
  }
  if (p->out_off == p->out_len) p->out_off = p->out_len = 0;
  if (p->end_wanted && !p->write_shut && p->out_len == 0 && !p->hold_tx) {
    p->write_shut = 1;
    shutdown(p->fd, SHUT_WR);
  }
  return 0;
}

// Opens the complete records held and hands their plaintext to JS; the first record from the
// peer also releases our held output. Returns NULL, or an error code with the message in `why`.
static const char* dp_deliver(dp_t* p, char* why, size_t whylen) {
  if (p->rx.len < DP_HDR) return NULL;
  napi_value buf;
  size_t plain = 0;
  int any = 0;
  napi_handle_scope scope;
  if (napi_open_handle_scope(p->env, &scope) != napi_ok) {
    snprintf(why, whylen, "napi_open_handle_scope failed");
    return "ENAPI";
  }
  const char* code = rx_drain(p->env, &p->rx, &buf, &plain, &any, why, whylen);
  if (any && p->hold_tx) {
    // The peer's first record: it reads natively now, so our sealed records may go.
    p->hold_tx = 0;
    int err = dp_flush(p);
    if (err && !code) {
      snprintf(why, whylen, "native data path: send: %s", strerror(err));
      code = "EIO";
    }
  }
  if (buf && plain) dp_emit(p, 0, buf, NULL, NULL);
  napi_close_handle_scope(p->env, scope);
  return code;
}

static void dp_read(dp_t* p) {
  size_t budget = DP_READ_BUDGET;
  char why[160];
  const char* code;
  while (!p->done && p->reading && !p->read_eof && budget > 0) {
    rx_t* rx = &p->rx;
    ssize_t n = read(p->fd, rx->buf + rx->len, DP_RX_CAP - rx->len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      int e = errno;
      // Complete records read before the failure (a CLOSE, then a reset) are delivered first.
      if ((code = dp_deliver(p, why, sizeof why))) return dp_fail(p, why, code);
      if (p->done) return;
      snprintf(why, sizeof why, "native data path: read: %s", strerror(e));
      return dp_fail(p, why, "EIO");
    }
    if (n == 0) {
      p->read_eof = 1;
      // Complete records read before the end (a CLOSE, then FIN) are delivered first.
      if ((code = dp_deliver(p, why, sizeof why))) return dp_fail(p, why, code);
      if (p->done) return;
      if (rx->len) return dp_fail(p, "connection closed in the middle of a native record", "ETRUNC");
      dp_emit(p, 1, NULL, NULL, NULL);
      return;
    }
    p->bytes_in += (double)n;
    rx->len += (size_t)n;
    budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
    // Keep reading while there is room for more than a largest record; then open the batch.
    if (DP_RX_CAP - rx->len > DP_HDR + DP_MAX_PLAIN + DP_TAG && budget > 0) continue;
    if ((code = dp_deliver(p, why, sizeof why))) return dp_fail(p, why, code);
  }
  if (p->done || p->read_eof) return;
  // What the last reads left (the loop ran out of input with room to spare).
  if ((code = dp_deliver(p, why, sizeof why))) dp_fail(p, why, code);
}

static void dp_on_poll(uv_poll_t* h, int status, int events) {
  dp_t* p = (dp_t*)h->data;
  if (p->done) return;
  char why[160];
  if (status < 0) {
    snprintf(why, sizeof why, "native data path: poll: %s", uv_strerror(status));
    return dp_fail(p, why, "EIO");
  }
  if (events & UV_WRITABLE) {
    int err = dp_flush(p);
    if (err) {
      snprintf(why, sizeof why, "native data path: send: %s", strerror(err));
      return dp_fail(p, why, "EIO");
    }
  }
  if ((events & (UV_READABLE | UV_DISCONNECT)) && p->reading) dp_read(p);
  if (p->done) return;
  int uerr = dp_rearm(p);
  if (uerr) {
    snprintf(why, sizeof why, "native data path: uv_poll_start: %s", uv_strerror(uerr));
    dp_fail(p, why, "EIO");
  }
}

static void dp_finalize(napi_env env, void* data, void* hint) {
  dp_box_t* box = (dp_box_t*)data;
  if (box->p) {
    box->p->box = NULL;
    dp_release(box->p);
  }
  free(box);
}

static int get_bytes(napi_env env, napi_value v, size_t want, const uint8_t** out, const char* what) {
  bool is = false;
  size_t len = 0;
  void* data = NULL;
  if (napi_is_buffer(env, v, &is) != napi_ok || !is || napi_get_buffer_info(env, v, &data, &len) != napi_ok || (want && len != want)) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a Buffer%s", what, want == DP_KEY ? " of 32 bytes" : want == DP_IV ? " of 12 bytes" : "");
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return 0;
  }
  *out = data;
  return 1;
}

static dp_t* get_dp(napi_env env, napi_value v) {
  bool ours = false;
  dp_box_t* box = NULL;
  if (napi_check_object_type_tag(env, v, &DP_TAG_T, &ours) != napi_ok) return throw_napi(env, "napi_check_object_type_tag"), NULL;
  if (!ours) return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "not a data path handle"), NULL;
  if (napi_get_value_external(env, v, (void**)&box) != napi_ok) return throw_napi(env, "napi_get_value_external"), NULL;
  return box->p;  // NULL once the path has ended
}

// dpOpen(fd, txKey, txIv, rxKey, rxIv, holdTx, cb) -> handle. Works on a duplicate of fd (the
// caller keeps its socket, paused, and closes it after dpClose).
napi_value dp_open(napi_env env, napi_callback_info info) {
  static const char usage[] = "expected (fd: number, txKey: Buffer, txIv: Buffer, rxKey: Buffer, rxIv: Buffer, holdTx: boolean, cb: function)";
  napi_value argv[7], handle;
  if (!get_args(env, info, 7, argv, usage) || !is_function(env, argv[6], usage)) return NULL;
  int32_t fd;
  bool hold;
  const uint8_t *txk, *txi, *rxk, *rxi;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  if (!get_bytes(env, argv[1], DP_KEY, &txk, "txKey") || !get_bytes(env, argv[2], DP_IV, &txi, "txIv") ||
      !get_bytes(env, argv[3], DP_KEY, &rxk, "rxKey") || !get_bytes(env, argv[4], DP_IV, &rxi, "rxIv")) return NULL;
  NAPI_CALL(env, napi_get_value_bool(env, argv[5], &hold));
  uv_loop_t* loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  dp_t* p = calloc(1, sizeof *p);
  dp_box_t* box = calloc(1, sizeof *box);
  if (!p || !box || !(p->rx.buf = malloc(DP_RX_CAP))) {
    if (p) free(p->rx.buf);
    free(p);
    free(box);
    return throw_errno(env, "ENOMEM", "dpOpen", ENOMEM);
  }
  p->env = env;
  p->fd = -1;
  p->reading = 1;
  p->hold_tx = hold;
  if (!init_dir(&p->tx, txk, txi, 1) || !init_dir(&p->rx.d, rxk, rxi, 0)) {
    dp_release(p);
    free(box);
    return throw_error(env, "EOPENSSL", "dpOpen: AES-256-GCM context setup failed");
  }
  if ((p->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
    int e = errno;
    dp_release(p);
    free(box);
    return throw_errno(env, "EIO", "dpOpen: dup", e);
  }
  int fl = fcntl(p->fd, F_GETFL);
  if (fl < 0 || fcntl(p->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    int e = errno;
    dp_release(p);
    free(box);
    return throw_errno(env, "EIO", "dpOpen: fcntl", e);
  }
  int uerr = uv_poll_init(loop, &p->poll, p->fd);
  if (uerr) {
    dp_release(p);
    free(box);
    return throw_error(env, "EIO", "dpOpen: uv_poll_init: %s", uv_strerror(uerr));
  }
  p->poll.data = p;
  p->inited = 1;
  if (napi_create_reference(env, argv[6], 1, &p->cb) != napi_ok ||
      napi_create_external(env, box, dp_finalize, NULL, &handle) != napi_ok) {
    throw_napi(env, "dpOpen");
    dp_release(p);
    free(box);
    return NULL;
  }
  box->p = p;
  p->box = box;
  if (napi_type_tag_object(env, handle, &DP_TAG_T) != napi_ok || napi_create_reference(env, handle, 1, &p->self) != napi_ok) {
    throw_napi(env, "dpOpen");
    dp_release(p);
    return NULL;
  }
  uerr = dp_rearm(p);
  if (uerr) {
    dp_release(p);
    return throw_error(env, "EIO", "dpOpen: uv_poll_start: %s", uv_strerror(uerr));
  }
  return handle;
}

// dpWrite(handle, chunks: Buffer[]) -> bytes sealed but not yet sent (the backlog). Seals the
// chunks as records of up to DP_SEAL_PLAIN bytes and sends what the kernel takes now.
napi_value dp_write(napi_env env, napi_callback_info info) {
  static const char usage[] = "expected (handle, chunks: Buffer[])";
  napi_value argv[2], result;
  if (!get_args(env, info, 2, argv, usage)) return NULL;
  dp_t* p = get_dp(env, argv[0]);
  if (!p) {
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return NULL;
    return throw_error(env, "ECLOSED", "the native data path has ended");
  }
  if (p->end_wanted) return throw_error(env, "ECLOSED", "write after the native data path was ended");
  bool is_array = false;
  uint32_t count = 0;
  NAPI_CALL(env, napi_is_array(env, argv[1], &is_array));
  if (!is_array) return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage), NULL;
  NAPI_CALL(env, napi_get_array_length(env, argv[1], &count));
  if (count > 4096) return throw_error(env, "E2BIG", "dpWrite: %u chunks in one call (at most 4096)", count);
  const uint8_t* piece[4096];
  size_t plen[4096];
  size_t total = 0;
  for (uint32_t i = 0; i < count; i++) {
    napi_value el;
    NAPI_CALL(env, napi_get_element(env, argv[1], i, &el));
    if (!get_bytes(env, el, 0, &piece[i], "each chunk")) return NULL;
    void* d;
    NAPI_CALL(env, napi_get_buffer_info(env, el, &d, &plen[i]));
    total += plen[i];
  }
  size_t records = (total + DP_SEAL_PLAIN - 1) / DP_SEAL_PLAIN;
  size_t need = total + records * (DP_HDR + DP_TAG);
  if (p->out_len - p->out_off + need > DP_TX_MAX) return throw_error(env, "ENOBUFS", "native data path: over %d bytes waiting to be sent (the peer is not reading)", DP_TX_MAX);
  if (p->out_off > 0 && p->out_len + need > p->out_cap) {
    memmove(p->out, p->out + p->out_off, p->out_len - p->out_off);
    p->out_len -= p->out_off;
    p->out_off = 0;
  }
  if (p->out_len + need > p->out_cap) {
    size_t cap = p->out_cap ? p->out_cap : 256 * 1024;
    while (cap < p->out_len + need) cap *= 2;
    uint8_t* grown = realloc(p->out, cap);
    if (!grown) return throw_errno(env, "ENOMEM", "dpWrite", ENOMEM);
    p->out = grown;
    p->out_cap = cap;
  }
  // Records cut across the chunks: (chunk i, offset skip) is where the next record starts.
  size_t i = 0, skip = 0, left = total;
  while (left > 0) {
    size_t n = left < DP_SEAL_PLAIN ? left : DP_SEAL_PLAIN;
    if (!seal_record(&p->tx, &piece[i], &plen[i], count - i, skip, n, p->out + p->out_len))
      return throw_error(env, "EOPENSSL", "native data path: sealing a record failed");
    p->out_len += DP_HDR + n + DP_TAG;
    left -= n;
    size_t adv = n;
    while (adv > 0) {
      size_t avail = plen[i] - skip;
      if (adv < avail) { skip += adv; adv = 0; }
      else { adv -= avail; i++; skip = 0; }
    }
    while (i < count && plen[i] == skip) { i++; skip = 0; }
  }
  int err = dp_flush(p);
  if (err) return throw_errno(env, "EIO", "native data path: send", err);
  int uerr = dp_rearm(p);
  if (uerr) return throw_error(env, "EIO", "native data path: uv_poll_start: %s", uv_strerror(uerr));
  NAPI_CALL(env, napi_create_double(env, (double)(p->out_len - p->out_off), &result));
  return result;
}

// dpAck(handle): seals one empty record: the first native record a side sends when its peer
// holds its own output until it hears from us (the SWITCH acknowledgement).
napi_value dp_ack(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, "expected (handle)")) return NULL;
  dp_t* p = get_dp(env, argv[0]);
  if (!p) return NULL;
  if (p->out_len + DP_HDR + DP_TAG > p->out_cap) {
    size_t cap = p->out_cap ? p->out_cap * 2 : 256 * 1024;
    uint8_t* grown = realloc(p->out, cap);
    if (!grown) return throw_errno(env, "ENOMEM", "dpAck", ENOMEM);
    p->out = grown;
    p->out_cap = cap;
  }
  if (!seal_record(&p->tx, NULL, NULL, 0, 0, 0, p->out + p->out_len)) return throw_error(env, "EOPENSSL", "native data path: sealing a record failed");
  p->out_len += DP_HDR + DP_TAG;
  int err = dp_flush(p);
  if (err) return throw_errno(env, "EIO", "native data path: send", err);
  int uerr = dp_rearm(p);
  if (uerr) return throw_error(env, "EIO", "native data path: uv_poll_start: %s", uv_strerror(uerr));
  return NULL;
}

// dpControl(handle, op): 0 pause reading, 1 resume, 2 end (shut down writing once all is
// sent), 3 close now (no callback follows). Returns [bytesIn, bytesOut, backlog], or null after the end.
napi_value dp_control(napi_env env, napi_callback_info info) {
  napi_value argv[2], result, v;
  if (!get_args(env, info, 2, argv, "expected (handle, op: number)")) return NULL;
  int32_t op;
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &op));
  dp_t* p = get_dp(env, argv[0]);
  if (!p) {
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return NULL;
    NAPI_CALL(env, napi_get_null(env, &result));
    return result;
  }
  NAPI_CALL(env, napi_create_array_with_length(env, 3, &result));
  NAPI_CALL(env, napi_create_double(env, p->bytes_in, &v));
  NAPI_CALL(env, napi_set_element(env, result, 0, v));
  NAPI_CALL(env, napi_create_double(env, p->bytes_out, &v));
  NAPI_CALL(env, napi_set_element(env, result, 1, v));
  NAPI_CALL(env, napi_create_double(env, (double)(p->out_len - p->out_off), &v));
  NAPI_CALL(env, napi_set_element(env, result, 2, v));
  if (op == 0) p->reading = 0;
  else if (op == 1) p->reading = 1;
  else if (op == 2) {
    p->end_wanted = 1;
    (void)dp_flush(p);
  } else if (op == 3) {
    dp_release(p);
    return result;
  } else if (op != 4) {
    return throw_error(env, "EINVAL", "dpControl: unknown op %d", op);
  }
  int uerr = dp_rearm(p);
  if (uerr) return throw_error(env, "EIO", "native data path: uv_poll_start: %s", uv_strerror(uerr));
  return result;
}

// ---- the record codec alone, for tests and the fuzzer ------------------------------------------

// dpSeal(key, iv, seq, plaintext) -> one record (plaintext at most 64 KiB).
napi_value dp_seal(napi_env env, napi_callback_info info) {
  static const char usage[] = "expected (key: Buffer, iv: Buffer, seq: number, plaintext: Buffer)";
  napi_value argv[4], out;
  if (!get_args(env, info, 4, argv, usage)) return NULL;
  const uint8_t *key, *iv, *pt;
  if (!get_bytes(env, argv[0], DP_KEY, &key, "key") || !get_bytes(env, argv[1], DP_IV, &iv, "iv") || !get_bytes(env, argv[3], 0, &pt, "plaintext")) return NULL;
  int64_t seq;
  size_t n;
  void* d;
  NAPI_CALL(env, napi_get_value_int64(env, argv[2], &seq));
  NAPI_CALL(env, napi_get_buffer_info(env, argv[3], &d, &n));
  if (n > DP_MAX_PLAIN || seq < 0) return throw_error(env, "EINVAL", "dpSeal: plaintext over %d bytes or negative sequence", DP_MAX_PLAIN);
  dir_t dir = {0};
  void* o;
  if (!init_dir(&dir, key, iv, 1)) {
    wipe_dir(&dir);
    return throw_error(env, "EOPENSSL", "dpSeal: context setup failed");
  }
  dir.seq = (uint64_t)seq;
  if (napi_create_buffer(env, n + DP_HDR + DP_TAG, &o, &out) != napi_ok) {
    wipe_dir(&dir);
    return throw_napi(env, "napi_create_buffer");
  }
  int ok = seal_record(&dir, &pt, &n, 1, 0, n, o);
  wipe_dir(&dir);
  if (!ok) return throw_error(env, "EOPENSSL", "dpSeal: sealing failed");
  return out;
}

static void dec_finalize(napi_env env, void* data, void* hint) {
  rx_t* rx = data;
  wipe_dir(&rx->d);
  free(rx->buf);
  free(rx);
}

// dpDecoder(key, iv) -> a receiving record decoder with no descriptor (tests, fuzzing).
napi_value dp_decoder(napi_env env, napi_callback_info info) {
  napi_value argv[2], handle;
  if (!get_args(env, info, 2, argv, "expected (key: Buffer, iv: Buffer)")) return NULL;
  const uint8_t *key, *iv;
  if (!get_bytes(env, argv[0], DP_KEY, &key, "key") || !get_bytes(env, argv[1], DP_IV, &iv, "iv")) return NULL;
  rx_t* rx = calloc(1, sizeof *rx);
  if (!rx || !(rx->buf = malloc(DP_RX_CAP))) {
    free(rx);
    return throw_errno(env, "ENOMEM", "dpDecoder", ENOMEM);
  }
  if (!init_dir(&rx->d, key, iv, 0)) {
    dec_finalize(env, rx, NULL);
    return throw_error(env, "EOPENSSL", "dpDecoder: context setup failed");
  }
  if (napi_create_external(env, rx, dec_finalize, NULL, &handle) != napi_ok) {
    dec_finalize(env, rx, NULL);
    return throw_napi(env, "napi_create_external");
  }
  NAPI_CALL(env, napi_type_tag_object(env, handle, &DEC_TAG_T));
  return handle;
}

// dpFeed(decoder, bytes) -> Buffer[] of the plaintext of the records completed. A peer error
// throws (code EOVERSIZE or EBADTAG), and so does every later feed.
napi_value dp_feed(napi_env env, napi_callback_info info) {
  napi_value argv[2], list;
  if (!get_args(env, info, 2, argv, "expected (decoder, bytes: Buffer)")) return NULL;
  bool ours = false;
  rx_t* rx;
  const uint8_t* in;
  size_t n;
  void* d;
  NAPI_CALL(env, napi_check_object_type_tag(env, argv[0], &DEC_TAG_T, &ours));
  if (!ours) return napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "not a decoder"), NULL;
  NAPI_CALL(env, napi_get_value_external(env, argv[0], (void**)&rx));
  if (!get_bytes(env, argv[1], 0, &in, "bytes")) return NULL;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[1], &d, &n));
  if (rx->failed) return throw_error(env, "EFAILED", "the decoder failed earlier");
  NAPI_CALL(env, napi_create_array(env, &list));
  uint32_t items = 0;
  char why[160];
  while (n > 0) {
    size_t take = DP_RX_CAP - rx->len < n ? DP_RX_CAP - rx->len : n;
    memcpy(rx->buf + rx->len, in, take);
    rx->len += take;
    in += take;
    n -= take;
    napi_value buf;
    size_t plain = 0;
    int any = 0;
    const char* code = rx_drain(env, rx, &buf, &plain, &any, why, sizeof why);
    if (code) {
      rx->failed = 1;
      return throw_error(env, code, "%s", why);
    }
    if (buf) NAPI_CALL(env, napi_set_element(env, list, items++, buf));
    // A full buffer holds complete records or a partial one that fits: drain always makes room.
  }
  return list;
}
