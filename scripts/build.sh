#!/usr/bin/env bash
# Builds the native addon (node-gyp) and/or the TypeScript (tsc), on Node 24 (scripts/node.sh); `faults` builds
# the test-only addon of test/addon/faults (scripts/test.sh does, for the addon suite; never part of `all` or the
# image).
# Usage: scripts/build.sh [addon|ts|all|faults]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node.sh

# node-gyp rebuild [--directory=DIR]
gyp_rebuild() {
  # node-gyp must not download headers (the machines reach only package registries): point it at the headers
  # of the Node in use, which node.sh found or fetched with it.
  local nodedir=$npm_config_nodedir
  if [ ! -f "$nodedir/include/node/node_api.h" ]; then
    echo "build: no Node headers under $nodedir/include/node" >&2
    exit 1
  fi
  npx --no-install node-gyp rebuild --nodedir="$nodedir" --jobs=max --loglevel=warn "$@"
}

build_addon() {
  gyp_rebuild
  # Which Node ABI this addon was built for: ensure-deps.sh rebuilds it when the Node in use has another.
  rbd_node_abi > build/node-abi
}

build_faults() {
  gyp_rebuild --directory=test/addon/faults
  rbd_node_abi > test/addon/faults/build/node-abi
}

build_ts() {
  # From scratch: output of a source that was moved or deleted must not linger (node --test would run it).
  rm -rf dist
  npx --no-install tsc -p .
}

case "${1:-all}" in
  addon) build_addon ;;
  ts) build_ts ;;
  all) build_addon; build_ts ;;
  faults) build_faults ;;
  *) echo "usage: $0 [addon|ts|all|faults]" >&2; exit 2 ;;
esac
