#!/usr/bin/env bash
# What one connection costs the server, next to PgBouncer in the same run: `pgbench -n -C -c 8
# -j 2` running `SELECT 1`, each transaction a new connection: over TCP, then over each
# server's Unix-domain socket.
#   - Portcullis: an RS256 access token from the test provider as the password (the token
#     sign-in; SELECT 1 answered by the catalog engine).
#   - PgBouncer (Debian's), auth_type = plain (no cryptography at all), SELECT 1 forwarded to a
#     warm PostgreSQL 15 server connection (pool_mode = transaction).
# For each: sign-ins per second, the server process's CPU per connection (/proc/<pid>/stat),
# and, from `perf stat`'s software events (no hardware counters needed), system calls and
# context switches per connection — figures that do not swing with the machine's noise the
# way CPU time does. Usage: bash scripts/bench-connection-cost.sh [seconds]
set -euo pipefail
SECS=${1:-10}
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
PGBIN=/usr/lib/postgresql/15/bin
need=()
command -v pgbench >/dev/null && [ -x "$PGBIN/initdb" ] || need+=(postgresql-15 postgresql-client)
[ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
command -v perf >/dev/null || need+=(linux-perf)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
cargo build --release --quiet -p portcullis
npm ci --prefix tests/idp --no-audit --no-fund --silent

WORK=$(mktemp -d /tmp/portcullis-conncost.XXXX); chmod 755 "$WORK"
PASS=Bench-pass-1
echo "SELECT 1;" > "$WORK/select1.sql"
# Listening ports below the ephemeral range (the first free one from a base): pgbench -C leaves
# thousands of client ports in TIME_WAIT there, and PostgreSQL could not bind one of those.
low_port() { for p in $(seq "$1" "$(( $1 + 50 ))"); do python3 - "$p" <<'PY' && { echo "$p"; return; }
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))
PY
done; return 1; }
PC_SQL=$(low_port 21050); PC_HTTP=$(low_port 21150); PG_PORT=$(low_port 21250); PGB_PORT=$(low_port 21350)
cleanup() {
  for p in ${PC_PID:-} ${IDP_PID:-} ${PGB_PID:-}; do kill "$p" 2>/dev/null || true; done
  [ -d "$WORK/pg" ] && su postgres -c "$PGBIN/pg_ctl -D $WORK/pg -m immediate stop" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# measure NAME PID PASSWORD pgbench-args... → "NAME tps cpu-us-per-conn syscalls-per-conn switches-per-conn"
measure() {
  local name=$1 pid=$2 password=$3; shift 3
  local t0 t1 n tps
  t0=$(ticks "$pid")
  perf stat -e context-switches,raw_syscalls:sys_enter -p "$pid" -o "$WORK/$name.stat" -- sleep "$SECS" &
  local perf_pid=$!
  PGPASSWORD=$password pgbench -n -C -c 8 -j 2 -T "$SECS" -f "$WORK/select1.sql" "$@" >"$WORK/$name.out" 2>&1
  t1=$(ticks "$pid")
  wait "$perf_pid"
  n=$(grep -Eo 'actually processed: [0-9]+' "$WORK/$name.out" | grep -Eo '[0-9]+$')
  tps=$(grep -Eo 'tps = [0-9.]+' "$WORK/$name.out" | head -1 | cut -d' ' -f3)
  local sys sw
  sys=$(tr -d , <"$WORK/$name.stat" | awk '/sys_enter/ { print $1 }')
  sw=$(tr -d , <"$WORK/$name.stat" | awk '/context-switches/ { print $1 }')
  awk -v name="$name" -v tps="$tps" -v d="$((t1 - t0))" -v hz="$HZ" -v n="$n" -v sys="$sys" -v sw="$sw" \
    'BEGIN { printf "%s %.1f %.1f %.1f %.1f\n", name, tps, d * 1e6 / hz / n, sys / n, sw / n }'
}

# Portcullis with an integration of the test provider on `system`, and a token.
mkdir -p "$WORK/sock"
PORTCULLIS_SQL_SOCKET_DIR=$WORK/sock PORTCULLIS_ADMIN_PASSWORD=$PASS PORTCULLIS_LOG=warn "$CARGO_TARGET_DIR/release/portcullis" serve \
  --data-dir "$WORK/pc" --sql-addr "127.0.0.1:$PC_SQL" --http-addr "127.0.0.1:$PC_HTTP" >"$WORK/pc.log" 2>&1 &
PC_PID=$!
for _ in $(seq 50); do grep -q listening "$WORK/pc.log" && break; sleep 0.1; done
node tests/idp/idp.mjs --port 0 --keys "$WORK/jwks.json" --redirect-uri "http://127.0.0.1:$PC_HTTP/v1/callback" >"$WORK/idp.out" 2>/dev/null &
IDP_PID=$!
for _ in $(seq 100); do grep -q IDP_READY "$WORK/idp.out" && break; sleep 0.1; done
ISSUER=$(awk '/IDP_READY/ {print $2}' "$WORK/idp.out")
PGPASSWORD=$PASS psql -X -q -h 127.0.0.1 -p "$PC_SQL" -U admin@system system \
  -c "CREATE GROUP robots" -c "GRANT USE ON DATABASE system TO GROUP robots" \
  -c "ALTER DATABASE system SET SSO INTEGRATION oidc issuer = \"$ISSUER\", client_id = \"rs256-client\", client_secret = \"rs256-client-secret\", default_group = robots, groups_claim_ids = [groups], additional_scopes = [email, groups]" >/dev/null
TOKEN=$(node tests/idp/token.mjs --issuer "$ISSUER" --client rs256-client --grant client_credentials | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
PGPASSWORD=$TOKEN psql -X -q -h 127.0.0.1 -p "$PC_SQL" -U access_token system -c "SELECT 1" >/dev/null

# PostgreSQL 15 behind PgBouncer, plain passwords.
id postgres >/dev/null 2>&1 || useradd -r -m postgres
mkdir -p "$WORK/pg" "$WORK/run"; chown postgres "$WORK/pg" "$WORK/run"
su postgres -c "$PGBIN/initdb -D $WORK/pg -U bench --auth=trust" >/dev/null
su postgres -c "$PGBIN/pg_ctl -D $WORK/pg -o '-p $PG_PORT -k $WORK/run -c listen_addresses=127.0.0.1' -l $WORK/run/pg.log -w start" >/dev/null
cat >"$WORK/run/pgbouncer.ini" <<INI
[databases]
postgres = host=127.0.0.1 port=$PG_PORT user=bench
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
auth_type = plain
auth_file = $WORK/run/users.txt
pool_mode = transaction
logfile = $WORK/run/pgbouncer.log
pidfile = $WORK/run/pgbouncer.pid
log_connections = 0
log_disconnections = 0
unix_socket_dir = $WORK/run
INI
echo "\"bench\" \"$PASS\"" >"$WORK/run/users.txt"
chown postgres "$WORK/run/pgbouncer.ini" "$WORK/run/users.txt"
su postgres -s /bin/sh -c "/usr/sbin/pgbouncer -d $WORK/run/pgbouncer.ini"
for _ in $(seq 50); do [ -s "$WORK/run/pgbouncer.pid" ] && break; sleep 0.1; done
PGB_PID=$(cat "$WORK/run/pgbouncer.pid")
PGPASSWORD=$PASS psql -X -q -h 127.0.0.1 -p "$PGB_PORT" -U bench postgres -c "SELECT 1" >/dev/null

PC=$(measure portcullis "$PC_PID" "$TOKEN" -h 127.0.0.1 -p "$PC_SQL" -U access_token system)
PGB=$(measure pgbouncer "$PGB_PID" "$PASS" -h 127.0.0.1 -p "$PGB_PORT" -U bench postgres)
PCU=$(measure portcullis-unix "$PC_PID" "$TOKEN" -h "$WORK/sock" -p "$PC_SQL" -U access_token system)
PGBU=$(measure pgbouncer-unix "$PGB_PID" "$PASS" -h "$WORK/run" -p "$PGB_PORT" -U bench postgres)
printf "%-40s %12s %16s %18s %20s\n" "per new connection running SELECT 1" "conns/s" "server CPU us" "system calls" "context switches"
read -r _ a b c d <<<"$PC"; printf "%-40s %12s %16s %18s %20s\n" "portcullis, RS256 token sign-in, tcp" "$a" "$b" "$c" "$d"
read -r _ e f g h <<<"$PGB"; printf "%-40s %12s %16s %18s %20s\n" "pgbouncer, auth_type plain, tcp" "$e" "$f" "$g" "$h"
read -r _ i j k l <<<"$PCU"; printf "%-40s %12s %16s %18s %20s\n" "portcullis, RS256 token sign-in, unix" "$i" "$j" "$k" "$l"
read -r _ m n o p <<<"$PGBU"; printf "%-40s %12s %16s %18s %20s\n" "pgbouncer, auth_type plain, unix" "$m" "$n" "$o" "$p"
awk -v a="$b" -v b="$f" -v c="$j" -v d="$n" 'BEGIN { printf "server CPU per connection, portcullis / pgbouncer: %.2fx over tcp, %.2fx over unix sockets (issue 16 target for portcullis: <= 60 us)\n", a / b, c / d }'
