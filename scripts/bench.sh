#!/usr/bin/env bash
# Runs the benchmarks against the project's test Ceph (started if needed). Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/ceph/cluster.sh start >/dev/null
node dist/bench/rbd.js
