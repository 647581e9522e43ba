#!/usr/bin/env bash
# The gateway's relay (issue 12): pgbench -S -M prepared -c 8 through Portcullis (a password
# user whose group may read the pgbench tables, relayed to their own upstream role), straight to
# the same PostgreSQL 15, and through PgBouncer 1.18 (Debian's, session pooling) as the peer, in
# one run, with server CPU per transaction (Portcullis / PgBouncer: their process; PostgreSQL:
# the postmaster and its reaped backends).
# Then sign-ins: pgbench -C -S (a new connection per transaction) with an RS256 access token from
# the test OpenID provider as the password through Portcullis (the upstream pool warm: a repeat
# sign-in takes an idle upstream session of the same person), against PostgreSQL's own SCRAM
# sign-ins (a new backend each) in the same run.
# Then memory: 1,000 signed-in idle sessions through Portcullis (each with its upstream session),
# Portcullis's resident memory before and after, per session.
# Usage: bash scripts/bench-gateway.sh [seconds per run, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-target}"
PGBIN=/usr/lib/postgresql/15/bin
command -v pgbench >/dev/null && [ -x "$PGBIN/initdb" ] && [ -x /usr/sbin/pgbouncer ] && /usr/bin/python3 -c 'import psycopg2' 2>/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 postgresql-client pgbouncer python3-psycopg2 >/dev/null; }
cargo build --release --quiet -p portcullis
WORK=$(mktemp -d /tmp/portcullis-gw.XXXX); chmod 755 "$WORK"
. scripts/ports.sh
PG_PORT=$(low_port 23050); PGB_PORT=$(low_port 23150); PC_SQL=$(low_port 23250); PC_HTTP=$(low_port 23350)
PASS=Bench-pass-1
cleanup() { [ -n "${PC_PID:-}" ] && kill "$PC_PID" 2>/dev/null; [ -n "${PGB_PID:-}" ] && kill "$PGB_PID" 2>/dev/null; [ -n "${IDP_PID:-}" ] && kill "$IDP_PID" 2>/dev/null; [ -d "$WORK/pg" ] && su postgres -c "$PGBIN/pg_ctl -D $WORK/pg -m immediate stop" >/dev/null 2>&1; rm -rf "$WORK"; }
trap cleanup EXIT

id postgres >/dev/null 2>&1 || useradd -r -m postgres
mkdir -p "$WORK/pg" "$WORK/pgrun"; chown postgres "$WORK/pg" "$WORK/pgrun"
echo "$PASS" > "$WORK/pgrun/pw"; chown postgres "$WORK/pgrun/pw"
su postgres -c "$PGBIN/initdb -D $WORK/pg -U postgres --auth=scram-sha-256 --pwfile=$WORK/pgrun/pw" >/dev/null
su postgres -c "$PGBIN/pg_ctl -D $WORK/pg -o '-p $PG_PORT -k $WORK/pgrun -c listen_addresses=127.0.0.1 -c max_connections=1100 -c shared_buffers=128MB' -l $WORK/pgrun/pg.log -w start" >/dev/null
PG_PID=$(head -1 "$WORK/pg/postmaster.pid")
export PGSSLMODE=disable
PGPASSWORD=$PASS psql -X -q -h 127.0.0.1 -p $PG_PORT -U postgres postgres \
  -c "CREATE ROLE portcullis_admin LOGIN CREATEROLE PASSWORD '$PASS'" \
  -c "CREATE DATABASE sales OWNER portcullis_admin"
PGPASSWORD=$PASS pgbench -q -i -s 10 -h 127.0.0.1 -p $PG_PORT -U portcullis_admin sales >/dev/null 2>&1

PORTCULLIS_MAX_CONNECTIONS=2000 PORTCULLIS_ADMIN_PASSWORD=$PASS PORTCULLIS_LOG=warn "$CARGO_TARGET_DIR/release/portcullis" serve \
  --data-dir "$WORK/pc" --sql-addr 127.0.0.1:$PC_SQL --http-addr 127.0.0.1:$PC_HTTP >"$WORK/pc.log" 2>&1 &
PC_PID=$!
for _ in $(seq 50); do grep -q "listening" "$WORK/pc.log" && break; sleep 0.1; done
PGPASSWORD=$PASS psql -X -q -h 127.0.0.1 -p $PC_SQL -U admin@system system \
  -c "CREATE DATABASE sales UPSTREAM 'postgresql://portcullis_admin:$PASS@127.0.0.1:$PG_PORT/sales?sslmode=disable'" \
  -c "CREATE USER \"bench@sales\" PASSWORD = '$PASS'" \
  -c "CREATE GROUP readers@sales" \
  -c "ALTER GROUP readers@sales ADD USER bench@sales" \
  -c "GRANT USE ON DATABASE sales TO GROUP readers@sales"
PGPASSWORD=$PASS psql -X -q -h 127.0.0.1 -p $PG_PORT -U portcullis_admin sales \
  -c 'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "readers@sales"'

# PgBouncer, session pooling, in front of the same database (it refuses to run as root).
cat > "$WORK/pgrun/pgbouncer.ini" <<INI
[databases]
sales = host=127.0.0.1 port=$PG_PORT dbname=sales
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $WORK/pgrun/userlist.txt
pool_mode = session
max_client_conn = 100
default_pool_size = 20
logfile = $WORK/pgrun/pgbouncer.log
pidfile = $WORK/pgrun/pgbouncer.pid
INI
echo "\"portcullis_admin\" \"$PASS\"" > "$WORK/pgrun/userlist.txt"
chown postgres "$WORK/pgrun/pgbouncer.ini" "$WORK/pgrun/userlist.txt"
su postgres -s /bin/sh -c "/usr/sbin/pgbouncer -d $WORK/pgrun/pgbouncer.ini"
for _ in $(seq 50); do [ -s "$WORK/pgrun/pgbouncer.pid" ] && break; sleep 0.1; done
PGB_PID=$(cat "$WORK/pgrun/pgbouncer.pid")

HZ=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"; }
run() { # name pid password pgbench-args… → "name tps server-cpu-ms-per-transaction"
  local name=$1 pid=$2 password=$3; shift 3
  local t0; t0=$(ticks "$pid")
  PGPASSWORD=$password pgbench -n -S -c 8 -j 2 -T "$SECS" "$@" >"$WORK/$name.out" 2>&1
  sleep 0.5
  local t1; t1=$(ticks "$pid")
  local tps; tps=$(grep -Eo 'tps = [0-9.]+' "$WORK/$name.out" | head -1 | cut -d' ' -f3)
  local n; n=$(grep -Eo 'number of transactions actually processed: [0-9]+' "$WORK/$name.out" | grep -Eo '[0-9]+$')
  [ -n "$tps" ] || { cat "$WORK/$name.out" >&2; tps=0; n=1; }
  echo "$name $tps $(awk -v d="$((t1 - t0))" -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.4f", d * 1000 / hz / n }')"
}
DIRECT=$(run direct "$PG_PID" "$PASS" -M prepared -h 127.0.0.1 -p $PG_PORT -U portcullis_admin sales)
RELAY=$(run portcullis "$PC_PID" "$PASS" -M prepared -h 127.0.0.1 -p $PC_SQL -U bench@sales sales)
BOUNCER=$(run pgbouncer "$PGB_PID" "$PASS" -M prepared -h 127.0.0.1 -p $PGB_PORT -U portcullis_admin sales)
# Token sign-ins through the gateway vs PostgreSQL's SCRAM sign-ins.
npm ci --prefix tests/idp --no-audit --no-fund --silent
node tests/idp/idp.mjs --port 0 --keys "$WORK/jwks.json" --redirect-uri http://127.0.0.1:$PC_HTTP/v1/callback >"$WORK/idp.out" 2>/dev/null &
IDP_PID=$!
for _ in $(seq 100); do grep -q IDP_READY "$WORK/idp.out" && break; sleep 0.1; done
ISSUER=$(awk '/IDP_READY/ {print $2}' "$WORK/idp.out")
PGPASSWORD=$PASS psql -X -q -h 127.0.0.1 -p $PC_SQL -U admin@system sales \
  -c "ALTER DATABASE sales SET SSO INTEGRATION oidc issuer = \"$ISSUER\", client_id = \"rs256-client\", client_secret = \"rs256-client-secret\", default_group = readers" >/dev/null
TOKEN=$(node tests/idp/token.mjs --issuer "$ISSUER" --client rs256-client --grant client_credentials | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
# Warms the key cache and the person's upstream role; then 8 idle upstream sessions.
PGPASSWORD=$TOKEN pgbench -n -S -C -c 8 -j 2 -t 5 -h 127.0.0.1 -p $PC_SQL -U access_token sales >/dev/null 2>&1
PG_C=$(run pg-scram "$PG_PID" "$PASS" -C -h 127.0.0.1 -p $PG_PORT -U portcullis_admin sales)
TK_C=$(run token "$PC_PID" "$TOKEN" -C -h 127.0.0.1 -p $PC_SQL -U access_token sales)
WHO=$(PGPASSWORD=$TOKEN psql -X -A -t -h 127.0.0.1 -p $PC_SQL -U access_token sales -c "SELECT current_user")
BACKENDS=$(PGPASSWORD=$PASS psql -X -A -t -h 127.0.0.1 -p $PG_PORT -U postgres postgres -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$WHO'")

read -r _ d_tps d_cpu <<<"$DIRECT"
read -r _ r_tps r_cpu <<<"$RELAY"
read -r _ b_tps b_cpu <<<"$BOUNCER"
printf "%-28s %12s %26s\n" "pgbench -S -M prepared -c 8" "tps" "server CPU ms/transaction"
printf "%-28s %12.1f %26s\n" "straight to PostgreSQL" "$d_tps" "$d_cpu (PostgreSQL)"
printf "%-28s %12.1f %26s\n" "through PgBouncer" "$b_tps" "$b_cpu (PgBouncer only)"
printf "%-28s %12.1f %26s\n" "through Portcullis" "$r_tps" "$r_cpu (Portcullis only)"
awk -v a="$r_tps" -v b="$d_tps" -v c="$b_tps" 'BEGIN { printf "ratio Portcullis / direct: %.2fx   PgBouncer / direct: %.2fx   Portcullis / PgBouncer: %.2fx  (target >= 1.2x)\n", a / b, c / b, a / c }'
read -r _ pgc_tps pgc_cpu <<<"$PG_C"
read -r _ tk_tps tk_cpu <<<"$TK_C"
printf "%-28s %12s %26s\n" "pgbench -S -C -c 8" "sign-ins/s" "server CPU ms/sign-in"
printf "%-28s %12.1f %26s\n" "PostgreSQL SCRAM" "$pgc_tps" "$pgc_cpu (PostgreSQL)"
printf "%-28s %12.1f %26s\n" "Portcullis token, pool warm" "$tk_tps" "$tk_cpu (Portcullis only)"
awk -v a="$tk_tps" -v b="$pgc_tps" 'BEGIN { printf "ratio token through Portcullis / PostgreSQL SCRAM: %.2fx  (target >= 10x)\n", a / b }'
echo "upstream backends of the token's person ($WHO) after the run: $BACKENDS (the pool's idle sessions)"

# Memory per idle gateway session: 1,000 connections held open (one Python process, libpq).
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
R0=$(rss "$PC_PID")
/usr/bin/python3 scripts/hold_sessions.py $PC_SQL bench@sales sales "$PASS" 1000 15 >/dev/null &
HOLD=$!
for _ in $(seq 600); do
  n=$(PGPASSWORD=$PASS psql -X -A -t -h 127.0.0.1 -p $PG_PORT -U postgres postgres -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'bench@sales'" 2>/dev/null || echo 0)
  [ "${n:-0}" -ge 1000 ] && break; sleep 0.5
done
sleep 2
R1=$(rss "$PC_PID")
wait "$HOLD" || true
awk -v a="$R0" -v b="$R1" 'BEGIN { printf "memory: Portcullis RSS %d KiB -> %d KiB with 1,000 idle gateway sessions: %.1f KiB per session (its part only; each also holds a PostgreSQL backend)\n", a, b, (b - a) / 1000 }'
