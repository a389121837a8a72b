# The Node.js every script runs: Node 24 LTS. Sourced (not run) by each entry point before it builds or runs
# anything, so that `npm test` started by an older system npm still builds and tests on Node 24.
#
# The node on PATH is kept when it is already Node 24 and has its headers (the container build, a developer on 24).
# Otherwise the pinned release below is fetched once from the npm registry, where it is published as the package
# node-linux-<arch> (the official build: bin/node and include/node, no npm), checked against the pinned sha512 and
# the version it reports, and cached outside the repository in
#   $cache/node/<version>/{bin/node,include/node}
# where $cache is ${RBD_PROVISIONER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rbd-provisioner}.
#
# After sourcing, that node is first on PATH (so npm, npx, tsc and node-gyp, whose shebangs say `env node`, run on it
# too), NODE and npm_node_execpath name it, and npm_config_nodedir points node-gyp at its own headers, so that no
# build downloads headers from outside the registries.
# shellcheck shell=bash

# Keep equal to package.json's engines, its @types/node major, the Dockerfile's node image and README.md
# (test/unit/toolchain/node-version.test.ts checks).
rbd_node_major=24
rbd_node_version=24.22.3
# sha512 (hex) of the registry's tarball for each architecture, so a changed package fails loudly.
rbd_node_sha512_x64=287b286fe16ff587ab013bd8ba331b8b226a9d10af2edadcaff79336a46a88e486a7dec43a244fd723f8efe9271a043fc677375d8f31ce45b9f3b76567336a44
rbd_node_sha512_arm64=219c74279dbfd4d0f002c6368b2591f6794f218b98be24d67ad8e3f3e125bd8421dbe5d184b7c27e46c5105ff63b9bc623685c51bc8f34757e9f3df8d856c95f

rbd_node_log() { printf '[node] %s\n' "$*" >&2; }

# Prints the install prefix (the folder holding bin/node and include/node) of the node on PATH when it is Node
# $rbd_node_major with headers; prints nothing otherwise.
rbd_node_usable_prefix() {
  local version execpath prefix
  version=$(node --version 2>/dev/null) || return 0
  [[ $version == "v$rbd_node_major".* ]] || return 0
  execpath=$(node -p process.execPath 2>/dev/null) || return 0
  prefix=$(dirname "$(dirname "$execpath")")
  [[ -f $prefix/include/node/node_api.h ]] || return 0
  printf '%s\n' "$prefix"
}

# Fetches the pinned release into the cache (once; concurrent callers wait for the first) and prints its prefix.
rbd_node_fetch() {
  local arch sha512
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 sha512=$rbd_node_sha512_x64 ;;
    aarch64 | arm64) arch=arm64 sha512=$rbd_node_sha512_arm64 ;;
    *) rbd_node_log "no pinned Node.js for $(uname -m); install Node $rbd_node_major with its headers"; return 1 ;;
  esac
  local cache=${RBD_PROVISIONER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rbd-provisioner}/node
  local prefix=$cache/$rbd_node_version
  if [[ $("$prefix/bin/node" --version 2>/dev/null) == "v$rbd_node_version" ]]; then
    printf '%s\n' "$prefix"
    return 0
  fi
  command -v npm >/dev/null 2>&1 || { rbd_node_log "npm is needed to fetch Node $rbd_node_version"; return 1; }
  mkdir -p "$cache"
  (
    exec 9>"$cache/.lock"
    flock 9
    # Another caller may have finished while this one waited.
    [[ $("$prefix/bin/node" --version 2>/dev/null) == "v$rbd_node_version" ]] && exit 0
    local package=node-linux-$arch@$rbd_node_version scratch reported
    rbd_node_log "fetching Node.js $rbd_node_version (npm package $package) into $prefix"
    scratch=$(mktemp -d "$cache/.fetch.XXXXXX")
    trap 'rm -rf "$scratch"' EXIT
    # npm pack takes just the tarball: no install scripts, no project context.
    (cd "$scratch" && npm pack --silent "$package" >/dev/null) || { rbd_node_log "npm pack $package failed"; exit 1; }
    set -- "$scratch"/*.tgz
    if [[ $(sha512sum "$1" | cut -d' ' -f1) != "$sha512" ]]; then
      rbd_node_log "$package does not match its pinned sha512; not using it"
      exit 1
    fi
    tar -xzf "$1" -C "$scratch"
    reported=$("$scratch/package/bin/node" --version 2>&1) || reported="(did not run: $reported)"
    if [[ $reported != "v$rbd_node_version" ]]; then
      rbd_node_log "$package reports $reported, expected v$rbd_node_version"
      exit 1
    fi
    [[ -f $scratch/package/include/node/node_api.h ]] || { rbd_node_log "$package has no headers"; exit 1; }
    # Move into place only once checked, so a half-fetched Node is never "cached".
    rm -rf "$prefix"
    mv "$scratch/package" "$prefix"
  ) || return 1
  printf '%s\n' "$prefix"
}

rbd_node_use() {
  local prefix
  prefix=$(rbd_node_usable_prefix)
  if [[ -z $prefix ]]; then
    prefix=$(rbd_node_fetch) || return 1
    PATH=$prefix/bin:$PATH
  fi
  hash -r
  NODE=$prefix/bin/node
  # npm records the node that started it here; scripts npm runs in turn must see this one.
  npm_node_execpath=$NODE
  npm_config_nodedir=$prefix
  export PATH NODE npm_node_execpath npm_config_nodedir
}

# The addon's ABI under the node in use, as node-gyp's prebuild tools name it (node-v137-linux-x64): build.sh records
# it beside the addon, and ensure-deps.sh rebuilds an addon recorded under another.
rbd_node_abi() {
  node -p '`node-v${process.versions.modules}-${process.platform}-${process.arch}`'
}

rbd_node_use || { echo "no Node.js $rbd_node_major to build and run with (see the messages above)" >&2; return 1; }
