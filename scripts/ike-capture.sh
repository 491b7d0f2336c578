#!/usr/bin/env bash
# Reproduces test/fixtures/ike/: IKEv2 messages between two real strongSwan charons (the ks lab,
# /work/shared/lab/ipsec) and the keys that decrypt them. Needs root (namespaces). Usage:
#   sudo scripts/ike-capture.sh [OUTDIR]          (default: test/fixtures/ike)
# How the keys are obtained: Debian 12's charon (5.9.8) has no save-keys plugin in its plugin
# list here, so `lab.sh up --log-keys` raises the ike/chd log levels to 4, where keymat_v2 dumps
# the DH shared secret, SKEYSEED, SK_d/ai/ar/ei/er/pi/pr and the AUTH octets as hex. This script
# extracts the gateway's dumps into keys.txt next to the capture (only lab-generated throw-away keys).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
LAB=${KS_LAB:-/work/shared/lab/ipsec}
OUT=${1:-$here/../test/fixtures/ike}
RUN=/tmp/ks-ipsec
tpid=
cleanup() {
    [ -n "$tpid" ] && kill "$tpid" 2>/dev/null || true
    "$LAB/lab.sh" down >/dev/null 2>&1 || true   # always, also on failure
}
trap cleanup EXIT
"$LAB/lab.sh" up --log-keys --no-connect
mkdir -p "$RUN/cap"
# `ip netns exec` execs tcpdump, so $! is tcpdump's own PID.
ip netns exec ks-gw tcpdump -ni ksg0 -U -s 0 -w "$RUN/cap/ike.pcap" 'udp port 500 or udp port 4500' 2>/dev/null &
tpid=$!
sleep 1
# 1. PSK, AES-GCM-16-256 / PRF-SHA256 / X25519, ESP with PFS: IKE_SA_INIT, IKE_AUTH (CP, TS, N).
"$LAB/lab.sh" connect psk-pfs
# 2. CHILD_SA rekey by the client with a KE payload (CREATE_CHILD_SA [N(REKEY_SA) SA No KE TSi TSr]).
"$LAB/lab.sh" swanctl cli --rekey --child psk-pfs
sleep 0.5
# 3. IKE_SA rekey by the gateway (CREATE_CHILD_SA [SA No KE]) and the DELETE of the old IKE_SA.
"$LAB/lab.sh" swanctl gw --rekey --ike rw-psk
sleep 0.5
# 4. INFORMATIONAL: DELETE of the IKE_SA.
"$LAB/lab.sh" disconnect
sleep 0.5
# 5. AES-CBC-256 + HMAC-SHA2-256-128, MODP-2048.
"$LAB/lab.sh" connect psk-cbc-modp2048
"$LAB/lab.sh" disconnect
sleep 0.5
# 6. ECDSA certificates (CERT, CERTREQ, RFC 7427 AUTH), ECP-256.
"$LAB/lab.sh" connect cert
"$LAB/lab.sh" disconnect
sleep 0.5
# 7. RSA certificates: IKE_AUTH in SKF fragments (RFC 7383), RFC 7427 sha256WithRSAEncryption.
"$LAB/lab.sh" connect cert-rsa
"$LAB/lab.sh" disconnect
sleep 1
kill "$tpid"; wait "$tpid" 2>/dev/null || true; tpid=
mkdir -p "$OUT"
# The gateway's level-4 hex dumps (DH secret, SKEYSEED, SK_*, AUTH octets, CHILD_SA keys), one a line.
awk "$(cat <<'AWK'
# charon's ike/chd level-4 hex dumps ("<label> => N bytes @ addr" then "  off: XX XX ...  ascii")
# as one line each: "<conn|IKE_SA#> <label> = <hex>"
function flush() { if (label != "") print sa " " label " = " tolower(hex); label = "" }
/\[(IKE|CHD)\] <[^>]*> .* => [0-9]+ bytes @ / {
    flush()
    match($0, /<[^>]*>/); sa = substr($0, RSTART, RLENGTH)
    l = substr($0, RSTART + RLENGTH + 1); sub(/ => [0-9]+ bytes @.*/, "", l)
    label = l; hex = ""; next
}
label != "" && /\[(IKE|CHD)\] <[^>]*> +[0-9]+: / {
    d = $0; sub(/.*> +[0-9]+: /, "", d); d = substr(d, 1, 47); gsub(/ /, "", d); hex = hex d; next
}
{ flush() }
END { flush() }
AWK
)" "$RUN/gw/charon-keys.log" >"$OUT/keys.txt"
# The UDP payloads of IKE (port 500, and 4500 with the non-ESP marker; ESP and keepalives left out),
# one a line: "<i>r|r>i> <sport>-><dport> <hex>", in capture order.
node - "$RUN/cap/ike.pcap" >"$OUT/messages.txt" <<'JS'
const b = require('fs').readFileSync(process.argv[2])
const le = b.readUInt32LE(0) === 0xa1b2c3d4
const u32 = (o) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o))
const link = u32(20)
console.log('# IKEv2 between strongSwan 5.9.8 charons (ks lab), captured on ksg0 by scripts/ike-capture.sh')
console.log('# direction sport->dport UDP-payload-hex; the gateway (responder) is 203.0.113.1')
for (let o = 24; o + 16 <= b.length; ) {
  const len = u32(o + 8)
  let p = o + 16
  o += 16 + len
  if (link === 1) p += 14 // Ethernet
  else if (link === 113) p += 16 // Linux cooked
  const ihl = (b[p] & 15) * 4
  const src = [...b.subarray(p + 12, p + 16)].join('.')
  const u = p + ihl
  const sport = b.readUInt16BE(u), dport = b.readUInt16BE(u + 2), ulen = b.readUInt16BE(u + 4)
  const pay = b.subarray(u + 8, u + ulen)
  if ((sport === 4500 || dport === 4500) && (pay.length < 4 || pay.readUInt32BE(0) !== 0)) continue
  console.log(`${src === '203.0.113.1' ? 'r>i' : 'i>r'} ${sport}->${dport} ${pay.toString('hex')}`)
}
JS
# The CA certificates (public) the captured chains end in, for the certificate checks.
cp /tmp/ks-ipsec-pki/ca-ecdsa.crt /tmp/ks-ipsec-pki/ca-rsa.crt "$OUT/"
echo "wrote $OUT/messages.txt ($(grep -vc '^#' "$OUT/messages.txt") messages), $OUT/keys.txt and the two CA certificates"
