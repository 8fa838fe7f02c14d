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
# The broker itself is a static binary: no dynamic loader at each start (docs/performance.md).
# Built for musl where rustup can add the target: glibc's own start-up costs 0.28 ms a process
# on these VMs (CPUID traps to the hypervisor), musl's almost nothing. Otherwise glibc, linked
# statically. Only the broker binary is replaced; `cargo build` afterwards puts the dynamic
# one back in place (correct, only slower).
musl=x86_64-unknown-linux-musl
if [ "$(uname -m)" = x86_64 ] && command -v rustup >/dev/null 2>&1 &&
  timeout 120 rustup target add "$musl" >/dev/null 2>&1 &&
  cargo build --release --locked -p broker --bin broker --target "$musl"; then
  cp "target/$musl/release/broker" target/release/broker.new
  # A rename, not a copy: target/release/broker is a hard link into cargo's own outputs.
  mv -f target/release/broker.new target/release/broker
else
  echo "setup: no musl target; the broker is linked statically against glibc" >&2
  cargo rustc --release --locked -p broker --bin broker -- -C target-feature=+crt-static
fi
