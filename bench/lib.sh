# Shared by the bench scripts.

# group_rss PID: RSS (kB) of PID and its children (a gate's workers). For one process, VmRSS; the
# workers map the same binary, so file-backed pages count once (the largest), their own each.
group_rss() {
  local p own=0 file=0 a f s
  for p in "$1" $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
    read -r a f s < <(awk '/^RssAnon/ {a=$2} /^RssFile/ {f=$2} /^RssShmem/ {s=$2} END {print a+0, f+0, s+0}' "/proc/$p/status" 2>/dev/null || echo 0 0 0)
    own=$((own + a + s)); [ "$f" -gt "$file" ] && file=$f
  done
  echo $((own + file))
}

# rss_while PID CMD...: sets RSS0 (kB) of PID (with its children: group_rss) now, then runs CMD,
# which opens its connections, prints one line when they are all up (kept in READY) and holds them
# until its stdin closes; RSS1 is the RSS while they are held.
rss_while() {
  local pid=$1; shift
  RSS0=$(group_rss "$pid")
  coproc HOLD { "$@"; }
  read -r READY <&"${HOLD[0]}"; sleep 1
  RSS1=$(group_rss "$pid")
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
