#!/usr/bin/env bash
# The test command: set up, check formatting, lints and the API docs, build, and run every
# test (unit, end-to-end under the real broker, unprivileged, and the public conformance cases),
# then fuzz the protocol decoder briefly.
# Ends with one totals line, "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --release --locked
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --release --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
# A brief run of the decoder's fuzz target counts as one more test.
if scripts/fuzz.sh 10; then
  echo "test result: ok. 1 passed; 0 failed; (fuzz decode)" >>"$log"
else
  status=1
  echo "test result: FAILED. 0 passed; 1 failed; (fuzz decode)" >>"$log"
fi
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
