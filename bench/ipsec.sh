#!/usr/bin/env bash
# IPsec side by side in one run (root): ESP throughput and IKE handshakes, tunkit against
# strongSwan (libipsec: userspace ESP, as the kernel here has none) and wireguard-go.
#
#   P-c [203.0.113.2] ==== [203.0.113.1] P-g [198.18.1.1] ==== [198.18.1.10] P-p (iperf3 -s)
#
# 1. iperf3 P-c -> 198.18.1.10, 1 and 4 streams, through: wireguard-go (c<->g), tunkit <-> tunkit
#    (key-exchange on both ends), then in the project's strongSwan lab (test/lab/ipsec, the same
#    addresses): strongSwan <-> strongSwan and tunkit client <-> strongSwan gateway.
# 2. Handshakes: bench/ike/load.mjs (N parallel initiators, one identity each) against the tunkit
#    gateway and the strongSwan gateway, each after the same unmeasured warm-up round: set-ups per
#    second, p50/p99 set-up time.
# 3. The tunkit gateway's RSS holding 10 000 IKE_SAs, each with a CHILD_SA.
# Knobs: TK_REPS (3), TK_SECS (4), TK_HS_COUNT (1500), TK_HS_WARM (1500), TK_HS_PARALLEL (8), TK_RSS_SAS (10000).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$HERE")
. "$HERE/lib.sh"
REPS=${TK_REPS:-3}; SECS=${TK_SECS:-4}; HS_COUNT=${TK_HS_COUNT:-1500}; HS_WARM=${TK_HS_WARM:-1500}; HS_PAR=${TK_HS_PARALLEL:-8}; RSS_SAS=${TK_RSS_SAS:-10000}
P=tkbi C=tkbi-c G=tkbi-g PR=tkbi-p
LAB="$ROOT/test/lab/ipsec/lab.sh"; export TK_IPSEC_PREFIX=tkbl
W=$(mktemp -d /tmp/tkipsecbench.XXXXXX); PIDS=()
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
down() { for ns in $C $G $PR; do ip netns del "$ns" 2>/dev/null || true; done; }
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 1
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  PIDS=()
}
cleanup() { stop_all; down; "$LAB" down >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT INT TERM
bg() { local ns=$1 f=$2; shift 2; ip netns exec "$ns" "$@" >"$W/$f.log" 2>&1 </dev/null & PIDS+=($!); }
wait_event() { # LOGNAME EVENT
  for _ in $(seq 200); do grep -q "\"event\":\"$2\"" "$W/$1.log" 2>/dev/null && return 0; sleep 0.1; done
  log "$1: no $2 event: $(tail -3 "$W/$1.log")"; return 1
}

missing=()
for p in iperf3 wireguard-go wireguard-tools iproute2 iputils-ping nftables util-linux; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if ((${#missing[@]})); then log "installing ${missing[*]}"; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; fi
[ -f "$ROOT/dist/src/index.js" ] || (cd "$ROOT" && npm run build --silent)
TK=("$ROOT/bin/run.js")  # as installed: its #! line has node flags
# The lab's PSK (a wildcard secret on its gateway), so every pair below uses the same one.
printf 'ks-lab-psk-2f7c9e41\n' >"$W/psk"; chmod 600 "$W/psk"
RES="$W/results.tsv"; : >"$RES"

iperf() { # NS STREAMS -> Gbit/s received
  timeout $((SECS + 30)) ip netns exec "$1" iperf3 -c 198.18.1.10 -t "$SECS" -O 1 -P "$2" -J 2>/dev/null \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log((JSON.parse(s).end.sum_received.bits_per_second/1e9).toFixed(3))}catch{console.log("nan")}})'
}
measure() { # NAME NS
  for p in 1 4; do v=$(iperf "$2" $p); printf '%s\tP%s\t%s\n' "$1" "$p" "$v" >>"$RES"; log "$1 P=$p: $v Gbit/s"; done
}
handshakes() { # NAME NS
  local out
  # An unmeasured warm-up round for either responder (tunkit's JIT, strongSwan's pools and caches).
  timeout 120 ip netns exec "$2" node "$HERE/ike/load.mjs" 203.0.113.1 --psk-file "$W/psk" --count "$HS_WARM" --parallel "$HS_PAR" --bind 203.0.113.2 >/dev/null || true
  out=$(timeout 120 ip netns exec "$2" node "$HERE/ike/load.mjs" 203.0.113.1 --psk-file "$W/psk" --count "$HS_COUNT" --parallel "$HS_PAR" --bind 203.0.113.2) || out='{}'
  printf '%s\thandshakes\t%s\n' "$1" "$out" >>"$RES"; log "$1 handshakes: $out"
}

topology() {
  down
  for ns in $C $G $PR; do ip netns add $ns; ip -n $ns link set lo up; done
  ip link add $P-c0 netns $C type veth peer name $P-g0 netns $G
  ip link add $P-g1 netns $G type veth peer name $P-p0 netns $PR
  ip -n $C addr add 203.0.113.2/24 dev $P-c0; ip -n $C link set $P-c0 up
  ip -n $G addr add 203.0.113.1/24 dev $P-g0; ip -n $G link set $P-g0 up
  ip -n $G addr add 198.18.1.1/24 dev $P-g1; ip -n $G link set $P-g1 up
  ip -n $PR addr add 198.18.1.10/24 dev $P-p0; ip -n $PR link set $P-p0 up
  ip -n $PR route add default via 198.18.1.1
  ip netns exec $G sysctl -qw net.ipv4.ip_forward=1
}

for rep in $(seq "$REPS"); do
  # --- wireguard-go and tunkit <-> tunkit on the same namespaces
  topology
  bg $PR iperf3 iperf3 -s
  umask 077; wg genkey >"$W/wc.key"; wg genkey >"$W/wg.key"; umask 022
  wg_side() { # NS IF KEY TUN_IP PEER_KEY PEER_UNDERLAY ALLOWED
    bg "$1" "wg-$2" sh -c "mount -t tmpfs -o size=1m tk-wg-run /run && exec env LOG_LEVEL=error wireguard-go -f $2"
    local pid=${PIDS[-1]}
    for _ in $(seq 100); do nsenter -t "$pid" -m -n test -S "/run/wireguard/$2.sock" 2>/dev/null && break; sleep 0.05; done
    nsenter -t "$pid" -m -n wg set "$2" listen-port 51820 private-key "$3" peer "$(wg pubkey <"$5")" allowed-ips "$7" endpoint "$6:51820"
    ip -n "$1" addr add "$4/24" dev "$2"; ip -n "$1" link set "$2" up
  }
  wg_side $G $P-wg1 "$W/wg.key" 198.18.30.2 "$W/wc.key" 203.0.113.2 198.18.30.1/32
  wg_side $C $P-wg0 "$W/wc.key" 198.18.30.1 "$W/wg.key" 203.0.113.1 198.18.30.0/24,198.18.1.0/24
  ip -n $C route add 198.18.1.0/24 dev $P-wg0
  sleep 0.5; ip netns exec $C ping -c 2 -i 0.2 -W 2 198.18.1.10 >/dev/null || { log "wireguard-go tunnel is not up"; exit 1; }
  measure wireguard-go $C
  stop_all; ip -n $C link del $P-wg0 2>/dev/null || true
  bg $PR iperf3 iperf3 -s
  bg $G kx-gw "${TK[@]}" key-exchange --respond --listen 203.0.113.1 --psk-file "$W/psk" --pool 198.18.0.0/16 --policy 198.18.1.0/24 --dev $P-gt --json --log-level warn
  GWPID=${PIDS[-1]}
  wait_event kx-gw listening
  bg $C kx-c "${TK[@]}" key-exchange --gateway 203.0.113.1 --psk-file "$W/psk" --dev $P-ct --json --log-level warn
  wait_event kx-c sa-up
  measure tunkit-tunkit $C
  kill "${PIDS[-1]}"; sleep 1
  handshakes tunkit-gateway $C
  if [ "$rep" = 1 ]; then
    # The handshake runs' IKE_SAs linger 30 s after their DELETE (to answer a retransmitted one):
    # measure 10 000 established IKE_SAs, not those as well.
    sleep 31
    rss_while "$GWPID" ip netns exec $C node "$HERE/ike/load.mjs" 203.0.113.1 --psk-file "$W/psk" --count "$RSS_SAS" --parallel 32 --hold --bind 203.0.113.2 --timeout 600
    printf 'tunkit-gateway\trss-idle-kB\t%s\ntunkit-gateway\trss-%s-kB\t%s\n' "$RSS0" "$RSS_SAS" "$RSS1" >>"$RES"
    log "tunkit gateway RSS: ${RSS0} kB idle, ${RSS1} kB with $RSS_SAS IKE_SAs ($READY)"
  fi
  stop_all; down

  # --- strongSwan in the project's lab (same addresses; namespaces tkbl-cli, tkbl-gw, tkbl-priv)
  "$LAB" up --bench >/dev/null
  bg tkbl-priv iperf3 iperf3 -s
  measure strongswan-strongswan tkbl-cli
  "$LAB" down >/dev/null
  "$LAB" up --responder-only --bench --no-connect >/dev/null
  bg tkbl-priv iperf3 iperf3 -s
  bg tkbl-cli kx-c "${TK[@]}" key-exchange --gateway 203.0.113.1 --psk-file "$W/psk" --id client-psk.ks.test --dev tkbl-ct --json --log-level warn
  wait_event kx-c sa-up
  measure tunkit-strongswan tkbl-cli
  kill "${PIDS[-1]}"; sleep 1
  handshakes strongswan-gateway tkbl-cli
  stop_all; "$LAB" down >/dev/null
done

node "$HERE/ipsec-report.mjs" "$RES" "$REPS" "$SECS" | tee "$HERE/results/ipsec-$(date +%Y%m%d-%H%M%S).md"
