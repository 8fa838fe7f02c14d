#!/usr/bin/env bash
# Fuzz the protocol decoder (protocol/fuzz, target "decode") for SECONDS (default 10).
# Run it longer by hand, e.g. `scripts/fuzz.sh 3600`; the corpus in protocol/fuzz/corpus grows
# across runs. cargo-fuzz needs nightly features: on a stable toolchain RUSTC_BOOTSTRAP=1
# enables them for this build only.
set -euo pipefail
cd "$(dirname "$0")/../protocol/fuzz"
seconds=${1:-10}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked --quiet cargo-fuzz
RUSTC_BOOTSTRAP=1 cargo fuzz run decode -- -max_total_time="$seconds" 2>&1 | tail -n 3
