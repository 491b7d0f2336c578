// The userspace ESP data plane (RFC 4303, tunnel mode, IPv4 inside) in UDP encapsulation (RFC 3948).
// One engine owns one UDP socket and, once attached, a TUN descriptor; both are read in batches on
// the main loop (uv_poll, recvmmsg/sendmmsg, no thread pool), so the per-packet path never enters
// JavaScript: JS sees only IKE datagrams (non-ESP marker), events, and trace records when tracing.
// Crypto is OpenSSL's EVP from the node binary: one cipher (and HMAC) context per SA direction,
// keyed once, on the SA's first packet, and only re-IV'd per packet. Keys never leave this file.
#define _GNU_SOURCE  // recvmmsg, sendmmsg
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "addon.h"

#define BATCH 64
#define SLOT 65536                 // the largest datagram or TUN packet
#define TX_SLOT (SLOT + 128)       // a TUN packet plus ESP's header, IV, padding and ICV
#define REPLAY_WINDOW 1024         // bits; RFC 4303 §3.4.3 asks for at least 32, issue 11 for 1024
#define REPLAY_WORDS (REPLAY_WINDOW / 64 + 1)  // one spare word: sliding clears whole words (RFC 6479)
#define HASH_BITS 14
#define HASH_SIZE (1u << HASH_BITS)
#define SEQ_SOFT 0xFFFF0000u       // 2^32 - 2^16: the IKE layer rekeys
#define SEQ_LAST 0xFFFFFFFFu       // no ESN: the last number an SA may send
#define NH_IPV4 4
#define NH_DUMMY 59
// IKEv2 transform IDs (RFC 7296 §3.3.2, IANA): the suites issue 11 asks for.
#define ENCR_AES_CBC 12
#define ENCR_AES_GCM_16 20
#define ENCR_CHACHA20_POLY1305 28
#define INTEG_HMAC_SHA1_96 2
#define INTEG_HMAC_SHA2_256_128 12
#define INTEG_HMAC_SHA2_384_192 13
#define INTEG_HMAC_SHA2_512_256 14

// Engine handles carry this tag, so a call given any other external throws instead of misreading it.
static const napi_type_tag ENGINE_TAG = {0x74756e6b69742d65ULL, 0x7370000000000001ULL};

typedef struct sa {
  uint32_t id;
  bool out;
  uint32_t spi;
  bool aead;
  int iv_len, icv_len, block;
  EVP_CIPHER_CTX* cipher;
  EVP_MAC_CTX* mac;  // AES-CBC only
  // Until the first packet: the algorithm and keys the contexts will be built from. A context
  // costs over 1 KB, and a gateway's idle clients (most of 10 000) never need theirs.
  EVP_CIPHER* alg;
  const char* digest;  // AES-CBC: the HMAC's, else NULL
  unsigned char* keys;  // keylen cipher key bytes, then ikeylen HMAC key bytes
  uint8_t keylen, ikeylen;
  unsigned char salt[4];
  struct sockaddr_in peer;  // out
  // out: the last sequence number sent; in: the highest one accepted (the window's top).
  uint64_t seq;
  uint64_t window[REPLAY_WORDS];
  bool soft_sent, exhausted;
  uint32_t nsel;
  uint32_t* sel;  // nsel pairs {from, to}, host order, inclusive
  // out: the inner sources it carries (our traffic selector), as `sel`; none: any source. A
  // gateway's CHILD_SAs to one client share the destination and differ only here.
  uint32_t nsrc;
  uint32_t* src;
  struct sa* next_spi;
  uint64_t packets, bytes, d_replay, d_auth, d_malformed, d_policy, dummy;
  double last_rx_ms;
} sa_t;

// An 'out' SA's single-address selector, in a hash chain; chains are newest first.
typedef struct host {
  uint32_t addr;
  sa_t* sa;
  struct host* next;
} host_t;

// An 'out' SA's wider selector; the array is oldest first.
typedef struct {
  uint32_t from, to;
  sa_t* sa;
} range_t;

typedef struct {
  uint8_t type;  // 0 seq-soft, 1 seq-exhausted
  uint32_t id;
} event_t;

typedef struct engine {
  napi_env env;
  bool closed;
  int udp_fd, tun_fd;
  uv_poll_t udp_poll, tun_poll;
  bool tun_poll_inited;
  int open_handles;  // poll handles not yet closed by libuv: the engine is freed at zero
  napi_ref on_ike, on_event, on_trace;
  uint16_t port;
  sa_t* spis[HASH_SIZE];
  host_t* hosts[HASH_SIZE];
  range_t* ranges;
  size_t nranges, cap_ranges;
  sa_t** by_id;
  uint32_t cap_id, next_id;
  unsigned char *rx, *tx, *plain, *packet;
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in addrs[BATCH];
  unsigned char cbc_ivs[BATCH * 16];
  event_t events[BATCH];
  int nevents;
  uint64_t no_sa, keepalives, ike, malformed, no_tun, tun_errors, tx_errors;
} engine_t;

typedef struct {
  engine_t* e;
} box_t;

static inline uint32_t be32(const unsigned char* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void put32(unsigned char* p, uint32_t v) {
  p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}
static inline uint32_t bucket(uint32_t k) {
  return (k * 2654435761u) >> (32 - HASH_BITS);
}
static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// ---- anti-replay (RFC 4303 §3.4.3, the bitmap of RFC 6479; src/esp/core/replay.ts is the same) ----

static bool replay_ok(const sa_t* sa, uint64_t seq) {
  if (seq == 0) return false;  // senders start at 1
  if (seq > sa->seq) return true;
  if (sa->seq - seq >= REPLAY_WINDOW) return false;
  return !(sa->window[(seq / 64) % REPLAY_WORDS] & (1ULL << (seq % 64)));
}

// Only after the ICV verified: a forged packet must not move the window.
static void replay_update(sa_t* sa, uint64_t seq) {
  if (seq > sa->seq) {
    uint64_t from = sa->seq / 64, to = seq / 64;
    uint64_t n = to - from > REPLAY_WORDS ? REPLAY_WORDS : to - from;
    for (uint64_t i = 1; i <= n; i++) sa->window[(from + i) % REPLAY_WORDS] = 0;
    sa->seq = seq;
  }
  sa->window[(seq / 64) % REPLAY_WORDS] |= 1ULL << (seq % 64);
}

// ---- SA tables ----

static sa_t* find_spi(engine_t* e, uint32_t spi) {
  for (sa_t* s = e->spis[bucket(spi)]; s; s = s->next_spi)
    if (s->spi == spi) return s;
  return NULL;
}

static bool contains(const sa_t* sa, uint32_t a) {
  for (uint32_t i = 0; i < sa->nsel; i++)
    if (a >= sa->sel[2 * i] && a <= sa->sel[2 * i + 1]) return true;
  return false;
}

static bool carries_src(const sa_t* sa, uint32_t a) {
  for (uint32_t i = 0; i < sa->nsrc; i++)
    if (a >= sa->src[2 * i] && a <= sa->src[2 * i + 1]) return true;
  return sa->nsrc == 0;
}

// The most recently added 'out' SA whose selectors hold `dst` and `src`: the newest host entry
// (chains are newest first) against the newest range that holds them; ids grow with each addSa.
static sa_t* find_out(engine_t* e, uint32_t dst, uint32_t src) {
  sa_t* best = NULL;
  for (host_t* h = e->hosts[bucket(dst)]; h; h = h->next)
    if (h->addr == dst && carries_src(h->sa, src)) {
      best = h->sa;
      break;
    }
  for (size_t i = e->nranges; i-- > 0;) {
    range_t* r = &e->ranges[i];
    if (best && r->sa->id < best->id) break;  // older than the host entry
    if (dst >= r->from && dst <= r->to && carries_src(r->sa, src)) {
      if (!best || r->sa->id > best->id) best = r->sa;
      break;
    }
  }
  return best;
}

static void drop_keys(sa_t* sa) {
  if (sa->keys) OPENSSL_clear_free(sa->keys, (size_t)sa->keylen + sa->ikeylen);
  sa->keys = NULL;
  EVP_CIPHER_free(sa->alg);
  sa->alg = NULL;
}

static void free_sa(sa_t* sa) {
  drop_keys(sa);
  EVP_CIPHER_CTX_free(sa->cipher);
  EVP_MAC_CTX_free(sa->mac);
  free(sa->sel);
  free(sa->src);
  free(sa);
}

static void unlink_sa(engine_t* e, sa_t* sa) {
  if (!sa->out) {
    for (sa_t** p = &e->spis[bucket(sa->spi)]; *p; p = &(*p)->next_spi)
      if (*p == sa) {
        *p = sa->next_spi;
        break;
      }
  } else {
    for (uint32_t i = 0; i < sa->nsel; i++) {
      if (sa->sel[2 * i] != sa->sel[2 * i + 1]) continue;
      for (host_t** p = &e->hosts[bucket(sa->sel[2 * i])]; *p;) {
        host_t* h = *p;
        if (h->sa == sa) {
          *p = h->next;
          free(h);
        } else {
          p = &h->next;
        }
      }
    }
    size_t k = 0;
    for (size_t i = 0; i < e->nranges; i++)
      if (e->ranges[i].sa != sa) e->ranges[k++] = e->ranges[i];
    e->nranges = k;
  }
  e->by_id[sa->id - 1] = NULL;
}

// ---- crypto ----

// Checks the SA's algorithms and keeps its keys for build_crypto; returns NULL or the reason it cannot.
static const char* setup_crypto(sa_t* sa, uint32_t encr, uint32_t bits, uint32_t integ, const unsigned char* key, size_t keylen,
                                const unsigned char* ikey, size_t ikeylen) {
  const char* name = NULL;
  size_t need = 0;
  switch (encr) {
    case ENCR_AES_GCM_16:
      name = bits == 128 ? "AES-128-GCM" : bits == 256 ? "AES-256-GCM" : NULL;
      need = bits / 8 + 4;
      sa->aead = true;
      break;
    case ENCR_CHACHA20_POLY1305:
      name = bits == 0 || bits == 256 ? "ChaCha20-Poly1305" : NULL;
      need = 36;
      sa->aead = true;
      break;
    case ENCR_AES_CBC:
      name = bits == 128 ? "AES-128-CBC" : bits == 256 ? "AES-256-CBC" : NULL;
      need = bits / 8;
      break;
  }
  if (!name) return "unsupported cipher or key size";
  if (keylen != need) return "the encryption key does not fit the cipher";
  const char* digest = NULL;
  size_t ineed = 0;
  if (sa->aead) {
    if (integ != 0 || ikeylen) return "an AEAD cipher takes no integrity algorithm";
    sa->iv_len = 8, sa->icv_len = 16, sa->block = 4;
    memcpy(sa->salt, key + keylen - 4, 4);  // RFC 4106 §8.1, RFC 7634 §2: the salt ends the key
    keylen -= 4;
  } else {
    switch (integ) {
      case INTEG_HMAC_SHA1_96: digest = "SHA1", ineed = 20, sa->icv_len = 12; break;
      case INTEG_HMAC_SHA2_256_128: digest = "SHA256", ineed = 32, sa->icv_len = 16; break;
      case INTEG_HMAC_SHA2_384_192: digest = "SHA384", ineed = 48, sa->icv_len = 24; break;
      case INTEG_HMAC_SHA2_512_256: digest = "SHA512", ineed = 64, sa->icv_len = 32; break;
      default: return "AES-CBC needs HMAC-SHA1-96 or HMAC-SHA2-256/384/512";
    }
    if (ikeylen != ineed) return "the integrity key does not fit the algorithm";
    sa->iv_len = 16, sa->block = 16;
  }
  if (!(sa->alg = EVP_CIPHER_fetch(NULL, name, NULL))) return "the cipher is not available from OpenSSL";
  if (digest) {
    EVP_MAC* mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac) return "HMAC is not available from OpenSSL";
    EVP_MAC_free(mac);
  }
  if (!(sa->keys = OPENSSL_malloc(keylen + ikeylen))) return "out of memory";
  memcpy(sa->keys, key, keylen);
  if (ikeylen) memcpy(sa->keys + keylen, ikey, ikeylen);
  sa->keylen = (uint8_t)keylen, sa->ikeylen = (uint8_t)ikeylen, sa->digest = digest;
  return NULL;
}

// Builds the SA's contexts from its kept keys, then forgets them; false if OpenSSL cannot.
static bool build_crypto(sa_t* sa) {
  if (sa->cipher) return true;
  if (!sa->keys) return false;  // a failed build already dropped them: every packet is dropped
  int enc = sa->out ? 1 : 0;
  bool ok = (sa->cipher = EVP_CIPHER_CTX_new()) && EVP_CipherInit_ex(sa->cipher, sa->alg, NULL, NULL, NULL, enc) &&
            (!sa->aead || EVP_CIPHER_CTX_ctrl(sa->cipher, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL)) &&
            EVP_CipherInit_ex(sa->cipher, NULL, NULL, sa->keys, NULL, enc) && EVP_CIPHER_CTX_set_padding(sa->cipher, 0);
  if (ok && sa->digest) {
    EVP_MAC* mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char*)sa->digest, 0), OSSL_PARAM_construct_end()};
    ok = mac && (sa->mac = EVP_MAC_CTX_new(mac)) && EVP_MAC_init(sa->mac, sa->keys + sa->keylen, sa->ikeylen, params);
    EVP_MAC_free(mac);
  }
  drop_keys(sa);
  if (!ok) {
    EVP_CIPHER_CTX_free(sa->cipher);
    sa->cipher = NULL;
  }
  return ok;
}

// HMAC of data into out (the full digest); a NULL key re-initialises with the SA's key.
static bool hmac(sa_t* sa, const unsigned char* data, size_t len, unsigned char* out) {
  size_t outl;
  return EVP_MAC_init(sa->mac, NULL, 0, NULL) && EVP_MAC_update(sa->mac, data, len) && EVP_MAC_final(sa->mac, out, &outl, EVP_MAX_MD_SIZE);
}

// Verifies and decrypts packet[8+iv .. len-icv] into out; false when the ICV does not verify.
static bool open_packet(sa_t* sa, const unsigned char* p, size_t len, unsigned char* out) {
  const unsigned char* iv = p + 8;
  const unsigned char* ct = iv + sa->iv_len;
  int ctlen = (int)(len - 8 - sa->iv_len - sa->icv_len), n, m;
  if (!build_crypto(sa)) return false;
  EVP_CIPHER_CTX* c = sa->cipher;
  if (sa->aead) {
    unsigned char nonce[12], tag[16];
    memcpy(nonce, sa->salt, 4);
    memcpy(nonce + 4, iv, 8);
    memcpy(tag, p + len - 16, 16);
    // AAD = SPI || sequence number (RFC 4106 §5, RFC 7634 §2.1, no ESN).
    return EVP_CipherInit_ex(c, NULL, NULL, NULL, nonce, 0) && EVP_CipherUpdate(c, NULL, &n, p, 8) &&
           EVP_CipherUpdate(c, out, &n, ct, ctlen) && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, tag) &&
           EVP_CipherFinal_ex(c, out + n, &m) > 0;
  }
  unsigned char full[EVP_MAX_MD_SIZE];
  // Encrypt-then-MAC (RFC 4303 §3.4.4): the ICV first, so a forgery costs no decryption.
  if (!hmac(sa, p, len - sa->icv_len, full) || CRYPTO_memcmp(full, p + len - sa->icv_len, sa->icv_len)) return false;
  return EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, 0) && EVP_CipherUpdate(c, out, &n, ct, ctlen) && EVP_CipherFinal_ex(c, out + n, &m);
}

// Seals the plaintext already at out[8+iv .. 8+iv+ptlen] in place; returns the packet length or 0.
static size_t seal_packet(sa_t* sa, uint32_t seq, unsigned char* out, size_t ptlen, const unsigned char* cbc_iv) {
  put32(out, sa->spi);
  put32(out + 4, seq);
  unsigned char* iv = out + 8;
  unsigned char* pt = iv + sa->iv_len;
  int n, m;
  if (!build_crypto(sa)) return 0;
  EVP_CIPHER_CTX* c = sa->cipher;
  if (sa->aead) {
    // The 64-bit counter as IV: unique per key, as RFC 4106 §3.1 requires (no ESN, so the high half is 0).
    memset(iv, 0, 4);
    put32(iv + 4, seq);
    unsigned char nonce[12];
    memcpy(nonce, sa->salt, 4);
    memcpy(nonce + 4, iv, 8);
    if (!EVP_CipherInit_ex(c, NULL, NULL, NULL, nonce, 1) || !EVP_CipherUpdate(c, NULL, &n, out, 8) ||
        !EVP_CipherUpdate(c, pt, &n, pt, (int)ptlen) || !EVP_CipherFinal_ex(c, pt + n, &m) ||
        !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, pt + ptlen)) return 0;
    return 8 + 8 + ptlen + 16;
  }
  memcpy(iv, cbc_iv, 16);  // RFC 3602 §3: unpredictable, from RAND_bytes per batch
  if (!EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, 1) || !EVP_CipherUpdate(c, pt, &n, pt, (int)ptlen) || !EVP_CipherFinal_ex(c, pt + n, &m)) return 0;
  unsigned char full[EVP_MAX_MD_SIZE];
  size_t body = 8 + 16 + ptlen;
  if (!hmac(sa, out, body, full)) return 0;
  memcpy(out + body, full, sa->icv_len);
  return body + sa->icv_len;
}

// ---- JavaScript values ----

static napi_status set_num(napi_env env, napi_value obj, const char* key, double v) {
  napi_value x;
  napi_status st = napi_create_double(env, v, &x);
  return st != napi_ok ? st : napi_set_named_property(env, obj, key, x);
}

// A trace record {dir, spi, seq, length, inner}: `inner` is the first 20 bytes of the inner packet.
static void trace_record(engine_t* e, napi_value list, uint32_t* count, bool out, uint32_t spi, uint32_t seq, size_t length,
                         const unsigned char* inner, size_t inner_len) {
  napi_env env = e->env;
  napi_value rec, dir, buf;
  void* copy;
  if (napi_create_object(env, &rec) != napi_ok || napi_create_string_utf8(env, out ? "out" : "in", NAPI_AUTO_LENGTH, &dir) != napi_ok ||
      napi_set_named_property(env, rec, "dir", dir) != napi_ok || set_num(env, rec, "spi", spi) != napi_ok ||
      set_num(env, rec, "seq", seq) != napi_ok || set_num(env, rec, "length", (double)length) != napi_ok ||
      napi_create_buffer_copy(env, inner_len < 20 ? inner_len : 20, inner, &copy, &buf) != napi_ok ||
      napi_set_named_property(env, rec, "inner", buf) != napi_ok || napi_set_element(env, list, (*count)++, rec) != napi_ok)
    report_napi(env, "building a trace record");
}

// The batch's trace records, then events: each callback may close the engine, after which nothing
// of it may be touched (its memory stays until libuv has closed the poll handles).
static void deliver(engine_t* e, napi_value traces, uint32_t ntraces) {
  napi_env env = e->env;
  if (ntraces && e->on_trace && !e->closed) call_back(env, e->on_trace, 1, &traces);
  for (int i = 0; i < e->nevents && !e->closed && e->on_event; i++) {
    napi_value args[2];
    if (napi_create_string_utf8(env, e->events[i].type ? "seq-exhausted" : "seq-soft", NAPI_AUTO_LENGTH, &args[0]) != napi_ok ||
        napi_create_uint32(env, e->events[i].id, &args[1]) != napi_ok) {
      report_napi(env, "building an event");
      break;
    }
    call_back(env, e->on_event, 2, args);
  }
  e->nevents = 0;
}

// ---- inbound: UDP → TUN ----

static void esp_in(engine_t* e, unsigned char* p, size_t len, napi_value traces, uint32_t* ntraces) {
  if (len < 8) {
    e->malformed++;
    return;
  }
  sa_t* sa = find_spi(e, be32(p));
  if (!sa) {
    e->no_sa++;
    return;
  }
  uint32_t seq = be32(p + 4);
  size_t over = 8 + sa->iv_len + sa->icv_len;
  size_t ctlen = len > over ? len - over : 0;
  // Whole 4-byte words (§2.4) or cipher blocks, room for pad length and next header.
  if (len <= over || ctlen < 2 || ctlen % sa->block) {
    sa->d_malformed++;
    return;
  }
  if (!replay_ok(sa, seq)) {
    sa->d_replay++;
    return;
  }
  unsigned char* pt = e->plain;
  if (!open_packet(sa, p, len, pt)) {
    sa->d_auth++;
    return;
  }
  replay_update(sa, seq);
  size_t padlen = pt[ctlen - 2];
  uint8_t nh = pt[ctlen - 1];
  if (padlen + 2 > ctlen) {
    sa->d_malformed++;
    return;
  }
  size_t plen = ctlen - 2 - padlen;
  for (size_t i = 0; i < padlen; i++)
    if (pt[plen + i] != i + 1) {  // the default padding, 1, 2, 3… (§2.4)
      sa->d_malformed++;
      return;
    }
  sa->last_rx_ms = now_ms();
  if (nh == NH_DUMMY) {  // §2.6: traffic flow confidentiality, discarded
    sa->dummy++;
    return;
  }
  if (nh != NH_IPV4) {
    sa->d_policy++;
    return;
  }
  size_t ihl = plen ? (size_t)(pt[0] & 15) * 4 : 0, tot = plen >= 4 ? ((size_t)pt[2] << 8 | pt[3]) : 0;
  if (plen < 20 || pt[0] >> 4 != 4 || ihl < 20 || tot < ihl || tot > plen) {
    sa->d_malformed++;
    return;
  }
  if (!contains(sa, be32(pt + 12))) {
    sa->d_policy++;
    return;
  }
  // tot, not plen: TFC padding may follow the inner packet (§2.4).
  if (e->tun_fd < 0) e->no_tun++;
  else if (write(e->tun_fd, pt, tot) < 0) e->tun_errors++;
  sa->packets++;
  sa->bytes += tot;
  if (e->on_trace) trace_record(e, traces, ntraces, false, sa->spi, seq, len, pt, tot);
}

static void on_udp(uv_poll_t* h, int status, int events) {
  engine_t* e = (engine_t*)h->data;
  napi_env env = e->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return report_napi(env, "napi_open_handle_scope");
  napi_value ikes = NULL, traces = NULL;
  uint32_t nikes = 0, ntraces = 0;
  if (e->on_trace && napi_create_array(env, &traces) != napi_ok) {
    report_napi(env, "napi_create_array");
    goto done;
  }
  // A few batches per wakeup: enough to amortise the poll, not so many that the TUN side starves.
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < BATCH; i++) {
      e->iov[i] = (struct iovec){e->rx + (size_t)i * SLOT, SLOT};
      e->msgs[i].msg_hdr = (struct msghdr){.msg_name = &e->addrs[i], .msg_namelen = sizeof e->addrs[i], .msg_iov = &e->iov[i], .msg_iovlen = 1};
    }
    int n = recvmmsg(e->udp_fd, e->msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) break;
    for (int i = 0; i < n; i++) {
      unsigned char* p = e->iov[i].iov_base;
      size_t len = e->msgs[i].msg_len;
      if (e->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) e->malformed++;
      else if (len == 1 && p[0] == 0xFF) e->keepalives++;  // RFC 3948 §2.3
      else if (len >= 4 && !p[0] && !p[1] && !p[2] && !p[3]) {  // the non-ESP marker (§2.2): IKE
        e->ike++;
        if (!e->on_ike) continue;
        char addr[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &e->addrs[i].sin_addr, addr, sizeof addr);
        napi_value rec, data, a, port;
        void* copy;
        if ((!ikes && napi_create_array(env, &ikes) != napi_ok) || napi_create_array_with_length(env, 3, &rec) != napi_ok || napi_create_buffer_copy(env, len - 4, p + 4, &copy, &data) != napi_ok ||
            napi_create_string_utf8(env, addr, NAPI_AUTO_LENGTH, &a) != napi_ok ||
            napi_create_uint32(env, ntohs(e->addrs[i].sin_port), &port) != napi_ok || napi_set_element(env, rec, 0, data) != napi_ok ||
            napi_set_element(env, rec, 1, a) != napi_ok || napi_set_element(env, rec, 2, port) != napi_ok ||
            napi_set_element(env, ikes, nikes++, rec) != napi_ok)
          report_napi(env, "building an IKE datagram");
      } else {
        esp_in(e, p, len, traces, &ntraces);
      }
    }
    if (n < BATCH) break;
  }
  deliver(e, traces, ntraces);
  if (nikes && e->on_ike && !e->closed) call_back(env, e->on_ike, 1, &ikes);
done:
  napi_close_handle_scope(env, scope);
}

// ---- outbound: TUN → UDP ----

static void send_batch(engine_t* e, int n) {
  for (int i = 0; i < n;) {
    int r = sendmmsg(e->udp_fd, e->msgs + i, n - i, 0);
    if (r > 0) {
      i += r;
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      e->tx_errors += n - i;  // the socket buffer is full: dropped, as a NIC would
      break;
    } else {
      e->tx_errors++;  // this one datagram failed (EMSGSIZE, unreachable): skip it
      i++;
    }
  }
}

static void on_tun(uv_poll_t* h, int status, int events) {
  engine_t* e = (engine_t*)h->data;
  napi_env env = e->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return report_napi(env, "napi_open_handle_scope");
  napi_value traces = NULL;
  uint32_t ntraces = 0;
  if (e->on_trace && napi_create_array(env, &traces) != napi_ok) {
    report_napi(env, "napi_create_array");
    goto done;
  }
  if (status < 0) {  // the device is gone (EBADFD): counted once, reading stops
    e->tun_errors++;
    uv_poll_stop(&e->tun_poll);
    goto done;
  }
  bool ivs = false;
  int n = 0;
  for (int reads = 0; reads < BATCH; reads++) {
    ssize_t len = read(e->tun_fd, e->packet, SLOT);
    if (len < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {  // the device is gone: counted once, reading stops
        e->tun_errors++;
        uv_poll_stop(&e->tun_poll);
      }
      break;
    }
    unsigned char* ip = e->packet;
    if (len < 20 || ip[0] >> 4 != 4) {  // not IPv4 (the kernel's IPv6 router solicitations): no SA carries it
      e->no_sa++;
      continue;
    }
    sa_t* sa = find_out(e, be32(ip + 16), be32(ip + 12));
    if (!sa || sa->exhausted || sa->seq >= SEQ_LAST) {
      e->no_sa++;
      continue;
    }
    if (!sa->aead && !ivs) ivs = RAND_bytes(e->cbc_ivs, sizeof e->cbc_ivs) == 1;
    if (!sa->aead && !ivs) {
      e->tx_errors++;
      continue;
    }
    uint32_t seq = (uint32_t)++sa->seq;
    unsigned char* out = e->tx + (size_t)n * TX_SLOT;
    unsigned char* pt = out + 8 + sa->iv_len;
    size_t padlen = (sa->block - ((size_t)len + 2) % sa->block) % sa->block;
    memcpy(pt, ip, len);
    for (size_t i = 0; i < padlen; i++) pt[len + i] = i + 1;
    pt[len + padlen] = padlen;
    pt[len + padlen + 1] = NH_IPV4;
    size_t outlen = seal_packet(sa, seq, out, len + padlen + 2, e->cbc_ivs + 16 * n);
    if (seq >= SEQ_SOFT && !sa->soft_sent) {
      sa->soft_sent = true;
      e->events[e->nevents++] = (event_t){0, sa->id};
    }
    if (seq == SEQ_LAST) {  // no sequence number left (no ESN): the SA sends no more
      sa->exhausted = true;
      e->events[e->nevents++] = (event_t){1, sa->id};
    }
    if (!outlen) {
      e->tx_errors++;
      continue;
    }
    sa->packets++;
    sa->bytes += len;
    e->iov[n] = (struct iovec){out, outlen};
    e->msgs[n].msg_hdr = (struct msghdr){.msg_name = &sa->peer, .msg_namelen = sizeof sa->peer, .msg_iov = &e->iov[n], .msg_iovlen = 1};
    if (e->on_trace) trace_record(e, traces, &ntraces, true, sa->spi, seq, outlen, ip, len);
    n++;
  }
  // sendmmsg before any JavaScript: a callback may remove the SA whose peer a message points to.
  if (n) send_batch(e, n);
  deliver(e, traces, ntraces);
done:
  napi_close_handle_scope(env, scope);
}

// ---- handle life ----

static void free_engine(engine_t* e) {
  free(e->rx);
  free(e->tx);
  free(e->plain);
  free(e->packet);
  free(e->by_id);
  free(e);
}

static void on_closed(uv_handle_t* h) {
  engine_t* e = (engine_t*)h->data;
  if (--e->open_handles == 0) free_engine(e);
}

static void shutdown_engine(box_t* box) {
  engine_t* e = box->e;
  if (!e) return;
  box->e = NULL;
  e->closed = true;
  for (uint32_t i = 0; i < HASH_SIZE; i++)
    for (host_t *h = e->hosts[i], *next; h; h = next) {
      next = h->next;
      free(h);
    }
  for (uint32_t i = 0; i < e->next_id - 1; i++)
    if (e->by_id[i]) free_sa(e->by_id[i]);
  free(e->ranges);
  napi_env env = e->env;
  if (e->on_ike) napi_delete_reference(env, e->on_ike);
  if (e->on_event) napi_delete_reference(env, e->on_event);
  if (e->on_trace) napi_delete_reference(env, e->on_trace);
  e->on_ike = e->on_event = e->on_trace = NULL;
  uv_poll_stop(&e->udp_poll);
  uv_close((uv_handle_t*)&e->udp_poll, on_closed);
  if (e->tun_poll_inited) {
    uv_poll_stop(&e->tun_poll);
    uv_close((uv_handle_t*)&e->tun_poll, on_closed);
  }
  close(e->udp_fd);  // the TUN descriptor belongs to whoever attached it
}

static void finalize_box(napi_env env, void* data, void* hint) {
  shutdown_engine((box_t*)data);
  free(data);
}

// The engine behind a handle argument; throws when it is not one, or is closed.
static engine_t* engine_arg(napi_env env, napi_value v) {
  bool ours = false;
  box_t* box;
  if (napi_check_object_type_tag(env, v, &ENGINE_TAG, &ours) != napi_ok || !ours || napi_get_value_external(env, v, (void**)&box) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "not an ESP engine handle");
    return NULL;
  }
  if (!box->e) throw_error(env, "ECLOSED", "the ESP engine is closed");
  return box->e;
}

static bool ipv4_arg(napi_env env, napi_value v, struct in_addr* out) {
  char s[64];
  size_t len;
  if (napi_get_value_string_utf8(env, v, s, sizeof s, &len) != napi_ok || inet_pton(AF_INET, s, out) != 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "expected an IPv4 address");
    return false;
  }
  return true;
}

static bool endpoint_arg(napi_env env, napi_value addr, napi_value port, struct sockaddr_in* out) {
  uint32_t p;
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  if (!ipv4_arg(env, addr, &out->sin_addr)) return false;
  if (napi_get_value_uint32(env, port, &p) != napi_ok || p > 65535) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "expected a port number");
    return false;
  }
  out->sin_port = htons((uint16_t)p);
  return true;
}

// Replaces *ref with a reference to fn, or clears it when fn is null/undefined.
static napi_value set_callback(napi_env env, napi_ref* ref, napi_value fn) {
  napi_valuetype t;
  NAPI_CALL(env, napi_typeof(env, fn, &t));
  if (t != napi_function && t != napi_null && t != napi_undefined) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a function or null");
    return NULL;
  }
  if (*ref) napi_delete_reference(env, *ref);
  *ref = NULL;
  if (t == napi_function) NAPI_CALL(env, napi_create_reference(env, fn, 1, ref));
  return NULL;
}

// ---- exported functions ----

// espOpen(address, port, onIke(batch: [data, address, port][])) -> [handle, boundPort]
napi_value esp_open(napi_env env, napi_callback_info info) {
  static const char usage[] = "expected (address: string, port: number, onIke: function)";
  napi_value argv[3], handle, result, jport;
  if (!get_args(env, info, 3, argv, usage) || !is_function(env, argv[2], usage)) return NULL;
  struct sockaddr_in local;
  if (!endpoint_arg(env, argv[0], argv[1], &local)) return NULL;
  uv_loop_t* loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "ESOCKET", "socket", errno);
  // Fragment rather than refuse a datagram above the path MTU, as the kernel's ESP does.
  int dont = IP_PMTUDISC_DONT, bufsize = 4 << 20;
  setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &dont, sizeof dont);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
  if (bind(fd, (struct sockaddr*)&local, sizeof local) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err == EADDRINUSE ? "EADDRINUSE" : err == EADDRNOTAVAIL ? "EADDRNOTAVAIL" : err == EACCES ? "EACCES" : "EBIND", "bind", err);
  }
  socklen_t sl = sizeof local;
  getsockname(fd, (struct sockaddr*)&local, &sl);
  engine_t* e = calloc(1, sizeof *e);
  box_t* box = calloc(1, sizeof *box);
  if (e) {
    e->rx = malloc((size_t)BATCH * SLOT);
    e->tx = malloc((size_t)BATCH * TX_SLOT);
    e->plain = malloc(SLOT);
    e->packet = malloc(SLOT);
    e->by_id = calloc(64, sizeof *e->by_id);
  }
  if (!e || !box || !e->rx || !e->tx || !e->plain || !e->packet || !e->by_id) {
    if (e) free_engine(e);
    free(box);
    close(fd);
    return throw_errno(env, "ENOMEM", "espOpen", ENOMEM);
  }
  e->env = env;
  e->udp_fd = fd;
  e->tun_fd = -1;
  e->cap_id = 64;
  e->next_id = 1;
  e->port = ntohs(local.sin_port);
  e->udp_poll.data = e;
  int uerr = uv_poll_init(loop, &e->udp_poll, fd);
  if (uerr) {
    free_engine(e);
    free(box);
    close(fd);
    return throw_error(env, "EESP", "uv_poll_init: %s", uv_strerror(uerr));
  }
  e->open_handles = 1;
  // From here on shutdown_engine(box) releases everything.
  box->e = e;
  NAPI_CALL_OR(env, napi_create_reference(env, argv[2], 1, &e->on_ike), fail);
  NAPI_CALL_OR(env, napi_create_external(env, box, finalize_box, NULL, &handle), fail);
  // The handle owns the box now: failures below shut the engine and leave the box to the GC.
  if (napi_type_tag_object(env, handle, &ENGINE_TAG) != napi_ok) {
    throw_napi(env, "napi_type_tag_object");
    shutdown_engine(box);
    return NULL;
  }
  uerr = uv_poll_start(&e->udp_poll, UV_READABLE, on_udp);
  if (uerr) {
    shutdown_engine(box);
    return throw_error(env, "EESP", "uv_poll_start: %s", uv_strerror(uerr));
  }
  if (napi_create_array_with_length(env, 2, &result) != napi_ok || napi_create_uint32(env, e->port, &jport) != napi_ok ||
      napi_set_element(env, result, 0, handle) != napi_ok || napi_set_element(env, result, 1, jport) != napi_ok) {
    throw_napi(env, "building the result");
    shutdown_engine(box);
    return NULL;
  }
  return result;
fail:
  shutdown_engine(box);
  free(box);
  return NULL;
}

// espAttachTun(handle, fd): packets read from fd go out through the SAs; inbound ones are written
// to it. The descriptor stays its owner's (closed by them, after the engine).
napi_value esp_attach_tun(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, "expected (handle, fd: number)")) return NULL;
  engine_t* e = engine_arg(env, argv[0]);
  if (!e) return NULL;
  int32_t fd;
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &fd));
  // One device per engine (the command opens it once, after IKE_AUTH).
  if (e->tun_poll_inited) return throw_error(env, "EEXIST", "a TUN descriptor is already attached");
  if (fd < 0) return throw_error(env, "EINVAL", "not a descriptor: %d", fd);
  uv_loop_t* loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  e->tun_poll.data = e;
  int uerr = uv_poll_init(loop, &e->tun_poll, fd);
  if (uerr) return throw_error(env, "EESP", "uv_poll_init: %s", uv_strerror(uerr));
  e->tun_poll_inited = true;
  e->open_handles++;
  e->tun_fd = fd;
  uerr = uv_poll_start(&e->tun_poll, UV_READABLE, on_tun);
  if (uerr) return throw_error(env, "EESP", "uv_poll_start: %s", uv_strerror(uerr));
  return NULL;
}

static napi_value send_to(napi_env env, engine_t* e, const struct sockaddr_in* to, const void* a, size_t alen, const void* b, size_t blen) {
  struct iovec iov[2] = {{(void*)a, alen}, {(void*)b, blen}};
  struct msghdr m = {.msg_name = (void*)to, .msg_namelen = sizeof *to, .msg_iov = iov, .msg_iovlen = blen ? 2 : 1};
  ssize_t n = sendmsg(e->udp_fd, &m, 0);
  napi_value ok;
  if (n < 0) e->tx_errors++;
  NAPI_CALL(env, napi_get_boolean(env, n >= 0, &ok));
  return ok;
}

// espSendIke(handle, data, address, port) -> sent: the non-ESP marker, then data.
napi_value esp_send_ike(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv, "expected (handle, data: Buffer, address: string, port: number)")) return NULL;
  engine_t* e = engine_arg(env, argv[0]);
  if (!e) return NULL;
  void* data;
  size_t len;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[1], &data, &len));
  struct sockaddr_in to;
  if (!endpoint_arg(env, argv[2], argv[3], &to)) return NULL;
  static const unsigned char marker[4] = {0, 0, 0, 0};
  return send_to(env, e, &to, marker, 4, data, len);
}

// espSendKeepalive(handle, address, port) -> sent: the one byte 0xFF (RFC 3948 §2.3).
napi_value esp_send_keepalive(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv, "expected (handle, address: string, port: number)")) return NULL;
  engine_t* e = engine_arg(env, argv[0]);
  if (!e) return NULL;
  struct sockaddr_in to;
  if (!endpoint_arg(env, argv[1], argv[2], &to)) return NULL;
  static const unsigned char ka[1] = {0xFF};
  return send_to(env, e, &to, ka, 1, NULL, 0);
}

// espAddSa(handle, out: boolean, spi: number, encr, keyBits, integ, encKey: Buffer, integKey: Buffer | null,
//          peerAddress: string | null, peerPort: number, selectors: Buffer (from, to: uint32 BE pairs),
//          sources: Buffer (out: the same pairs; empty: any source)) -> id
napi_value esp_add_sa(napi_env env, napi_callback_info info) {
  static const char usage[] = "expected (handle, out, spi, encr, keyBits, integ, encKey, integKey, peerAddress, peerPort, selectors, sources)";
  napi_value argv[12], jid;
  if (!get_args(env, info, 12, argv, usage)) return NULL;
  engine_t* e = engine_arg(env, argv[0]);
  if (!e) return NULL;
  bool out;
  uint32_t spi, encr, bits, integ;
  void *key, *ikey = NULL, *sel, *src;
  size_t keylen, ikeylen = 0, sellen, srclen;
  napi_valuetype t;
  if (napi_get_value_bool(env, argv[1], &out) != napi_ok || napi_get_value_uint32(env, argv[2], &spi) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &encr) != napi_ok || napi_get_value_uint32(env, argv[4], &bits) != napi_ok ||
      napi_get_value_uint32(env, argv[5], &integ) != napi_ok || napi_get_buffer_info(env, argv[6], &key, &keylen) != napi_ok ||
      napi_typeof(env, argv[7], &t) != napi_ok || (t != napi_null && napi_get_buffer_info(env, argv[7], &ikey, &ikeylen) != napi_ok) ||
      napi_get_buffer_info(env, argv[10], &sel, &sellen) != napi_ok || sellen % 8 ||
      napi_get_buffer_info(env, argv[11], &src, &srclen) != napi_ok || srclen % 8 || (!out && srclen)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return NULL;
  }
  if (spi < 256) return throw_error(env, "EINVAL", "SPI %u is reserved (RFC 4303 §2.1)", spi);
  if (!out && find_spi(e, spi)) return throw_error(env, "EEXIST", "an inbound SA with SPI %08x exists", spi);
  struct sockaddr_in peer;
  memset(&peer, 0, sizeof peer);
  if (out && !endpoint_arg(env, argv[8], argv[9], &peer)) return NULL;
  sa_t* sa = calloc(1, sizeof *sa);
  uint32_t nsel = (uint32_t)(sellen / 8);
  // Never NULL, even without selectors: the copy below then reads nothing from it.
  if (!sa || !(sa->sel = malloc(sellen ? sellen : sizeof *sa->sel)) || !(sa->src = malloc(srclen ? srclen : sizeof *sa->src))) {
    if (sa) free(sa->sel);
    free(sa);
    return throw_errno(env, "ENOMEM", "espAddSa", ENOMEM);
  }
  sa->out = out;
  sa->spi = spi;
  sa->peer = peer;
  sa->nsel = nsel;
  for (uint32_t i = 0; i < 2 * nsel; i++) sa->sel[i] = be32((unsigned char*)sel + 4 * i);
  sa->nsrc = (uint32_t)(srclen / 8);
  for (uint32_t i = 0; i < 2 * sa->nsrc; i++) sa->src[i] = be32((unsigned char*)src + 4 * i);
  const char* why = setup_crypto(sa, encr, bits, integ, key, keylen, ikey, ikeylen);
  if (why) {
    free_sa(sa);
    return throw_error(env, "EINVAL", "%s", why);
  }
  if (e->next_id > e->cap_id) {
    sa_t** grown = realloc(e->by_id, 2 * (size_t)e->cap_id * sizeof *grown);
    if (!grown) {
      free_sa(sa);
      return throw_errno(env, "ENOMEM", "espAddSa", ENOMEM);
    }
    memset(grown + e->cap_id, 0, e->cap_id * sizeof *grown);
    e->by_id = grown;
    e->cap_id *= 2;
  }
  // Selector entries first: nothing can fail once the SA is in a table.
  size_t nranges = 0;
  for (uint32_t i = 0; out && i < nsel; i++) nranges += sa->sel[2 * i] != sa->sel[2 * i + 1];
  if (e->nranges + nranges > e->cap_ranges) {
    size_t cap = (e->nranges + nranges) * 2;
    range_t* grown = realloc(e->ranges, cap * sizeof *grown);
    if (!grown) {
      free_sa(sa);
      return throw_errno(env, "ENOMEM", "espAddSa", ENOMEM);
    }
    e->ranges = grown;
    e->cap_ranges = cap;
  }
  sa->id = e->next_id++;
  e->by_id[sa->id - 1] = sa;
  if (!out) {
    sa->next_spi = e->spis[bucket(spi)];
    e->spis[bucket(spi)] = sa;
  } else {
    for (uint32_t i = 0; i < nsel; i++) {
      uint32_t from = sa->sel[2 * i], to = sa->sel[2 * i + 1];
      if (from != to) {
        e->ranges[e->nranges++] = (range_t){from, to, sa};
        continue;
      }
      host_t* h = malloc(sizeof *h);
      if (!h) {  // out of memory for one entry: the SA stays, minus this address
        report_napi(env, "malloc");
        continue;
      }
      *h = (host_t){from, sa, e->hosts[bucket(from)]};
      e->hosts[bucket(from)] = h;
    }
  }
  NAPI_CALL(env, napi_create_uint32(env, sa->id, &jid));
  return jid;
}

static sa_t* sa_arg(napi_env env, engine_t* e, napi_value v) {
  uint32_t id;
  if (napi_get_value_uint32(env, v, &id) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected an SA id");
    return NULL;
  }
  return id >= 1 && id < e->next_id ? e->by_id[id - 1] : NULL;
}

// espRemoveSa(handle, id) -> removed
napi_value esp_remove_sa(napi_env env, napi_callback_info info) {
  napi_value argv[2], ok;
  if (!get_args(env, info, 2, argv, "expected (handle, id)")) return NULL;
  engine_t* e = engine_arg(env, argv[0]);
  if (!e) return NULL;
  sa_t* sa = sa_arg(env, e, argv[1]);
  if (sa) {
    unlink_sa(e, sa);
    free_sa(sa);
  }
  NAPI_CALL(env, napi_get_boolean(env, sa != NULL, &ok));
  return ok;
}

// espSetPeer(handle, id, address, port) -> found: where an 'out' SA sends now (NAT rebinding).
napi_value esp_set_peer(napi_env env, napi_callback_info info) {
  napi_value argv[4], ok;
  if (!get_args(env, info, 4, argv, "expected (handle, id, address, port)")) return NULL;
  engine_t* e = engine_arg(env, argv[0]);
  if (!e) return NULL;
  struct sockaddr_in peer;
  if (!endpoint_arg(env, argv[2], argv[3], &peer)) return NULL;
  sa_t* sa = sa_arg(env, e, argv[1]);
  if (sa && sa->out) sa->peer = peer;
  NAPI_CALL(env, napi_get_boolean(env, sa && sa->out, &ok));
  return ok;
}

// espSetSeq(handle, id, seq): a test hook — the last sequence number sent (out) or accepted (in).
napi_value esp_set_seq(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv, "expected (handle, id, seq)")) return NULL;
  engine_t* e = engine_arg(env, argv[0]);
  if (!e) return NULL;
  double seq;
  NAPI_CALL(env, napi_get_value_double(env, argv[2], &seq));
  sa_t* sa = sa_arg(env, e, argv[1]);
  if (!sa || seq < 0 || seq > SEQ_LAST) return throw_error(env, "EINVAL", "no such SA, or a sequence number out of range");
  sa->seq = (uint64_t)seq;
  memset(sa->window, 0, sizeof sa->window);
  return NULL;
}

// espStats(handle, id) -> {packets, bytes, seq, lastRxMs, drops: {...}} | null
napi_value esp_stats(napi_env env, napi_callback_info info) {
  napi_value argv[2], r, drops;
  if (!get_args(env, info, 2, argv, "expected (handle, id)")) return NULL;
  engine_t* e = engine_arg(env, argv[0]);
  if (!e) return NULL;
  sa_t* sa = sa_arg(env, e, argv[1]);
  if (!sa) {
    NAPI_CALL(env, napi_get_null(env, &r));
    return r;
  }
  NAPI_CALL(env, napi_create_object(env, &r));
  NAPI_CALL(env, napi_create_object(env, &drops));
  NAPI_CALL(env, set_num(env, r, "packets", (double)sa->packets));
  NAPI_CALL(env, set_num(env, r, "bytes", (double)sa->bytes));
  NAPI_CALL(env, set_num(env, r, "seq", (double)sa->seq));
  NAPI_CALL(env, set_num(env, r, "lastRxMs", sa->last_rx_ms));
  NAPI_CALL(env, set_num(env, drops, "replay", (double)sa->d_replay));
  NAPI_CALL(env, set_num(env, drops, "auth", (double)sa->d_auth));
  NAPI_CALL(env, set_num(env, drops, "malformed", (double)sa->d_malformed));
  NAPI_CALL(env, set_num(env, drops, "policy", (double)sa->d_policy));
  NAPI_CALL(env, set_num(env, drops, "dummy", (double)sa->dummy));
  NAPI_CALL(env, napi_set_named_property(env, r, "drops", drops));
  return r;
}

// espTotals(handle) -> the engine's counters outside any SA
napi_value esp_totals(napi_env env, napi_callback_info info) {
  napi_value argv[1], r;
  if (!get_args(env, info, 1, argv, "expected (handle)")) return NULL;
  engine_t* e = engine_arg(env, argv[0]);
  if (!e) return NULL;
  NAPI_CALL(env, napi_create_object(env, &r));
  NAPI_CALL(env, set_num(env, r, "noSa", (double)e->no_sa));
  NAPI_CALL(env, set_num(env, r, "keepalives", (double)e->keepalives));
  NAPI_CALL(env, set_num(env, r, "ike", (double)e->ike));
  NAPI_CALL(env, set_num(env, r, "malformed", (double)e->malformed));
  NAPI_CALL(env, set_num(env, r, "noTun", (double)e->no_tun));
  NAPI_CALL(env, set_num(env, r, "tunErrors", (double)e->tun_errors));
  NAPI_CALL(env, set_num(env, r, "txErrors", (double)e->tx_errors));
  return r;
}

// espOnEvent(handle, fn(type, id) | null); espTrace(handle, fn(records[]) | null)
napi_value esp_on_event(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, "expected (handle, callback | null)")) return NULL;
  engine_t* e = engine_arg(env, argv[0]);
  return e ? set_callback(env, &e->on_event, argv[1]) : NULL;
}

napi_value esp_trace(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, "expected (handle, callback | null)")) return NULL;
  engine_t* e = engine_arg(env, argv[0]);
  return e ? set_callback(env, &e->on_trace, argv[1]) : NULL;
}

// espClose(handle): frees the SAs (their keys with them) and the socket; later calls throw ECLOSED.
napi_value esp_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, "expected (handle)")) return NULL;
  bool ours = false;
  box_t* box;
  NAPI_CALL(env, napi_check_object_type_tag(env, argv[0], &ENGINE_TAG, &ours));
  if (!ours) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "not an ESP engine handle");
    return NULL;
  }
  NAPI_CALL(env, napi_get_value_external(env, argv[0], (void**)&box));
  shutdown_engine(box);
  return NULL;
}

// espPacketPair() -> [fd, fd]: a connected pair of non-blocking SOCK_SEQPACKET sockets, one packet
// per read as from a TUN device; tests without root attach one end in place of a TUN.
napi_value esp_packet_pair(napi_env env, napi_callback_info info) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) return throw_errno(env, "ESOCKET", "socketpair", errno);
  napi_value r, a, b;
  if (napi_create_array_with_length(env, 2, &r) != napi_ok || napi_create_int32(env, fds[0], &a) != napi_ok ||
      napi_create_int32(env, fds[1], &b) != napi_ok || napi_set_element(env, r, 0, a) != napi_ok || napi_set_element(env, r, 1, b) != napi_ok) {
    close(fds[0]);
    close(fds[1]);
    return throw_napi(env, "building the result");
  }
  return r;
}
