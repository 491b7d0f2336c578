#!/usr/bin/env bash
# tunkit stream benchmark, side by side in one run: direct, tunkit -L, ssh -L (OpenSSH, default
# cipher and aes256-gcm), stunnel (TLS 1.3, mutual auth). iperf3 1 and 8 streams and 1 stream
# and 8 streams downloading (-R), 1000 sequential short connections, and the gate's RSS with 1000 idle sessions.
# tunkit-native: the same with --data-path native on both sides (issue 12 item 2).
# Loopback only. node-proxy is a bare Node.js forwarder (no TLS, no mux), the floor for any
# Node.js tool.
# Knobs: TK_REPS (3), TK_SECS (5), TK_PORT_BASE (27600, below the ephemeral range so leftover TIME-WAITs never block a listener), TK_METHODS.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$HERE")
. "$HERE/lib.sh"
REPS=${TK_REPS:-3}; SECS=${TK_SECS:-5}; BASE=${TK_PORT_BASE:-27600}
METHODS=${TK_METHODS:-"direct tunkit tunkit-native ssh-L ssh-L-aes256gcm stunnel node-proxy"}
W=$(mktemp -d /tmp/tkbench.XXXXXX); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT INT TERM
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bg() { local f=$1; shift; setsid "$@" >"$W/$f.log" 2>&1 </dev/null & PIDS+=($!); }

missing=()
for p in iperf3 openssh-server openssh-client stunnel4; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if ((${#missing[@]})); then log "installing ${missing[*]}"; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; fi
[ -f "$ROOT/dist/src/index.js" ] || (cd "$ROOT" && npm run build --silent)

TK="$ROOT/bin/run.js"  # as installed: its #! line has node flags
P_IPERF=$BASE; P_ECHO=$((BASE+1)); P_GATE=$((BASE+2)); P_SSHD=$((BASE+3)); P_ST_SRV=$((BASE+4)); P_GATE_N=$((BASE+5))
declare -A FWD_IPERF=([direct]=$P_IPERF [tunkit]=$((BASE+10)) [tunkit-native]=$((BASE+60)) [ssh-L]=$((BASE+20)) [ssh-L-aes256gcm]=$((BASE+30)) [stunnel]=$((BASE+40)) [node-proxy]=$((BASE+50)))
declare -A FWD_ECHO=([direct]=$P_ECHO [tunkit]=$((BASE+11)) [tunkit-native]=$((BASE+61)) [ssh-L]=$((BASE+21)) [ssh-L-aes256gcm]=$((BASE+31)) [stunnel]=$((BASE+41)) [node-proxy]=$((BASE+51)))

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; log "port $1 never opened"; return 1; }

log "work dir $W"
bg iperf3 iperf3 -s -B 127.0.0.1 -p "$P_IPERF"
bg echo node "$HERE/echo.mjs" "$P_ECHO"
$TK pki init --dir "$W/pki" --client bench --san localhost --san 127.0.0.1 >/dev/null 2>&1

# tunkit: gate + portal with two -L forwards
# --open-rate 0: 1000 sequential connections open at ~600/s, over the default 200/s per tunnel
# (as sshd gets MaxStartups 100:30:200 below).
bg gate $TK gate --listen 127.0.0.1:$P_GATE --pki-dir "$W/pki" --log-level warn --open-rate 0
GATE_PID=${PIDS[-1]}
wait_port $P_GATE
bg portal $TK portal --gate 127.0.0.1:$P_GATE --pki-dir "$W/pki" --log-level warn \
  -L 127.0.0.1:${FWD_IPERF[tunkit]}:127.0.0.1:$P_IPERF -L 127.0.0.1:${FWD_ECHO[tunkit]}:127.0.0.1:$P_ECHO
# The same pair on the native data path (AES-256-GCM records in the addon after the TLS handshake)
bg gate-native $TK gate --listen 127.0.0.1:$P_GATE_N --pki-dir "$W/pki" --log-level warn --open-rate 0 --data-path native
wait_port $P_GATE_N
bg portal-native $TK portal --gate 127.0.0.1:$P_GATE_N --pki-dir "$W/pki" --log-level warn --data-path native \
  -L 127.0.0.1:${FWD_IPERF[tunkit-native]}:127.0.0.1:$P_IPERF -L 127.0.0.1:${FWD_ECHO[tunkit-native]}:127.0.0.1:$P_ECHO

# OpenSSH: private sshd in its own mount namespace (see shared/lab/bench)
private_sshd "$W/ssh" "$P_SSHD" 127.0.0.1
bg sshd "${SSHD_CMD[@]}"
wait_port $P_SSHD
SSH=(ssh -N -p "$P_SSHD" -i "$W/ssh/id" -o IdentitiesOnly=yes -o IdentityAgent=none -o UserKnownHostsFile="$W/ssh/known_hosts" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes -o ExitOnForwardFailure=yes -o LogLevel=ERROR)
bg ssh-L "${SSH[@]}" -L 127.0.0.1:${FWD_IPERF[ssh-L]}:127.0.0.1:$P_IPERF -L 127.0.0.1:${FWD_ECHO[ssh-L]}:127.0.0.1:$P_ECHO root@127.0.0.1
bg ssh-L-aes "${SSH[@]}" -c aes256-gcm@openssh.com -L 127.0.0.1:${FWD_IPERF[ssh-L-aes256gcm]}:127.0.0.1:$P_IPERF -L 127.0.0.1:${FWD_ECHO[ssh-L-aes256gcm]}:127.0.0.1:$P_ECHO root@127.0.0.1

# stunnel: client (plain in) -> server (TLS 1.3, mutual auth) -> backends, with tunkit's PKI
st_section() { # name accept connect role
  printf '[%s]\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\nCAfile = %s\nverifyChain = yes\nsslVersionMin = TLSv1.3\n' "$1" "$2" "$3" "$W/pki/ca.crt"
  if [ "$4" = server ]; then printf 'cert = %s\nkey = %s\nrequireCert = yes\n' "$W/pki/gate.crt" "$W/pki/gate.key"
  else printf 'client = yes\ncert = %s\nkey = %s\ncheckHost = localhost\n' "$W/pki/client.crt" "$W/pki/client.key"; fi
}
{ printf 'foreground = yes\npid =\ndebug = 3\n'; st_section iperf $P_ST_SRV $P_IPERF server; st_section echo $((P_ST_SRV+100)) $P_ECHO server; } >"$W/st-srv.conf"
{ printf 'foreground = yes\npid =\ndebug = 3\n'; st_section iperf ${FWD_IPERF[stunnel]} $P_ST_SRV client; st_section echo ${FWD_ECHO[stunnel]} $((P_ST_SRV+100)) client; } >"$W/st-cli.conf"
# The floor of any Node.js forwarder: bare accept + connect + pipe (bench/node-proxy.mjs)
bg node-proxy-iperf node "$HERE/node-proxy.mjs" ${FWD_IPERF[node-proxy]} $P_IPERF; bg node-proxy-echo node "$HERE/node-proxy.mjs" ${FWD_ECHO[node-proxy]} $P_ECHO
bg st-srv stunnel4 "$W/st-srv.conf"; bg st-cli stunnel4 "$W/st-cli.conf"
for m in $METHODS; do wait_port "${FWD_IPERF[$m]}"; wait_port "${FWD_ECHO[$m]}"; done
sleep 1

RES="$W/results.tsv"; : >"$RES"
iperf() { iperf3 -c 127.0.0.1 -p "$1" -t "$SECS" -O 1 -P "$2" ${3:+"$3"} -J 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log((JSON.parse(s).end.sum_received.bits_per_second/1e9).toFixed(3))}catch{console.log("nan")}})'; }
for rep in $(seq "$REPS"); do
  for m in $METHODS; do
    for p in 1 8; do v=$(iperf "${FWD_IPERF[$m]}" $p); printf '%s\tiperf-P%s\t%s\n' "$m" "$p" "$v" >>"$RES"; log "rep $rep $m P=$p: $v Gbit/s"; done
    for p in 1 8; do v=$(iperf "${FWD_IPERF[$m]}" $p -R); printf '%s\tiperf-R%s\t%s\n' "$m" "$p" "$v" >>"$RES"; log "rep $rep $m download (-R) P=$p: $v Gbit/s"; done
    c=$(node "$HERE/connloop.mjs" "${FWD_ECHO[$m]}" 1000 | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).seconds.toFixed(3)))')
    printf '%s\tconn1000\t%s\n' "$m" "$c" >>"$RES"; log "rep $rep $m 1000 connections: $c s"
  done
done

# Gate memory with 1000 idle sessions open through the tunnel: all its processes (the primary and,
# with one portal, its one worker).
rss_while "$GATE_PID" node "$HERE/idle-sessions.mjs" "${FWD_ECHO[tunkit]}" 1000
printf 'tunkit\tgate-rss-idle-kB\t%s\ntunkit\tgate-rss-1000-sessions-kB\t%s\n' "$RSS0" "$RSS1" >>"$RES"
log "gate RSS: ${RSS0} kB idle, ${RSS1} kB with 1000 open sessions ($READY)"

node "$HERE/report.mjs" "$RES" "$REPS" "$SECS" | tee "$HERE/results/stream-$(date +%Y%m%d-%H%M%S).md"
