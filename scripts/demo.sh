#!/usr/bin/env bash
# The built-in demo: an unmodified worker (plain `cat`) reads a job from a FIFO and a model file
# it is allowed to read, then tries a secret it is not. Only the broker decides.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BROKER=$PWD/target/release/broker
D=$(mktemp -d /tmp/broker-demo.XXXXXX)
trap 'rm -rf "$D"' EXIT
mkdir -p "$D/model" "$D/run/jobs"
echo "weights: 0.12 0.98 0.33" > "$D/model/weights.txt"
echo "the secret the worker must never see" > "$D/secret.txt"
mkfifo "$D/run/jobs/in"
( sleep 0.3; echo "job 1: classify cat.jpg" > "$D/run/jobs/in" ) &

# LC_ALL=C: the C library would otherwise probe locale files, which this policy does not grant
# (harmless refusals, but noise in a demo).
set -x
LC_ALL=C "$BROKER" --allow-fifo "$D/run/jobs/in" --allow-read "$D/model/**" -- \
  cat "$D/run/jobs/in" "$D/model/weights.txt" "$D/secret.txt" || echo "(exit status $?: cat could not read the secret)"

# The same policy for a cooperating program that asks over the explicit protocol (BROKER_FD):
# with --explicit-only the broker serves the model only to protocol requests.
LC_ALL=C "$BROKER" --explicit-only --allow-read "$D/model/**" -- \
  target/release/brokered-cat "$D/model/weights.txt" "$D/secret.txt" || echo "(exit status $?: brokered-cat was refused the secret)"
