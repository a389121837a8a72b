// Clones and snapshots through the controller process on the test clusters (issue 12's figures): a 10 GiB claim with
// 1 GiB written through librbd, then COPIES clone claims one at a time (creation -> Bound) and COPIES VolumeSnapshots
// one at a time (creation -> readyToUse). Prints medians and ranges; asserts nothing.
import { performance } from 'node:perf_hooks';
import * as k8s from '@kubernetes/client-node';
import { setupE2e } from '../test/support/e2e.js';
import { uniqueName, waitFor } from '../test/support/kube.js';

const COPIES = Number(process.env['COPIES'] ?? 20);
const GROUP = 'snapshot.storage.k8s.io';
const MiB = 2 ** 20;

function summary(label: string, seconds: number[]): string {
  const sorted = [...seconds].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return `${label}: median ${at(0.5).toFixed(3)} s, min ${sorted[0]!.toFixed(3)} s, p90 ${at(0.9).toFixed(3)} s, max ${sorted.at(-1)!.toFixed(3)} s (n=${sorted.length})`;
}

const e2e = await setupE2e('bench-copies');
try {
  const custom = e2e.kc.makeApiClient(k8s.CustomObjectsApi);
  const storageClass = await e2e.createClass(e2e.baseParameters());
  const snapshotClass = uniqueName('bench-snapclass');
  await custom.createClusterCustomObject({
    group: GROUP, version: 'v1', plural: 'volumesnapshotclasses',
    body: { apiVersion: `${GROUP}/v1`, kind: 'VolumeSnapshotClass', metadata: { name: snapshotClass }, driver: 'rbd.csi.ceph.com', deletionPolicy: 'Delete' },
  });
  await e2e.startController();
  const source = await e2e.createClaim(storageClass, { size: '10Gi' });
  const pv = await e2e.waitBound(source.metadata!.name!);
  const chunk = Buffer.alloc(16 * MiB, 0x5a);
  await e2e.pool.withImage(pv.spec!.csi!.volumeHandle, async (image) => {
    for (let offset = 0; offset < 1024 * MiB; offset += chunk.length) await image.write(offset, chunk);
  });
  console.log(`source: 10 GiB claim, 1 GiB written; ${COPIES} clones and ${COPIES} snapshots, one at a time`);

  const clones: number[] = [];
  for (let i = 0; i < COPIES; i++) {
    const name = uniqueName('bench-clone');
    const started = performance.now();
    await e2e.core.createNamespacedPersistentVolumeClaim({
      namespace: e2e.namespace,
      body: { metadata: { name }, spec: { storageClassName: storageClass, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Gi' } }, dataSource: { kind: 'PersistentVolumeClaim', name: source.metadata!.name! } } },
    });
    await waitFor(`clone ${name} Bound`, async () => ((await e2e.readClaim(name))?.status?.phase === 'Bound' ? true : undefined), { timeoutMs: 120_000, intervalMs: 10 });
    clones.push((performance.now() - started) / 1000);
  }
  console.log(summary('clone claim, creation -> Bound', clones));

  const snapshots: number[] = [];
  for (let i = 0; i < COPIES; i++) {
    const name = uniqueName('bench-snap');
    const started = performance.now();
    await custom.createNamespacedCustomObject({
      group: GROUP, version: 'v1', namespace: e2e.namespace, plural: 'volumesnapshots',
      body: { apiVersion: `${GROUP}/v1`, kind: 'VolumeSnapshot', metadata: { name }, spec: { volumeSnapshotClassName: snapshotClass, source: { persistentVolumeClaimName: source.metadata!.name! } } },
    });
    await waitFor(`snapshot ${name} ready`, async () => {
      const snapshot = (await custom.getNamespacedCustomObject({ group: GROUP, version: 'v1', namespace: e2e.namespace, plural: 'volumesnapshots', name })) as { status?: { readyToUse?: boolean } };
      return snapshot.status?.readyToUse === true ? true : undefined;
    }, { timeoutMs: 120_000, intervalMs: 10 });
    snapshots.push((performance.now() - started) / 1000);
  }
  console.log(summary('VolumeSnapshot, creation -> readyToUse', snapshots));

  const list = (await custom.listNamespacedCustomObject({ group: GROUP, version: 'v1', namespace: e2e.namespace, plural: 'volumesnapshots' })) as { items: k8s.KubernetesObject[] };
  for (const snapshot of list.items) await custom.deleteNamespacedCustomObject({ group: GROUP, version: 'v1', namespace: e2e.namespace, plural: 'volumesnapshots', name: snapshot.metadata!.name! });
  await waitFor('snapshots gone', async () => {
    const left = (await custom.listNamespacedCustomObject({ group: GROUP, version: 'v1', namespace: e2e.namespace, plural: 'volumesnapshots' })) as { items: unknown[] };
    return left.items.length === 0 ? true : undefined;
  }, { timeoutMs: 120_000, intervalMs: 200 });
  await custom.deleteClusterCustomObject({ group: GROUP, version: 'v1', plural: 'volumesnapshotclasses', name: snapshotClass });
} finally {
  await e2e.cleanup();
}
