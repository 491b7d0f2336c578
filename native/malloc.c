// glibc malloc tuning for processes that carry bulk streams (gate, relay). Socket reads allocate 64 KiB buffers;
// below glibc's mmap threshold they come from the heap, and after a traffic burst glibc keeps the
// freed pages (RSS stayed ~35 MB higher). Served by mmap instead, they go back to the OS on free.
#include <malloc.h>
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

void register_malloc(napi_env env, napi_value exports) {
  napi_property_descriptor p = {"setMmapThreshold", NULL, SetMmapThreshold, NULL, NULL, NULL, napi_default, NULL};
  napi_define_properties(env, exports, 1, &p);
}
