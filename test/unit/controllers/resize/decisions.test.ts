import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import {
  ANN_STORAGE_RESIZER, type ClaimResizeDecision, decideClaimResize, markExpanded, markFailed, markInProgress, targetSize, withConditions,
} from '../../../../src/controllers/resize/decisions.js';
import { CSI_DRIVER, PROVISIONER, makeClaim, makeCsiVolume } from '../../fakes.js';

const NOW = new Date('2026-01-01T00:00:00Z');

/** A bound claim as the expand controller leaves it after its request grew. */
export function resizableClaim(options: { request?: string; resizer?: string | null; status?: Record<string, unknown>; uid?: string } = {}): V1PersistentVolumeClaim {
  const claim = makeClaim('data', { annotations: {
    'volume.kubernetes.io/storage-provisioner': CSI_DRIVER,
    ...(options.resizer === null ? {} : { [ANN_STORAGE_RESIZER]: options.resizer ?? CSI_DRIVER }),
  }, ...(options.uid === undefined ? {} : { uid: options.uid }) });
  claim.spec = { ...claim.spec, volumeName: 'pvc-u1', resources: { requests: { storage: options.request ?? '2Gi' } } };
  claim.status = { phase: 'Bound', capacity: { storage: '1Gi' }, ...options.status };
  return claim;
}

export function boundVolume(options: { capacity?: string; provisionedBy?: string | null; driver?: string | null; block?: boolean } = {}): V1PersistentVolume {
  const volume = makeCsiVolume('pvc-u1', {
    ...(options.provisionedBy === undefined ? {} : { provisionedBy: options.provisionedBy }),
    ...(options.driver === undefined ? {} : { driver: options.driver }),
  });
  volume.spec = { ...volume.spec, capacity: { storage: options.capacity ?? '1Gi' }, volumeMode: options.block === true ? 'Block' : 'Filesystem' };
  return volume;
}

describe('decideClaimResize: only claims the expand controller handed to our PV\'s driver, and only to grow', () => {
  const inProgress = (allocated: string) => ({ allocatedResources: { storage: allocated }, allocatedResourceStatuses: { storage: 'ControllerResizeInProgress' } });
  const rows: { name: string; claim: V1PersistentVolumeClaim; volume: V1PersistentVolume | undefined; action: ClaimResizeDecision['action']; size?: string; fragment?: string }[] = [
    { name: 'request above the PV capacity', claim: resizableClaim(), volume: boundVolume(), action: 'expand', size: '2Gi' },
    { name: 'a block volume the same way', claim: resizableClaim(), volume: boundVolume({ block: true }), action: 'expand', size: '2Gi' },
    { name: 'equal quantities spelled differently', claim: resizableClaim({ request: '1024Mi' }), volume: boundVolume(), action: 'skip', fragment: 'as large as asked' },
    { name: 'request below the PV capacity (never shrink)', claim: resizableClaim({ request: '1Gi' }), volume: boundVolume({ capacity: '2Gi' }), action: 'skip', fragment: 'as large as asked' },
    { name: 'no storage-resizer annotation (what the expand controller leaves on a CSI PV\'s claim)', claim: resizableClaim({ resizer: null }), volume: boundVolume(), action: 'expand', size: '2Gi' },
    { name: 'handed to another resizer', claim: resizableClaim({ resizer: 'other.csi.example.com' }), volume: boundVolume(), action: 'skip', fragment: 'handed the claim to other.csi.example.com' },
    { name: 'a rbd.csi.ceph.com PV not provisioned by us', claim: resizableClaim(), volume: boundVolume({ provisionedBy: 'rbd.csi.ceph.com' }), action: 'skip', fragment: 'not provisioned by us' },
    { name: 'a PV made by hand', claim: resizableClaim(), volume: boundVolume({ provisionedBy: null }), action: 'skip', fragment: 'not provisioned by us' },
    { name: 'our in-tree rbd PV', claim: resizableClaim(), volume: boundVolume({ driver: null }), action: 'skip', fragment: 'not a CSI volume' },
    { name: 'the PV names another claim', claim: resizableClaim({ uid: 'uid-other' }), volume: boundVolume(), action: 'skip', fragment: 'not bound to this claim' },
    { name: 'PV unknown', claim: resizableClaim(), volume: undefined, action: 'skip', fragment: 'not known' },
    { name: 'claim not bound', claim: { ...resizableClaim(), status: { phase: 'Pending' } }, volume: boundVolume(), action: 'skip', fragment: 'not bound' },
    { name: 'unparsable request', claim: resizableClaim({ request: 'lots' }), volume: boundVolume(), action: 'skip', fragment: 'unparsable' },
    { name: 'in progress to a larger allocated size; request lowered meanwhile: keeps the allocated target', claim: resizableClaim({ request: '2Gi', status: inProgress('5Gi') }), volume: boundVolume(), action: 'expand', size: '5Gi' },
    { name: 'in progress, request raised meanwhile: the request', claim: resizableClaim({ request: '3Gi', status: inProgress('2Gi') }), volume: boundVolume(), action: 'expand', size: '3Gi' },
    { name: 'infeasible, request lowered: the lower request (KEP 1790 recovery)', claim: resizableClaim({ request: '2Gi', status: { allocatedResources: { storage: '100Ti' }, allocatedResourceStatuses: { storage: 'ControllerResizeInfeasible' } } }), volume: boundVolume(), action: 'expand', size: '2Gi' },
    { name: 'in progress, PV already grown (crash after the PV update): finish', claim: resizableClaim({ status: inProgress('2Gi') }), volume: boundVolume({ capacity: '2Gi' }), action: 'finish' },
    { name: 'node step pending, PV grown: the node\'s turn', claim: resizableClaim({ status: { allocatedResources: { storage: '2Gi' }, allocatedResourceStatuses: { storage: 'NodeResizePending' } } }), volume: boundVolume({ capacity: '2Gi' }), action: 'skip', fragment: 'as large as asked' },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const decision = decideClaimResize(row.claim, row.volume, PROVISIONER);
      assert.equal(decision.action, row.action, JSON.stringify(decision));
      if (row.size !== undefined) assert.equal(decision.action === 'expand' ? decision.size : undefined, row.size);
      if (row.fragment !== undefined) assert.ok(decision.action === 'skip' && decision.reason.includes(row.fragment), JSON.stringify(decision));
    });
  }

  test('targetSize without a request is undefined', () => {
    const claim = resizableClaim();
    claim.spec!.resources = {};
    assert.equal(targetSize(claim), undefined);
  });
});

describe('the claim status at each step (what Kubernetes expects of a resizer)', () => {
  test('in progress: allocated size, ControllerResizeInProgress, condition Resizing; the patch is conditional', () => {
    const claim = resizableClaim();
    claim.status!.conditions = [{ type: 'ModifyingVolume', status: 'True' }];
    const patch = markInProgress(claim, '2Gi', NOW);
    assert.equal(patch.metadata.resourceVersion, '7');
    assert.deepEqual(patch.status['allocatedResources'], { storage: '2Gi' });
    assert.deepEqual(patch.status['allocatedResourceStatuses'], { storage: 'ControllerResizeInProgress' });
    const conditions = patch.status['conditions'] as { type: string; status: string }[];
    assert.deepEqual(conditions.map((c) => [c.type, c.status]), [['ModifyingVolume', 'True'], ['Resizing', 'True']]);
  });

  test('filesystem: NodeResizePending and FileSystemResizePending; status.capacity left to the kubelet', () => {
    const claim = resizableClaim({ status: { conditions: [{ type: 'Resizing', status: 'True', lastTransitionTime: NOW }] } });
    const patch = markExpanded(claim, '2Gi', true, NOW);
    assert.deepEqual(patch.status['allocatedResourceStatuses'], { storage: 'NodeResizePending' });
    assert.equal(patch.status['capacity'], undefined);
    assert.deepEqual((patch.status['conditions'] as { type: string }[]).map((c) => c.type), ['FileSystemResizePending']);
  });

  test('block: status.capacity is the new size; no resize status or condition left', () => {
    const claim = resizableClaim({ status: { conditions: [{ type: 'Resizing', status: 'True' }, { type: 'ControllerResizeError', status: 'True' }] } });
    const patch = markExpanded(claim, '2Gi', false, NOW);
    assert.deepEqual(patch.status['capacity'], { storage: '2Gi' });
    assert.deepEqual(patch.status['allocatedResourceStatuses'], { storage: null });
    assert.deepEqual(patch.status['conditions'], []);
  });

  test('failures: infeasible marks the status; a transient one only adds ControllerResizeError to Resizing', () => {
    const claim = resizableClaim();
    const infeasible = markFailed(claim, true, 'image is not ours', NOW);
    assert.deepEqual(infeasible.status['allocatedResourceStatuses'], { storage: 'ControllerResizeInfeasible' });
    assert.deepEqual((infeasible.status['conditions'] as { type: string; message: string }[]).map((c) => [c.type, c.message]), [['ControllerResizeError', 'image is not ours']]);
    const transient = markFailed(claim, false, 'quota', NOW);
    assert.equal(transient.status['allocatedResourceStatuses'], undefined);
    assert.deepEqual((transient.status['conditions'] as { type: string }[]).map((c) => c.type), ['Resizing', 'ControllerResizeError']);
  });

  test('a condition that stays keeps its transition time', () => {
    const before = new Date('2025-01-01T00:00:00Z');
    const conditions = withConditions([{ type: 'Resizing', status: 'True', lastTransitionTime: before }], [{ type: 'Resizing' }], NOW);
    assert.equal(conditions[0]!.lastTransitionTime, before);
    assert.equal(conditions[0]!.lastProbeTime, NOW);
  });
});
