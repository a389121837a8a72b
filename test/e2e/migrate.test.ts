// Migrating from the retired external-storage rbd-provisioner, end to end: PVs written in its exact shape (in-tree
// spec.rbd, provisioned-by ceph.com/rbd, image kubernetes-dynamic-pvc-<uuid> made with librbd), bound by the real PV
// binder; `rbd-provisioner migrate` and `audit` run as their own processes, as users run them; the controller's
// takeover (--take-over-provisioner) deletes what the old provisioner would have.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import { ImageNotFound } from '../../src/ceph/index.js';
import type { MigrationStep } from '../../src/cli/migrate.js';
import type { AuditReport } from '../../src/cli/audit.js';
import { migratedVolumeName } from '../../src/rbd/legacy.js';
import { OWNER_KEYS, PV_MAY_EXIST_KEY } from '../../src/rbd/provisioner.js';
import { setupE2e, type E2e } from '../support/e2e.js';
import { objectState, repoRoot, uniqueName, unpulledImage, waitFor } from '../support/kube.js';

const LEGACY = 'ceph.com/rbd';
let e2e: E2e;
let legacyClass: string;
/** A StorageClass of ours in the same pool: audit scans the pools of our classes. */
let ourClass: string;

before(async () => {
  e2e = await setupE2e('migrate');
  legacyClass = uniqueName('legacy');
  // The old provisioner's class, in its spelling.
  await e2e.storage.createStorageClass({ body: {
    metadata: { name: legacyClass }, provisioner: LEGACY, reclaimPolicy: 'Delete',
    parameters: {
      monitors: e2e.ceph.monHost, adminId: 'admin', adminSecretName: e2e.adminSecret, adminSecretNamespace: e2e.namespace,
      pool: e2e.poolName, userId: 'admin', userSecretName: e2e.adminSecret, imageFormat: '2', imageFeatures: 'layering',
    },
  } });
  ourClass = await e2e.createClass(e2e.baseParameters());
});

after(async () => {
  if (e2e === undefined) return;
  await e2e.storage.deleteStorageClass({ name: legacyClass }).catch(() => undefined);
  // The old provisioner's PVs this file made (cleanup() removes only ours); their images go with the pool.
  for (const pv of (await e2e.core.listPersistentVolume()).items) {
    if (pv.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'] === LEGACY && pv.spec?.claimRef?.namespace === e2e.namespace) {
      await e2e.core.deletePersistentVolume({ name: pv.metadata.name! }).catch(() => undefined);
    }
  }
  await e2e.cleanup();
});

interface LegacyVolume { claim: string; pv: string; image: string; claimUid: string }

/**
 * What the old provisioner left: an image it made with librbd, a claim of its class, and the PV it wrote for the
 * claim (its exact fields), bound by the PV binder. The monitors are the test cluster's (it speaks msgr2 only).
 */
async function legacyVolume(options: { policy?: string; className?: string } = {}): Promise<LegacyVolume> {
  const image = `kubernetes-dynamic-pvc-${randomUUID()}`;
  await e2e.pool.createImage(image, 2 ** 30, { features: ['layering'] });
  const className = options.className ?? legacyClass;
  const created = await e2e.core.createNamespacedPersistentVolumeClaim({ namespace: e2e.namespace, body: {
    metadata: { name: uniqueName('old'), labels: { app: 'legacy' } },
    spec: { storageClassName: className, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  } });
  const claim = created.metadata!.name!;
  const pv = `pvc-${created.metadata!.uid!}`;
  await e2e.core.createPersistentVolume({ body: {
    metadata: { name: pv, annotations: { 'pv.kubernetes.io/provisioned-by': LEGACY, rbdProvisionerIdentity: LEGACY } },
    spec: {
      accessModes: ['ReadWriteOnce'],
      capacity: { storage: '1024Mi' },
      claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: e2e.namespace, name: claim, uid: created.metadata!.uid! },
      persistentVolumeReclaimPolicy: options.policy ?? 'Delete',
      storageClassName: className,
      rbd: {
        monitors: [e2e.ceph.monHost], pool: e2e.poolName, image, user: 'admin',
        secretRef: { name: e2e.adminSecret, namespace: e2e.namespace }, fsType: 'ext4',
      },
    },
  } });
  await e2e.waitBound(claim);
  return { claim, pv, image, claimUid: created.metadata!.uid! };
}

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** `rbd-provisioner <args>` as its own process (or, with a step, the test entry point that dies right after it). */
function cli(args: string[], crashAfter?: MigrationStep): Promise<Run> {
  const main = crashAfter === undefined ? path.join(repoRoot, 'dist', 'src', 'main.js') : path.join(repoRoot, 'dist', 'test', 'support', 'faulty-main.js');
  const env = { ...process.env, KUBECONFIG: '', ...(crashAfter === undefined ? {} : { RBD_PROVISIONER_TEST_FAULT: 'crash-after-migrate-step', RBD_PROVISIONER_TEST_MIGRATE_STEP: crashAfter }) };
  const child = spawn(process.execPath, [main, ...args, `--kubeconfig=${e2e.controlPlane.kubeconfigPath}`], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

const migrate = (pv: string, ...more: string[]) => cli(['migrate', `--pv=${pv}`, `--provisioner-name=${e2e.provisionerName}`, `--namespace=${e2e.namespace}`, ...more]);

async function metadataOf(image: string): Promise<Record<string, string> | undefined> {
  try {
    return await e2e.pool.withImage(image, (img) => img.listMetadata(), { readOnly: true });
  } catch (err) {
    if (err instanceof ImageNotFound) return undefined;
    throw err;
  }
}

/** Everything a finished migration must show: the csi PV, the claim recreated and bound to it, the image ours. */
async function assertMigrated(old: LegacyVolume): Promise<k8s.V1PersistentVolumeClaim> {
  const newPv = migratedVolumeName(old.pv);
  assert.equal(await e2e.readVolume(old.pv), undefined, 'the old PV is gone');
  const pv = await e2e.readVolume(newPv);
  assert.ok(pv, 'the new PV exists');
  assert.equal(pv.spec?.rbd, undefined);
  assert.equal(pv.spec?.csi?.driver, 'rbd.csi.ceph.com');
  assert.equal(pv.spec?.csi?.volumeHandle, old.image);
  assert.equal(pv.spec?.csi?.volumeAttributes?.['pool'], e2e.poolName);
  assert.equal(pv.spec?.persistentVolumeReclaimPolicy, 'Delete', 'the original policy is back');
  assert.equal(pv.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'], e2e.provisionerName);
  const claim = await e2e.readClaim(old.claim);
  assert.ok(claim, 'the claim is there again');
  assert.notEqual(claim.metadata?.uid, old.claimUid, 'a new claim');
  assert.equal(claim.spec?.volumeName, newPv);
  assert.equal(claim.status?.phase, 'Bound');
  assert.deepEqual(claim.metadata?.labels, { app: 'legacy' });
  const meta = await metadataOf(old.image);
  assert.equal(meta?.[OWNER_KEYS.provisioner], e2e.provisionerName);
  assert.equal(meta?.[OWNER_KEYS.claimUid], claim.metadata?.uid);
  assert.equal(meta?.[OWNER_KEYS.pvName], newPv);
  assert.equal(meta?.[PV_MAY_EXIST_KEY], 'true');
  assert.ok(!JSON.stringify(pv).includes(e2e.ceph.adminKey), 'no key on the PV');
  return claim;
}

describe('migrate', () => {
  test('a dry run prints the plan with the downtime and changes nothing; a claim in use by a Pod is refused', async () => {
    const old = await legacyVolume();
    const before = await e2e.readVolume(old.pv);
    const run = await migrate(old.pv);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /dry run: nothing is changed/);
    assert.match(run.stdout, /Downtime: each claim is deleted and recreated/);
    assert.match(run.stdout, new RegExp(`PV ${old.pv} \\(claim ${e2e.namespace}/${old.claim}\\) image ${e2e.poolName}/${old.image}: convert`));
    assert.match(run.stdout, /7\. restore-policy/);
    const after = await e2e.readVolume(old.pv);
    assert.equal(after?.metadata?.resourceVersion, before?.metadata?.resourceVersion, 'the PV is untouched');
    assert.equal((await e2e.readClaim(old.claim))?.metadata?.uid, old.claimUid, 'the claim is untouched');
    assert.equal(await e2e.readVolume(migratedVolumeName(old.pv)), undefined);
    assert.deepEqual(await metadataOf(old.image), {}, 'the image is untouched');

    const pod = uniqueName('user');
    await e2e.core.createNamespacedPod({ namespace: e2e.namespace, body: {
      metadata: { name: pod },
      spec: { containers: [{ name: 'c', image: unpulledImage }], volumes: [{ name: 'data', persistentVolumeClaim: { claimName: old.claim } }] },
    } });
    const refused = await migrate(old.pv, '--apply');
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(refused.stdout, new RegExp(`in use by Pod\\(s\\) ${pod}: migrating deletes and recreates the claim`));
    assert.equal((await e2e.readClaim(old.claim))?.metadata?.uid, old.claimUid, 'the claim is untouched');
    assert.equal((await e2e.readVolume(old.pv))?.spec?.persistentVolumeReclaimPolicy, 'Delete', 'the PV is untouched');
    await e2e.core.deleteNamespacedPod({ name: pod, namespace: e2e.namespace, gracePeriodSeconds: 0 });
  });

  test('--apply converts: csi PV, the same claim name bound to it, the image ours; a re-run finds it done; the controller then deletes it as ours', async () => {
    const old = await legacyVolume();
    const run = await migrate(old.pv, '--apply');
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.ok(!(run.stdout + run.stderr).includes(e2e.ceph.adminKey), 'no key in the output');
    const claim = await assertMigrated(old);
    const again = await migrate(old.pv, '--apply');
    assert.equal(again.code, 0, again.stdout);
    assert.match(again.stdout, /: done: already migrated/);

    const controller = await e2e.startController();
    try {
      await e2e.core.deleteNamespacedPersistentVolumeClaim({ name: claim.metadata!.name!, namespace: e2e.namespace });
      await e2e.waitGone(`image ${old.image}`, async () => (await e2e.images()).includes(old.image));
      await e2e.waitGone(`PV ${migratedVolumeName(old.pv)}`, () => e2e.readVolume(migratedVolumeName(old.pv)));
    } catch (error) {
      process.stderr.write(`controller output:\n${controller.output()}\n`);
      throw error;
    } finally {
      await controller.stop();
    }
  });

  for (const step of ['record', 'create-pv', 'delete-claim', 'delete-old-pv', 'create-claim', 'tag-image'] as const) {
    test(`killed right after step ${step}: a re-run finishes the migration`, async () => {
      const old = await legacyVolume();
      const crashed = await cli(['migrate', `--pv=${old.pv}`, '--apply', `--provisioner-name=${e2e.provisionerName}`, `--namespace=${e2e.namespace}`], step);
      assert.equal(crashed.signal, 'SIGKILL', crashed.stdout + crashed.stderr);
      assert.match(crashed.stderr, new RegExp(`migration step ${step} of PV ${old.pv}`));
      // --all finds an unfinished migration even where only the new PV is left to say so.
      const resumed = step === 'delete-old-pv'
        ? await cli(['migrate', '--all', '--apply', `--provisioner-name=${e2e.provisionerName}`, `--namespace=${e2e.namespace}`])
        : await migrate(old.pv, '--apply');
      assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
      assert.match(resumed.stdout, new RegExp(`PV ${old.pv} \\(claim ${e2e.namespace}/${old.claim}\\) image \\S+: resume\n`));
      await assertMigrated(old);
    });
  }
});

describe('audit', () => {
  const audit = (...more: string[]) => cli(['audit', `--provisioner-name=${e2e.provisionerName}`, ...more]);

  test('reports images against PVs both ways, as JSON too, with an exit code; --delete-orphans removes only what orphan collection would', async () => {
    // A migrated volume: its image and its PV agree.
    const old = await legacyVolume();
    assert.equal((await migrate(old.pv, '--apply')).code, 0);
    const clean = await audit('--output=json');
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    const report = JSON.parse(clean.stdout) as AuditReport;
    assert.equal(report.problems, 0);
    assert.ok(report.images.some((i) => i.image === `${e2e.poolName}/${old.image}` && i.verdict === 'has-pv'));
    assert.ok(report.volumes.some((v) => v.pv === migratedVolumeName(old.pv) && v.verdict === 'ok'));

    // An image that never had a PV and whose claim is gone, and one that may have had a PV (kept whatever happens).
    const tagged = async (state: 'unrecorded' | 'pv-may-exist') => {
      const uid = randomUUID();
      const image = `pvc-${uid}`;
      await e2e.pool.createImage(image, 2 ** 20);
      await e2e.pool.withImage(image, async (img) => {
        await img.setMetadata(OWNER_KEYS.provisioner, e2e.provisionerName);
        await img.setMetadata(OWNER_KEYS.claimNamespace, e2e.namespace);
        await img.setMetadata(OWNER_KEYS.claimName, 'gone');
        await img.setMetadata(OWNER_KEYS.pvName, image);
        await img.setMetadata(OWNER_KEYS.claimUid, uid);
        if (state === 'pv-may-exist') await img.setMetadata(PV_MAY_EXIST_KEY, 'true');
      });
      return image;
    };
    const orphan = await tagged('unrecorded');
    const unsure = await tagged('pv-may-exist');
    const found = await audit('--output=json');
    assert.equal(found.code, 1, found.stdout + found.stderr);
    const findings = (JSON.parse(found.stdout) as AuditReport).images;
    assert.equal(findings.find((i) => i.image === `${e2e.poolName}/${orphan}`)?.verdict, 'orphan');
    assert.equal(findings.find((i) => i.image === `${e2e.poolName}/${unsure}`)?.verdict, 'unsure');
    assert.ok((await e2e.images()).includes(orphan), 'report only: nothing deleted');

    const text = await audit();
    assert.equal(text.code, 1);
    assert.match(text.stdout, new RegExp(`PROBLEM image ${e2e.poolName}/${orphan} \\(unrecorded\\).*: orphan`));
    assert.match(text.stdout, /audit: 2 problem\(s\)/);

    const cleaned = await audit('--delete-orphans', '--output=json');
    assert.equal(cleaned.code, 1, 'the unsure image is still a problem for a human');
    assert.equal((JSON.parse(cleaned.stdout) as AuditReport).images.find((i) => i.image === `${e2e.poolName}/${orphan}`)?.action, 'deleted');
    assert.ok(!(await e2e.images()).includes(orphan), 'the orphan is gone');
    assert.ok((await e2e.images()).includes(unsure), 'an image that may have had a PV is never deleted');

    await e2e.pool.removeImage(unsure);
    const well = await audit();
    assert.equal(well.code, 0, well.stdout);
    assert.match(well.stdout, /audit: all well/);

    const bad = await audit('--output=yaml');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--output: "yaml" is not an output format; allowed: text, json/);
  });
});

describe('takeover (--take-over-provisioner=ceph.com/rbd)', () => {
  test('a Released Delete PV\'s image is deleted; a bound one, a Retain one, and one whose class is gone (with a Warning saying how to fix it) are kept', async () => {
    const released = await legacyVolume();
    const bound = await legacyVolume();
    const retained = await legacyVolume({ policy: 'Retain' });
    const orphanClass = uniqueName('legacy-gone');
    await e2e.storage.createStorageClass({ body: { metadata: { name: orphanClass }, provisioner: LEGACY, parameters: { monitors: e2e.ceph.monHost, adminSecretName: e2e.adminSecret } } });
    const classless = await legacyVolume({ className: orphanClass });
    await e2e.storage.deleteStorageClass({ name: orphanClass });

    const controller = await e2e.startController({ extraArgs: [`--take-over-provisioner=${LEGACY}`] });
    try {
      for (const volume of [released, retained, classless]) await e2e.core.deleteNamespacedPersistentVolumeClaim({ name: volume.claim, namespace: e2e.namespace });
      await e2e.waitGone(`image ${released.image}`, async () => (await e2e.images()).includes(released.image));
      await e2e.waitGone(`PV ${released.pv}`, () => e2e.readVolume(released.pv));

      const warning = await e2e.waitEvent(classless.pv, 'VolumeFailedDelete');
      assert.equal(warning.type, 'Warning');
      assert.match(warning.message ?? '', new RegExp(`StorageClass "${orphanClass}", where the old provisioner kept them, no longer exists`));
      assert.match(warning.message ?? '', /recreate StorageClass .* or give the PV its admin Secret: kubectl annotate pv .* or convert it with "rbd-provisioner migrate"/);
      assert.ok((await e2e.images()).includes(classless.image), 'no admin credentials: the image is kept');

      // The Retain PV went Released at the same time as the others: by now it would have been deleted.
      await waitFor(`PV ${retained.pv} Released`, async (observe) => {
        const pv = await e2e.readVolume(retained.pv);
        observe(pv && objectState(pv));
        return pv?.status?.phase === 'Released' ? true : undefined;
      }, { timeoutMs: 30_000, intervalMs: 200 });
      assert.ok((await e2e.images()).includes(retained.image), 'a Retain PV keeps its image');
      assert.ok((await e2e.images()).includes(bound.image), 'a PV whose claim exists keeps its image');
      assert.equal((await e2e.readVolume(bound.pv))?.status?.phase, 'Bound');
      assert.ok(!controller.output().includes(e2e.ceph.adminKey), 'no key in the controller output');
    } finally {
      await controller.stop();
    }
    for (const volume of [retained, classless]) {
      await e2e.core.deletePersistentVolume({ name: volume.pv });
      await e2e.pool.removeImage(volume.image);
    }
  });
});
