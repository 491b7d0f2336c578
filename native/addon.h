#pragma once
// Shared by the addon's parts (addon.c holds the module's entry and export table): every N-API
// status is checked, and a failure becomes a JavaScript Error with a `code` naming what failed,
// never a silent NULL (which JS would see as `undefined`, failing later and elsewhere).
#include <node_api.h>
#include <stddef.h>

// One exported function: {"name", C function}.
#define EXPORT(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_default, NULL}

// Throws an Error with .code = code and the formatted message; returns NULL, for
// `return throw_error(...)` in a napi_callback.
napi_value throw_error(napi_env env, const char* code, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
// Throws "what: strerror(err)" with the given code.
napi_value throw_errno(napi_env env, const char* code, const char* what, int err);
// After a failed N-API call: leaves a pending exception alone (it says more), otherwise throws
// code ENAPI naming the call and N-API's own reason.
napi_value throw_napi(napi_env env, const char* call);

// `call` must return napi_ok, or the function returns NULL with a JS exception pending.
#define NAPI_CALL(env, call) \
  do { if ((call) != napi_ok) return throw_napi((env), #call); } while (0)
// The same for paths that must release something first: throws, then jumps to `label`.
#define NAPI_CALL_OR(env, call, label) \
  do { if ((call) != napi_ok) { throw_napi((env), #call); goto label; } } while (0)

// Reads exactly n arguments; fewer throws a TypeError (code ERR_INVALID_ARG_TYPE) with `usage`.
int get_args(napi_env env, napi_callback_info info, size_t n, napi_value* argv, const char* usage);
// Checks that v is a function; otherwise throws like get_args.
int is_function(napi_env env, napi_value v, const char* usage);

// From a libuv callback (no JavaScript on the stack): calls the function held by `ref` with
// `args`, through napi_make_callback so Node runs the microtask and nextTick queues after it.
// What the function throws goes to process 'uncaughtException' like any other event handler's
// exception — not left pending to surface at some later, unrelated N-API call.
void call_back(napi_env env, napi_ref ref, size_t argc, napi_value* args);
// From a libuv callback: an N-API call failed with nobody to throw to; says so on stderr.
void report_napi(napi_env env, const char* call);

// The exported functions, by part.
// tun.c: TUN/TAP devices
napi_value tun_open(napi_env env, napi_callback_info info);
napi_value tun_write(napi_env env, napi_callback_info info);
napi_value tun_start_reading(napi_env env, napi_callback_info info);
napi_value tun_stop_reading(napi_env env, napi_callback_info info);
napi_value tun_pause_reading(napi_env env, napi_callback_info info);
napi_value tun_close(napi_env env, napi_callback_info info);
// mac.c: the DATA frame digest
napi_value mac_key(napi_env env, napi_callback_info info);
napi_value mac_sign(napi_env env, napi_callback_info info);
napi_value mac_check(napi_env env, napi_callback_info info);
// process.c: settings for long-running servers
napi_value process_set_mmap_threshold(napi_env env, napi_callback_info info);
napi_value process_raise_fd_limit(napi_env env, napi_callback_info info);
napi_value process_malloc_trim(napi_env env, napi_callback_info info);
// splice.c: kernel splicing for relays
napi_value splice_start(napi_env env, napi_callback_info info);
napi_value splice_abort(napi_env env, napi_callback_info info);
// accept.c: a listener whose accept loop refuses floods cheaply
napi_value accept_listen(napi_env env, napi_callback_info info);
napi_value accept_start(napi_env env, napi_callback_info info);
napi_value accept_stop(napi_env env, napi_callback_info info);
// esp.c: the userspace ESP data plane (RFC 4303 in UDP, RFC 3948)
napi_value esp_open(napi_env env, napi_callback_info info);
napi_value esp_attach_tun(napi_env env, napi_callback_info info);
napi_value esp_send_ike(napi_env env, napi_callback_info info);
napi_value esp_send_keepalive(napi_env env, napi_callback_info info);
napi_value esp_add_sa(napi_env env, napi_callback_info info);
napi_value esp_remove_sa(napi_env env, napi_callback_info info);
napi_value esp_set_peer(napi_env env, napi_callback_info info);
napi_value esp_set_seq(napi_env env, napi_callback_info info);
napi_value esp_stats(napi_env env, napi_callback_info info);
napi_value esp_totals(napi_env env, napi_callback_info info);
napi_value esp_on_event(napi_env env, napi_callback_info info);
napi_value esp_trace(napi_env env, napi_callback_info info);
napi_value esp_close(napi_env env, napi_callback_info info);
napi_value esp_packet_pair(napi_env env, napi_callback_info info);
// datapath.c: the native data path (AES-256-GCM records on the tunnel's descriptor)
napi_value dp_open(napi_env env, napi_callback_info info);
napi_value dp_write(napi_env env, napi_callback_info info);
napi_value dp_ack(napi_env env, napi_callback_info info);
napi_value dp_control(napi_env env, napi_callback_info info);
napi_value dp_seal(napi_env env, napi_callback_info info);
napi_value dp_decoder(napi_env env, napi_callback_info info);
napi_value dp_feed(napi_env env, napi_callback_info info);
