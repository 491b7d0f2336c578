#!/usr/bin/env bash
# Short requests under real round-trip times, side by side in one run (root): a client namespace
# and a server namespace joined only by bench/delaylink.c (TUN to TUN, a fixed delay each way; this
# kernel has no netem), at each RTT of TK_RTTS. Through the link: N sequential short connections
# (connect, 1-byte request, 1-byte answer, close; bench/connloop.mjs) to an echo server, direct and
# through tunkit -L (portal -> gate), ssh -L and stunnel (TLS 1.3, mutual auth), each tunnel set up
# before the clock starts. p50/p90 per connection, the total, and round trips per connection.
#
#   [tkrt-a: connloop, portal, ssh, stunnel client] 203.0.113.1 ==delay== 203.0.113.2 [tkrt-b: echo, gate, sshd, stunnel server]
#
# Knobs: TK_RTTS ("20 80", ms), TK_REQS (50), TK_REPS (3).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$HERE")
. "$HERE/lib.sh"
RTTS=${TK_RTTS:-"20 80"}; REQS=${TK_REQS:-50}; REPS=${TK_REPS:-3}
A=tkrt-a B=tkrt-b
W=$(mktemp -d /tmp/tkrtt.XXXXXX); PIDS=()
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
down() { ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true; }
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 1
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PIDS=()
}
cleanup() { stop_all; down; rm -rf "$W"; }
trap cleanup EXIT INT TERM
bg() { local ns=$1 f=$2; shift 2; ip netns exec "$ns" "$@" >"$W/$f.log" 2>&1 </dev/null & PIDS+=($!); }

missing=()
for p in openssh-server openssh-client stunnel4 gcc libc6-dev iproute2; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if ((${#missing[@]})); then log "installing ${missing[*]}"; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; fi
[ -f "$ROOT/dist/src/index.js" ] || (cd "$ROOT" && npm run build --silent)
gcc -O2 -o "$W/delaylink" "$HERE/delaylink.c"
TK=("$ROOT/bin/run.js")  # as installed: its #! line has node flags
P_ECHO=7000 P_GATE=7001 P_SSHD=7002 P_ST=7003
declare -A FWD=([direct]=7000 [tunkit]=7010 [ssh-L]=7020 [stunnel]=7030)
METHODS="direct tunkit ssh-L stunnel"
wait_port() { # NS HOST PORT
  for _ in $(seq 100); do ip netns exec "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0; sleep 0.1; done
  log "$2:$3 in $1 never opened"; return 1
}

"${TK[@]}" pki init --dir "$W/pki" --client bench --san 203.0.113.2 >/dev/null 2>&1
private_sshd "$W/ssh" "$P_SSHD" 203.0.113.2
st_conf() { # ROLE ACCEPT CONNECT
  printf 'foreground = yes\npid =\ndebug = 3\n[echo]\naccept = %s\nconnect = %s\nCAfile = %s\nverifyChain = yes\nsslVersionMin = TLSv1.3\n' "$2" "$3" "$W/pki/ca.crt"
  if [ "$1" = server ]; then printf 'cert = %s\nkey = %s\nrequireCert = yes\n' "$W/pki/gate.crt" "$W/pki/gate.key"
  else printf 'client = yes\ncert = %s\nkey = %s\ncheckHost = 203.0.113.2\n' "$W/pki/client.crt" "$W/pki/client.key"; fi
}
st_conf server "203.0.113.2:$P_ST" "127.0.0.1:$P_ECHO" >"$W/st-srv.conf"
st_conf client "127.0.0.1:${FWD[stunnel]}" "203.0.113.2:$P_ST" >"$W/st-cli.conf"

RES="$W/results.tsv"; : >"$RES"
for rtt in $RTTS; do
  down; ip netns add $A; ip netns add $B
  for ns in $A $B; do ip -n $ns link set lo up; done
  : >"$W/link.log"
  "$W/delaylink" $A tkrt-a0 $B tkrt-b0 "$(node -e "console.log($rtt / 2)")" >"$W/link.log" 2>&1 & PIDS+=($!)
  for _ in $(seq 50); do grep -q ready "$W/link.log" && break; sleep 0.1; done
  ip -n $A addr add 203.0.113.1 peer 203.0.113.2 dev tkrt-a0; ip -n $A link set tkrt-a0 up
  ip -n $B addr add 203.0.113.2 peer 203.0.113.1 dev tkrt-b0; ip -n $B link set tkrt-b0 up
  # The echo server answers on both sides' view: direct from A, and locally for the gate, sshd and stunnel.
  bg $B echo node "$HERE/echo.mjs" "$P_ECHO" 0.0.0.0
  bg $B gate "${TK[@]}" gate --listen 203.0.113.2:$P_GATE --pki-dir "$W/pki" --log-level warn
  bg $B sshd "${SSHD_CMD[@]}"
  bg $B st-srv stunnel4 "$W/st-srv.conf"
  wait_port $B 203.0.113.2 $P_GATE; wait_port $B 203.0.113.2 $P_SSHD; wait_port $B 203.0.113.2 $P_ST
  bg $A portal "${TK[@]}" portal --gate 203.0.113.2:$P_GATE --pki-dir "$W/pki" --log-level warn -L 127.0.0.1:${FWD[tunkit]}:127.0.0.1:$P_ECHO
  bg $A ssh-L ssh -N -p "$P_SSHD" -i "$W/ssh/id" -o IdentitiesOnly=yes -o IdentityAgent=none -o UserKnownHostsFile="$W/ssh/known_hosts" -o GlobalKnownHostsFile=/dev/null \
    -o StrictHostKeyChecking=yes -o BatchMode=yes -o ExitOnForwardFailure=yes -o LogLevel=ERROR -L 127.0.0.1:${FWD[ssh-L]}:127.0.0.1:$P_ECHO root@203.0.113.2
  bg $A st-cli stunnel4 "$W/st-cli.conf"
  wait_port $A 127.0.0.1 ${FWD[tunkit]}; wait_port $A 127.0.0.1 ${FWD[ssh-L]}; wait_port $A 127.0.0.1 ${FWD[stunnel]}
  sleep 1  # the portal's tunnel and ssh's session are up before the clock starts
  log "RTT $rtt ms: $(ip netns exec $A ping -n -q -c 3 -i 0.2 203.0.113.2 | tail -1)"
  for rep in $(seq "$REPS"); do
    for m in $METHODS; do
      host=127.0.0.1; [ "$m" = direct ] && host=203.0.113.2
      out=$(ip netns exec $A node "$HERE/connloop.mjs" "${FWD[$m]}" "$REQS" "$host")
      printf '%s\t%s\t%s\n' "$m" "$rtt" "$out" >>"$RES"; log "RTT $rtt ms rep $rep $m: $out"
    done
  done
  stop_all
done

node "$HERE/rtt-report.mjs" "$RES" "$REQS" "$REPS" | tee "$HERE/results/rtt-$(date +%Y%m%d-%H%M%S).md"
