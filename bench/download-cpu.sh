#!/usr/bin/env bash
# One gate (one process) and one portal on loopback, iperf3 -R -P 8 through the portal's -L: the
# rate, the CPU ticks of gate and portal, the gate's minor page faults (from /proc), and with
# TK_PERF=1 a system-wide `perf record -g` of 3 s in the middle (bench/results/download-cpu.data).
# What BENCHMARKS.md "Streams: one buffer per TLS write" measured. Knobs: TK_STREAMS (8), TK_SECS (6),
# TK_PORT_BASE (27700). Loopback only; only processes started here are stopped.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$HERE")
N=${TK_STREAMS:-8}; SECS=${TK_SECS:-6}; B=${TK_PORT_BASE:-27700}
W=$(mktemp -d /tmp/tkbench-dl.XXXXXX); PIDS=()
# The portal first (a gate gone first makes it log a retry), and every one gone before the next run binds the ports.
cleanup() { for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT INT TERM
[ -f "$ROOT/dist/src/index.js" ] || (cd "$ROOT" && npm run build --silent)
TK="$ROOT/bin/run.js"
$TK pki init --dir "$W/pki" --client bench --san localhost --san 127.0.0.1 >/dev/null 2>&1
wait_port() { for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
iperf3 -s -B 127.0.0.1 -p "$B" >/dev/null 2>&1 & PIDS+=($!)
$TK gate --listen 127.0.0.1:$((B+1)) --pki-dir "$W/pki" --workers 1 --log-level warn & G=$!; PIDS+=($G)
wait_port $((B+1))
$TK portal --gate 127.0.0.1:$((B+1)) --pki-dir "$W/pki" --log-level warn -L 127.0.0.1:$((B+2)):127.0.0.1:$B & PO=$!; PIDS+=($PO)
wait_port $((B+2)); sleep 1
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
g0=$(ticks $G); p0=$(ticks $PO); f0=$(awk '{print $10}' /proc/$G/stat); t0=$(date +%s%N)
iperf3 -c 127.0.0.1 -p $((B+2)) -t "$SECS" -R -P "$N" -J >"$W/iperf.json" & IP=$!
if [ "${TK_PERF:-0}" = 1 ]; then sleep 2; perf record -F 999 -a -g -o "$HERE/results/download-cpu.data" -- sleep 3 2>/dev/null; fi
wait $IP
g1=$(ticks $G); p1=$(ticks $PO); f1=$(awk '{print $10}' /proc/$G/stat); t1=$(date +%s%N)
gbit=$(node -e 'console.log((JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).end.sum_received.bits_per_second / 1e9).toFixed(2))' "$W/iperf.json")
hz=$(getconf CLK_TCK); wall=$(( (t1 - t0) / 1000000 ))
echo "download, $N streams: $gbit Gbit/s; CPU s: gate $(( (g1 - g0) * 1000 / hz )) ms, portal $(( (p1 - p0) * 1000 / hz )) ms in $wall ms; gate minor faults $((f1 - f0)) (gate $G, portal $PO)"
