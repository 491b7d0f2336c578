#!/usr/bin/env bash
# tunkit VPN mode and relay chains, side by side in one run, in three namespaces (root):
#
#   tkb-a 203.0.113.1 ==veth== 203.0.113.2 tkb-r 198.51.100.1 ==veth== 198.51.100.2 tkb-b
#   (iperf3 client, portals)   (router; relays; socat hops)    (gate, iperf3 server, echo)
#
# 1. Layer 3, iperf3 a -> b: routed (no tunnel), wireguard-go (userspace WireGuard), tunkit VPN.
# 2. TCP forwards, iperf3 a -> b: tunkit -L portal -> gate; the same tunnel through two tunkit
#    relays; the same tunnel through two socat hops; a plain two-hop socat chain (no tunnel).
# 3. Relay RSS with 1000 spliced tunnels.
# Knobs: TK_REPS (3), TK_SECS (5).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$HERE")
. "$HERE/lib.sh"
REPS=${TK_REPS:-3}; SECS=${TK_SECS:-5}
A=tkb-a R=tkb-r B=tkb-b
W=$(mktemp -d /tmp/tkvpnbench.XXXXXX); PIDS=()
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
down() { for ns in $A $R $B; do ip netns del "$ns" 2>/dev/null || true; done; }
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  down; rm -rf "$W"
}
trap cleanup EXIT INT TERM
# bg NS LOGNAME CMD...: run in a namespace (ip netns exec execs in place: $! is the command's PID)
bg() { local ns=$1 f=$2; shift 2; ip netns exec "$ns" "$@" >"$W/$f.log" 2>&1 </dev/null & PIDS+=($!); }

missing=()
for p in iperf3 socat wireguard-go wireguard-tools iproute2 iputils-ping util-linux; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if ((${#missing[@]})); then log "installing ${missing[*]}"; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; fi
[ -f "$ROOT/dist/src/index.js" ] || (cd "$ROOT" && npm run build --silent)
TK=("$ROOT/bin/run.js")  # as installed: its #! line has node flags

down
for ns in $A $R $B; do ip netns add $ns; ip -n $ns link set lo up; done
ip link add tkb-a0 netns $A type veth peer name tkb-r0 netns $R
ip link add tkb-r1 netns $R type veth peer name tkb-b0 netns $B
ip -n $A addr add 203.0.113.1/28 dev tkb-a0; ip -n $A link set tkb-a0 up
ip -n $R addr add 203.0.113.2/28 dev tkb-r0; ip -n $R link set tkb-r0 up
ip -n $R addr add 198.51.100.1/28 dev tkb-r1; ip -n $R link set tkb-r1 up
ip -n $B addr add 198.51.100.2/28 dev tkb-b0; ip -n $B link set tkb-b0 up
ip -n $A route add 198.51.100.0/28 via 203.0.113.2
ip -n $B route add 203.0.113.0/28 via 198.51.100.1
ip netns exec $R sysctl -qw net.ipv4.ip_forward=1

wait_port() { # NS HOST PORT
  for _ in $(seq 100); do ip netns exec "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0; sleep 0.1; done
  log "port $2:$3 in $1 never opened"; return 1
}
wait_event() { # LOGNAME EVENT
  for _ in $(seq 150); do grep -q "\"event\":\"$2\"" "$W/$1.log" 2>/dev/null && return 0; sleep 0.1; done
  log "$1: no $2 event: $(tail -3 "$W/$1.log")"; return 1
}

# Servers in tkb-b
bg $B iperf3 iperf3 -s -p 5201
bg $B echo node "$HERE/echo.mjs" 5300 198.51.100.2
"${TK[@]}" pki init --dir "$W/pki" --client bench --san 198.51.100.2 --san 203.0.113.2 >/dev/null
bg $B gate "${TK[@]}" gate --listen 198.51.100.2:4433 --pki-dir "$W/pki" --json --log-level warn --vpn --pool 198.18.10.0/24 --dev tkb-tun1
wait_port $B 198.51.100.2 4433

# wireguard-go, each side with a private /run (see ../shared/lab/bench/vpn-baselines.sh)
umask 077; wg genkey >"$W/wa.key"; wg genkey >"$W/wb.key"; umask 022
wg_side() { # NS IF KEY PORT TUN_IP PEER_KEY PEER_UNDERLAY PEER_PORT PEER_TUN_IP
  bg "$1" "wg-$2" sh -c "mount -t tmpfs -o size=1m tk-wg-run /run && exec env LOG_LEVEL=error wireguard-go -f $2"
  local pid=${PIDS[-1]}
  for _ in $(seq 100); do nsenter -t "$pid" -m -n test -S "/run/wireguard/$2.sock" 2>/dev/null && break; sleep 0.05; done
  nsenter -t "$pid" -m -n wg set "$2" listen-port "$4" private-key "$3" peer "$(wg pubkey <"$6")" allowed-ips "$9/32" endpoint "$7:$8"
  ip -n "$1" addr add "$5/24" dev "$2"; ip -n "$1" link set "$2" up
}
wg_side $B tkb-wg1 "$W/wb.key" 51820 198.18.30.2 "$W/wa.key" 203.0.113.1 51820 198.18.30.1
wg_side $A tkb-wg0 "$W/wa.key" 51820 198.18.30.1 "$W/wb.key" 198.51.100.2 51820 198.18.30.2

# Relays and socat hops in tkb-r
bg $R relay-b "${TK[@]}" relay --listen 203.0.113.2:4500 --name 203.0.113.2:4500 --allow-next 198.51.100.0/28 --json --log-level warn
bg $R relay-c "${TK[@]}" relay --listen 198.51.100.1:4501 --name 198.51.100.1:4501 --allow-next 198.51.100.2 --json --log-level warn
RELAY_B=${PIDS[-2]}
bg $R socat-t1 socat TCP-LISTEN:4600,bind=203.0.113.2,fork,reuseaddr TCP:198.51.100.1:4601
bg $R socat-t2 socat TCP-LISTEN:4601,bind=198.51.100.1,fork,reuseaddr TCP:198.51.100.2:4433
bg $R socat-p1 socat TCP-LISTEN:4700,bind=203.0.113.2,fork,reuseaddr TCP:198.51.100.1:4701
bg $R socat-p2 socat TCP-LISTEN:4701,bind=198.51.100.1,fork,reuseaddr TCP:198.51.100.2:5201
wait_port $R 203.0.113.2 4500; wait_port $R 198.51.100.1 4501; wait_port $R 203.0.113.2 4600; wait_port $R 203.0.113.2 4700

# Portals in tkb-a
P=(--pki-dir "$W/pki" --json --log-level warn)
bg $A portal-vpn "${TK[@]}" portal --gate 198.51.100.2:4433 "${P[@]}" --vpn --dev tkb-tun0
bg $A portal-direct "${TK[@]}" portal --gate 198.51.100.2:4433 "${P[@]}" -L 127.0.0.1:6001:198.51.100.2:5201
bg $A portal-relays "${TK[@]}" portal --via 203.0.113.2:4500,198.51.100.1:4501 --gate 198.51.100.2:4433 "${P[@]}" -L 127.0.0.1:6002:198.51.100.2:5201
bg $A portal-socat "${TK[@]}" portal --gate 203.0.113.2:4600 "${P[@]}" -L 127.0.0.1:6003:198.51.100.2:5201
for p in portal-vpn portal-direct portal-relays portal-socat; do wait_event $p tunnel-up; done
ip netns exec $A ping -c 2 -i 0.2 -W 2 198.18.30.2 >/dev/null || { log "wireguard-go tunnel is not up"; exit 1; }
ip netns exec $A ping -c 2 -i 0.2 -W 2 198.18.10.1 >/dev/null || { log "tunkit VPN tunnel is not up"; exit 1; }
log "all paths up; MTU: tunkit $(ip -n $A -o link show tkb-tun0 | sed -n 's/.* mtu \([0-9]*\).*/\1/p'), wireguard-go $(ip -n $A -o link show tkb-wg0 | sed -n 's/.* mtu \([0-9]*\).*/\1/p')"

declare -A TARGET=([routed]="198.51.100.2 5201" [wireguard-go]="198.18.30.2 5201" [tunkit-vpn]="198.18.10.1 5201"
  [tunkit-L]="127.0.0.1 6001" [tunkit-L-2-relays]="127.0.0.1 6002" [tunkit-L-2-socat-hops]="127.0.0.1 6003" [socat-chain]="203.0.113.2 4700")
ORDER="routed wireguard-go tunkit-vpn tunkit-L tunkit-L-2-relays tunkit-L-2-socat-hops socat-chain"
RES="$W/results.tsv"; : >"$RES"
iperf() { # HOST PORT STREAMS
  timeout $((SECS + 30)) ip netns exec $A iperf3 -c "$1" -p "$2" -t "$SECS" -O 1 -P "$3" -J 2>/dev/null \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log((JSON.parse(s).end.sum_received.bits_per_second/1e9).toFixed(3))}catch{console.log("nan")}})'
}
for rep in $(seq "$REPS"); do
  for m in $ORDER; do
    for p in 1 4; do v=$(iperf ${TARGET[$m]} $p); printf '%s\tP%s\t%s\n' "$m" "$p" "$v" >>"$RES"; log "rep $rep $m P=$p: $v Gbit/s"; done
  done
done

# Relay RSS: 1000 tunnels spliced through relay-b to the echo backend in tkb-b
rss_while "$RELAY_B" ip netns exec $A node "$HERE/relay-idle.mjs" 203.0.113.2 4500 198.51.100.2:5300 1000
printf 'relay\trss-after-traffic-kB\t%s\nrelay\trss-1000-kB\t%s\n' "$RSS0" "$RSS1" >>"$RES"
log "relay RSS: ${RSS0} kB after the throughput runs, ${RSS1} kB with 1000 spliced tunnels ($READY)"

node "$HERE/vpn-report.mjs" "$RES" "$REPS" "$SECS" | tee "$HERE/results/vpn-$(date +%Y%m%d-%H%M%S).md"
