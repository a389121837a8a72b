#!/usr/bin/env bash
# Makes a fresh machine ready to build and test: Node 24 (scripts/node.sh), Debian packages, npm dependencies, the
# addon and the TypeScript. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node.sh

# Build tools and the Ceph client development files the addon links against.
packages=(build-essential python3 librbd-dev librados-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "ensure-deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm dependencies: reinstall when the lock file changed since the last install.
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  npm ci --no-audit --no-fund --ignore-scripts
fi

# The addon, rebuilt when a source is newer than the binary or it was built for another Node ABI (a build/ made
# under Node 20 is not reused under 24); then the TypeScript (tsc is incremental enough).
addon=build/Release/rbd_native.node
if [ ! -f "$addon" ] || [ -n "$(find addon binding.gyp -newer "$addon" -print -quit)" ] ||
  [ "$(cat build/node-abi 2>/dev/null)" != "$(rbd_node_abi)" ]; then
  bash scripts/build.sh addon
fi
bash scripts/build.sh ts
