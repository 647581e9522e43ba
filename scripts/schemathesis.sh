#!/usr/bin/env bash
# Property-based tests of the HTTP API against its own OpenAPI document (/openapi.json) with
# schemathesis (PyPI, pinned, in a virtual environment outside the clone): a release build of
# the server, signed in as admin@system (a Bearer token from /v1/login), every operation, all
# checks — no 5xx, status codes, content types, headers and bodies as documented, requests
# that break the schema refused — but "schema-valid data accepted" (the statement of
# /v1/execute is SQL text, which no schema can tell valid from invalid).
# Usage: bash scripts/schemathesis.sh [examples per operation, default 300]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-300}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-target}"
VENV="$HOME/.cache/portcullis-schemathesis"
[ -x "$VENV/bin/schemathesis" ] || { /usr/bin/python3 -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check schemathesis==4.32.5; }
cargo build --release --quiet -p portcullis
WORK=$(mktemp -d /tmp/portcullis-st.XXXX)
PASS=Schema-pass-1
cleanup() { [ -n "${PC_PID:-}" ] && kill "$PC_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
PORTCULLIS_SSO_STARTS_PER_SECOND=0 PORTCULLIS_ADMIN_PASSWORD=$PASS PORTCULLIS_LOG=warn \
  "$CARGO_TARGET_DIR/release/portcullis" serve --data-dir "$WORK/pc" \
  --sql-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 >"$WORK/pc.log" 2>&1 &
PC_PID=$!
for _ in $(seq 100); do grep -q "listening" "$WORK/pc.log" && break; sleep 0.1; done
HTTP=$(sed -n 's/.*HTTP on \([0-9.:]*\).*/\1/p' "$WORK/pc.log" | head -1)
TOKEN=$(curl -s -X POST "http://$HTTP/v1/login" -H 'content-type: application/json' \
  -d "{\"username\":\"admin@system\",\"password\":\"$PASS\"}" \
  | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
"$VENV/bin/schemathesis" run "http://$HTTP/openapi.json" --checks all \
  --exclude-checks positive_data_acceptance -H "Authorization: Bearer $TOKEN" \
  --max-examples "$N" --no-color
