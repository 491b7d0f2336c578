// Process settings for long-running servers (gate, relay).
//
// setMmapThreshold: glibc malloc tuning for processes that carry bulk streams. Socket reads allocate 64 KiB buffers;
// below glibc's mmap threshold they come from the heap, and after a traffic burst glibc keeps the
// freed pages (RSS stayed ~35 MB higher). Served by mmap instead, they go back to the OS on free.
#include <errno.h>
#include <malloc.h>
#include <sys/resource.h>
#include "addon.h"

// setMmapThreshold(bytes) -> boolean (false: glibc refused the value)
napi_value process_set_mmap_threshold(napi_env env, napi_callback_info info) {
  napi_value argv[1], ok;
  if (!get_args(env, info, 1, argv, "expected (bytes: number)")) return NULL;
  int32_t bytes = 0;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &bytes));
  NAPI_CALL(env, napi_get_boolean(env, mallopt(M_MMAP_THRESHOLD, bytes) == 1, &ok));
  return ok;
}

// raiseFdLimit() -> the soft limit now: soft up to hard, as Go's runtime does. Each relayed tunnel
// holds two sockets and, when spliced, two pipes; the common soft limit of 1024 is soon reached.
// A refused raise is not an error: the limit stays what it was, and that is what is returned.
napi_value process_raise_fd_limit(napi_env env, napi_callback_info info) {
  struct rlimit r, now;
  napi_value out;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return throw_errno(env, "ERLIMIT", "getrlimit", errno);
  if (r.rlim_cur < r.rlim_max) {
    now = r;
    now.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &now) == 0) r = now;
  }
  NAPI_CALL(env, napi_create_double(env, (double)r.rlim_cur, &out));
  return out;
}

// mallocTrim() -> boolean (true: memory went back to the OS). After a burst (a flood of early
// data, say) glibc keeps freed heap pages below the top of the heap; malloc_trim returns them.
napi_value process_malloc_trim(napi_env env, napi_callback_info info) {
  napi_value out;
  NAPI_CALL(env, napi_get_boolean(env, malloc_trim(0) == 1, &out));
  return out;
}
