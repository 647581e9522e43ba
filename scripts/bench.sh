#!/usr/bin/env bash
# Password sign-ins per second: pgbench -C (a new connection, so a full SCRAM-SHA-256 sign-in,
# per transaction) with 8 clients running SELECT 1, against Portcullis and, in the same run,
# against a PostgreSQL 15 cluster created here with scram-sha-256 at the same iteration count.
# Prints both rates, the ratio, and p50/p99 connection+query latency.
# Usage: bash scripts/bench.sh [seconds per run, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-target}"
PGBIN=/usr/lib/postgresql/15/bin
command -v pgbench >/dev/null && [ -x "$PGBIN/initdb" ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 postgresql-client >/dev/null; }
cargo build --release --quiet -p portcullis
WORK=$(mktemp -d /tmp/portcullis-bench.XXXX); chmod 755 "$WORK"
PASS=Bench-pass-1
echo "SELECT 1;" > "$WORK/select1.sql"
cleanup() { [ -n "${PC_PID:-}" ] && kill "$PC_PID" 2>/dev/null; [ -d "$WORK/pg" ] && su postgres -c "$PGBIN/pg_ctl -D $WORK/pg -m immediate stop" >/dev/null 2>&1; rm -rf "$WORK"; }
trap cleanup EXIT

# Portcullis
PORTCULLIS_ADMIN_PASSWORD=$PASS PORTCULLIS_LOG=warn "$CARGO_TARGET_DIR/release/portcullis" serve \
  --data-dir "$WORK/pc" --sql-addr 127.0.0.1:45050 --http-addr 127.0.0.1:49090 >"$WORK/pc.log" 2>&1 &
PC_PID=$!
for _ in $(seq 50); do grep -q "listening" "$WORK/pc.log" && break; sleep 0.1; done

# PostgreSQL 15, scram-sha-256, 4096 iterations (its default), as a non-root user.
id postgres >/dev/null 2>&1 || useradd -r -m postgres
mkdir -p "$WORK/pg" "$WORK/pgrun"; chown postgres "$WORK/pg" "$WORK/pgrun"
echo "$PASS" > "$WORK/pgrun/pw"; chown postgres "$WORK/pgrun/pw"
su postgres -c "$PGBIN/initdb -D $WORK/pg -U bench --auth=scram-sha-256 --pwfile=$WORK/pgrun/pw" >/dev/null
su postgres -c "$PGBIN/pg_ctl -D $WORK/pg -o '-p 45432 -k $WORK/pgrun -c listen_addresses=127.0.0.1 -c max_connections=50' -l $WORK/pgrun/pg.log -w start" >/dev/null

run() { # name host-args...
  local name=$1; shift
  PGPASSWORD=$PASS pgbench -n -C -c 8 -j 2 -T "$SECS" -f "$WORK/select1.sql" -l --log-prefix="$WORK/log-$name" "$@" >"$WORK/$name.out" 2>&1
  local tps; tps=$(grep -Eo 'tps = [0-9.]+' "$WORK/$name.out" | head -1 | cut -d' ' -f3)
  local lat; lat=$(cat "$WORK/log-$name".* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {printf "%.2f %.2f", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}')
  echo "$name $tps $lat"
}
PC=$(run portcullis -h 127.0.0.1 -p 45050 -U admin@system system)
PG=$(run postgres -h 127.0.0.1 -p 45432 -U bench postgres)
read -r _ pc_tps pc_p50 pc_p99 <<<"$PC"
read -r _ pg_tps pg_p50 pg_p99 <<<"$PG"
printf "%-11s %12s %9s %9s\n" target "sign-ins/s" "p50 ms" "p99 ms"
printf "%-11s %12.1f %9s %9s\n" portcullis "$pc_tps" "$pc_p50" "$pc_p99"
printf "%-11s %12.1f %9s %9s\n" postgresql "$pg_tps" "$pg_p50" "$pg_p99"
awk -v a="$pc_tps" -v b="$pg_tps" 'BEGIN { printf "ratio (portcullis / postgresql): %.2fx  (target >= 1.5x)\n", a / b }'
