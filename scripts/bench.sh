#!/usr/bin/env bash
# Runs a benchmark against the project's test clusters (started if needed). Prints figures; asserts nothing.
#   scripts/bench.sh          addon vs rbd CLI create/remove, and 1 TiB delete paths (bench/rbd.ts)
#   scripts/bench.sh burst    a burst of claims through the controller process (bench/burst.ts; CLAIMS=500)
#   scripts/bench.sh copies   clone claims and VolumeSnapshots of a 10 GiB claim, one at a time (bench/copies.ts; COPIES=20)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node.sh
bash scripts/ensure-deps.sh
bash scripts/ceph/cluster.sh start >/dev/null
case "${1:-rbd}" in
  rbd) node dist/bench/rbd.js ;;
  burst)
    bash scripts/kube/cluster.sh start >/dev/null
    node dist/bench/burst.js
    ;;
  copies)
    bash scripts/kube/cluster.sh start >/dev/null
    node dist/bench/copies.js
    ;;
  *) echo "usage: $0 [rbd|burst|copies]" >&2; exit 2 ;;
esac
