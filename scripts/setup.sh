#!/usr/bin/env bash
# Install what building and testing the broker needs on a fresh Debian machine, then build.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
dpkg -s libseccomp-dev >/dev/null 2>&1 || need+=(libseccomp-dev)   # links the filter builder
command -v gcc >/dev/null 2>&1 || need+=(gcc)                        # builds the C test targets
command -v g++ >/dev/null 2>&1 || need+=(g++)                        # libFuzzer (scripts/fuzz.sh)
dpkg -s libc6-dev >/dev/null 2>&1 || need+=(libc6-dev)               # static test targets
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)             # unprivileged tests, taskset
command -v bc >/dev/null 2>&1 || need+=(bc)                          # conformance runner
command -v script >/dev/null 2>&1 || need+=(bsdutils)                # conformance runner (pty)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --workspace --release --locked
# The broker itself is linked statically: no dynamic loader at every start (about 0.25 ms of
# `broker -- /bin/true`, docs/performance.md). Only this final link changes, so nothing else
# (proc-macros, tests) is affected; `cargo build` afterwards puts the dynamic one back in place.
cargo rustc --release --locked -p broker --bin broker -- -C target-feature=+crt-static
