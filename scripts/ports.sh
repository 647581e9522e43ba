# Sourced by the benchmark scripts. low_port BASE: the first port from BASE (up to BASE + 50)
# free to listen on at 127.0.0.1. Listening ports stay below the ephemeral range: pgbench -C
# leaves thousands of client ports in TIME_WAIT up there, and a fixed port could be one of them.
low_port() {
  local p
  for p in $(seq "$1" "$(($1 + 50))"); do
    python3 - "$p" <<'PY' && { echo "$p"; return; }
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))
PY
  done
  return 1
}
