#!/usr/bin/env bash
# Hostile-load benchmark (issue 9); see bench/hostile.mjs. Holds the e2e lock (loopback ports,
# process and descriptor figures must not be disturbed by another run). Needs root for the private
# mount namespace whose resolv.conf points at our silent resolver (attacks 8 and 12).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$HERE")
[ -f "$ROOT/dist/src/index.js" ] || (cd "$ROOT" && npm run build --silent)
exec flock /tmp/tunkit-e2e.lock node "$HERE/hostile.mjs" "$@"
