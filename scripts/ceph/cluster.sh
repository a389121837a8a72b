#!/usr/bin/env bash
# A real single-node Ceph for tests and the sandbox: one msgr2 monitor on 127.0.0.1, one memstore OSD and one
# manager (the manager is what makes pool usage and `ceph df` figures real). Everything lives under one private
# state directory, so clusters with different state directories run side by side. Runs without systemd.
#
# Usage: scripts/ceph/cluster.sh start|stop|status|env
#   start   install missing packages (root), then start the cluster unless it is already up; idempotent and
#           safe to run concurrently (flock). A cluster whose daemons died (e.g. a reboot) is wiped and rebuilt,
#           since a memstore OSD comes back empty anyway.
#   stop    stop exactly the daemons of this state directory and remove their data.
#   status  exit 0 only when the cluster answers and its OSD is up and in.
#   env     print `export` lines for CEPH_CONF, CEPH_KEYRING, CEPH_MON_HOST, CEPH_ADMIN_KEYRING (paths and the
#           monitor address, never a key) and write the same to <state>/ceph/env.
#
# State directory: ${RBD_PROVISIONER_STATE:-<repo>/.state}/ceph
set -euo pipefail

readonly PACKAGES=(ceph-mon ceph-osd ceph-mgr ceph-common librbd-dev librados-dev)
readonly DAEMONS=(mon.a osd.0 mgr.x)
# memstore keeps the OSD's data in memory; 2 GiB is plenty for thin test images and keeps RAM use bounded.
readonly MEMSTORE_BYTES=2147483648
# Seconds: any single ceph CLI call, the wait for a usable cluster, and the grace before SIGKILL on stop.
readonly CLI_TIMEOUT=30
readonly CONNECT_TIMEOUT=10
readonly READY_TIMEOUT=90
readonly STOP_GRACE=10

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
state_root=$(realpath -m -- "${RBD_PROVISIONER_STATE:-$repo_root/.state}")
readonly DIR=$state_root/ceph
readonly CONF=$DIR/ceph.conf
readonly ADMIN_KEYRING=$DIR/ceph.client.admin.keyring
readonly PORT_FILE=$DIR/mon-port
readonly READY_FILE=$DIR/ready
readonly ENV_FILE=$DIR/env
readonly LOCK_FILE=$DIR/lock

log() { echo "ceph-cluster: $*" >&2; }
die() { log "$*"; exit 1; }

# connect_timeout may be set for one call, e.g. short attempts while a daemon starts.
ceph_cli() {
  timeout -k 5 "$CLI_TIMEOUT" ceph -c "$CONF" --connect-timeout "${connect_timeout:-$CONNECT_TIMEOUT}" "$@"
}
rbd_cli() {
  timeout -k 5 "$CLI_TIMEOUT" rbd -c "$CONF" --client-mount-timeout "$CONNECT_TIMEOUT" \
    --rados-osd-op-timeout "$CONNECT_TIMEOUT" "$@"
}

ensure_packages() {
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ] || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}); run as root to install them"
  log "installing ${missing[*]}"
  # stdout stays clean for callers; a start of another state directory may hold the dpkg lock for a while.
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 \
    "${PACKAGES[@]}" >&2
}

# A pid is ours only if it is a live ceph daemon started with this state directory's ceph.conf; this guards
# against stale pid files after a reboot and never touches another state directory's cluster.
# Optional second argument: the daemon binaries to accept (default: all three).
is_our_daemon() {
  local pid=$1 binaries=${2:-ceph-mon ceph-osd ceph-mgr} arg0 cmdline
  # The cheap builtin read of argv[0] first: this runs for every process on the machine. A zombie reads empty.
  IFS= read -r -d '' arg0 2>/dev/null <"/proc/$pid/cmdline" || return 1
  [[ -n $arg0 && " $binaries " == *" $arg0 "* ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  case "$cmdline" in
    ceph-mon\ *"-c $CONF "* | ceph-osd\ *"-c $CONF "* | ceph-mgr\ *"-c $CONF "*) return 0 ;;
    *) return 1 ;;
  esac
}

# Every live daemon of this state directory, pid files or not (a pid file can be lost to a crash).
# Optional argument: the daemon binaries to look for.
our_pids() {
  local pid proc
  {
    for proc in /proc/[0-9]*; do
      pid=${proc#/proc/}
      if is_our_daemon "$pid" "${1:-}"; then echo "$pid"; fi
    done
  } | sort -un
}

daemons_alive() {
  local name pid
  for name in "${DAEMONS[@]}"; do
    pid=$(cat "$DIR/pid/$name" 2>/dev/null) || return 1
    is_our_daemon "$pid" || return 1
  done
}

# Usable = every daemon alive, the monitor answers, the OSD is up and in, and the manager is active.
cluster_usable() {
  local status
  [ -f "$CONF" ] || return 1
  status=$(ceph_cli status -f json 2>/dev/null) || return 1
  [[ $status == *'"num_up_osds":1,'* && $status == *'"num_in_osds":1,'* && $status == *'"available":true'* ]]
}

healthy() { [ -f "$READY_FILE" ] && daemons_alive && cluster_usable; }

# SIGTERM, then SIGKILL after a grace period. Daemons are session leaders: signalling the group means nothing
# they spawned survives.
stop_pids() {
  local binaries=$1 pids pid deadline
  pids=$(our_pids "$binaries")
  [ -n "$pids" ] || return 0
  for pid in $pids; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + STOP_GRACE))
  while [ -n "$(our_pids "$binaries")" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  pids=$(our_pids "$binaries")
  [ -n "$pids" ] || return 0
  log "still running after ${STOP_GRACE}s, sending SIGKILL: $(echo $pids)"
  for pid in $pids; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + 5))
  while [ -n "$(our_pids "$binaries")" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  [ -z "$(our_pids "$binaries")" ] || die "could not stop pids $(echo $(our_pids "$binaries"))"
}

# The monitor goes last: an OSD stopping after it waits seconds trying to tell it that it is going down.
stop_daemons() {
  stop_pids "ceph-osd ceph-mgr"
  stop_pids "ceph-mon ceph-osd ceph-mgr"
}

# Removes everything but the lock (other processes may be waiting on it) and the monitor port (so a restarted
# cluster keeps its address).
clean_state() {
  find "$DIR" -mindepth 1 -maxdepth 1 ! -name lock ! -name mon-port -exec rm -rf {} +
}

# With `strict`, any socket on the port counts; otherwise only a listener does, so the leftovers of our own
# stopped monitor (TIME_WAIT, FIN_WAIT) do not cost it its port: the messenger binds with SO_REUSEADDR.
port_in_use() {
  local hex tables=() listen_only=0
  hex=$(printf ':%04X' "$1")
  [ "${2:-}" = strict ] || listen_only=1
  [ -r /proc/net/tcp ] && tables+=(/proc/net/tcp)
  [ -r /proc/net/tcp6 ] && tables+=(/proc/net/tcp6)
  awk -v suffix="$hex" -v listen_only="$listen_only" '
    FNR > 1 && substr($2, length($2) - 4) == suffix && (!listen_only || $4 == "0A") { found = 1 }
    END { exit !found }' "${tables[@]}"
}

# Keeps the port of an earlier start when it is still free; otherwise picks a free one below the ephemeral range
# (32768+), so outgoing connections cannot take it between runs.
choose_port() {
  local port tries
  port=$(cat "$PORT_FILE" 2>/dev/null || true)
  if [[ $port =~ ^[0-9]+$ ]] && ! port_in_use "$port"; then echo "$port"; return; fi
  for tries in $(seq 1 200); do
    port=$((20000 + RANDOM % 12000))
    port_in_use "$port" strict || { echo "$port" >"$PORT_FILE"; echo "$port"; return; }
  done
  die "no free port found for the monitor"
}

write_conf() {
  local fsid=$1 port=$2
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$port]
ms bind msgr1 = false
ms bind msgr2 = true
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $DIR/run
crash dir = $DIR/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
# Tests create many small pools; the default (250) would cap them at about 30 live pools.
mon max pg per osd = 2000
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 5
mon data avail crit = 1
# One monitor has nobody to batch proposals with: committing map changes every 0.1 s instead of every second
# takes seconds off every step that waits for a new OSD map (OSD boot, PG creation, pool create).
paxos propose interval = 0.1
# Fresh pool usage figures within about a second (quota and df tests), instead of every 5 s.
mgr stats period = 1
mgr tick period = 1

[mon]
mon data = $DIR/mon/\$cluster-\$id
keyring = $DIR/mon/\$cluster-\$id/keyring
log file = $DIR/log/\$name.log
admin socket = $DIR/run/\$cluster-\$name.asok
pid file = $DIR/run/\$name.pid
mon cluster log file = $DIR/log/\$cluster.\$channel.log

[osd]
osd data = $DIR/osd/\$cluster-\$id
keyring = $DIR/osd/\$cluster-\$id/keyring
log file = $DIR/log/\$name.log
admin socket = $DIR/run/\$cluster-\$name.asok
pid file = $DIR/run/\$name.pid
public addr = 127.0.0.1
cluster addr = 127.0.0.1
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
crush location = root=default host=localhost
osd crush initial weight = 1

[mgr]
mgr data = $DIR/mgr/\$cluster-\$id
keyring = $DIR/mgr/\$cluster-\$id/keyring
log file = $DIR/log/\$name.log
admin socket = $DIR/run/\$cluster-\$name.asok
pid file = $DIR/run/\$name.pid
public addr = 127.0.0.1
# Always-on modules cannot be skipped (the cluster reports them as failed), so only the optional ones that are
# slow to load or reach out are kept off.
mgr initial modules =
mgr disabled modules = alerts cephadm dashboard diskprediction_local influx insights iostat k8sevents localpool mds_autoscaler mirroring nfs osd_perf_query osd_support prometheus restful rook selftest snap_schedule stats telegraf test_orchestrator zabbix

[client]
keyring = $ADMIN_KEYRING
# Many clients share the name client.admin: a per-name admin socket or log file would collide.
admin socket =
log file =
EOF
}

new_keyring() {
  local file=$1 name=$2
  shift 2
  ceph-authtool --create-keyring "$file" --gen-key -n "$name" "$@" >/dev/null
}

# Starts a daemon in the foreground of its own session, output to its log, without our lock descriptor (an
# inherited descriptor would hold the start lock for the daemon's lifetime).
launch() {
  local name=$1
  shift
  setsid "$@" -f -c "$CONF" </dev/null >>"$DIR/log/$name.out" 2>&1 9>&- &
  echo $! >"$DIR/pid/$name"
}

fail_with_logs() {
  local name file
  log "$1"
  for name in bootstrap "${DAEMONS[@]}"; do
    for file in "$DIR/log/$name.out" "$DIR/log/$name.log"; do
      [ -s "$file" ] || continue
      log "--- last lines of $file"
      tail -n 15 "$file" >&2 || true
    done
  done
  stop_daemons || true
  exit 1
}

# One bootstrap step: its output goes to log/bootstrap.out; a failure shows the logs and stops the daemons.
step() {
  local what=$1
  shift
  "$@" >>"$DIR/log/bootstrap.out" 2>&1 || fail_with_logs "$what failed"
}

# A step that waits for a daemon to come up (each attempt has its own timeout): retried until $ready_deadline
# while the daemons live, so a slow machine gets a slower start rather than a failed one.
step_when_up() {
  local what=$1
  shift
  until "$@" >>"$DIR/log/bootstrap.out" 2>&1; do
    [ $SECONDS -lt "$ready_deadline" ] || fail_with_logs "$what failed until the ${READY_TIMEOUT}s deadline"
    daemons_up_so_far || fail_with_logs "$what failed: a daemon exited"
    sleep 0.5
  done
}

# Like daemons_alive, for the daemons launched so far.
# Alive, whatever their command lines say yet: right after launch a pid can still be the forked shell that has not
# exec'd the daemon, which is_our_daemon would call dead. Only for watching daemons we have just started.
daemons_up_so_far() {
  local file stat
  for file in "$DIR"/pid/*; do
    [ -e "$file" ] || continue
    stat=$(cat "/proc/$(cat "$file")/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]] || return 1
  done
}

bootstrap() {
  local fsid osd_uuid port ready_deadline
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  port=$(choose_port) && [ -n "$port" ] || exit 1
  mkdir -p "$DIR"/{run,crash,log,pid,mon/ceph-a,osd/ceph-0,mgr/ceph-x}
  write_conf "$fsid" "$port"

  # Every key is generated straight into a file; the monitor's mkfs imports all of them with their caps, so no
  # `ceph auth` round trips are needed later.
  new_keyring "$DIR/mon.keyring" mon. --cap mon 'allow *'
  new_keyring "$ADMIN_KEYRING" client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *'
  new_keyring "$DIR/osd/ceph-0/keyring" osd.0 \
    --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *'
  new_keyring "$DIR/mgr/ceph-x/keyring" mgr.x --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *'
  local keyring
  for keyring in "$ADMIN_KEYRING" "$DIR/osd/ceph-0/keyring" "$DIR/mgr/ceph-x/keyring"; do
    ceph-authtool "$DIR/mon.keyring" --import-keyring "$keyring" >/dev/null
  done
  chmod 600 "$DIR"/*.keyring "$DIR"/*/ceph-*/keyring

  step monmaptool monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$DIR/monmap"
  step "ceph-mon --mkfs" ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring"
  # The OSD's mkfs reads the fsid from ceph.conf and needs no monitor.
  step "ceph-osd --mkfs" ceph-osd -c "$CONF" --no-mon-config --mkfs -i 0 --osd-uuid "$osd_uuid"

  ready_deadline=$((SECONDS + READY_TIMEOUT))
  launch mon.a ceph-mon -i a
  # devicehealth is an always-on manager module; unless told before the manager starts, it creates a pool of its
  # own and scrapes SMART data. Module options live only in the monitors' config database.
  connect_timeout=3 step_when_up "first contact with the monitor on port $port" \
    ceph_cli config set mgr mgr/devicehealth/enable_monitoring false --force
  launch mgr.x ceph-mgr -i x
  step "registering osd.0" ceph_cli osd new "$osd_uuid" 0
  launch osd.0 ceph-osd -i 0
  # As on any cluster whose clients are all Mimic or later: RBD clones then use clone format 2 (no snapshot
  # protection), which the controller picks from this setting.
  step "requiring mimic clients" ceph_cli osd set-require-min-compat-client mimic
  step "creating pool rbd" ceph_cli osd pool create rbd 8 8
  # Writes to the pool, so this waits for the OSD to boot and the PGs to become active.
  step_when_up "rbd pool init (waiting for osd.0)" rbd_cli pool init rbd
  step "probe image create" rbd_cli create --size 1M "rbd/probe-$$"
  step "probe image remove" rbd_cli rm --no-progress "rbd/probe-$$"

  until cluster_usable; do
    [ $SECONDS -lt $ready_deadline ] ||
      fail_with_logs "cluster not usable (OSD up and in, manager active) after ${READY_TIMEOUT}s"
    daemons_alive || fail_with_logs "a daemon exited during start"
    sleep 0.3
  done
  touch "$READY_FILE"
}

quote() {
  if [[ $1 =~ ^[A-Za-z0-9_./:@%+=,-]+$ ]]; then printf '%s' "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}

env_lines() {
  local port
  port=$(cat "$PORT_FILE")
  echo "export CEPH_CONF=$(quote "$CONF")"
  echo "export CEPH_KEYRING=$(quote "$ADMIN_KEYRING")"
  echo "export CEPH_MON_HOST=$(quote "v2:127.0.0.1:$port")"
  echo "export CEPH_ADMIN_KEYRING=$(quote "$ADMIN_KEYRING")"
}

write_env() { env_lines >"$ENV_FILE.tmp" && mv "$ENV_FILE.tmp" "$ENV_FILE"; }

take_lock() {
  mkdir -p "$DIR"
  exec 9>>"$LOCK_FILE"
  flock -w 600 9 || die "timed out waiting for $LOCK_FILE"
}

cmd_start() {
  take_lock
  ensure_packages
  if healthy; then
    write_env
    log "already running ($CONF)"
    return 0
  fi
  if [ -n "$(our_pids)" ] || [ -f "$CONF" ]; then
    log "found a stale or unhealthy cluster in $DIR; wiping it and starting over"
  fi
  stop_daemons
  clean_state
  local started_ns
  started_ns=$(date +%s%N)
  bootstrap
  write_env
  log "started in $((($(date +%s%N) - started_ns) / 1000000)) ms: monitor v2:127.0.0.1:$(cat "$PORT_FILE"), conf $CONF"
}

cmd_stop() {
  [ -d "$DIR" ] || return 0
  take_lock
  stop_daemons
  clean_state
  log "stopped"
}

cmd_status() {
  if ! [ -f "$READY_FILE" ] || ! daemons_alive; then
    log "not running ($DIR)"
    return 1
  fi
  cluster_usable || { log "daemons are running but the cluster does not answer or is not usable"; return 1; }
  ceph_cli status
}

cmd_env() {
  [ -f "$CONF" ] && [ -f "$PORT_FILE" ] || die "no cluster in $DIR; run: $0 start"
  write_env
  cat "$ENV_FILE"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
