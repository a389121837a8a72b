#!/usr/bin/env bash
# Builds the container image from the repository's Dockerfile with whichever engine this machine has: docker,
# podman or buildah (in that order; CONTAINER_ENGINE=<name> chooses). No make, no registry login: the release
# workflow (.github/workflows/release.yaml) builds and pushes the published multi-arch image.
#
# Usage: scripts/image.sh [--tag IMAGE] [--platform PLATFORM] [--print]
#   --tag       default rbd-provisioner:<package.json version> (the chart's appVersion, its default tag)
#   --platform  e.g. linux/arm64 (default: the engine's own); several (a,b) need docker buildx or podman/buildah
#   --print     print the build command instead of running it
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

version=$(sed -n 's/^  "version": "\([^"]*\)".*/\1/p' "$repo_root/package.json")
[[ -n $version ]] || { echo "image.sh: no version in package.json" >&2; exit 1; }
tag=rbd-provisioner:$version
platform=
print=false
while (($#)); do
  case $1 in
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    --platform) platform=${2:?--platform needs a value}; shift 2 ;;
    --print) print=true; shift ;;
    -h | --help) sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

# docker is only usable with a daemon to talk to (a client alone is common); podman and buildah need none.
usable() {
  case $1 in
    docker) docker info >/dev/null 2>&1 ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

engine=${CONTAINER_ENGINE:-}
if [[ -z $engine ]]; then
  skipped=
  for candidate in docker podman buildah; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    if usable "$candidate"; then engine=$candidate; break; fi
    skipped+=" $candidate (no daemon answers)"
  done
  [[ -n $engine ]] || {
    echo "image.sh: no usable container engine:${skipped:- none installed}; install docker, podman or buildah (or set CONTAINER_ENGINE)" >&2
    exit 1
  }
elif ! command -v "$engine" >/dev/null 2>&1; then
  echo "image.sh: CONTAINER_ENGINE=$engine is not on PATH" >&2
  exit 1
fi

case $engine in
  docker | podman) command=("$engine" build) ;;
  buildah) command=(buildah build) ;;
  *) echo "image.sh: unsupported engine $engine (docker, podman or buildah)" >&2; exit 2 ;;
esac

# The OCI labels the Dockerfile declares: the version, the commit and the build time (SOURCE_DATE_EPOCH for a
# reproducible stamp).
revision=$(git -C "$repo_root" rev-parse HEAD 2>/dev/null || echo unknown)
if [[ -n ${SOURCE_DATE_EPOCH:-} ]]; then
  created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
else
  created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
fi
command+=(--file "$repo_root/Dockerfile" --tag "$tag"
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$created")
[[ -z $platform ]] || command+=(--platform "$platform")
command+=("$repo_root")

if $print; then
  printf '%q ' "${command[@]}"
  printf '\n'
else
  echo "image.sh: ${command[*]}" >&2
  exec "${command[@]}"
fi
