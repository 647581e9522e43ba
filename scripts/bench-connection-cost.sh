#!/usr/bin/env bash
# What one connection costs the server, next to PgBouncer in the same run: `pgbench -n -C -c 8
# -j 2` running `SELECT 1`, each transaction a new connection: over TCP, then over each
# server's Unix-domain socket.
#   - Portcullis: an RS256 access token from the test provider as the password (the token
#     sign-in; SELECT 1 answered by the catalog engine).
#   - PgBouncer (Debian's), auth_type = plain (no cryptography at all), SELECT 1 forwarded to a
#     warm PostgreSQL 15 server connection (pool_mode = transaction).
# Then password sign-ins: Portcullis's SCRAM-SHA-256 against a second PgBouncer with
# auth_type = scram-sha-256 and the stored SCRAM secret (neither runs PBKDF2; pgbench does).
# And the floor: `crates/server/examples/floor.rs`, a tokio server with canned answers and no
# checks at all — what the runtime and the kernel cost any server written this way.
# For each: sign-ins per second, the server process's CPU per connection (/proc/<pid>/stat;
# then the same split into user space and the kernel),
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
cargo build --release --quiet -p portcullis --bin portcullis --example floor
npm ci --prefix tests/idp --no-audit --no-fund --silent

WORK=$(mktemp -d /tmp/portcullis-conncost.XXXX); chmod 755 "$WORK"
PASS=Bench-pass-1
echo "SELECT 1;" > "$WORK/select1.sql"
. scripts/ports.sh
PC_SQL=$(low_port 21050); PC_HTTP=$(low_port 21150); PG_PORT=$(low_port 21250); PGB_PORT=$(low_port 21350); PGBS_PORT=$(low_port 21450); FLOOR_PORT=$(low_port 21550)
cleanup() {
  for p in ${PC_PID:-} ${IDP_PID:-} ${PGB_PID:-} ${PGBS_PID:-} ${FLOOR_PID:-}; do kill "$p" 2>/dev/null || true; done
  [ -d "$WORK/pg" ] && su postgres -c "$PGBIN/pg_ctl -D $WORK/pg -m immediate stop" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# measure NAME PID PASSWORD pgbench-args... → "NAME tps cpu-us-per-conn syscalls-per-conn
# switches-per-conn user-us-per-conn kernel-us-per-conn"
measure() {
  local name=$1 pid=$2 password=$3; shift 3
  local u0 s0 u1 s1 n tps
  read -r u0 s0 < <(ticks "$pid")
  perf stat -e context-switches,raw_syscalls:sys_enter -p "$pid" -o "$WORK/$name.stat" -- sleep "$SECS" &
  local perf_pid=$!
  PGPASSWORD=$password pgbench -n -C -c 8 -j 2 -T "$SECS" -f "$WORK/select1.sql" "$@" >"$WORK/$name.out" 2>&1
  read -r u1 s1 < <(ticks "$pid")
  wait "$perf_pid"
  n=$(grep -Eo 'actually processed: [0-9]+' "$WORK/$name.out" | grep -Eo '[0-9]+$')
  tps=$(grep -Eo 'tps = [0-9.]+' "$WORK/$name.out" | head -1 | cut -d' ' -f3)
  local sys sw
  sys=$(tr -d , <"$WORK/$name.stat" | awk '/sys_enter/ { print $1 }')
  sw=$(tr -d , <"$WORK/$name.stat" | awk '/context-switches/ { print $1 }')
  awk -v name="$name" -v tps="$tps" -v u="$((u1 - u0))" -v k="$((s1 - s0))" -v hz="$HZ" -v n="$n" -v sys="$sys" -v sw="$sw" \
    'BEGIN { printf "%s %.1f %.1f %.1f %.1f %.1f %.1f\n", name, tps, (u + k) * 1e6 / hz / n, sys / n, sw / n, u * 1e6 / hz / n, k * 1e6 / hz / n }'
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
# start_pgbouncer NAME PORT: starts $WORK/run/NAME.ini (pid file $WORK/run/NAME.pid), checks
# that it answers on PORT, prints its pid.
start_pgbouncer() {
  chown postgres "$WORK/run/$1.ini" "$WORK/run/"*.txt
  su postgres -s /bin/sh -c "/usr/sbin/pgbouncer -d $WORK/run/$1.ini"
  for _ in $(seq 50); do [ -s "$WORK/run/$1.pid" ] && break; sleep 0.1; done
  PGPASSWORD=$PASS psql -X -q -h 127.0.0.1 -p "$2" -U bench postgres -c "SELECT 1" >/dev/null
  cat "$WORK/run/$1.pid"
}
PGB_PID=$(start_pgbouncer pgbouncer "$PGB_PORT")

# A second PgBouncer doing SCRAM-SHA-256 from a stored secret (as Portcullis does: no PBKDF2 on
# the server's side), the anchor for password sign-ins.
su postgres -c "$PGBIN/psql -X -q -h $WORK/run -p $PG_PORT -U bench postgres -c \"ALTER ROLE bench PASSWORD '$PASS'\""
SECRET=$(su postgres -c "$PGBIN/psql -X -A -t -h $WORK/run -p $PG_PORT -U bench postgres -c \"SELECT rolpassword FROM pg_authid WHERE rolname = 'bench'\"")
sed -e "s/^auth_type = plain/auth_type = scram-sha-256/" -e "s/^listen_port = .*/listen_port = $PGBS_PORT/" \
  -e "s#^auth_file = .*#auth_file = $WORK/run/scram.txt#" -e "s#^pidfile = .*#pidfile = $WORK/run/pgbouncer-scram.pid#" \
  -e "s#^logfile = .*#logfile = $WORK/run/pgbouncer-scram.log#" "$WORK/run/pgbouncer.ini" >"$WORK/run/pgbouncer-scram.ini"
echo "\"bench\" \"$SECRET\"" >"$WORK/run/scram.txt"
PGBS_PID=$(start_pgbouncer pgbouncer-scram "$PGBS_PORT")

# The floor: canned answers, no checks (any password), on both transports.
mkdir -p "$WORK/floor"
"$CARGO_TARGET_DIR/release/examples/floor" "$WORK/floor" "$FLOOR_PORT" >"$WORK/floor.log" 2>&1 &
FLOOR_PID=$!
for _ in $(seq 50); do grep -q listening "$WORK/floor.log" && break; sleep 0.1; done

printf "%-44s %10s %16s %12s %12s %14s %18s\n" "per new connection running SELECT 1" "conns/s" "server CPU us" "user us" "kernel us" "system calls" "context switches"
row() { read -r _ a b c d e f <<<"$2"; printf "%-44s %10s %16s %12s %12s %14s %18s\n" "$1" "$a" "$b" "$e" "$f" "$c" "$d"; echo "$b" >"$WORK/cpu-$3"; }
for transport in tcp unix; do
  if [ $transport = tcp ]; then pc=(-h 127.0.0.1); pgb=(-h 127.0.0.1); floor=(-h 127.0.0.1); else pc=(-h "$WORK/sock"); pgb=(-h "$WORK/run"); floor=(-h "$WORK/floor"); fi
  row "floor: tokio, canned answers, no checks, $transport" "$(measure floor "$FLOOR_PID" any "${floor[@]}" -p "$FLOOR_PORT" -U anyone anywhere)" "floor-$transport"
  row "portcullis, RS256 token sign-in, $transport" "$(measure pc "$PC_PID" "$TOKEN" "${pc[@]}" -p "$PC_SQL" -U access_token system)" "token-$transport"
  row "pgbouncer, auth_type plain, $transport" "$(measure pgb "$PGB_PID" "$PASS" "${pgb[@]}" -p "$PGB_PORT" -U bench postgres)" "plain-$transport"
  row "portcullis, SCRAM password sign-in, $transport" "$(measure pcpw "$PC_PID" "$PASS" "${pc[@]}" -p "$PC_SQL" -U admin@system system)" "pw-$transport"
  row "pgbouncer, auth_type scram-sha-256, $transport" "$(measure pgbs "$PGBS_PID" "$PASS" "${pgb[@]}" -p "$PGBS_PORT" -U bench postgres)" "scram-$transport"
done
cpu() { cat "$WORK/cpu-$1"; }
awk -v a="$(cpu token-tcp)" -v b="$(cpu floor-tcp)" -v c="$(cpu token-unix)" -v d="$(cpu floor-unix)" 'BEGIN { printf "token sign-in above the floor, server CPU per connection: +%.0f us over tcp, +%.0f us over unix sockets\n", a - b, c - d }'
awk -v a="$(cpu token-tcp)" -v b="$(cpu plain-tcp)" -v c="$(cpu token-unix)" -v d="$(cpu plain-unix)" 'BEGIN { printf "token sign-in / pgbouncer plain, server CPU per connection: %.2fx over tcp, %.2fx over unix sockets (issue 16 target for portcullis: <= 60 us)\n", a / b, c / d }'
awk -v a="$(cpu pw-tcp)" -v b="$(cpu scram-tcp)" -v c="$(cpu pw-unix)" -v d="$(cpu scram-unix)" 'BEGIN { printf "password sign-in / pgbouncer scram, server CPU per connection: %.2fx over tcp, %.2fx over unix sockets (issue 16 target for portcullis: <= 100 us)\n", a / b, c / d }'
