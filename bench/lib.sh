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
