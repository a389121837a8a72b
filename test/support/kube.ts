// Test helper over scripts/kube/cluster.sh: a real control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, snapshot-controller),
// clients for it, per-test namespaces, Node objects standing in for kubelets,
// and waits that fail with the state they last saw.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';

// This file runs as dist/test/support/kube.js: the repository is three levels up.
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const clusterScript = path.join(repoRoot, 'scripts', 'kube', 'cluster.sh');

export interface ControlPlane {
  kubeconfigPath: string;
  server: string;
  version: string;
  /** The external-snapshotter release of the snapshot CRDs and snapshot-controller. */
  snapshotterVersion: string;
  stateDir: string;
  envFile: string;
  kubectl: string;
  helm: string;
  pids: Record<'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'snapshot-controller', number>;
  ports: Record<'etcdClient' | 'etcdPeer' | 'apiserver' | 'controllerManager' | 'scheduler' | 'snapshotController', number>;
}

export interface ClusterScriptOptions {
  /** Extra environment, e.g. RBD_PROVISIONER_STATE for a private control plane. */
  env?: NodeJS.ProcessEnv;
  /** A cold start builds the binaries first (10-25 minutes on 2 cores). */
  timeoutMs?: number;
}

let lastControlPlane: ControlPlane | undefined;

/** Starts the control plane unless it is already up (safe to call concurrently) and describes it. */
export async function ensureControlPlane(opts: ClusterScriptOptions = {}): Promise<ControlPlane> {
  const stdout = await run('bash', [clusterScript, 'start'], {
    env: opts.env,
    timeoutMs: opts.timeoutMs ?? 45 * 60_000,
  });
  const controlPlane = JSON.parse(stdout) as ControlPlane;
  if (opts.env?.RBD_PROVISIONER_STATE === undefined) lastControlPlane = controlPlane;
  return controlPlane;
}

export async function stopControlPlane(opts: ClusterScriptOptions = {}): Promise<void> {
  await run('bash', [clusterScript, 'stop'], { env: opts.env, timeoutMs: opts.timeoutMs ?? 120_000 });
}

/**
 * SIGKILLs the kube-apiserver and starts it again (cluster.sh crash-apiserver): every watch is cut, and the new
 * watch cache no longer serves the resource versions clients held. Resolves once it answers /readyz again.
 */
export async function crashApiServer(opts: ClusterScriptOptions = {}): Promise<void> {
  await run('bash', [clusterScript, 'crash-apiserver'], { env: opts.env, timeoutMs: opts.timeoutMs ?? 180_000 });
}

/** An admin KubeConfig (client certificate in group system:masters). */
export function adminKubeConfig(controlPlane: ControlPlane): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(controlPlane.kubeconfigPath);
  return kc;
}

/** A KubeConfig that authenticates with a bearer token only, e.g. a service account's. */
export function tokenKubeConfig(controlPlane: ControlPlane, token: string, user = 'token-user'): k8s.KubeConfig {
  const cluster = adminKubeConfig(controlPlane).getCurrentCluster();
  if (cluster?.caData === undefined) throw new Error(`no CA data in ${controlPlane.kubeconfigPath}`);
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server: cluster.server, caData: cluster.caData, skipTLSVerify: false }],
    users: [{ name: user, token }],
    contexts: [{ name: 'test', cluster: 'test', user }],
    currentContext: 'test',
  });
  return kc;
}

export interface TestNamespace {
  name: string;
  /** Deletes the namespace; the namespace controller finishes the job asynchronously. */
  cleanup(): Promise<void>;
}

/** A namespace no other test uses: `<prefix>-<random>`. */
export async function createNamespace(kc: k8s.KubeConfig, prefix: string): Promise<TestNamespace> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const name = uniqueName(prefix);
  await core.createNamespace({ body: { metadata: { name, labels: { 'rbd-provisioner.test/suite': 'true' } } } });
  return {
    name,
    cleanup: async () => {
      await ignoreNotFound(core.deleteNamespace({ name }));
    },
  };
}

export interface TestNode {
  name: string;
  /** Deletes the Node. */
  cleanup(): Promise<void>;
}

export interface NodeOptions {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Cordoned: the scheduler must not place Pods on it. */
  unschedulable?: boolean;
}

/**
 * Registers a Node as a kubelet would (there is none here): Ready, with
 * capacity and allocatable cpu, memory and pods, the well-known labels, and
 * no not-ready taint. Nodes may be created with their status (kubelets do
 * so); nothing updates it afterwards, and no node lifecycle controller runs
 * to mark it NotReady.
 */
export async function registerNode(kc: k8s.KubeConfig, prefix: string, opts: NodeOptions = {}): Promise<TestNode> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const name = uniqueName(prefix);
  const resources = { cpu: '4', memory: '8Gi', pods: '110' };
  const now = new Date();
  const created = await core.createNode({
    body: {
      metadata: {
        name,
        labels: {
          'kubernetes.io/hostname': name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          'rbd-provisioner.test/suite': 'true',
          ...opts.labels,
        },
        annotations: opts.annotations,
      },
      spec: { unschedulable: opts.unschedulable },
      status: {
        capacity: resources,
        allocatable: resources,
        conditions: [
          { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'registered by a test', lastHeartbeatTime: now, lastTransitionTime: now },
        ],
        addresses: [{ type: 'Hostname', address: name }],
      },
    },
  });
  // The API server's TaintNodesByCondition admission taints every new Node not-ready (NoSchedule); on a real
  // cluster the node lifecycle controller lifts it once the Node is Ready. That controller does not run here
  // (it would mark these Nodes NotReady for want of heartbeats), so this does its part.
  const taints = created.spec?.taints ?? [];
  const kept = taints.filter((t) => t.key !== 'node.kubernetes.io/not-ready');
  if (kept.length !== taints.length) {
    await core.patchNode({ name, body: { spec: { taints: kept } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  }
  return {
    name,
    cleanup: async () => {
      await ignoreNotFound(core.deleteNode({ name }));
    },
  };
}

/**
 * Deletes a Pod at once (grace period 0, as `kubectl delete --force --grace-period=0`): a Pod bound to a
 * Node has no kubelet here to finish a graceful delete, and would stay Terminating for ever.
 */
export async function deletePodNow(kc: k8s.KubeConfig, namespace: string, name: string): Promise<void> {
  await ignoreNotFound(kc.makeApiClient(k8s.CoreV1Api).deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }));
}

/** A container image nothing ever pulls: no kubelet runs here. */
export const unpulledImage = 'never-pulled.test.invalid/pause:none';

export interface BoundClaim {
  claim: k8s.V1PersistentVolumeClaim;
  volume: k8s.V1PersistentVolume;
}

/**
 * A claim and a CSI PersistentVolume of `driver` pre-bound to it (as an external provisioner makes them, with no
 * storage class), once the PV binder has made both Bound. The PV is Retain: delete it once the claim is gone.
 */
export async function createBoundClaim(
  kc: k8s.KubeConfig,
  namespace: string,
  prefix: string,
  driver: string,
  opts: WaitOptions = { timeoutMs: 30_000, intervalMs: 200 },
): Promise<BoundClaim> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const name = uniqueName(prefix);
  const created = await core.createNamespacedPersistentVolumeClaim({
    namespace,
    body: {
      metadata: { name },
      spec: { storageClassName: '', accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem', resources: { requests: { storage: '1Gi' } } },
    },
  });
  const volumeName = `pvc-${created.metadata?.uid}`;
  await core.createPersistentVolume({
    body: {
      metadata: { name: volumeName, annotations: { 'pv.kubernetes.io/provisioned-by': driver } },
      spec: {
        storageClassName: '',
        accessModes: ['ReadWriteOnce'],
        volumeMode: 'Filesystem',
        capacity: { storage: '1Gi' },
        persistentVolumeReclaimPolicy: 'Retain',
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace, name, uid: created.metadata?.uid },
        csi: { driver, volumeHandle: `handle-${volumeName}`, fsType: 'ext4' },
      },
    },
  });
  return waitFor(
    `claim ${namespace}/${name} and volume ${volumeName} to be Bound`,
    async (observe) => {
      const [claim, volume] = await Promise.all([
        core.readNamespacedPersistentVolumeClaim({ name, namespace }),
        core.readPersistentVolume({ name: volumeName }),
      ]);
      observe({ claim: objectState(claim), volume: objectState(volume) });
      const bound = claim.status?.phase === 'Bound' && volume.status?.phase === 'Bound' && claim.spec?.volumeName === volumeName;
      return bound ? { claim, volume } : undefined;
    },
    opts,
  );
}

/** A DNS-1123 name unique to this run: `<prefix>-<8 hex>`, at most 63 characters. */
export function uniqueName(prefix: string): string {
  const suffix = randomBytes(4).toString('hex');
  const base = prefix.toLowerCase().replace(/[^a-z0-9-]+/g, '-').slice(0, 63 - suffix.length - 1);
  return `${base}-${suffix}`;
}

export function isApiError(err: unknown, code: number): boolean {
  return err instanceof k8s.ApiException && err.code === code;
}

export async function ignoreNotFound<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (isApiError(err, 404)) return undefined;
    throw err;
  }
}

export interface WaitOptions {
  timeoutMs: number;
  intervalMs: number;
}

/**
 * Polls `probe` until it returns a value other than undefined. The probe may
 * report what it saw through `observe`; on timeout the error names `what` and
 * that last observation (or the last error the probe threw).
 */
export async function waitFor<T>(
  what: string,
  probe: (observe: (state: unknown) => void) => Promise<T | undefined>,
  opts: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastState = 'nothing observed (the probe returned undefined)';
  const observe = (state: unknown): void => {
    lastState = describeState(state);
  };
  let attempts = 0;
  for (;;) {
    attempts += 1;
    try {
      const result = await probe(observe);
      if (result !== undefined) return result;
    } catch (err) {
      lastState = `probe threw: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (Date.now() + opts.intervalMs > deadline) {
      throw new Error(`timed out after ${opts.timeoutMs}ms (${attempts} attempts) waiting for ${what}; last observed: ${lastState}`);
    }
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs));
  }
}

/** The parts of a Kubernetes object that tell what state it is in. */
export function objectState(obj: k8s.KubernetesObject & { spec?: unknown; status?: unknown }): unknown {
  const meta = obj.metadata ?? {};
  return {
    name: meta.name,
    resourceVersion: meta.resourceVersion,
    deletionTimestamp: meta.deletionTimestamp,
    finalizers: meta.finalizers,
    annotations: meta.annotations,
    spec: obj.spec,
    status: obj.status,
  };
}

function describeState(state: unknown): string {
  const text = typeof state === 'string' ? state : JSON.stringify(state);
  return text.length > 2000 ? `${text.slice(0, 2000)}...` : text;
}

export interface RunOptions {
  /** Defaults to the control plane of the last ensureControlPlane() call. */
  controlPlane?: ControlPlane;
  /** Written to the command's stdin. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Runs kubectl against the control plane (admin kubeconfig unless args say otherwise); returns stdout. */
export async function kubectl(args: string[], opts: RunOptions = {}): Promise<string> {
  const controlPlane = requireControlPlane(opts);
  return run(controlPlane.kubectl, ['--kubeconfig', controlPlane.kubeconfigPath, ...args], opts);
}

/** Runs helm v3 against the control plane; returns stdout. */
export async function helm(args: string[], opts: RunOptions = {}): Promise<string> {
  const controlPlane = requireControlPlane(opts);
  // Helm's cache, config and data live in the state directory, so tests neither
  // read nor change the user's repositories and plugins.
  const helmHome = path.join(controlPlane.stateDir, 'helm');
  return run(controlPlane.helm, ['--kubeconfig', controlPlane.kubeconfigPath, ...args], {
    ...opts,
    env: {
      HELM_CACHE_HOME: path.join(helmHome, 'cache'),
      HELM_CONFIG_HOME: path.join(helmHome, 'config'),
      HELM_DATA_HOME: path.join(helmHome, 'data'),
      ...opts.env,
    },
  });
}

function requireControlPlane(opts: RunOptions): ControlPlane {
  const controlPlane = opts.controlPlane ?? lastControlPlane;
  if (controlPlane === undefined) throw new Error('no control plane: call ensureControlPlane() first');
  return controlPlane;
}

function run(file: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        env: { ...process.env, ...opts.env },
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err) {
          const how = err.killed ? `killed (${err.signal ?? 'timeout'})` : `exit ${String(err.code)}`;
          reject(new Error(`${path.basename(file)} ${args.join(' ')} failed (${how}): ${stderr.trim()}`));
          return;
        }
        resolve(stdout);
      },
    );
    child.stdin?.end(opts.input ?? '');
  });
}
