#!/usr/bin/env bash
# The test command: set up, check formatting and lints, build, and run every test (unit,
# end-to-end under the real broker, unprivileged, and the public conformance cases).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release --locked -- -D warnings
cargo test --workspace --release --locked
