#!/usr/bin/env bash
# Builds the native addon (node-gyp) and/or the TypeScript (tsc); `faults` builds the test-only addon of
# test/addon/faults (scripts/test.sh does, for the addon suite; it is never part of `all` or the image).
# Usage: scripts/build.sh [addon|ts|all|faults]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

# node-gyp rebuild [--directory=DIR]
gyp_rebuild() {
  # node-gyp must not download headers (the machines reach only package registries):
  # point it at the headers that ship with the running Node.
  local nodedir
  nodedir=$(node -p "require('path').resolve(process.execPath, '..', '..')")
  if [ ! -f "$nodedir/include/node/node_api.h" ]; then
    echo "build: no Node headers under $nodedir/include/node; install them (Debian: libnode-dev)" >&2
    exit 1
  fi
  npx --no-install node-gyp rebuild --nodedir="$nodedir" --jobs=max --loglevel=warn "$@"
}

build_addon() {
  gyp_rebuild
}

build_faults() {
  gyp_rebuild --directory=test/addon/faults
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
