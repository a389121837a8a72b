import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1PersistentVolume, V1VolumeAttachment } from '@kubernetes/client-node';
import { type AttachmentDecision, attacherFinalizer, decideAttachment, sanitizeDriverName } from '../../../../src/controllers/attach/decisions.js';
import { CSI_DRIVER, PROVISIONER, makeAttachment, makeCsiVolume } from '../../fakes.js';

const FINALIZER = 'external-attacher/rbd-csi-ceph-com';

describe('attacherFinalizer (as external-attacher names it)', () => {
  const rows: [string, string][] = [
    ['rbd.csi.ceph.com', 'rbd-csi-ceph-com'],
    ['example.com/driver', 'example-com-driver'],
    ['driver.', 'driver-X'],
    ['a_b-c', 'a-b-c'],
  ];
  for (const [driver, sanitized] of rows) {
    test(`${driver} -> ${sanitized}`, () => {
      assert.equal(sanitizeDriverName(driver), sanitized);
      assert.equal(attacherFinalizer(driver), `external-attacher/${sanitized}`);
    });
  }
});

describe('decideAttachment: only attachments of our PVs, by their own driver', () => {
  const ours = makeCsiVolume('pvc-u1');
  const rows: { name: string; attachment: V1VolumeAttachment; volume: V1PersistentVolume | undefined; expected: AttachmentDecision['action']; fragment?: string }[] = [
    { name: 'new attachment of our PV', attachment: makeAttachment('va-1'), volume: ours, expected: 'attach' },
    { name: 'status attached false (e.g. after an error)', attachment: makeAttachment('va-1', { attached: false }), volume: ours, expected: 'attach' },
    { name: 'already attached', attachment: makeAttachment('va-1', { attached: true }), volume: ours, expected: 'skip', fragment: 'already attached' },
    { name: 'another attacher on our PV', attachment: makeAttachment('va-1', { attacher: 'other.csi.example.com' }), volume: ours, expected: 'skip', fragment: "PV's driver is rbd.csi.ceph.com" },
    { name: 'PV of our provisioner name but another driver', attachment: makeAttachment('va-1', { attacher: 'other.csi.example.com' }), volume: makeCsiVolume('pvc-u1', { driver: 'other.csi.example.com' }), expected: 'attach' },
    { name: 'rbd.csi.ceph.com PV provisioned by someone else', attachment: makeAttachment('va-1'), volume: makeCsiVolume('pvc-u1', { provisionedBy: 'rbd.csi.ceph.com' }), expected: 'skip', fragment: 'not provisioned by us' },
    { name: 'rbd.csi.ceph.com PV made by hand (no annotation)', attachment: makeAttachment('va-1'), volume: makeCsiVolume('pvc-u1', { provisionedBy: null }), expected: 'skip', fragment: 'not provisioned by us' },
    { name: 'our PV is not CSI', attachment: makeAttachment('va-1'), volume: makeCsiVolume('pvc-u1', { driver: null }), expected: 'skip', fragment: 'not a CSI volume' },
    { name: 'inline volume', attachment: makeAttachment('va-1', { inline: true }), volume: undefined, expected: 'skip', fragment: 'inline' },
    { name: 'PV not in the cache', attachment: makeAttachment('va-1'), volume: undefined, expected: 'skip', fragment: 'not known' },
    { name: 'being deleted, no finalizer: deletion is instant', attachment: makeAttachment('va-1', { attached: true, deleting: true, finalizers: ['other/finalizer'] }), volume: ours, expected: 'skip', fragment: 'nothing to detach' },
    { name: 'being deleted with the attacher finalizer', attachment: makeAttachment('va-1', { attached: true, deleting: true, finalizers: [FINALIZER] }), volume: ours, expected: 'detach' },
    { name: 'being deleted with the attacher finalizer, not attached', attachment: makeAttachment('va-1', { deleting: true, finalizers: ['x', FINALIZER] }), volume: ours, expected: 'detach' },
    { name: 'being deleted, attacher finalizer, PV not ours', attachment: makeAttachment('va-1', { attached: true, deleting: true, finalizers: [FINALIZER] }), volume: makeCsiVolume('pvc-u1', { provisionedBy: null }), expected: 'skip', fragment: 'not provisioned by us' },
    { name: 'not deleted, attacher finalizer present: attach, finalizer left alone', attachment: makeAttachment('va-1', { finalizers: [FINALIZER] }), volume: ours, expected: 'attach' },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const decision = decideAttachment(row.attachment, row.volume, PROVISIONER);
      assert.equal(decision.action, row.expected, JSON.stringify(decision));
      if (row.fragment !== undefined) {
        assert.equal(decision.action, 'skip');
        assert.ok(decision.action === 'skip' && decision.reason.includes(row.fragment), `${decision.action === 'skip' ? decision.reason : ''} should mention ${row.fragment}`);
      }
      if (decision.action === 'detach') assert.equal(decision.finalizer, attacherFinalizer(CSI_DRIVER));
    });
  }
});
