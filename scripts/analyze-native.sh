#!/usr/bin/env bash
# Static analysis of the native addon: gcc's -fanalyzer (leaks, double frees, use after free,
# NULL dereferences, uninitialised reads) over every native/*.c. Exits non-zero when the analyzer
# or the compiler reports anything at all.
set -euo pipefail
cd "$(dirname "$0")/.."

CC=${CC:-gcc}
node_include() {
  local prefix
  prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  for dir in "$prefix/include/node" /usr/include/node /usr/include/nodejs; do
    if [ -f "$dir/node_api.h" ]; then echo "$dir"; return; fi
  done
  echo "analyze-native: node's headers (node_api.h) not found beside $(command -v node) nor in /usr/include" >&2
  exit 2
}
inc=$(node_include)

status=0
srcs=(native/*.c)
for src in "${srcs[@]}"; do
  # -fanalyzer needs code generation to run; the object is thrown away.
  out=$("$CC" -std=gnu11 -O2 -fanalyzer -Wall -Wextra -Wno-unused-parameter -Werror -fdiagnostics-plain-output \
    -I"$inc" -DNODE_GYP_MODULE_NAME=tunkit_tun -c "$src" -o /dev/null 2>&1) && rc=0 || rc=$?
  if [ "$rc" != 0 ] || [ -n "$out" ]; then
    printf '%s\n' "$out"
    status=1
  fi
done
if [ "$status" = 0 ]; then echo "analyze-native: ${#srcs[@]} files, nothing reported"; else echo "analyze-native: FAILED (see above)" >&2; fi
exit "$status"
