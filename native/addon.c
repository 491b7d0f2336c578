// The addon's entry: the export table, and the checked helpers every part uses (addon.h).
// Parts: tun.c (TUN/TAP devices), mac.c (the DATA frame digest), process.c (settings for
// long-running servers), splice.c (kernel splicing for relays), accept.c (a listener that refuses floods cheaply), esp.c (the ESP data plane), datapath.c (the native data path). Linux only.
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "addon.h"

napi_value throw_error(napi_env env, const char* code, const char* fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  napi_value jcode, jmsg, error;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg) != napi_ok ||
      napi_create_error(env, jcode, jmsg, &error) != napi_ok || napi_throw(env, error) != napi_ok) {
    // Creating the Error failed (out of memory, say): the plain form needs no JS values of ours.
    napi_throw_error(env, code, msg);
  }
  return NULL;
}

napi_value throw_errno(napi_env env, const char* code, const char* what, int err) {
  return throw_error(env, code, "%s: %s", what, strerror(err));
}

// N-API's reason for the last failed call, read before any other call replaces it (the messages
// themselves are static strings).
static const char* last_reason(napi_env env) {
  const napi_extended_error_info* info = NULL;
  if (napi_get_last_error_info(env, &info) != napi_ok || !info || !info->error_message) return "unknown reason";
  return info->error_message;
}

napi_value throw_napi(napi_env env, const char* call) {
  const char* why = last_reason(env);
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return NULL;
  return throw_error(env, "ENAPI", "%s failed: %s", call, why);
}

int get_args(napi_env env, napi_callback_info info, size_t n, napi_value* argv, const char* usage) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    throw_napi(env, "napi_get_cb_info");
    return 0;
  }
  if (argc < n) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return 0;
  }
  return 1;
}

int is_function(napi_env env, napi_value v, const char* usage) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) {
    throw_napi(env, "napi_typeof");
    return 0;
  }
  if (t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return 0;
  }
  return 1;
}

void report_napi(napi_env env, const char* call) {
  const char* why = last_reason(env);
  fprintf(stderr, "tunkit native: %s failed: %s\n", call, why);
  // Left pending, an exception would be thrown at the next, unrelated N-API call from JS.
  bool pending = false;
  napi_value ignored;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
}

void call_back(napi_env env, napi_ref ref, size_t argc, napi_value* args) {
  napi_value fn, recv, ignored;
  if (napi_get_reference_value(env, ref, &fn) != napi_ok || !fn) return report_napi(env, "napi_get_reference_value");
  if (napi_get_global(env, &recv) != napi_ok) return report_napi(env, "napi_get_global");
  napi_status st = napi_make_callback(env, NULL, recv, fn, argc, args, &ignored);
  if (st == napi_ok) return;
  napi_value e;
  if (st == napi_pending_exception && napi_get_and_clear_last_exception(env, &e) == napi_ok) napi_fatal_exception(env, e);
  else report_napi(env, "napi_make_callback");
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    EXPORT("open", tun_open),
    EXPORT("write", tun_write),
    EXPORT("startReading", tun_start_reading),
    EXPORT("stopReading", tun_stop_reading),
    EXPORT("pauseReading", tun_pause_reading),
    EXPORT("close", tun_close),
    EXPORT("macKey", mac_key),
    EXPORT("macSign", mac_sign),
    EXPORT("macCheck", mac_check),
    EXPORT("setMmapThreshold", process_set_mmap_threshold),
    EXPORT("raiseFdLimit", process_raise_fd_limit),
    EXPORT("mallocTrim", process_malloc_trim),
    EXPORT("splice", splice_start),
    EXPORT("spliceAbort", splice_abort),
    EXPORT("acceptListen", accept_listen),
    EXPORT("acceptStart", accept_start),
    EXPORT("acceptStop", accept_stop),
    EXPORT("espOpen", esp_open),
    EXPORT("espAttachTun", esp_attach_tun),
    EXPORT("espSendIke", esp_send_ike),
    EXPORT("espSendKeepalive", esp_send_keepalive),
    EXPORT("espAddSa", esp_add_sa),
    EXPORT("espRemoveSa", esp_remove_sa),
    EXPORT("espSetPeer", esp_set_peer),
    EXPORT("espSetSeq", esp_set_seq),
    EXPORT("espStats", esp_stats),
    EXPORT("espTotals", esp_totals),
    EXPORT("espOnEvent", esp_on_event),
    EXPORT("espTrace", esp_trace),
    EXPORT("espClose", esp_close),
    EXPORT("espPacketPair", esp_packet_pair),
    EXPORT("dpOpen", dp_open),
    EXPORT("dpWrite", dp_write),
    EXPORT("dpAck", dp_ack),
    EXPORT("dpControl", dp_control),
    EXPORT("dpSeal", dp_seal),
    EXPORT("dpDecoder", dp_decoder),
    EXPORT("dpFeed", dp_feed),
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
