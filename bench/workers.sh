#!/usr/bin/env bash
# gate --workers (issue 12 item 5): 8 portals, each with one iperf3 stream through its own tunnel,
# against a gate with 1 worker (a plain gate) and a gate with 2 workers, in the same run. Both
# gates and their portals are up for the whole run and the rounds alternate (1, 2, 2, 1, …) so
# drift on a shared machine hits both alike. Per round: the 8 streams' sum; reported: the median
# of the rounds, the ratio 2 workers / 1 worker, and where the CPU went (gate processes, the
# portals, the rest: iperf3 and the kernel's share not charged to them), read from /proc around
# each round, with how busy the machine's CPUs were.
# Loopback only; ports below the ephemeral range; only processes started here are stopped.
# Knobs: TK_REPS (7: one round moves by ±15 % on this shared machine), TK_SECS (6), TK_STREAMS (8), TK_PORT_BASE (27800),
#   TK_REVERSE=1: the streams run gate → portal (iperf3 -R), TK_DATA_PATH (tls; native: gates and portals say --data-path native),
#   TK_GATE_CPUS / TK_LOAD_CPUS: taskset CPU lists for the gates and for the load (default: none).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$HERE")
. "$HERE/lib.sh"
REPS=${TK_REPS:-7}; SECS=${TK_SECS:-6}; N=${TK_STREAMS:-8}; BASE=${TK_PORT_BASE:-27800}
REV=(); [ "${TK_REVERSE:-0}" = 1 ] && REV=(-R)
DP=(--data-path "${TK_DATA_PATH:-tls}")
W=$(mktemp -d /tmp/tkbench-workers.XXXXXX); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 1.5; for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT INT TERM
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# taskset prefixes (commands, not functions: setsid execs them).
PIN_G=(); [ -n "${TK_GATE_CPUS:-}" ] && PIN_G=(taskset -c "$TK_GATE_CPUS")
PIN_L=(); [ -n "${TK_LOAD_CPUS:-}" ] && PIN_L=(taskset -c "$TK_LOAD_CPUS")
bg() { local f=$1; shift; setsid "$@" >"$W/$f.log" 2>&1 </dev/null & PIDS+=($!); }
wait_port() { for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; log "port $1 never opened"; return 1; }

dpkg-query -W -f='${Status}' iperf3 2>/dev/null | grep -q 'ok installed' || { log "installing iperf3"; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iperf3 >/dev/null; }
[ -f "$ROOT/dist/src/index.js" ] || (cd "$ROOT" && npm run build --silent)
TK="$ROOT/bin/run.js"
$TK pki init --dir "$W/pki" --client bench --san localhost --san 127.0.0.1 >/dev/null 2>&1

# Ports: iperf3 servers BASE..BASE+N-1; gates BASE+50 (1 worker), BASE+51 (2 workers), their --metrics
# BASE+61 and BASE+62 (the report says how the 2-worker gate spread its tunnels);
# portal -L ports BASE+100+i (gate 1) and BASE+200+i (gate 2).
for i in $(seq 0 $((N-1))); do bg "iperf$i" "${PIN_L[@]}" iperf3 -s -B 127.0.0.1 -p $((BASE+i)); done
declare -A GATE_PORT=([1]=$((BASE+50)) [2]=$((BASE+51))) LPORT=([1]=$((BASE+100)) [2]=$((BASE+200))) GATE_PID=() PORTAL_PIDS=()
for w in 1 2; do
  bg "gate$w" "${PIN_G[@]}" $TK gate --listen 127.0.0.1:${GATE_PORT[$w]} --metrics 127.0.0.1:$((BASE+60+w)) --pki-dir "$W/pki" --log-level warn "${DP[@]}" --workers $w
  GATE_PID[$w]=${PIDS[-1]}
done
for w in 1 2; do
  wait_port "${GATE_PORT[$w]}"
  for i in $(seq 0 $((N-1))); do
    bg "portal$w-$i" "${PIN_L[@]}" $TK portal --gate 127.0.0.1:${GATE_PORT[$w]} --pki-dir "$W/pki" --log-level warn "${DP[@]}" -L 127.0.0.1:$((${LPORT[$w]}+i)):127.0.0.1:$((BASE+i))
    PORTAL_PIDS[$w]="${PORTAL_PIDS[$w]:-} ${PIDS[-1]}"
  done
done
for w in 1 2; do for i in $(seq 0 $((N-1))); do wait_port $((${LPORT[$w]}+i)); done; done
sleep 2
# Tunnels never move between workers: the 2-worker figure means something only if they are spread.
SPREAD=$(node -e 'fetch(process.argv[1]).then((r) => r.text()).then((t) => console.log([...t.matchAll(/^tunkit_worker_tunnels\{worker="(\d+)"[^}]*\} (\d+)/gm)].map((m) => `worker ${m[1]}: ${m[2]}`).join(", ")))' "http://127.0.0.1:$((BASE+62))/metrics")
log "gates: 1 worker pid ${GATE_PID[1]}, 2 workers pid ${GATE_PID[2]} (workers $(pgrep -P "${GATE_PID[2]}" | tr '\n' ' '); tunnels $SPREAD)"

# CPU ticks (utime + stime) of a process and its children (gate workers).
ticks() { local t=0 p; for p in "$@" $(for q in "$@"; do pgrep -P "$q" || true; done); do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
all_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }  # busy ticks, every process
HZ=$(getconf CLK_TCK)
RES="$W/results.tsv"; : >"$RES"
round() { # WORKERS
  local w=$1 i g0 a0 g1 a1 p0 p1 t0 t1 sum cl=()
  rm -f "$W"/r$w-*.json
  # shellcheck disable=SC2086 # a list of PIDs
  g0=$(ticks "${GATE_PID[$w]}"); p0=$(ticks ${PORTAL_PIDS[$w]}); a0=$(all_ticks); t0=$(date +%s%N)
  for i in $(seq 0 $((N-1))); do
    "${PIN_L[@]}" iperf3 -c 127.0.0.1 -p $((${LPORT[$w]}+i)) -t "$SECS" -O 1 "${REV[@]}" -J >"$W/r$w-$i.json" 2>/dev/null & cl+=($!)
  done
  wait "${cl[@]}" || true
  # shellcheck disable=SC2086
  g1=$(ticks "${GATE_PID[$w]}"); p1=$(ticks ${PORTAL_PIDS[$w]}); a1=$(all_ticks); t1=$(date +%s%N)
  sum=$(node -e 'const fs=require("fs");let s=0,n=0;for(const f of process.argv.slice(1)){try{s+=JSON.parse(fs.readFileSync(f,"utf8")).end.sum_received.bits_per_second;n++}catch{}}console.log(n===process.argv.length-1?(s/1e9).toFixed(3):"nan")' "$W"/r$w-*.json)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$sum" "$(( (g1-g0) ))" "$(( (a1-a0) - (g1-g0) ))" "$(( p1-p0 ))" "$(( (t1-t0) / 1000000 ))" >>"$RES"
  log "workers=$w: $sum Gbit/s; CPU s: gate $(( (g1-g0) / HZ )), portals $(( (p1-p0) / HZ )), everything else $(( ((a1-a0)-(g1-g0)-(p1-p0)) / HZ ))"
  sleep 1
}
for rep in $(seq "$REPS"); do
  if [ $((rep % 2)) = 1 ]; then round 1; round 2; else round 2; round 1; fi
done

node - "$RES" "$REPS" "$SECS" "$N" "$HZ" "${TK_GATE_CPUS:-all}" "${TK_LOAD_CPUS:-all}" "$SPREAD" <<'EOF' | tee "$HERE/results/workers-$(date +%Y%m%d-%H%M%S).md"
const [file, reps, secs, n, hz, gcpu, lcpu, spread] = process.argv.slice(2)
const cpus = require('os').availableParallelism()
const rows = require('fs').readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split('\t').map(Number))
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)] }
const by = (w) => rows.filter((r) => r[0] === w)
const line = (w) => {
  const r = by(w), g = r.map((x) => x[1])
  const gate = med(r.map((x) => x[2] / hz)), portals = med(r.map((x) => x[4] / hz)), rest = med(r.map((x) => (x[3] - x[4]) / hz))
  // Traffic flows for the omitted first second (-O 1) too, and the CPU figures include it.
  const gbit = med(g) * (Number(secs) + 1)
  // Busy: the share of the machine's CPU time (all CPUs, all processes) used during the rounds.
  const busy = med(r.map((x) => (x[2] + x[3]) / hz / (cpus * x[5] / 1000)))
  return {gbit: med(g), busy, perGbit: (gate + portals + rest) / gbit, gateCpu: med(r.map((x) => x[2] / hz / (x[5] / 1000))),
    text: `| ${w} | ${med(g).toFixed(2)} [${Math.min(...g).toFixed(2)}–${Math.max(...g).toFixed(2)}] | ${gate.toFixed(1)} | ${portals.toFixed(1)} | ${rest.toFixed(1)} | ${(1000 * gate / gbit).toFixed(0)} / ${(1000 * (portals + rest) / gbit).toFixed(0)} | ${(100 * busy).toFixed(0)} % |`}
}
const [a, b] = [line(1), line(2)]
console.log([`# gate --workers benchmark (${new Date().toISOString()}, ${n} portals × 1 iperf3 stream, -t ${secs}, ${reps} rounds each, median; gate CPUs: ${gcpu}, load CPUs: ${lcpu}, ${cpus} CPUs)`, '',
  '| workers | Gbit/s (sum of the streams) [range] | gate CPU s per round | portals CPU s | other CPU s (iperf3, kernel, rest) | CPU ms per Gbit: gate / load | machine busy |', '|---|---|---|---|---|---|---|',
  a.text, b.text, '', `Tunnels of the 2-worker gate: ${spread}.`, '', `Ratio 2 workers / 1 worker: ${(b.gbit / a.gbit).toFixed(2)}×`, '',
  // The load shares the gate's CPUs: once all are busy, no number of workers goes faster. What
  // all of them carry at the 2-worker cost per Gbit, against the 1-worker figure; and how much of
  // one CPU the 1-worker gate itself used (under 1: the gate was not what limited it).
  `Machine-bound: ${cpus} CPUs at ${(1000 * b.perGbit).toFixed(0)} CPU ms per Gbit (gate and load, 2 workers) carry ${(cpus / b.perGbit).toFixed(2)} Gbit/s, ${(cpus / b.perGbit / a.gbit).toFixed(2)}× the 1-worker figure; the 1-worker gate used ${a.gateCpu.toFixed(2)} of a CPU.`].join('\n'))
EOF
