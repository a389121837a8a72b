#!/usr/bin/env bash
# Stops the test Ceph and control plane that scripts/test.sh started (the sandbox has its own: npm run sandbox:down).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/kube/cluster.sh stop
bash scripts/ceph/cluster.sh stop
