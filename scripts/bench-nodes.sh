#!/usr/bin/env bash
# Token sign-ins per second with one node on SQLite, one node on a PostgreSQL store, and two
# nodes on that store (pgbench split between them), in one run (issue 15's benchmark). Each
# run is pgbench -C (a new connection, so a full sign-in, per transaction) running SELECT 1
# with an RS256 access token from the test provider (tests/idp) as PGPASSWORD, 8 clients in
# all. Prints sign-ins per second, the Portcullis processes' CPU per sign-in, and the store's
# CPU per sign-in (the store cluster's postmaster and backends, from /proc before and after).
# Usage: bash scripts/bench-nodes.sh [seconds per run, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-target}"
PGBIN=/usr/lib/postgresql/15/bin
command -v pgbench >/dev/null && [ -x "$PGBIN/initdb" ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 postgresql-client >/dev/null; }
cargo build --release --quiet -p portcullis
BIN="$CARGO_TARGET_DIR/release/portcullis"
WORK=$(mktemp -d /tmp/portcullis-bench-nodes.XXXX); chmod 755 "$WORK"
PASS=Bench-pass-1
STORE_PASS=Store-pass-1
echo "SELECT 1;" > "$WORK/select1.sql"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -d "$WORK/store" ] && su postgres -c "$PGBIN/pg_ctl -D $WORK/store -m immediate stop" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

# The store: PostgreSQL 15 on loopback, scram-sha-256, as a non-root user.
id postgres >/dev/null 2>&1 || useradd -r -m postgres
mkdir -p "$WORK/store" "$WORK/storerun"; chown postgres "$WORK/store" "$WORK/storerun"
echo "$STORE_PASS" > "$WORK/storerun/pw"; chown postgres "$WORK/storerun/pw"
su postgres -c "$PGBIN/initdb -D $WORK/store -U portcullis --auth=scram-sha-256 --pwfile=$WORK/storerun/pw" >/dev/null
su postgres -c "$PGBIN/pg_ctl -D $WORK/store -o '-p 46432 -k $WORK/storerun -c listen_addresses=127.0.0.1' -l $WORK/storerun/pg.log -w start" >/dev/null
PGPASSWORD=$STORE_PASS psql -X -q -h 127.0.0.1 -p 46432 -U portcullis postgres -c "CREATE DATABASE portcullis" >/dev/null
STORE_PM=$(head -1 "$WORK/store/postmaster.pid")
STORE_URL="postgresql://portcullis@127.0.0.1:46432/portcullis?sslmode=disable"

# The provider and a client-credentials access token.
npm ci --prefix tests/idp --no-audit --no-fund --silent
node tests/idp/idp.mjs --port 0 --keys "$WORK/jwks.json" >"$WORK/idp.out" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 100); do grep -q IDP_READY "$WORK/idp.out" && break; sleep 0.1; done
ISSUER=$(awk '/IDP_READY/ {print $2}' "$WORK/idp.out")
TOKEN=$(node tests/idp/token.mjs --issuer "$ISSUER" --client rs256-client --grant client_credentials | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

HZ=$(getconf CLK_TCK)
# ticks PID...: user+system clock ticks of the processes, their reaped children's included.
ticks() { local s=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && s=$((s + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$p/stat"))); done; echo "$s"; }
store_ticks() { ticks "$STORE_PM" $(pgrep -P "$STORE_PM" || true); }

# serve NAME [store]: starts a node on ports the OS chooses (pgbench -C's many client ports
# could hold a fixed one), waits until it listens; sets NAME_PID and NAME_PORT (its SQL port).
serve() {
  local name=$1 store=${2:-}
  if [ -n "$store" ]; then
    PORTCULLIS_STORE_URL=$STORE_URL PORTCULLIS_STORE_PASSWORD=$STORE_PASS PORTCULLIS_ADMIN_PASSWORD=$PASS PORTCULLIS_LOG=warn \
      "$BIN" serve --data-dir "$WORK/$name" --sql-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 >"$WORK/$name.log" 2>&1 &
  else
    PORTCULLIS_ADMIN_PASSWORD=$PASS PORTCULLIS_LOG=warn \
      "$BIN" serve --data-dir "$WORK/$name" --sql-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 >"$WORK/$name.log" 2>&1 &
  fi
  PIDS+=($!)
  eval "${name}_PID=$!"
  for _ in $(seq 100); do grep -q "listening" "$WORK/$name.log" && break; sleep 0.1; done
  grep -q "listening" "$WORK/$name.log" || { cat "$WORK/$name.log"; exit 1; }
  eval "${name}_PORT=$(sed -n 's/.*SQL on 127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/$name.log" | head -1)"
}
# configure PORT: the integration on `system` (once per catalog).
configure() {
  PGPASSWORD=$PASS psql -X -q -h 127.0.0.1 -p "$1" -U admin@system system \
    -c "CREATE GROUP robots" -c "GRANT USE ON DATABASE system TO GROUP robots" \
    -c "ALTER DATABASE system SET SSO INTEGRATION oidc issuer = \"$ISSUER\", client_id = \"rs256-client\", client_secret = \"rs256-client-secret\", default_group = robots, groups_claim_ids = [groups], additional_scopes = [email, groups]" >/dev/null
}
warm() { PGPASSWORD=$TOKEN psql -X -q -h 127.0.0.1 -p "$1" -U access_token system -c "SELECT 1" >/dev/null; }
# load NAME CLIENTS PORT...: pgbench -C against each port at once (CLIENTS each); prints the
# summed sign-ins per second and the count.
load() {
  local name=$1 clients=$2; shift 2
  local i=0 port
  for port in "$@"; do
    PGPASSWORD=$TOKEN pgbench -n -C -c "$clients" -j 1 -T "$SECS" -f "$WORK/select1.sql" -h 127.0.0.1 -p "$port" -U access_token system >"$WORK/$name.$i.out" 2>&1 &
    i=$((i + 1))
  done
  wait $(jobs -p | tail -n "$#")
  sleep 0.5
  cat "$WORK/$name".*.out | awk '/tps = / { for (i = 1; i <= NF; i++) if ($i == "=") { t += $(i + 1); break } } /actually processed:/ { n += $NF } END { printf "%.1f %d\n", t, n }'
}
# measure NAME CLIENTS "PIDS" PORT...: one load with the nodes' and the store's CPU around it.
measure() {
  local name=$1 clients=$2 pids=$3; shift 3
  local n0 s0 n1 s1 tps count
  local x0 x1
  x0=$(xacts); n0=$(ticks $pids); s0=$(store_ticks)
  read -r tps count <<<"$(load "$name" "$clients" "$@")"
  n1=$(ticks $pids); s1=$(store_ticks)
  sleep 1.5; x1=$(xacts)  # backends report their counts at most once a second
  awk -v name="$name" -v tps="$tps" -v n="$count" -v dn="$((n1 - n0))" -v ds="$((s1 - s0))" -v dx="$((x1 - x0))" -v hz="$HZ" \
    'BEGIN { printf "%-28s %12.1f %22.3f %22.4f %18.4f\n", name, tps, dn * 1000 / hz / n, ds * 1000 / hz / n, dx / n }'
}
# xacts: transactions committed in the store's database so far (0 before it exists).
xacts() { PGPASSWORD=$STORE_PASS psql -X -q -At -h 127.0.0.1 -p 46432 -U portcullis postgres -c "SELECT coalesce(sum(xact_commit), 0) FROM pg_stat_database WHERE datname = 'portcullis'"; }

printf "%-28s %12s %22s %22s %18s\n" setup "sign-ins/s" "nodes' CPU ms/sign-in" "store CPU ms/sign-in" "store xacts/sign-in"
# 1. One node, SQLite.
serve lite
configure "$lite_PORT"; warm "$lite_PORT"
measure "1 node, SQLite" 8 "$lite_PID" "$lite_PORT"
kill "$lite_PID"; wait "$lite_PID" 2>/dev/null || true
# 2. One node on the PostgreSQL store.
serve one store
configure "$one_PORT"; warm "$one_PORT"
measure "1 node, PostgreSQL store" 8 "$one_PID" "$one_PORT"
# 3. A second node on the same store (the first node's secret.key), pgbench split 4 + 4.
mkdir -p "$WORK/two"; chmod 700 "$WORK/two"; cp "$WORK/one/secret.key" "$WORK/two/secret.key"
serve two store
warm "$two_PORT"
measure "2 nodes, PostgreSQL store" 4 "$one_PID $two_PID" "$one_PORT" "$two_PORT"
