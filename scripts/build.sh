#!/usr/bin/env bash
# Builds the native addon (node-gyp) and/or the TypeScript (tsc), on Node 24 (scripts/node.sh).
# Usage: scripts/build.sh [addon|ts|all]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node.sh

build_addon() {
  # node-gyp must not download headers (the machines reach only package registries): point it at the headers
  # of the Node in use, which node.sh found or fetched with it.
  local nodedir=$npm_config_nodedir
  if [ ! -f "$nodedir/include/node/node_api.h" ]; then
    echo "build: no Node headers under $nodedir/include/node" >&2
    exit 1
  fi
  npx --no-install node-gyp rebuild --nodedir="$nodedir" --jobs=max --loglevel=warn
  # Which Node ABI this addon was built for: ensure-deps.sh rebuilds it when the Node in use has another.
  rbd_node_abi > build/node-abi
}

build_ts() {
  npx --no-install tsc -p .
}

case "${1:-all}" in
  addon) build_addon ;;
  ts) build_ts ;;
  all) build_addon; build_ts ;;
  *) echo "usage: $0 [addon|ts|all]" >&2; exit 2 ;;
esac
