#!/usr/bin/env bash
# nat-discover benchmark, side by side in one run (root; loopback and tk namespaces only):
#  1. server: Binding answers per second, tunkit vs coturn, same load generator (bench/stun-load.mjs)
#  2. client: wall time of a full classification behind an EIM/APDF NAT, tunkit vs turnutils_natdiscovery
# Knobs: TK_REPS (3), TK_SECS (5).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$HERE")
REPS=${TK_REPS:-3}; SECS=${TK_SECS:-5}
W=$(mktemp -d /tmp/tkstunbench.XXXXXX); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; bash "$ROOT/test/nat/natlab.sh" down; rm -rf "$W"; }
trap cleanup EXIT INT TERM
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
missing=()
for p in coturn nftables iproute2; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if ((${#missing[@]})); then apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; fi
[ -f "$ROOT/dist/src/index.js" ] || (cd "$ROOT" && npm run build --silent)
TK="$ROOT/bin/run.js"  # as installed: its #! line has node flags

# 1. server rate on loopback: tunkit on 127.0.0.1:47700, coturn on 127.0.0.1:47710
$TK nat-discover --serve --listen 127.0.0.1:47700 --alt 127.0.0.2:47701 --rate 100000000 --burst 100000000 --log-level warn & PIDS+=($!)
turnserver -n --listening-ip 127.0.0.1 --listening-port 47710 --stun-only --no-auth --no-tls --no-dtls --no-cli --realm tk \
  --userdb "$W/turndb" --pidfile "$W/pid" --log-file "$W/coturn.log" --simple-log --no-stdout-log >/dev/null 2>&1 & PIDS+=($!)
sleep 2
RES="$W/results.tsv"
for rep in $(seq "$REPS"); do
  for m in tunkit coturn; do
    port=$([ $m = tunkit ] && echo 47700 || echo 47710)
    v=$(node "$HERE/stun-load.mjs" 127.0.0.1 $port "$SECS" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).answeredPerSec))')
    printf '%s\trps\t%s\n' $m "$v" >>"$RES"; log "rep $rep $m: $v answers/s"
  done
done

# 2. client classification time behind an EIM/APDF NAT (coturn as the server for both clients)
bash "$ROOT/test/nat/natlab.sh" up eim-apdf
ip netns exec tkn-srv turnserver -n --listening-ip 203.0.113.10 --listening-ip 198.51.100.10 --listening-port 3478 --alt-listening-port 3479 \
  --stun-only --no-auth --no-tls --no-dtls --no-cli --realm tk --userdb "$W/turndb2" --pidfile "$W/pid2" --log-file "$W/coturn2.log" --simple-log --no-stdout-log >/dev/null 2>&1 & PIDS+=($!)
sleep 2
for rep in $(seq "$REPS"); do
  t0=$(date +%s%N); ip netns exec tkn-cli $TK nat-discover --server 203.0.113.10 --json >/dev/null; t1=$(date +%s%N)
  printf 'tunkit\tclassify-ms\t%s\n' $(( (t1-t0)/1000000 )) >>"$RES"
  t0=$(date +%s%N); ip netns exec tkn-cli turnutils_natdiscovery -m -f 203.0.113.10 >/dev/null 2>&1; t1=$(date +%s%N)
  printf 'turnutils_natdiscovery\tclassify-ms\t%s\n' $(( (t1-t0)/1000000 )) >>"$RES"
  log "rep $rep classification: $(tail -2 "$RES" | cut -f1,3 | tr '\n' ' ')"
done
node -e '
const rows=require("fs").readFileSync(process.argv[1],"utf8").trim().split("\n").map(l=>l.split("\t"))
const d={}; for (const [m,k,v] of rows) ((d[m]??={})[k]??=[]).push(+v)
const med=a=>{const s=[...a].sort((x,y)=>x-y);return s[Math.floor(s.length/2)]}
const r=(m,k)=>d[m]?.[k]?`${med(d[m][k])} [${Math.min(...d[m][k])}–${Math.max(...d[m][k])}]`:"n/a"
console.log(`# nat-discover benchmark (${new Date().toISOString()})\n`)
console.log("| server | Binding answers/s | ratio to coturn |\n|---|---|---|")
for (const m of ["tunkit","coturn"]) console.log(`| ${m} | ${r(m,"rps")} | ${(med(d[m].rps)/med(d.coturn.rps)).toFixed(2)} |`)
console.log("\n| client (EIM/APDF NAT, coturn server) | full classification, ms (process start to exit) |\n|---|---|")
for (const m of ["tunkit","turnutils_natdiscovery"]) console.log(`| ${m} | ${r(m,"classify-ms")} |`)
' "$RES" | tee "$HERE/results/stun-$(date +%Y%m%d-%H%M%S).md"
