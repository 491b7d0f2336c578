// Process settings for long-running servers (gate, relay).
//
// setMmapThreshold: glibc malloc tuning for processes that carry bulk streams. Socket reads allocate 64 KiB buffers;
// below glibc's mmap threshold they come from the heap, and after a traffic burst glibc keeps the
// freed pages (RSS stayed ~35 MB higher). Served by mmap instead, they go back to the OS on free.
#include <malloc.h>
#include <sys/resource.h>
#include <node_api.h>
#include "addon.h"

// setMmapThreshold(bytes) -> boolean
static napi_value SetMmapThreshold(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], ok;
  int32_t bytes = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || napi_get_value_int32(env, argv[0], &bytes) != napi_ok) return NULL;
  napi_get_boolean(env, mallopt(M_MMAP_THRESHOLD, bytes) == 1, &ok);
  return ok;
}

// raiseFdLimit() -> the new soft limit: soft up to hard, as Go's runtime does. Each relayed tunnel
// holds two sockets and, when spliced, two pipes; the common soft limit of 1024 is soon reached.
static napi_value RaiseFdLimit(napi_env env, napi_callback_info info) {
  struct rlimit r;
  napi_value out;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
    getrlimit(RLIMIT_NOFILE, &r);
  }
  napi_create_double(env, (double)r.rlim_cur, &out);
  return out;
}

void register_process(napi_env env, napi_value exports) {
  napi_property_descriptor p[] = {
    EXPORT("setMmapThreshold", SetMmapThreshold),
    EXPORT("raiseFdLimit", RaiseFdLimit),
  };
  napi_define_properties(env, exports, 2, p);
}
