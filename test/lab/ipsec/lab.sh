#!/usr/bin/env bash
# tunkit's IPsec lab: unmodified strongSwan (charon, IKEv2, userspace ESP through the
# kernel-libipsec plugin) inside network namespaces, a real peer for tunkit's IKE/ESP tests.
# Adapted from ../shared/lab/ipsec (same addresses, credentials and configuration).
#
#   P-cli  --[public veth]--  P-gw  --[private veth]--  P-priv
#   (or, with --nat:  P-cli -- P-nat (MASQUERADE) -- P-gw -- P-priv)
#
# P is the prefix, env TK_IPSEC_PREFIX (default tkis; "tk" + 1 to 10 of [a-z0-9]), so that two
# tests, or a crashed run's leftovers, never collide. Everything the script creates is named
# after it: namespaces P-cli, P-gw, P-priv, P-nat; interfaces Pc0, Pg0, Pg1, Pp0, Pn0, Pn1
# (at most 14 characters); runtime files in /tmp/P-ipsec (removed by down), lock
# /tmp/P-ipsec.lock. The PKI is shared by all prefixes: /tmp/tk-ipsec-pki, generated once under
# /tmp/tk-ipsec-pki.lock and reused. README.md beside this file has the details; `lab.sh help`
# lists the subcommands.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
PREFIX=${TK_IPSEC_PREFIX:-tkis}
[[ $PREFIX =~ ^tk[a-z0-9]{1,10}$ ]] || { echo "TK_IPSEC_PREFIX must be tk + 1 to 10 of [a-z0-9], not '$PREFIX'" >&2; exit 2; }
RUN=/tmp/$PREFIX-ipsec
LOCK=/tmp/$PREFIX-ipsec.lock
PKI=/tmp/tk-ipsec-pki
PKI_LOCK=/tmp/tk-ipsec-pki.lock
APT_LOG=/tmp/tk-ipsec-apt.log
CHARON=/usr/lib/ipsec/charon

NS_CLI=$PREFIX-cli
NS_GW=$PREFIX-gw
NS_PRIV=$PREFIX-priv
NS_NAT=$PREFIX-nat
ALL_NS="$NS_CLI $NS_GW $NS_PRIV $NS_NAT"
IF_CLI=${PREFIX}c0       # client, public side (or inside the NAT)
IF_GW_PUB=${PREFIX}g0    # gateway, public side
IF_GW_PRIV=${PREFIX}g1   # gateway, private side
IF_PRIV=${PREFIX}p0      # private host
IF_NAT_IN=${PREFIX}n0    # NAT router, inside (--nat only)
IF_NAT_OUT=${PREFIX}n1   # NAT router, outside (--nat only)

GW_PUB=203.0.113.1       # gateway, public side
CLI_PUB=203.0.113.2      # client (direct) or NAT router outside
CLI_INNER=198.51.100.2   # client behind the NAT (--nat only)
NAT_INNER=198.51.100.1   # NAT router inside (--nat only)
GW_PRIV=198.18.1.1       # gateway, private side
PRIV_HOST=198.18.1.10    # private host, only reachable through the tunnel
PRIV_DNS=198.18.1.53     # second address of the private host, pushed as DNS attribute
POOL=198.18.200.0/24     # virtual IP pool

GW_IKE='aes256gcm16-prfsha256-x25519-ecp256-modp2048, aes256-sha256-x25519-ecp256-modp2048'
GW_ESP='aes256gcm16-x25519-ecp256-modp2048, aes256-sha256-x25519-ecp256-modp2048, aes256gcm16, aes256-sha256'
NARROW_IKE='aes128-sha1-modp2048'
NARROW_ESP='aes128-sha1'

# The marker in the environment of every process we start; down stops a process only if it
# carries it (and, for pidfiles, still runs the expected binary), never by name.
export TK_IPSEC_LAB="$RUN"

log()  { printf '[%s-ipsec] %s\n' "$PREFIX" "$*" >&2; }
die()  { log "ERROR: $*"; exit 1; }
now_ms() { date +%s%3N; }
nsx()  { local ns=$1; shift; ip netns exec "$ns" "$@"; }
ns_exists() { [ -e "/run/netns/$1" ]; }
ours() { tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null | grep -qx "TK_IPSEC_LAB=$RUN"; }

# ---------------------------------------------------------------- deps ----
# Installs what is missing (.ci/run installs the same list up front).
ensure_deps() {
    local pkgs=()
    command -v ip >/dev/null          || pkgs+=(iproute2)
    command -v iptables >/dev/null    || pkgs+=(iptables)
    command -v unshare >/dev/null     || pkgs+=(util-linux)
    command -v flock >/dev/null       || pkgs+=(util-linux)
    [ -x "$CHARON" ]                  || pkgs+=(strongswan-charon)
    command -v swanctl >/dev/null     || pkgs+=(strongswan-swanctl)
    [ -f /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so ] || pkgs+=(libcharon-extra-plugins)
    [ -f /usr/lib/ipsec/plugins/libstrongswan-openssl.so ] || pkgs+=(libstrongswan-standard-plugins)
    command -v pki >/dev/null         || pkgs+=(strongswan-pki)
    command -v openssl >/dev/null     || pkgs+=(openssl)
    command -v tcpdump >/dev/null     || pkgs+=(tcpdump)
    command -v iperf3 >/dev/null      || pkgs+=(iperf3)
    command -v ping >/dev/null        || pkgs+=(iputils-ping)
    [ ${#pkgs[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing ${pkgs[*]} and no apt-get to install them"
    log "installing missing packages: ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # apt-get update only if the first attempt fails (the package lists may just be stale)
    if ! apt-get install -y -q "${pkgs[@]}" >"$APT_LOG" 2>&1; then
        apt-get update -q >>"$APT_LOG" 2>&1 || true
        apt-get install -y -q "${pkgs[@]}" >>"$APT_LOG" 2>&1 \
            || die "apt-get install failed, see $APT_LOG"
    fi
}

# ----------------------------------------------------------------- pki ----
pki_complete() {
    local f
    for f in ca-ecdsa.crt gw-ecdsa.crt gw-ecdsa.key client-ecdsa.crt client-ecdsa.key \
             ca-rsa.crt gw-rsa.crt gw-rsa.key client-rsa.crt client-rsa.key psk.txt; do
        [ -s "$PKI/$f" ] || return 1
    done
}

pki_generate() {
    local d="$PKI.tmp.$$" t
    rm -rf "$PKI".tmp.*; mkdir -p "$d"; chmod 700 "$d"
    t=$(now_ms)
    # keep pki from probing for plugins it does not have, and from reading /etc/strongswan.conf
    printf 'pki {\n  load = random nonce openssl pem pkcs1 pkcs8 x509 pubkey\n}\n' >"$d/.pki.conf"
    local STRONGSWAN_CONF="$d/.pki.conf"; export STRONGSWAN_CONF
    issue() { # type ca name cn flag [san...]
        local type=$1 ca=$2 name=$3 cn=$4 flag=$5 size; shift 5
        local sans=() s
        for s in "$@"; do sans+=(--san "$s"); done
        if [ "$type" = rsa ]; then size=3072; else size=256; fi
        (umask 077; pki --gen --type "$type" --size "$size" --outform pem >"$d/$name.key")
        pki --pub --in "$d/$name.key" --type "$type" |
            pki --issue --lifetime 1825 --cacert "$d/$ca.crt" --cakey "$d/$ca.key" \
                --dn "C=ZZ, O=ks-lab, CN=$cn" "${sans[@]}" --flag "$flag" \
                --outform pem >"$d/$name.crt"
    }
    ca() { # type name cn
        local size=256
        [ "$1" = rsa ] && size=3072
        (umask 077; pki --gen --type "$1" --size "$size" --outform pem >"$d/$2.key")
        pki --self --ca --lifetime 3650 --in "$d/$2.key" --type "$1" \
            --dn "C=ZZ, O=ks-lab, CN=$3" --outform pem >"$d/$2.crt"
    }
    ca ecdsa ca-ecdsa "ks-lab ECDSA CA"
    issue ecdsa ca-ecdsa gw-ecdsa     gw.ks.test         serverAuth gw.ks.test "$GW_PUB"
    issue ecdsa ca-ecdsa client-ecdsa client.ks.test     clientAuth client.ks.test
    ca rsa ca-rsa "ks-lab RSA CA"
    issue rsa ca-rsa gw-rsa     gw-rsa.ks.test     serverAuth gw-rsa.ks.test "$GW_PUB"
    issue rsa ca-rsa client-rsa client-rsa.ks.test clientAuth client-rsa.ks.test
    # PKCS#8 copies of every key (Node's crypto.createPrivateKey reads both forms)
    local k
    for k in "$d"/*.key; do
        (umask 077; openssl pkey -in "$k" -out "${k%.key}.p8.pem" 2>/dev/null) || true
    done
    (umask 077; sed -n 's/^ *secret = "\(.*\)"$/\1/p' "$LAB_DIR/conf/gw/swanctl.conf" >"$d/psk.txt")
    rm -f "$d/.pki.conf"
    chmod 644 "$d"/*.crt; chmod 600 "$d"/*.key "$d"/*.p8.pem "$d/psk.txt"; chmod 755 "$d"
    rm -rf "$PKI"; mv "$d" "$PKI"
    log "generated PKI in $PKI ($(( $(now_ms) - t )) ms)"
}

# Shared by every prefix: generated once, under its own lock (fd 8, closed for the daemons).
pki_ensure() {
    local force=${1:-no}
    (
        flock -w 120 8 || die "another lab holds $PKI_LOCK"
        if [ "$force" = yes ] || ! pki_complete; then pki_generate; fi
    ) 8>"$PKI_LOCK"
}

# ------------------------------------------------------------ processes ----
# stop_pidfiles FILE:EXE...: SIGTERM every PID found in the FILEs, but only if that process
# still runs EXE and carries our marker (PID reuse), then wait for all of them (SIGKILL after
# 6 s). In parallel, because charon needs 1.5 to 2 s to shut down.
stop_pidfiles() {
    local arg f exe pid pids=() i left
    for arg in "$@"; do
        f=${arg%%:*}; exe=${arg#*:}
        [ -f "$f" ] || continue
        pid=$(tr -dc '0-9' <"$f" 2>/dev/null || true)
        rm -f "$f"
        [ -n "$pid" ] && [ -d "/proc/$pid" ] || continue
        [[ " ${pids[*]} " == *" $pid "* ]] && continue     # listed twice
        # a zombie (exited, not reaped yet) has no exe link: nothing to stop
        [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && continue
        if [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" != "$(readlink -f "$exe")" ] || ! ours "$pid"; then
            log "pid $pid from $f is not ours any more; leaving it alone"
            continue
        fi
        kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    done
    [ ${#pids[@]} -eq 0 ] && return 0
    for i in $(seq 60); do
        left=()
        for pid in "${pids[@]}"; do [ -d "/proc/$pid" ] && left+=("$pid"); done
        [ ${#left[@]} -eq 0 ] && return 0
        sleep 0.1
    done
    log "pids ${left[*]} did not exit after SIGTERM; sending SIGKILL"
    kill -KILL "${left[@]}" 2>/dev/null || true
}

# swanctl against one of the two daemons: sw gw|cli ARGS...
sw() {
    local role=$1; shift
    case $role in gw|cli) ;; *) die "swanctl: role is gw or cli, not '$role'" ;; esac
    STRONGSWAN_CONF="$RUN/$role/strongswan.conf" SWANCTL_DIR="$RUN/$role/swanctl" \
        swanctl "$@" --uri "unix://$RUN/$role/charon.vici"
}

# lay out $RUN/<role> from conf/<role> and the PKI
prepare_role() {
    local role=$1 d="$RUN/$1" sub
    for sub in run strongswan.d swanctl/conf.d swanctl/x509 swanctl/x509ca swanctl/x509ocsp \
               swanctl/x509aa swanctl/x509ac swanctl/x509crl swanctl/pubkey swanctl/private \
               swanctl/rsa swanctl/ecdsa swanctl/bliss swanctl/pkcs8 swanctl/pkcs12; do
        mkdir -p "$d/$sub"
    done
    # the includes must match something, or every charon and swanctl run complains
    echo "# drop-in settings go here (see conf/$role/strongswan.conf)" >"$d/strongswan.d/00-lab.conf"
    echo "# drop-in connections and secrets go here (see conf/$role/swanctl.conf)" >"$d/swanctl/conf.d/00-lab.conf"
    if [ "$(state_get bench)" = yes ]; then
        # A load generator's parallel handshakes from one address are not an attack here: no
        # COOKIE round trips or blocking, so set-ups per second compare with tunkit's gateway.
        cat >"$d/strongswan.d/bench.conf" <<EOF
charon {
    cookie_threshold = 100000
    cookie_threshold_ip = 100000
    block_threshold = 100000
}
EOF
    fi
    if [ "$(state_get log_keys)" = yes ]; then
        cat >"$d/strongswan.d/log-keys.conf" <<EOF
charon {
    filelog {
        lab-$role-keys {
            path = $d/charon-keys.log
            time_format = %H:%M:%S
            time_add_ms = yes
            ike_name = yes
            append = yes
            flush_line = yes
            default = 1
            ike = 4
            chd = 4
            cfg = 2
            enc = 2
            net = 2
            knl = 2
        }
    }
}
EOF
    fi
    # the resolve plugin (client only) writes pushed DNS servers to $d/resolv.conf, but would
    # call /sbin/resolvconf instead if that exists: then it is not loaded
    local resolve=resolve
    if [ -e /sbin/resolvconf ] || [ -e /usr/sbin/resolvconf ]; then resolve=; fi
    sed -e "s|@RUN@|$RUN|g" -e "s|@RESOLVE@|$resolve|g" \
        "$LAB_DIR/conf/$role/strongswan.conf" >"$d/strongswan.conf"
    local ike=$GW_IKE esp=$GW_ESP
    case $(state_get narrow) in
        yes) ike=$NARROW_IKE esp=$NARROW_ESP ;;
        */*) ike=$(state_get narrow); esp=${ike#*/}; ike=${ike%/*} ;;
    esac
    sed -e "s|@IKE@|$ike|g" -e "s|@ESP@|$esp|g" -e "s|@DPD@|$(state_get dpd)|g" \
        "$LAB_DIR/conf/$role/swanctl.conf" >"$d/swanctl/swanctl.conf"
    cp "$PKI/ca-ecdsa.crt" "$PKI/ca-rsa.crt" "$d/swanctl/x509ca/"
    local who=client
    [ "$role" = gw ] && who=gw
    cp "$PKI/$who-ecdsa.crt" "$PKI/$who-rsa.crt" "$d/swanctl/x509/"
    chmod 700 "$d/swanctl/private"
    cp -p "$PKI/$who-ecdsa.key" "$PKI/$who-rsa.key" "$d/swanctl/private/"
}

# start_charon gw|cli NS: charon in NS, in its own mount namespace where /run is
# $RUN/<role>/run, because charon hard-codes /var/run/charon.pid and refuses to start while
# another charon (anyone's) holds it. Started directly, not through a shell function, so that
# nothing but charon carries the marker; the lock fds are closed for it.
start_charon() {
    local role=$1 ns=$2 d="$RUN/$1" i
    prepare_role "$role"
    : >"$d/charon.log"
    STRONGSWAN_CONF="$d/strongswan.conf" setsid \
        ip netns exec "$ns" unshare --mount --propagation private \
        /bin/sh -c 'mount --bind "$1" /run && exec "$2"' lab-charon "$d/run" "$CHARON" \
        </dev/null >"$d/charon.out" 2>&1 8>&- 9>&- &
    for i in $(seq 100); do
        if [ -s "$d/run/charon.pid" ] && [ -S "$d/charon.vici" ] && sw "$role" --stats >/dev/null 2>&1; then
            cp "$d/run/charon.pid" "$d/charon.pid"
            sw "$role" --load-all --noprompt >"$d/load.out" 2>&1 ||
                { cat "$d/load.out" >&2; die "swanctl --load-all failed for $role"; }
            log "charon ($role) up in $ns, pid $(cat "$d/charon.pid"), log $d/charon.log"
            return 0
        fi
        sleep 0.1
    done
    cat "$d/charon.out" >&2 || true
    tail -n 30 "$d/charon.log" >&2 || true
    die "charon ($role) did not come up"
}

# ------------------------------------------------------------- topology ----
topo_up() {
    local nat=$1 ns
    for ns in $NS_CLI $NS_GW $NS_PRIV; do ip netns add "$ns"; done
    [ "$nat" = yes ] && ip netns add "$NS_NAT"
    for ns in $ALL_NS; do
        ns_exists "$ns" || continue
        nsx "$ns" ip link set lo up
        nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        nsx "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    done

    # veths are created straight inside the namespaces: nothing ever exists in the host's
    if [ "$nat" = yes ]; then
        ip link add "$IF_CLI" netns "$NS_CLI" type veth peer name "$IF_NAT_IN" netns "$NS_NAT"
        ip link add "$IF_NAT_OUT" netns "$NS_NAT" type veth peer name "$IF_GW_PUB" netns "$NS_GW"
        nsx "$NS_CLI" ip addr add "$CLI_INNER/24" dev "$IF_CLI"
        nsx "$NS_CLI" ip link set "$IF_CLI" up
        nsx "$NS_CLI" ip route add default via "$NAT_INNER"
        nsx "$NS_NAT" ip addr add "$NAT_INNER/24" dev "$IF_NAT_IN"
        nsx "$NS_NAT" ip addr add "$CLI_PUB/24" dev "$IF_NAT_OUT"
        nsx "$NS_NAT" ip link set "$IF_NAT_IN" up
        nsx "$NS_NAT" ip link set "$IF_NAT_OUT" up
        nsx "$NS_NAT" sysctl -qw net.ipv4.ip_forward=1
        nsx "$NS_NAT" iptables -t nat -A POSTROUTING -o "$IF_NAT_OUT" -j MASQUERADE
    else
        ip link add "$IF_CLI" netns "$NS_CLI" type veth peer name "$IF_GW_PUB" netns "$NS_GW"
        nsx "$NS_CLI" ip addr add "$CLI_PUB/24" dev "$IF_CLI"
        nsx "$NS_CLI" ip link set "$IF_CLI" up
    fi
    nsx "$NS_GW" ip addr add "$GW_PUB/24" dev "$IF_GW_PUB"
    nsx "$NS_GW" ip link set "$IF_GW_PUB" up

    ip link add "$IF_GW_PRIV" netns "$NS_GW" type veth peer name "$IF_PRIV" netns "$NS_PRIV"
    nsx "$NS_GW" ip addr add "$GW_PRIV/24" dev "$IF_GW_PRIV"
    nsx "$NS_GW" ip link set "$IF_GW_PRIV" up
    nsx "$NS_GW" sysctl -qw net.ipv4.ip_forward=1
    # the private net is reachable only through the tunnel: nothing is forwarded between the
    # public link and the private link in clear
    nsx "$NS_GW" iptables -A FORWARD -i "$IF_GW_PUB" -j DROP
    nsx "$NS_GW" iptables -A FORWARD -o "$IF_GW_PUB" -j DROP
    nsx "$NS_PRIV" ip addr add "$PRIV_HOST/24" dev "$IF_PRIV"
    nsx "$NS_PRIV" ip addr add "$PRIV_DNS/24" dev "$IF_PRIV"
    nsx "$NS_PRIV" ip link set "$IF_PRIV" up
    nsx "$NS_PRIV" ip route add default via "$GW_PRIV"
}

topo_down() {
    local ns pid i mine others
    for ns in $ALL_NS; do
        ns_exists "$ns" || continue
        # stop (by PID) the processes this prefix's lab started even if their pidfile got lost;
        # leave anything else alone and say so
        mine=() others=()
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            if ours "$pid"; then mine+=("$pid"); else others+=("$pid"); fi
        done
        if [ ${#mine[@]} -gt 0 ]; then
            log "stopping leftover lab processes in $ns: ${mine[*]}"
            kill -TERM "${mine[@]}" 2>/dev/null || true
            for i in $(seq 60); do
                kill -0 "${mine[@]}" 2>/dev/null || break     # true while any is alive
                sleep 0.1
            done
            for pid in "${mine[@]}"; do
                if ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
            done
        fi
        [ ${#others[@]} -gt 0 ] &&
            log "WARNING: processes not started by lab.sh still run in $ns (left alone): ${others[*]}"
        ip netns del "$ns" 2>/dev/null || log "could not delete netns $ns"
    done
}

state_get() { # key
    [ -f "$RUN/state" ] || return 0
    sed -n "s/^$1=//p" "$RUN/state" | tail -n 1
}

# ------------------------------------------------------------- commands ----
do_down() {
    # charon.pid is our copy; run/charon.pid is charon's own (a crash between starting charon
    # and copying it)
    stop_pidfiles "$RUN/cli/charon.pid:$CHARON" "$RUN/gw/charon.pid:$CHARON" \
        "$RUN/cli/run/charon.pid:$CHARON" "$RUN/gw/run/charon.pid:$CHARON"
    topo_down
    rm -rf "$RUN"
}

cmd_down() {
    do_down
    if [ "${1:-}" = --purge ]; then
        # the PKI is everyone's: only under its lock
        (flock -w 120 8 && rm -rf "$PKI") 8>"$PKI_LOCK"
        rm -f "$LOCK" "$APT_LOG"
    fi
    log "lab is down"
}

connect() { # conn
    local c=$1 t0 t1
    [ -S "$RUN/cli/charon.vici" ] || die "connect needs the client daemon (up without --responder-only)"
    t0=$(now_ms)
    if ! sw cli --initiate --ike "$c" --child "$c" --timeout 30 >"$RUN/cli/initiate.out" 2>&1; then
        tail -n 25 "$RUN/cli/initiate.out" >&2
        log "initiating '$c' failed (see $RUN/cli/charon.log and $RUN/gw/charon.log)"
        return 1
    fi
    t1=$(now_ms)
    echo "conn=$c" >>"$RUN/state"
    log "'$c' established in $((t1 - t0)) ms"
}

disconnect_all() {
    local ids i
    ids=$(sw cli --list-sas 2>/dev/null | sed -n 's/^[^ ][^:]*: #\([0-9]*\),.*/\1/p' | sort -u)
    for i in $ids; do sw cli --terminate --ike-id "$i" --timeout 10 >/dev/null 2>&1 || true; done
}

cmd_up() {
    local nat=no gw=yes cli=yes conn=psk narrow=no dpd=30s log_keys=no bench=no t0 td t1
    while [ $# -gt 0 ]; do
        case $1 in
            --nat) nat=yes ;;
            --responder-only) cli=no; conn= ;;
            --initiator-only) gw=no; conn= ;;
            --no-connect) conn= ;;
            --connect) conn=${2:?--connect CONN}; shift ;;
            --narrow) narrow=yes ;;
            --proposals) narrow="${2:?--proposals IKE ESP}/${3:?--proposals IKE ESP}"; shift 2 ;;
            --bench) bench=yes ;;
            --dpd-delay) dpd=${2:?--dpd-delay SECONDS}; shift
                         [[ $dpd =~ ^[0-9]+s?$ ]] || die "--dpd-delay takes seconds, not '$dpd'"
                         dpd=${dpd%s}s ;;
            --log-keys) log_keys=yes ;;
            *) die "up: unknown option $1" ;;
        esac
        shift
    done
    [ "$gw" = no ] && [ "$cli" = no ] && die "up: nothing to start"
    td=$(now_ms)
    ensure_deps
    do_down                      # idempotent: clear whatever a crash (of this prefix) left
    t0=$(now_ms)
    trap 'rc=$?; if [ $rc -ne 0 ]; then log "up failed (rc=$rc), tearing down"; do_down; fi' EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$RUN"
    pki_ensure
    printf 'nat=%s\ngw=%s\ncli=%s\nnarrow=%s\ndpd=%s\nlog_keys=%s\nbench=%s\n' \
        "$nat" "$gw" "$cli" "$narrow" "$dpd" "$log_keys" "$bench" >"$RUN/state"
    topo_up "$nat"
    [ "$gw" = yes ] && start_charon gw "$NS_GW"
    [ "$cli" = yes ] && start_charon cli "$NS_CLI"
    if [ -n "$conn" ]; then connect "$conn" || die "first connect failed"; fi
    t1=$(now_ms)
    trap - EXIT INT TERM
    log "lab up in $((t1 - t0)) ms (nat=$nat gw=$gw client=$cli narrow=$narrow dpd=$dpd${conn:+ conn=$conn}; deps check and teardown of leftovers before that: $((t0 - td)) ms)"
    cmd_status_short
}

cmd_status_short() {
    if [ "$(state_get nat)" = yes ]; then
        log "topology: $NS_CLI $CLI_INNER -> $NS_NAT $NAT_INNER|$CLI_PUB (MASQUERADE) -> $NS_GW $GW_PUB|$GW_PRIV -> $NS_PRIV $PRIV_HOST"
    else
        log "topology: $NS_CLI $CLI_PUB -> $NS_GW $GW_PUB|$GW_PRIV -> $NS_PRIV $PRIV_HOST"
    fi
    log "virtual IP pool $POOL, DNS $PRIV_DNS, PSK in $PKI/psk.txt, PKI in $PKI, logs $RUN/{gw,cli}/charon.log"
}

cmd_status() {
    [ -f "$RUN/state" ] || { log "lab is not up"; return 1; }
    cmd_status_short
    local role
    for role in gw cli; do
        [ -f "$RUN/$role/charon.pid" ] || continue
        echo "=== $role (pid $(cat "$RUN/$role/charon.pid")) ==="
        sw "$role" --list-sas || true
    done
}

# The first IKE_SA of a role's --list-sas: "NAME UNIQUEID SPIS"; its first INSTALLED CHILD_SA:
# "NAME UNIQUEID SPI_IN".
first_ike() {
    sw "$1" --list-sas 2>/dev/null |
        awk '/^[^ ].*: #[0-9]+, ESTABLISHED/ {n=$1; sub(":$","",n); id=$2; gsub("[#,]","",id); print n, id, $5 "_" $6; exit}'
}
first_child() {
    sw "$1" --list-sas 2>/dev/null |
        awk '/^  [^ ].*: #[0-9]+, reqid [0-9]+, INSTALLED/ {n=$1; sub(":$","",n); id=$2; gsub("[#,]","",id); c=1; next}
             c && $1 == "in" {spi=$2; sub(",$","",spi); print n, id, spi; exit}'
}

# rekey child|ike [gw|cli]: rekey the first SA of that daemon (default gw, the responder side,
# which is what a tunkit initiator must cope with) and wait, at most 10 s, until its successor
# is installed: CREATE_CHILD_SA with N(REKEY_SA) for a CHILD_SA, CREATE_CHILD_SA with SA/Ni/KE
# and no TS for the IKE_SA.
cmd_rekey() {
    local what=${1:?rekey child or ike} role=${2:-gw} before after i t0 live
    case $what in
        child) before=$(first_child "$role") ;;
        ike)   before=$(first_ike "$role") ;;
        *) die "rekey: child or ike, not '$what'" ;;
    esac
    [ -n "$before" ] || die "rekey $what: $role has no established SA"
    set -- $before
    # the old SA's line while it is still in use
    if [ "$what" = child ]; then live="  [^ ].*: #$2, reqid [0-9]+, INSTALLED"; else live="[^ ].*: #$2, ESTABLISHED"; fi
    t0=$(now_ms)
    sw "$role" --rekey --"$what"-id "$2" >/dev/null
    for i in $(seq 100); do
        sleep 0.1
        if [ "$what" = child ]; then after=$(first_child "$role"); else after=$(first_ike "$role"); fi
        # a new unique id and new SPIs, and the old SA no longer in use (an old CHILD_SA stays,
        # REKEYED, for charon's delete_rekeyed_delay of 5 s to take late inbound packets)
        if [ -n "$after" ] && [ "${after#* }" != "${before#* }" ] &&
           ! sw "$role" --list-sas 2>/dev/null | grep -qE "^$live"; then
            echo "rekeyed $what on $role: $before -> $after in $(( $(now_ms) - t0 )) ms"
            return 0
        fi
    done
    die "rekey $what on $role: no successor of '$before' after 10 s"
}

# dpd [SECONDS]: wait (default 10 s) until the gateway has sent a DPD (an empty INFORMATIONAL
# request, after dpd_delay without inbound traffic; "up --dpd-delay 1" makes it quick) and got
# its answer. Prints the two log lines.
cmd_dpd() {
    local secs=${1:-10} from i sent answer
    [ -f "$RUN/gw/charon.log" ] || die "dpd needs the gateway daemon"
    from=$(( $(wc -l <"$RUN/gw/charon.log") + 1 ))
    for i in $(seq $((secs * 10))); do
        sent=$(tail -n +"$from" "$RUN/gw/charon.log" | grep -n -m1 'sending DPD request' || true)
        answer=
        [ -n "$sent" ] && answer=$(tail -n +$((from + ${sent%%:*})) "$RUN/gw/charon.log" |
                                   grep -m1 -E 'parsed INFORMATIONAL response [0-9]+ \[ \]' || true)
        if [ -n "$answer" ]; then
            printf '%s\n%s\n' "${sent#*:}" "$answer"
            return 0
        fi
        sleep 0.1
    done
    die "dpd: no answered DPD within $secs s (dpd_delay is $(state_get dpd))"
}

cmd_logs() { # gw|cli [-f]
    local role=${1:-gw}; shift || true
    [ -f "$RUN/$role/charon.log" ] || die "no log for $role"
    if [ "${1:-}" = -f ]; then exec tail -n 50 -f "$RUN/$role/charon.log"; fi
    cat "$RUN/$role/charon.log"
}

usage() {
    cat <<EOF
usage: [TK_IPSEC_PREFIX=tk...] $0 COMMAND [args]        (prefix now: $PREFIX)

  up [--nat] [--responder-only|--initiator-only] [--connect CONN|--no-connect]
     [--narrow | --proposals IKE ESP] [--dpd-delay SECONDS] [--log-keys] [--bench]
        build $NS_CLI/$NS_GW/$NS_PRIV (+$NS_NAT with --nat), start charon in $NS_GW
        (responder) and $NS_CLI (initiator), connect CONN (default psk).
        --responder-only: no client charon (run your own initiator in $NS_CLI against
        $GW_PUB). --initiator-only: no gateway charon (run your own responder in $NS_GW on
        $GW_PUB). --narrow: the gateway accepts only IKE $NARROW_IKE and ESP $NARROW_ESP.
        --proposals: the gateway accepts only these (e.g. aes192-sha256-modp2048 aes192-sha256).
        --dpd-delay: the gateway's dpd_delay (default 30). --log-keys: each charon also
        writes charon-keys.log with the IKE and ESP keys (ike/chd level 4). --bench: no
        COOKIE or blocking thresholds (a load generator's parallel handshakes).
        Tears down this prefix's leftovers first.
  down [--purge]     stop our daemons (by pidfile and marker), delete the $PREFIX-* netns,
                     rm $RUN (--purge: also the shared PKI $PKI)
  status             IKE and CHILD SAs of both daemons
  connect CONN       initiate CONN from the client (see conf/cli/swanctl.conf)
  disconnect         terminate all client IKE_SAs
  rekey child|ike [gw|cli]
                     rekey the first CHILD_SA / IKE_SA of that daemon (default gw) now and
                     wait for its successor
  dpd [SECONDS]      wait for the gateway's next DPD and its answer (use up --dpd-delay 1)
  swanctl gw|cli ARGS   swanctl against that daemon (e.g. swanctl gw --list-sas)
  logs gw|cli [-f]   print (or follow) a daemon's log
  exec cli|gw|priv|nat CMD...   run CMD in that lab namespace ($PREFIX-cli, ...; not marked
                     as a lab process)
  pki [--force]      (re)generate the shared certificates and keys in $PKI
  deps               install missing Debian packages
EOF
}

main() {
    local cmd=${1:-help} take_lock; shift || true
    case $cmd in help|-h|--help) usage; return 0 ;; esac
    [ "$(id -u)" -eq 0 ] || die "must run as root"
    # one state-changing operation per prefix at a time
    case $cmd in
        up|down|connect|disconnect|rekey) take_lock=yes ;;
        *) take_lock=no ;;
    esac
    if [ "$take_lock" = yes ]; then
        exec 9>"$LOCK"
        flock -w 120 9 || die "another lab.sh holds $LOCK"
    fi
    case $cmd in
        up)         cmd_up "$@" ;;
        down)       cmd_down "$@" ;;
        status)     cmd_status ;;
        connect)    connect "${1:-psk}" ;;
        disconnect) disconnect_all ;;
        rekey)      cmd_rekey "$@" ;;
        dpd)        cmd_dpd "$@" ;;
        swanctl)    local r=${1:?gw or cli}; shift; sw "$r" "$@" ;;
        logs)       cmd_logs "$@" ;;
        exec)       local n=${1:?cli, gw, priv or nat}; shift
                    n=${n#"$PREFIX-"}     # the namespace's full name works too
                    case $n in cli|gw|priv|nat) ;; *) die "exec: cli, gw, priv or nat, not '$n'" ;; esac
                    # without our marker: down must not take it for a lab daemon
                    exec env -u TK_IPSEC_LAB ip netns exec "$PREFIX-$n" "$@" ;;
        pki)        ensure_deps; if [ "${1:-}" = --force ]; then pki_ensure yes; else pki_ensure; fi
                    ls -l "$PKI" ;;
        deps)       ensure_deps ;;
        *)          usage; exit 2 ;;
    esac
}

main "$@"
