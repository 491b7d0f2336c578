// The DATA frame digest, HMAC-SHA-256-128 over (datagram || 64-bit frame counter), with OpenSSL's
// EVP_MAC from the node binary itself. Why native: crypto.createHmac builds a new context per
// packet, which cost more than half of VPN mode's CPU; here the keyed context is made once per
// tunnel direction and only re-initialised per frame.
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include "addon.h"

#define DIGEST_LEN 16

static void finalize(napi_env env, void* data, void* hint) {
  EVP_MAC_CTX_free((EVP_MAC_CTX*)data);
}

static napi_value fail(napi_env env, const char* what) {
  return throw_error(env, "EMAC", "%s", what);
}

// macKey(key: Buffer) -> handle
napi_value mac_key(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, "expected (key: Buffer)")) return NULL;
  void* key;
  size_t keylen;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[0], &key, &keylen));
  EVP_MAC* mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  if (!mac) return fail(env, "HMAC is not available from OpenSSL");
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  EVP_MAC_free(mac);
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0), OSSL_PARAM_construct_end()};
  if (!ctx || !EVP_MAC_init(ctx, key, keylen, params)) {
    EVP_MAC_CTX_free(ctx);
    return fail(env, "cannot set up HMAC-SHA-256");
  }
  napi_value handle;
  if (napi_create_external(env, ctx, finalize, NULL, &handle) != napi_ok) {
    throw_napi(env, "napi_create_external");
    EVP_MAC_CTX_free(ctx);
    return NULL;
  }
  return handle;
}

// One digest into out[16]; 0 on an OpenSSL failure.
static int digest(EVP_MAC_CTX* ctx, const void* data, size_t len, double counter, unsigned char* out) {
  unsigned char c[8], full[EVP_MAX_MD_SIZE];
  uint64_t n = (uint64_t)counter;
  for (int i = 7; i >= 0; i--, n >>= 8) c[i] = n & 255;
  size_t outl;
  // A NULL key re-initialises with the key already set: no new context per frame.
  if (!EVP_MAC_init(ctx, NULL, 0, NULL) || !EVP_MAC_update(ctx, data, len) || !EVP_MAC_update(ctx, c, 8) ||
      !EVP_MAC_final(ctx, full, &outl, sizeof full)) return 0;
  memcpy(out, full, DIGEST_LEN);
  return 1;
}

// Reads (handle, data, counter, buffer, offset) and checks that 16 bytes fit at the offset. Per
// packet, so one branch for all the calls; the handle is not type-tagged (a tag check per packet
// costs more than the digest's bookkeeping) and only data-channel.ts holds one.
static int args(napi_env env, napi_callback_info info, EVP_MAC_CTX** ctx, void** data, size_t* len, double* counter, unsigned char** at) {
  size_t argc = 5;
  napi_value argv[5];
  void* buf;
  size_t buflen;
  uint32_t off;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      napi_get_value_external(env, argv[0], (void**)ctx) != napi_ok ||
      napi_get_buffer_info(env, argv[1], data, len) != napi_ok ||
      napi_get_value_double(env, argv[2], counter) != napi_ok ||
      napi_get_buffer_info(env, argv[3], &buf, &buflen) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &off) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected (handle, data, counter, buffer, offset)");
    return 0;
  }
  if ((size_t)off + DIGEST_LEN > buflen) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "digest does not fit the buffer");
    return 0;
  }
  *at = (unsigned char*)buf + off;
  return 1;
}

// macSign(handle, data, counter, out, offset): writes the digest at out[offset..offset+16].
napi_value mac_sign(napi_env env, napi_callback_info info) {
  EVP_MAC_CTX* ctx;
  void* data;
  size_t len;
  double counter;
  unsigned char* at;
  if (!args(env, info, &ctx, &data, &len, &counter, &at)) return NULL;
  if (!digest(ctx, data, len, counter, at)) return fail(env, "HMAC failed");
  return NULL;
}

// macCheck(handle, data, counter, digest, offset) -> boolean, compared in constant time.
napi_value mac_check(napi_env env, napi_callback_info info) {
  EVP_MAC_CTX* ctx;
  void* data;
  size_t len;
  double counter;
  unsigned char* at;
  unsigned char want[DIGEST_LEN];
  if (!args(env, info, &ctx, &data, &len, &counter, &at)) return NULL;
  if (!digest(ctx, data, len, counter, want)) return fail(env, "HMAC failed");
  napi_value ok;
  NAPI_CALL(env, napi_get_boolean(env, CRYPTO_memcmp(want, at, DIGEST_LEN) == 0, &ok));
  return ok;
}
