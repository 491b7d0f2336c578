// The DATA frame digest, 16 bytes over (datagram || 64-bit frame counter [|| 16-bit flags, when
// not 0: offload metadata, which changes what the receiver's kernel makes of the datagram]), with
// OpenSSL from the node binary itself. Two constructions (docs/protocol.md, DATA):
//   HMAC-SHA-256-128 over those bytes;
//   AES-256-GMAC (RFC 4543's construction: GCM with everything as AAD and no plaintext), the
//   counter as the nonce — about 8x cheaper per byte than SHA-256 with AES and carry-less
//   multiply instructions, and the counter never repeats for one key.
// Why native: crypto.createHmac/createCipheriv build a new context per packet, which cost more than
// half of VPN mode's CPU; here the keyed context is made once per tunnel direction and only
// re-initialised per frame.
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include "addon.h"

#define DIGEST_LEN 16

typedef struct {
  EVP_MAC_CTX* hmac;      // HMAC-SHA-256, or
  EVP_CIPHER_CTX* gmac;   // AES-256-GCM, keyed
} mac_t;

static void finalize(napi_env env, void* data, void* hint) {
  mac_t* m = data;
  EVP_MAC_CTX_free(m->hmac);
  EVP_CIPHER_CTX_free(m->gmac);
  free(m);
}

static napi_value fail(napi_env env, const char* what) {
  return throw_error(env, "EMAC", "%s", what);
}

// macKey(key: Buffer[, gmac: boolean]) -> handle
napi_value mac_key(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected (key: Buffer[, gmac: boolean])");
    return NULL;
  }
  void* key;
  size_t keylen;
  bool gmac = false;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[0], &key, &keylen));
  if (argc > 1) NAPI_CALL(env, napi_get_value_bool(env, argv[1], &gmac));
  mac_t* m = calloc(1, sizeof *m);
  if (!m) return throw_errno(env, "ENOMEM", "macKey", ENOMEM);
  if (gmac) {
    if (keylen != 32) {
      free(m);
      return fail(env, "AES-256-GMAC needs a 32-byte key");
    }
    m->gmac = EVP_CIPHER_CTX_new();
    if (!m->gmac || !EVP_EncryptInit_ex(m->gmac, EVP_aes_256_gcm(), NULL, key, NULL)) {
      finalize(env, m, NULL);
      return fail(env, "cannot set up AES-256-GMAC");
    }
  } else {
    EVP_MAC* mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac) {
      free(m);
      return fail(env, "HMAC is not available from OpenSSL");
    }
    m->hmac = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0), OSSL_PARAM_construct_end()};
    if (!m->hmac || !EVP_MAC_init(m->hmac, key, keylen, params)) {
      finalize(env, m, NULL);
      return fail(env, "cannot set up HMAC-SHA-256");
    }
  }
  napi_value handle;
  if (napi_create_external(env, m, finalize, NULL, &handle) != napi_ok) {
    throw_napi(env, "napi_create_external");
    finalize(env, m, NULL);
    return NULL;
  }
  return handle;
}

// One digest into out[16]; 0 on an OpenSSL failure.
static int digest(mac_t* m, const void* data, size_t len, double counter, uint32_t flags, unsigned char* out) {
  unsigned char c[12], full[EVP_MAX_MD_SIZE];
  uint64_t n = (uint64_t)counter;
  for (int i = 7; i >= 0; i--, n >>= 8) c[i] = n & 255;
  c[8] = (flags >> 8) & 255;
  c[9] = flags & 255;
  size_t tail = flags ? 10 : 8;
  if (m->gmac) {
    // Nonce: 4 zero bytes and the counter; the AAD: datagram, then the flags when not 0 (the
    // counter is already bound through the nonce).
    unsigned char iv[12] = {0};
    memcpy(iv + 4, c, 8);
    int outl;
    if (!EVP_EncryptInit_ex(m->gmac, NULL, NULL, NULL, iv) || (len && !EVP_EncryptUpdate(m->gmac, NULL, &outl, data, (int)len)) ||
        (flags && !EVP_EncryptUpdate(m->gmac, NULL, &outl, c + 8, 2)) || !EVP_EncryptFinal_ex(m->gmac, full, &outl) ||
        !EVP_CIPHER_CTX_ctrl(m->gmac, EVP_CTRL_GCM_GET_TAG, DIGEST_LEN, out)) return 0;
    return 1;
  }
  size_t outl;
  // A NULL key re-initialises with the key already set: no new context per frame.
  if (!EVP_MAC_init(m->hmac, NULL, 0, NULL) || !EVP_MAC_update(m->hmac, data, len) || !EVP_MAC_update(m->hmac, c, tail) ||
      !EVP_MAC_final(m->hmac, full, &outl, sizeof full)) return 0;
  memcpy(out, full, DIGEST_LEN);
  return 1;
}

// Reads (handle, data, counter, buffer, offset[, flags]) and checks that 16 bytes fit at the
// offset. Per packet, so one branch for all the calls; the handle is not type-tagged (a tag check
// per packet costs more than the digest's bookkeeping) and only data-channel.ts holds one.
static int args(napi_env env, napi_callback_info info, mac_t** m, void** data, size_t* len, double* counter, uint32_t* flags, unsigned char** at) {
  size_t argc = 6;
  napi_value argv[6];
  void* buf;
  size_t buflen;
  uint32_t off;
  *flags = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      napi_get_value_external(env, argv[0], (void**)m) != napi_ok ||
      napi_get_buffer_info(env, argv[1], data, len) != napi_ok ||
      napi_get_value_double(env, argv[2], counter) != napi_ok ||
      napi_get_buffer_info(env, argv[3], &buf, &buflen) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &off) != napi_ok ||
      (argc > 5 && napi_get_value_uint32(env, argv[5], flags) != napi_ok)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected (handle, data, counter, buffer, offset[, flags])");
    return 0;
  }
  if ((size_t)off + DIGEST_LEN > buflen) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "digest does not fit the buffer");
    return 0;
  }
  *flags &= 0xffff;
  *at = (unsigned char*)buf + off;
  return 1;
}

// macSign(handle, data, counter, out, offset[, flags]): writes the digest at out[offset..offset+16].
napi_value mac_sign(napi_env env, napi_callback_info info) {
  mac_t* m;
  void* data;
  size_t len;
  double counter;
  uint32_t flags;
  unsigned char* at;
  if (!args(env, info, &m, &data, &len, &counter, &flags, &at)) return NULL;
  if (!digest(m, data, len, counter, flags, at)) return fail(env, "the DATA digest failed");
  return NULL;
}

// macCheck(handle, data, counter, digest, offset[, flags]) -> boolean, compared in constant time.
napi_value mac_check(napi_env env, napi_callback_info info) {
  mac_t* m;
  void* data;
  size_t len;
  double counter;
  uint32_t flags;
  unsigned char* at;
  unsigned char want[DIGEST_LEN];
  if (!args(env, info, &m, &data, &len, &counter, &flags, &at)) return NULL;
  if (!digest(m, data, len, counter, flags, want)) return fail(env, "the DATA digest failed");
  napi_value ok;
  NAPI_CALL(env, napi_get_boolean(env, CRYPTO_memcmp(want, at, DIGEST_LEN) == 0, &ok));
  return ok;
}
