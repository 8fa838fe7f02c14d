#!/usr/bin/env bash
# The benchmark: set up, build, and measure every performance figure of the broker in one run,
# each against a baseline measured in the same run. Writes docs/benchmarks.md (about 4 minutes).
# Extra arguments go to broker-bench (e.g. --iterations 5000 --rounds 3 for a quick look).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
command -v taskset >/dev/null 2>&1 || { echo "bench: taskset (util-linux) is needed" >&2; exit 1; }
exec target/release/broker-bench --write docs/benchmarks.md "$@"
