#!/usr/bin/env bash
# Runs a benchmark against the project's test clusters (started if needed). Prints figures; asserts nothing.
#   scripts/bench.sh          addon vs rbd CLI create/remove, and 1 TiB delete paths (bench/rbd.ts)
#   scripts/bench.sh burst    a burst of claims through the controller process (bench/burst.ts; CLAIMS=500)
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
  *) echo "usage: $0 [rbd|burst]" >&2; exit 2 ;;
esac
