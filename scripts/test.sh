#!/usr/bin/env bash
# The project's test command (the README's, and what CI runs). On a fresh machine it installs what is missing,
# builds the addon and the TypeScript, starts the real single-node Ceph and the real Kubernetes control plane the
# chosen suites need (reusing them when already running), and runs the suites with node's test runner.
#
#   scripts/test.sh                 every suite
#   scripts/test.sh unit addon      only these (test/<suite>/)
set -euo pipefail
cd "$(dirname "$0")/.."
# Node 24 first on PATH before anything is built or run, even when an older system npm started this script.
source scripts/node.sh

all=(unit cephcluster addon integration controlplane chart e2e faults)
suites=("$@")
[ "${#suites[@]}" -gt 0 ] || suites=("${all[@]}")

needs_ceph=false
needs_kube=false
needs_faults=false
for suite in "${suites[@]}"; do
  [ -d "test/$suite" ] || { echo "test: no suite test/$suite (have: ${all[*]})" >&2; exit 2; }
  case "$suite" in
    addon) needs_ceph=true; needs_faults=true ;;
    cephcluster|integration) needs_ceph=true ;;
    controlplane|chart) needs_kube=true ;;
    e2e|faults) needs_ceph=true; needs_kube=true ;;
  esac
done

bash scripts/ensure-deps.sh
if $needs_faults; then
  # The addon suite also loads the test-only fault-injection addon, built from the addon's own sources.
  faults=test/addon/faults/build/Release/rbd_native_faults.node
  if [ ! -f "$faults" ] || [ "$(cat test/addon/faults/build/node-abi 2>/dev/null)" != "$(rbd_node_abi)" ] ||
    [ -n "$(find addon test/addon/faults/faults.cc test/addon/faults/binding.gyp -newer "$faults" -print -quit)" ]; then
    bash scripts/build.sh faults
  fi
fi
if $needs_ceph; then bash scripts/ceph/cluster.sh start; fi
if $needs_kube; then bash scripts/kube/cluster.sh start; fi

# Node's test runner takes glob patterns (expanded by node itself, hence the quotes), not folders. One file at a
# time on every machine, as on CI's two cores: the fault tests freeze the shared Ceph (and fill it), which would stall
# every file running beside them, and the README test owns names (namespace rbd-provisioner, StorageClass rbd).
patterns=()
for suite in "${suites[@]}"; do patterns+=("dist/test/$suite/**/*.test.js"); done
exec node --test --test-concurrency=1 --test-timeout=600000 "${patterns[@]}"
