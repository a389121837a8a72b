#!/usr/bin/env bash
# The whole thing on one machine, in one command: real single-node Ceph, a real Kubernetes control plane, and the
# provisioner running against them; then a demo claim that ends Bound, shown from both sides.
#
#   scripts/sandbox.sh up      (npm run sandbox)       start or reuse everything, provision the demo claim
#   scripts/sandbox.sh down    (npm run sandbox:down)  stop everything the sandbox started
#
# Works on a fresh clone before any `npm install`: it installs what is missing. Everything lives in .sandbox/,
# apart from the tests' clusters, and .sandbox/env exports KUBECONFIG, CEPH_CONF and RBD_PROVISIONER_NAME.
set -euo pipefail
cd "$(dirname "$0")/.."
# The provisioner, the builds and the helpers below all run on Node 24.
source scripts/node.sh
repo=$(pwd)
sandbox=$repo/.sandbox
export RBD_PROVISIONER_STATE=$sandbox
provisioner_name=rbd.provisioner.ceph.io
controller_namespace=rbd-provisioner
demo_namespace=demo
pid_file=$sandbox/controller.pid
log_file=$sandbox/controller.log

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

controller_running() {
  [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

up() {
  mkdir -p "$sandbox"
  say "Installing what is missing and building (Debian packages, npm dependencies, addon, TypeScript)"
  bash scripts/ensure-deps.sh

  say "Starting a single-node Ceph (monitor, memstore OSD, manager) on 127.0.0.1"
  bash scripts/ceph/cluster.sh start
  eval "$(bash scripts/ceph/cluster.sh env)"

  say "Starting the Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, snapshot-controller); the first run builds it"
  bash scripts/kube/cluster.sh start >/dev/null
  eval "$(bash scripts/kube/cluster.sh env)"
  export KUBECONFIG

  cat > "$sandbox/env" <<EOF
export KUBECONFIG=$KUBECONFIG
export CEPH_CONF=$CEPH_CONF
export CEPH_MON_HOST=$CEPH_MON_HOST
export RBD_PROVISIONER_NAME=$provisioner_name
EOF

  say "Starting the provisioner ($provisioner_name), log in .sandbox/controller.log"
  kubectl create namespace "$controller_namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  if controller_running; then
    echo "already running (pid $(cat "$pid_file"))"
  else
    local port
    port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
    echo "$port" > "$sandbox/controller.port"
    # Supervised as a Deployment would run it: restarted with backoff whenever it exits; with the image's V8 flags
    # (src/node-flags.ts).
    nohup bash scripts/supervise.sh node --max-semi-space-size=8 dist/src/main.js --kubeconfig="$KUBECONFIG" --provisioner-name="$provisioner_name" \
      --leader-election-namespace="$controller_namespace" --http-address="127.0.0.1:$port" --log-format=text \
      >>"$log_file" 2>&1 </dev/null &
    echo $! > "$pid_file"
    for _ in $(seq 1 100); do
      node -e "fetch(process.argv[1]).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))" "http://127.0.0.1:$port/readyz" && break
      controller_running || { tail -20 "$log_file"; echo "the provisioner exited; see $log_file" >&2; exit 1; }
      sleep 0.2
    done
    echo "ready: metrics on http://127.0.0.1:$port/metrics"
  fi

  say "Applying the demo Secret, StorageClass and claim"
  kubectl create namespace "$demo_namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  # The key goes from ceph straight into the API through a pipe: never argv, never a file.
  kubectl -n "$demo_namespace" create secret generic ceph-admin --type=kubernetes.io/rbd \
    --from-file=key=<(ceph auth get-key client.admin) --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl apply -f - <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: rbd
provisioner: $provisioner_name
reclaimPolicy: Delete
volumeBindingMode: Immediate
parameters:
  monitors: "$CEPH_MON_HOST"
  adminId: admin
  adminSecretName: ceph-admin
  adminSecretNamespace: $demo_namespace
  pool: rbd
  userId: admin
  userSecretName: ceph-admin
  imageFeatures: layering
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: demo-claim
  namespace: $demo_namespace
spec:
  storageClassName: rbd
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
EOF

  say "Waiting for the claim to be Bound"
  local phase=""
  for i in $(seq 1 120); do
    phase=$(kubectl -n "$demo_namespace" get pvc demo-claim -o jsonpath='{.status.phase}')
    printf '\r  %3ds  demo-claim: %-8s' "$((i / 2))" "${phase:-Pending}"
    [ "$phase" = Bound ] && break
    sleep 0.5
  done
  echo
  if [ "$phase" != Bound ]; then
    kubectl -n "$demo_namespace" describe pvc demo-claim
    echo "the claim did not become Bound; see $log_file" >&2
    exit 1
  fi
  local pv
  pv=$(kubectl -n "$demo_namespace" get pvc demo-claim -o jsonpath='{.spec.volumeName}')
  kubectl -n "$demo_namespace" get pvc demo-claim
  echo
  kubectl get pv "$pv"
  say "The image, as Ceph reports it (rbd info rbd/$pv)"
  rbd info "rbd/$pv"

  cat <<EOF

$(printf '\033[1m')The sandbox is running.$(printf '\033[0m') Try this next:
  source .sandbox/env
  kubectl -n $demo_namespace describe pvc demo-claim            # events: Provisioning, ProvisioningSucceeded
  echo '{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"second-claim"},"spec":{"storageClassName":"rbd","accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"2Gi"}}}}' | kubectl -n $demo_namespace create -f -
  rbd ls rbd                                                  # one image per claim
  kubectl -n $demo_namespace delete pvc demo-claim && sleep 2 && rbd ls rbd   # the image goes with the claim
  tail -f .sandbox/controller.log

Stop everything the sandbox started:  npm run sandbox:down
EOF
}

down() {
  if controller_running; then
    kill "$(cat "$pid_file")" 2>/dev/null || true
    # The supervisor gives the controller 15 s to stop after TERM.
    for _ in $(seq 1 100); do controller_running || break; sleep 0.2; done
    controller_running && kill -9 "$(cat "$pid_file")" 2>/dev/null || true
  fi
  rm -f "$pid_file"
  bash scripts/kube/cluster.sh stop || true
  bash scripts/ceph/cluster.sh stop || true
  rm -rf "$sandbox"
  echo "sandbox stopped; nothing of it is left running"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
