# Shared by the bench scripts.

# rss_while PID CMD...: sets RSS0 (kB) of PID now, then runs CMD, which opens its connections,
# prints one line when they are all up (kept in READY) and holds them until its stdin closes;
# RSS1 is PID's RSS while they are held.
rss_while() {
  local pid=$1; shift
  RSS0=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  coproc HOLD { "$@"; }
  read -r READY <&"${HOLD[0]}"; sleep 1
  RSS1=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  eval "exec ${HOLD[1]}>&-"; wait "$HOLD_PID" 2>/dev/null || true
}

# private_sshd DIR PORT ADDRESS: keys, authorized_keys, sshd_config and known_hosts in DIR for a
# private sshd on ADDRESS:PORT (run it with SSHD_CMD, in its own mount namespace for /run/sshd).
private_sshd() {
  local d=$1 port=$2 addr=$3
  mkdir -p "$d"; ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"; ssh-keygen -q -t ed25519 -N '' -f "$d/id"
  cp "$d/id.pub" "$d/authorized_keys"
  printf '%s\n' "Port $port" "ListenAddress $addr" "HostKey $d/host_key" "PidFile none" "AuthorizedKeysFile $d/authorized_keys" \
    "PasswordAuthentication no" "KbdInteractiveAuthentication no" "PermitRootLogin prohibit-password" "UsePAM no" "StrictModes no" \
    "AllowTcpForwarding yes" "UseDNS no" "MaxStartups 100:30:200" "LogLevel ERROR" >"$d/sshd_config"
  echo "[$addr]:$port $(cat "$d/host_key.pub")" >"$d/known_hosts"
  SSHD_CMD=(unshare -m --propagation private sh -c "mount -t tmpfs -o size=1m,mode=0755 tk-sshd-run /run && mkdir -m 0755 /run/sshd && exec /usr/sbin/sshd -D -e -f $d/sshd_config")
}
