#!/usr/bin/env node
// The composition root: config -> logger -> clients -> provisioner -> controller. Wiring only.
import { callStats, Cluster, ConnectionPool, setMaxInflight, type CallObserver, type CephTimeouts } from './ceph/index.js';
import { ConfigError, helpText, parseConfig } from './config.js';
import { createController } from './controllers/controller.js';
import { startHttpServer } from './http.js';
import { createKubeFacade, loadKubeConfig } from './kube/client.js';
import { realClock } from './kube/clock.js';
import { apiHealthTracker } from './kube/health.js';
import { createMetrics } from './controllers/metrics.js';
import { createLogger, describeError } from './logger.js';
import { RbdProvisioner, type RbdProvisionerOptions } from './rbd/provisioner.js';
import { isEntryPoint } from './entry.js';
import { buildInfo } from './version.js';
import { cachingSecretReader, kubeSecretReader } from './rbd/secrets.js';
import { NodeSecrets } from './rbd/node-secret.js';
import { CEPH_CLIENTS_ANNOTATION, CephClientRecord, RbdFencer } from './rbd/fencing.js';
// ceph-csi's config map (--ceph-csi-config) and the cluster-id subcommand
import { clusterIdCommand } from './cli/cluster-id.js';
// Migrating from the retired external-storage rbd-provisioner, and checking images against PVs
import { migrateCommand, type MigrationStep } from './cli/migrate.js';
import { auditCommand } from './cli/audit.js';
import { rbdClusterEntries } from './rbd/cluster-entries.js';

/**
 * How long a class's admin key read from its Secret serves provisions and deletes: one Secret read per class and
 * minute instead of one per claim, and a key Ceph refuses is read again at once.
 */
const ADMIN_KEY_TTL_MS = 60_000;

/** What a test entry point may change in the wiring (fault injection); production passes nothing. */
export interface MainHooks {
  provisionerOptions?: Pick<RbdProvisionerOptions, 'afterImageCreated' | 'afterCopyCreated' | 'afterImageRemoved' | 'afterImageResized' | 'afterSnapshotCreated'>;
  /** `migrate`: called after each step of a PV's migration is carried out. */
  afterMigrateStep?: (pv: string, step: MigrationStep) => void;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv, hooks: MainHooks = {}): Promise<number> {
  // Subcommands: the first argument, when it is not a flag.
  const commandOutput = { stdout: (text: string) => process.stdout.write(text), stderr: (text: string) => process.stderr.write(text) };
  if (argv[0] === 'cluster-id') return clusterIdCommand(argv.slice(1), commandOutput);
  if (argv[0] === 'migrate') {
    return migrateCommand(argv.slice(1), env, commandOutput, hooks.afterMigrateStep === undefined ? {} : { afterStep: hooks.afterMigrateStep });
  }
  if (argv[0] === 'audit') return auditCommand(argv.slice(1), env, commandOutput);
  let config;
  try {
    config = parseConfig(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`rbd-provisioner: ${err.message}\nRun with --help for every flag.\n`);
      return 2;
    }
    throw err;
  }
  if (config.help) {
    process.stdout.write(helpText());
    return 0;
  }
  if (config.version) {
    const { version, nodeVersion } = buildInfo();
    process.stdout.write(`rbd-provisioner ${version} (node ${nodeVersion})\n`);
    return 0;
  }

  const logger = createLogger({ level: config.logLevel, format: config.logFormat, defaultMeta: { provisioner: config.provisionerName } });
  const metrics = createMetrics({ defaultMetrics: true, cephCallStats: callStats, buildInfo: buildInfo() });
  const kubeConfig = loadKubeConfig(config.kubeconfig);
  const apiHealth = apiHealthTracker(realClock);
  const health = apiHealth.health;
  const kube = apiHealth.track(createKubeFacade(kubeConfig, { qps: config.kubeApiQps, burst: config.kubeApiBurst }));
  // The Lease on connections and a token bucket of its own: a burst of claim work queued on kube's (or the informers'
  // watches holding its connections) must never delay a renewal past the renew deadline. At most one lease request
  // is in flight at a time (the elector serializes them), so two connections and a small bucket are plenty.
  // Its calls count towards /readyz's view of the API server like kube's.
  const leaseClient = apiHealth.track(createKubeFacade(kubeConfig, { qps: 5, burst: 10, maxConnections: 2, requestTimeoutMs: config.leaderElectionRenewDeadlineMs }));

  setMaxInflight(config.cephMaxInflight);
  let assertLeading: () => void = () => {};
  const observer: CallObserver = {
    // Checked before every Ceph call: a replica that lost its lease must not touch storage, even for a moment.
    started: () => assertLeading(),
    finished: (op, seconds, result) => metrics.cephCallDuration.observe({ op, result }, seconds),
  };
  const timeouts: CephTimeouts = {
    mount: config.cephMountTimeoutMs / 1000,
    monOp: config.cephMonOpTimeoutMs / 1000,
    osdOp: config.cephOsdOpTimeoutMs / 1000,
  };
  // Fencing: every RADOS client the leader opens is published in the Lease before its first operation, so that a
  // successor can blocklist it (src/rbd/fencing.ts).
  const ownClients = new CephClientRecord();
  let publish: (data: string) => Promise<void> = async () => {};
  const connections = new ConnectionPool({
    timeouts,
    observer,
    onConnected: async (target, address) => {
      await publish(ownClients.add(target, address));
      logger.info('opened a Ceph client and published its address for fencing', { monitors: target.monitors, user: target.user, address });
    },
  });
  const readSecret = kubeSecretReader(kube);
  // Provisions and deletes read a class's admin key from this cache (invalidated when Ceph refuses the key); fencing
  // reads the Secret afresh.
  const adminKeys = cachingSecretReader(readSecret, { ttlMs: ADMIN_KEY_TTL_MS });
  // Managed node Secrets live in the controller's own namespace: the Lease's (POD_NAMESPACE in the chart).
  const nodeSecrets = new NodeSecrets({ kube, provisionerName: config.provisionerName, namespace: config.leaderElectionNamespace, logger, cacheTtlMs: ADMIN_KEY_TTL_MS });
  const provisioner = new RbdProvisioner({
    name: config.provisionerName,
    connections,
    readSecret: adminKeys.read,
    secretRefused: adminKeys.invalidate,
    nodeStageSecret: (params, claim, signal) => nodeSecrets.resolve(params, claim, signal),
    logger,
    // As ceph-csi: the manager walks a deleted image's objects, not this process (which falls back where it cannot).
    purgeInManager: true,
    ...hooks.provisionerOptions,
  });
  // The fencer's own short-lived connections are not pooled nor published; their calls are only measured.
  const fencer = new RbdFencer({
    readSecret,
    connect: (options) => Cluster.connect({ ...options, timeouts, observer: { finished: observer.finished! } }),
    logger,
  });
  // Snapshots only where the external-snapshotter's CRDs are installed: asked once, at start.
  const snapshotsServed = config.snapshotter && await kube.servesSnapshots().catch((err: unknown) => {
    logger.warn('could not tell whether the API server serves VolumeSnapshotContents; snapshots stay off until a restart', { error: describeError(err) });
    return false;
  });
  if (config.snapshotter && !snapshotsServed) logger.warn('the API server does not serve snapshot.storage.k8s.io/v1 VolumeSnapshotContents (the external-snapshotter CRDs are not installed): snapshots are off until a restart');
  const controller = createController({
    config, kube, leaseClient, provisioner, logger, metrics,
    // --retry-interval-start/-max: every loop's work queue backs off failed keys within these.
    tuning: { retryBaseDelayMs: config.retryIntervalStartMs, retryMaxDelayMs: config.retryIntervalMaxMs },
    fencing: { fencer, holderDataAnnotation: CEPH_CLIENTS_ANNOTATION },
    // ceph-csi's config map (--ceph-csi-config): the RBD side says which entry a class or PV needs.
    ...(config.cephCsiConfig === undefined ? {} : { clusterEntries: rbdClusterEntries }),
    // At every attach: the managed node Secret a PV names catches up with a key rotated in its source Secret.
    nodeAccess: { prepare: (volume, signal) => nodeSecrets.refreshFor(volume, signal) },
    // Volume expansion (--resizer): the provisioner grows its own images.
    ...(config.resizer ? { resizer: provisioner } : {}),
    // VolumeSnapshots (--snapshotter): the provisioner cuts and deletes RBD snapshots of its own images.
    ...(snapshotsServed ? { snapshotter: provisioner } : {}),
    onLeading: (leading) => {
      if (leading) return;
      // A successor may blocklist these clients: leading again later must start with new ones (new addresses).
      connections.reset();
      ownClients.clear();
    },
  });
  assertLeading = () => controller.assertLeading();
  publish = (data) => controller.setHolderData(data);

  const shutdown = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info('shutting down', { signal });
      shutdown.abort();
    });
  }
  const http = config.httpAddress === ''
    ? undefined
    : await startHttpServer({
      address: config.httpAddress,
      registry: metrics.registry,
      notReadyBecause: () => {
        if (!controller.isReady()) return 'informers not synced';
        return health.reachable() ? undefined : `API server unreachable: ${health.lastProblem() ?? 'no answer'}`;
      },
      logger,
    });

  logger.info('starting', { version: buildInfo().version, identity: config.identity, leaderElect: config.leaderElect, attacher: config.attacher, resizer: config.resizer, snapshotter: snapshotsServed, cephCsiConfig: config.cephCsiConfig === undefined ? '' : `${config.cephCsiConfig.namespace}/${config.cephCsiConfig.name}`, workers: config.workers, cephMaxInflight: config.cephMaxInflight });
  await controller.run(shutdown.signal);
  await http?.close();
  await connections.close();
  logger.info('stopped');
  return 0;
}

/** Runs main() and exits with its code; for this file's own entry point and for test entry points. */
export function runAsProcess(hooks: MainHooks = {}): void {
  main(process.argv.slice(2), process.env, hooks).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`rbd-provisioner: fatal: ${JSON.stringify(describeError(err))}\n`);
      process.exit(1);
    },
  );
}

if (isEntryPoint(import.meta.url)) runAsProcess();
