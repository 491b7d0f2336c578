#!/usr/bin/env bash
# tunkit's NAT test lab: a client behind a NAT router of a chosen RFC 4787 behaviour, and a server
# with two public addresses. Rules follow ../shared/lab/nat (whose probes verified them).
#   natlab.sh up TYPE     build (if needed) and apply TYPE; TYPE = none | eim-eif | eim-adf | eim-apdf
#                         | apdm-apdf | udp-blocked, optionally +hairpin and/or +tN (UDP bindings
#                         expire after N idle seconds)
#   natlab.sh down        remove every namespace this script made
# Namespaces tkn-cli (198.18.0.2), tkn-nat (198.18.0.1 / 203.0.113.1), tkn-srv (203.0.113.10 and
# 198.51.100.10). Nothing leaves the namespaces: none has a route to the host.
set -euo pipefail
NS_CLI=tkn-cli NS_NAT=tkn-nat NS_SRV=tkn-srv
LAN_GW=198.18.0.1 CLI_IP=198.18.0.2 LAN_NET=198.18.0.0/24
NAT_PUB=203.0.113.1 SRV_IP1=203.0.113.10 SRV_IP2=198.51.100.10
IF_LAN=tkn-lan IF_CLI=tkn-cli0 IF_WAN=tkn-wan IF_PUB=tkn-pub
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

down() {
  for ns in $NS_CLI $NS_NAT $NS_SRV; do ip netns del "$ns" 2>/dev/null || true; done
}

build() {
  down
  for ns in $NS_CLI $NS_NAT $NS_SRV; do
    ip netns add "$ns"
    nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 >/dev/null
    nsx "$ns" ip link set lo up
  done
  nsx $NS_NAT sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 >/dev/null
  ip link add $IF_LAN netns $NS_NAT type veth peer name $IF_CLI netns $NS_CLI
  nsx $NS_NAT ip addr add $LAN_GW/24 dev $IF_LAN
  nsx $NS_NAT ip link set $IF_LAN up
  nsx $NS_CLI ip addr add $CLI_IP/24 dev $IF_CLI
  nsx $NS_CLI ip link set $IF_CLI up
  nsx $NS_CLI ip route add default via $LAN_GW
  ip link add $IF_WAN netns $NS_NAT type veth peer name $IF_PUB netns $NS_SRV
  nsx $NS_NAT ip addr add $NAT_PUB/24 dev $IF_WAN
  nsx $NS_NAT ip link set $IF_WAN up
  nsx $NS_NAT ip route add 198.51.100.0/24 via $SRV_IP1
  nsx $NS_SRV ip addr add $SRV_IP1/24 dev $IF_PUB
  nsx $NS_SRV ip addr add $SRV_IP2/24 dev $IF_PUB
  nsx $NS_SRV ip link set $IF_PUB up
}

rules() { # MAPPING FILTERING HAIRPIN BLOCKED TIMEOUT
  local mapping=$1 filtering=$2 hairpin=$3 blocked=$4 timeout=$5 snat
  [ "$mapping" = apdm ] && snat="snat ip to $NAT_PUB fully-random" || snat="snat ip to $NAT_PUB"
  echo "table ip tknat {"
  echo "  map fc { type inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout ${timeout}s; size 65535; }"
  echo "  set adf { type ipv4_addr . inet_service; flags dynamic,timeout; timeout ${timeout}s; size 65535; }"
  if [ "$mapping" != nonat ]; then
    cat <<R
  chain record {
    type filter hook postrouting priority srcnat + 10; policy accept;
    oifname "$IF_WAN" ip saddr $NAT_PUB meta l4proto udp ct direction original ct original ip saddr $LAN_NET update @fc { udp sport : ct original ip saddr . ct original proto-src } update @adf { ip daddr . udp sport }
  }
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
R
    case "$filtering" in
      eif) echo "    iifname \"$IF_WAN\" ip daddr $NAT_PUB meta l4proto udp dnat ip to udp dport map @fc";;
      adf) echo "    iifname \"$IF_WAN\" ip daddr $NAT_PUB meta l4proto udp ip saddr . udp dport @adf dnat ip to udp dport map @fc";;
    esac
    [ "$hairpin" = 1 ] && echo "    iifname \"$IF_LAN\" ip daddr $NAT_PUB meta l4proto udp dnat ip to udp dport map @fc"
    echo "  }"
    echo "  chain post {"
    echo "    type nat hook postrouting priority srcnat; policy accept;"
    echo "    oifname \"$IF_WAN\" ip saddr $LAN_NET $snat"
    [ "$hairpin" = 1 ] && echo "    oifname \"$IF_LAN\" ip saddr $LAN_NET ct status dnat meta l4proto udp $snat"
    echo "  }"
  fi
  echo "  chain input { type filter hook input priority filter; policy accept; ct state established,related accept; iifname \"$IF_WAN\" meta l4proto udp drop; iifname \"$IF_LAN\" ip daddr $NAT_PUB meta l4proto udp drop; }"
  echo "  chain forward {"
  echo "    type filter hook forward priority filter; policy accept;"
  [ "$blocked" = 1 ] && echo "    meta l4proto udp drop"
  echo "    ct state established,related accept"
  echo "    iifname \"$IF_LAN\" accept"
  if [ "$mapping" = nonat ]; then echo "    iifname \"$IF_WAN\" accept"; else echo "    iifname \"$IF_WAN\" ct status dnat accept"; fi
  echo "    iifname \"$IF_WAN\" drop"
  echo "  }"
  echo "}"
}

up() {
  local spec=$1 base hairpin=0 blocked=0 timeout=120 mapping filtering suf
  base=${spec%%+*}
  if [ "$base" != "$spec" ]; then
    IFS=+ read -r -a sufs <<<"${spec#*+}"
    for suf in "${sufs[@]}"; do
      case "$suf" in
        hairpin) hairpin=1;;
        t[0-9]*) timeout=${suf#t};;
        *) echo "natlab: unknown modifier +$suf" >&2; exit 2;;
      esac
    done
  fi
  case "$base" in
    none) mapping=nonat filtering=eif;;
    udp-blocked) mapping=eim filtering=apdf blocked=1;;
    eim-eif|eim-adf|eim-apdf|apdm-apdf) mapping=${base%-*} filtering=${base#*-};;
    *) echo "natlab: unknown type $spec" >&2; exit 2;;
  esac
  [ -e /run/netns/$NS_NAT ] && [ -e /run/netns/$NS_CLI ] && [ -e /run/netns/$NS_SRV ] || build
  nsx $NS_NAT nft flush ruleset
  rules $mapping $filtering $hairpin $blocked $timeout | nsx $NS_NAT nft -f -
  nsx $NS_NAT sysctl -qw net.netfilter.nf_conntrack_udp_timeout=$timeout net.netfilter.nf_conntrack_udp_timeout_stream=$timeout
  if [ $mapping = nonat ]; then nsx $NS_SRV ip route replace $LAN_NET via $NAT_PUB; else nsx $NS_SRV ip route del $LAN_NET 2>/dev/null || true; fi
  nsx $NS_NAT conntrack -F >/dev/null 2>&1 || true
}

case "${1:-}" in
  up) up "${2:?type}";;
  down) down;;
  *) echo "usage: natlab.sh up TYPE | down" >&2; exit 2;;
esac
