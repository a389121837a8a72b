// One end-to-end fixture per test file: real Ceph (a pool of its own), the real control plane (a namespace of its
// own), an admin Secret, a provisioner name of its own, and helpers to make claims and look at what came of them.
import * as k8s from '@kubernetes/client-node';
import { afterEach, beforeEach } from 'node:test';
import { ImageNotFound, type Pool } from '../../src/ceph/index.js';
import { ensureCeph, openTestPool, type CephTestCluster } from './ceph.js';
import { startController, type ControllerOptions, type ControllerProcess } from './controller.js';
import {
  adminKubeConfig, createNamespace, ensureControlPlane, ignoreNotFound, objectState, uniqueName, waitFor, type ControlPlane,
} from './kube.js';

export const GiB = 2 ** 30;

/** Image metadata that marks an image as made by a provisioner (the value is its name). */
export const OWNER_METADATA_KEY = 'rbd.provisioner.ceph.io/provisioner';

export interface AuditOptions {
  /** How long to wait for deletes, purges and provisioning to settle; 2 minutes unless told. */
  timeoutMs?: number;
  /** Claims that are meant to stay without a PV (an invalid class, say): not counted as missing one. */
  pendingClaims?: string[];
}

/** What audit() found: empty lists mean the pool and the API agree. */
export interface AuditReport {
  imagesWithoutPv: string[];
  pvsWithoutImage: string[];
  ourTrash: string[];
  claimsWithoutPv: string[];
}

export interface E2e {
  ceph: CephTestCluster;
  controlPlane: ControlPlane;
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  storage: k8s.StorageV1Api;
  namespace: string;
  provisionerName: string;
  pool: Pool;
  poolName: string;
  adminSecret: string;
  controllers: ControllerProcess[];
  /** The parameters a working class needs, in the retired external-storage rbd-provisioner's spelling. */
  baseParameters(): Record<string, string>;
  createClass(parameters: Record<string, string>, options?: Partial<k8s.V1StorageClass>): Promise<string>;
  createClaim(storageClass: string, options?: { size?: string; volumeMode?: string; accessModes?: string[]; annotations?: Record<string, string> }): Promise<k8s.V1PersistentVolumeClaim>;
  readClaim(name: string): Promise<k8s.V1PersistentVolumeClaim | undefined>;
  readVolume(name: string): Promise<k8s.V1PersistentVolume | undefined>;
  waitBound(claim: string, timeoutMs?: number): Promise<k8s.V1PersistentVolume>;
  waitGone(what: string, probe: () => Promise<unknown>, timeoutMs?: number): Promise<void>;
  events(name: string): Promise<k8s.CoreV1Event[]>;
  waitEvent(objectName: string, reason: string, timeoutMs?: number): Promise<k8s.CoreV1Event>;
  images(): Promise<string[]>;
  /**
   * A controller of this file's provisioner. Started inside a test it is stopped when that test ends, unless
   * `lifetime` is 'file' (a test that replaces the file's shared controller); otherwise it stays until cleanup().
   */
  startController(overrides?: Partial<ControllerOptions>, lifetime?: 'test' | 'file'): Promise<ControllerProcess>;
  /** One look at the pool and the API: what disagrees with "the images we own are exactly our PVs' images". */
  auditOnce(options?: AuditOptions): Promise<AuditReport>;
  /**
   * The end of every reliability scenario: the images in the test pool that carry our ownership metadata are exactly
   * the images of our PVs, nothing of ours is left in the pool's trash, and every claim of our classes has its PV.
   * Waits (bounded) for that to hold, then fails with what still disagrees.
   */
  audit(options?: AuditOptions): Promise<void>;
  cleanup(): Promise<void>;
}

// Controllers a test starts are stopped when that test ends, passed or failed: one left running after a failure
// would keep the file's leader lease and leave every later test of the file a standby (seen in CI: one failure
// turned into five). Controllers started in before() hooks serve the whole file and stay until cleanup().
let startedByTest: ControllerProcess[] | undefined;
beforeEach(() => {
  startedByTest = [];
});
afterEach(async () => {
  const started = startedByTest ?? [];
  startedByTest = undefined;
  await Promise.allSettled(started.map((c) => c.stop()));
});

/** Cleanup gets this long; past it the file's process exits, so a hung cleanup never holds up the whole run. */
const CLEANUP_TIMEOUT_MS = 180_000;

export async function setupE2e(label: string): Promise<E2e> {
  const [ceph, controlPlane] = await Promise.all([ensureCeph(), ensureControlPlane()]);
  const storagePool = await openTestPool(`e2e-${label}`);
  const { pool } = storagePool;
  const poolName = pool.name;
  const kc = adminKubeConfig(controlPlane);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const storage = kc.makeApiClient(k8s.StorageV1Api);
  const ns = await createNamespace(kc, `e2e-${label}`);
  const adminSecret = 'ceph-admin';
  await core.createNamespacedSecret({
    namespace: ns.name,
    body: { metadata: { name: adminSecret }, type: 'kubernetes.io/rbd', stringData: { key: ceph.adminKey } },
  });
  const provisionerName = `e2e-${label}.rbd.provisioner.test`;
  const classes: string[] = [];
  const controllers: ControllerProcess[] = [];

  const e2e: E2e = {
    ceph, controlPlane, kc, core, storage, namespace: ns.name, provisionerName, pool, poolName, adminSecret, controllers,

    baseParameters: () => ({
      monitors: ceph.monHost,
      adminId: 'admin',
      adminSecretName: adminSecret,
      adminSecretNamespace: ns.name,
      pool: poolName,
      userId: 'admin',
      userSecretName: adminSecret,
      userSecretNamespace: ns.name,
    }),

    async createClass(parameters, options = {}) {
      const name = uniqueName(`e2e-${label}`);
      await storage.createStorageClass({
        body: {
          metadata: { name },
          provisioner: provisionerName,
          reclaimPolicy: 'Delete',
          volumeBindingMode: 'Immediate',
          parameters,
          ...options,
        },
      });
      classes.push(name);
      return name;
    },

    async createClaim(storageClassName, options = {}) {
      return core.createNamespacedPersistentVolumeClaim({
        namespace: ns.name,
        body: {
          metadata: { name: uniqueName('claim'), ...(options.annotations && { annotations: options.annotations }) },
          spec: {
            storageClassName,
            accessModes: options.accessModes ?? ['ReadWriteOnce'],
            volumeMode: options.volumeMode ?? 'Filesystem',
            resources: { requests: { storage: options.size ?? '1Gi' } },
          },
        },
      });
    },

    readClaim: (name) => ignoreNotFound(core.readNamespacedPersistentVolumeClaim({ name, namespace: ns.name })),
    readVolume: (name) => ignoreNotFound(core.readPersistentVolume({ name })),

    async waitBound(claimName, timeoutMs = 60_000) {
      const claim = await waitFor(`claim ${ns.name}/${claimName} Bound`, async (observe) => {
        const c = await e2e.readClaim(claimName);
        observe(c && objectState(c));
        return c?.status?.phase === 'Bound' ? c : undefined;
      }, { timeoutMs, intervalMs: 100 }).catch(async (err: unknown) => {
        // What the controller told the claim is what explains a claim left Pending.
        const events = await e2e.events(claimName).catch(() => []);
        const told = events.map((e) => `  ${e.type} ${e.reason} (x${e.count ?? 1}): ${e.message}`).join('\n') || '  (none)';
        throw new Error(`${(err as Error).message}\nevents on the claim:\n${told}`, { cause: err });
      });
      const pv = await e2e.readVolume(claim.spec!.volumeName!);
      if (!pv) throw new Error(`claim ${claimName} is Bound to ${claim.spec!.volumeName} but that PV does not exist`);
      return pv;
    },

    async waitGone(what, probe, timeoutMs = 60_000) {
      await waitFor(`${what} gone`, async (observe) => {
        const found = await probe();
        if (found === undefined || found === false) return true;
        observe(found);
        return undefined;
      }, { timeoutMs, intervalMs: 200 });
    },

    async events(name) {
      const list = await core.listNamespacedEvent({ namespace: ns.name });
      const clusterScoped = await core.listNamespacedEvent({ namespace: 'default' });
      return [...list.items, ...clusterScoped.items].filter((e) => e.involvedObject.name === name);
    },

    async waitEvent(objectName, reason, timeoutMs = 60_000) {
      return waitFor(`event ${reason} on ${objectName}`, async (observe) => {
        const events = await e2e.events(objectName);
        observe(events.map((e) => `${e.reason}: ${e.message}`));
        return events.find((e) => e.reason === reason);
      }, { timeoutMs, intervalMs: 200 });
    },

    images: () => pool.listImages(),

    async startController(overrides = {}, lifetime = 'test') {
      const proc = await startController({
        kubeconfigPath: controlPlane.kubeconfigPath,
        provisionerName,
        namespace: ns.name,
        ...overrides,
      });
      controllers.push(proc);
      if (lifetime === 'test') startedByTest?.push(proc);
      return proc;
    },

    async auditOnce(options = {}) {
      const pending = new Set(options.pendingClaims ?? []);
      // Read metadata; an image that went away meanwhile (a delete in flight) is simply not there.
      const ownerOf = async (name: string, byId = false): Promise<string | undefined | 'gone'> => {
        try {
          return (await pool.withImage(name, (img) => img.listMetadata(), { readOnly: true, byId }))[OWNER_METADATA_KEY];
        } catch (err) {
          if (err instanceof ImageNotFound) return 'gone';
          throw err;
        }
      };
      const owned = new Set<string>();
      for (const name of await pool.listImages()) if ((await ownerOf(name)) === provisionerName) owned.add(name);
      const ourTrash: string[] = [];
      for (const entry of await pool.listTrash()) {
        const owner = await ownerOf(entry.id, true);
        if (owner === provisionerName) ourTrash.push(`${entry.name} (trash id ${entry.id})`);
      }
      const volumes = new Map<string, string>();
      for (const pv of (await core.listPersistentVolume()).items) {
        if (pv.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'] !== provisionerName) continue;
        volumes.set(pv.spec?.csi?.volumeHandle ?? pv.metadata.name!, pv.metadata.name!);
      }
      const claimsWithoutPv: string[] = [];
      const ourClasses = new Set(classes);
      for (const claim of (await core.listNamespacedPersistentVolumeClaim({ namespace: ns.name })).items) {
        const name = claim.metadata?.name ?? '';
        if (!ourClasses.has(claim.spec?.storageClassName ?? '') || pending.has(name) || claim.metadata?.deletionTimestamp) continue;
        const pvName = claim.spec?.volumeName;
        const pv = pvName ? [...volumes.values()].includes(pvName) : false;
        if (!pv || claim.status?.phase !== 'Bound') claimsWithoutPv.push(`${name} (${claim.status?.phase ?? 'no phase'}, volumeName ${pvName ?? 'unset'})`);
      }
      return {
        imagesWithoutPv: [...owned].filter((image) => !volumes.has(image)).sort(),
        pvsWithoutImage: [...volumes].filter(([image]) => !owned.has(image)).map(([image, pv]) => (image === pv ? pv : `${pv} (image ${image})`)).sort(),
        ourTrash: ourTrash.sort(),
        claimsWithoutPv: claimsWithoutPv.sort(),
      };
    },

    async audit(options = {}) {
      const timeoutMs = options.timeoutMs ?? 120_000;
      const deadline = Date.now() + timeoutMs;
      let report: AuditReport | undefined;
      let problem = '';
      for (;;) {
        try {
          report = await e2e.auditOnce(options);
          problem = Object.entries(report).filter(([, list]) => list.length > 0).map(([what, list]) => `  ${what}: ${(list as string[]).join(', ')}`).join('\n');
          if (problem === '') return;
        } catch (err) {
          problem = `  the audit itself failed: ${err instanceof Error ? err.message : String(err)}`;
        }
        if (Date.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      throw new Error(`audit of pool ${poolName} against the PVs of ${provisionerName}: still inconsistent after ${timeoutMs} ms\n${problem}`);
    },

    async cleanup() {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timed out'>((resolve) => (timer = setTimeout(() => resolve('timed out'), CLEANUP_TIMEOUT_MS)));
      const outcome = await Promise.race([cleanUp(), timedOut]);
      clearTimeout(timer);
      if (outcome === 'timed out') {
        process.stderr.write(`e2e cleanup of ${ns.name} did not finish in ${CLEANUP_TIMEOUT_MS} ms; exiting this test file\n`);
        setTimeout(() => process.exit(1), 1_000);
      }
    },
  };

  async function cleanUp(): Promise<void> {
    await Promise.allSettled(controllers.map((c) => c.stop()));
    await Promise.allSettled(classes.map((name) => storage.deleteStorageClass({ name })));
    // Our PVs: drop finalizers so the namespace and PVs can go; images go with the pool.
    const pvs = await core.listPersistentVolume();
    for (const pv of pvs.items) {
      if (pv.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'] !== provisionerName) continue;
      await ignoreNotFound(core.patchPersistentVolume({
        name: pv.metadata.name!,
        body: { metadata: { finalizers: null } },
      }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)));
      await ignoreNotFound(core.deletePersistentVolume({ name: pv.metadata.name! }));
    }
    await ns.cleanup();
    await storagePool.close();
  }
  return e2e;
}
