#!/usr/bin/env bash
# CPU per connection of the gate, the portal and a bare Node forwarder (bench/node-proxy.mjs),
# from /proc/PID/stat over N sequential short connections (bench/connloop.mjs). Loopback only.
# Knobs: TK_CONNS (3000), TK_PORT_BASE (27800).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$HERE")
N=${TK_CONNS:-3000}; BASE=${TK_PORT_BASE:-27800}
W=$(mktemp -d /tmp/tkconncpu.XXXXXX); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT INT TERM
[ -f "$ROOT/dist/src/index.js" ] || (cd "$ROOT" && npm run build --silent)
TK=("$ROOT/bin/run.js")  # as installed: its #! line has node flags
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }  # user, system (clock ticks)
per_conn() { echo $(( ($2 - $1) * 1000000 / $(getconf CLK_TCK) / N )); }

"${TK[@]}" pki init --dir "$W/pki" --client bench --san 127.0.0.1 >/dev/null 2>&1
node "$HERE/echo.mjs" $BASE & PIDS+=($!)
# One process (--workers 1): the CPU read from /proc is then all the gate's.
"${TK[@]}" gate --listen 127.0.0.1:$((BASE+1)) --pki-dir "$W/pki" --log-level warn --workers 1 & G=$!; PIDS+=($G)
node "$HERE/node-proxy.mjs" $((BASE+3)) $BASE & X=$!; PIDS+=($X)
sleep 1.5
"${TK[@]}" portal --gate 127.0.0.1:$((BASE+1)) --pki-dir "$W/pki" --log-level warn -L 127.0.0.1:$((BASE+2)):127.0.0.1:$BASE & P=$!; PIDS+=($P)
sleep 2
for pair in "tunkit $((BASE+2)) $G $P" "node-proxy $((BASE+3)) $X"; do
  set -- $pair; name=$1 port=$2; shift 2
  node "$HERE/connloop.mjs" "$port" 300 >/dev/null   # warm up
  declare -A u0=() s0=()
  for pid in "$@"; do read -r u0[$pid] s0[$pid] < <(ticks "$pid"); done
  secs=$(node "$HERE/connloop.mjs" "$port" "$N" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).seconds.toFixed(2)))')
  line="$name: $N connections in $secs s;"
  for pid in "$@"; do
    read -r u1 s1 < <(ticks "$pid")
    role=$([ "$pid" = "$G" ] && echo gate || { [ "$pid" = "$P" ] && echo portal || echo proxy; })
    line+=" $role $(per_conn "${u0[$pid]}" "$u1") µs user + $(per_conn "${s0[$pid]}" "$s1") µs system per connection;"
  done
  echo "$line"
done
