#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets) for SECONDS (default 10), starting from its seeds in
# fuzz/seeds and a corpus kept outside the clone. Coverage-guided (libFuzzer through cargo
# fuzz) without a sanitizer — the code fuzzed is safe Rust — on the repository's stable
# toolchain (RUSTC_BOOTSTRAP lets cargo fuzz pass its instrumentation flags). A crash stops the
# script with libFuzzer's report and the input that caused it (fuzz/artifacts/).
# Usage: bash scripts/fuzz.sh [seconds] [target…]   (CI: 10 s each, so the targets keep building)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECS="${1:-10}"; shift || true
TARGETS=("$@"); [ ${#TARGETS[@]} -gt 0 ] || TARGETS=(sql_parser jwt pg_connection http_json)
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/portcullis-fuzz-target}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install --quiet --locked cargo-fuzz --version 0.13.2
PROFILE=(--release); [ "$SECS" -le 60 ] && PROFILE=(--dev)  # a short run: build quickly
CORPUS="${FUZZ_CORPUS:-$HOME/.cache/portcullis-fuzz-corpus}"
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
for t in "${TARGETS[@]}"; do
  mkdir -p "$CORPUS/$t"
  rc=0
  cargo fuzz run -s none "${PROFILE[@]}" "$t" "$CORPUS/$t" "seeds/$t" -- \
    -max_total_time="$SECS" -max_len=4096 -print_final_stats=1 >"$LOG" 2>&1 || rc=$?
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)|DONE' "$LOG" | sed "s/^/$t: /" || true
  if [ "$rc" -ne 0 ]; then tail -n 40 "$LOG" >&2; echo "fuzz target $t failed" >&2; exit 1; fi
done
