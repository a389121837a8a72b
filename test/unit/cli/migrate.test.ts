// migrate's and audit's pure parts: the plan (which steps are left, from what is observed: the whole resume logic),
// and argument errors that name the flag and the allowed values. The takeover decision of the delete path too.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { describeEntry, MIGRATION_STEPS, parseMigrateArgs, planEntry, UsageError, type Observed } from '../../../src/cli/migrate.js';
import { imageIsWrong, parseAuditArgs } from '../../../src/cli/audit.js';
import { decideVolume } from '../../../src/controllers/provision/decisions.js';
import { parseConfig, ConfigError } from '../../../src/config.js';
import { convertVolume, MIGRATION_ANNOTATION, migratedVolumeName } from '../../../src/rbd/legacy.js';
import { legacyPv } from '../fakes.js';

const OLD = legacyPv().metadata!.name!;
const NEW = migratedVolumeName(OLD);
const oldClaim: V1PersistentVolumeClaim = {
  metadata: { name: 'data', namespace: 'apps', uid: 'claim-uid-1' },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: 'rbd', volumeName: OLD },
};
const newClaim: V1PersistentVolumeClaim = { ...oldClaim, metadata: { ...oldClaim.metadata, uid: 'claim-uid-2' }, spec: { ...oldClaim.spec, volumeName: NEW } };
const admin = { adminId: 'admin', adminSecret: { name: 'ceph-secret', namespace: 'kube-system' }, from: 'class' as const };
const converted = convertVolume({ pv: legacyPv(), claim: oldClaim, admin, imageSizeBytes: 2 ** 30, imageFeatures: ['layering'], nodeStageSecret: { name: 'u', namespace: 'apps' }, provisionerName: 'rbd.provisioner.ceph.io' });
const recorded = (pv: V1PersistentVolume, done = false): V1PersistentVolume => ({
  ...pv, metadata: { ...pv.metadata, annotations: { ...pv.metadata?.annotations, [MIGRATION_ANNOTATION]: JSON.stringify({ ...converted.record, done }) } },
});
const oldRecorded = recorded(legacyPv({ policy: 'Retain' }));
const observe = (o: Partial<Observed>): Observed => ({ oldPvName: OLD, oldPv: undefined, newPv: undefined, claim: undefined, podsUsingClaim: [], ...o });

describe('migrate: the plan, from what is observed', () => {
  const rows: Array<{ name: string; observed: Observed; action: string; steps?: string[]; reason?: RegExp }> = [
    { name: 'not started: every step', observed: observe({ oldPv: legacyPv(), claim: oldClaim }), action: 'convert', steps: [...MIGRATION_STEPS] },
    { name: 'a claim in use by a Pod is refused, naming the Pod and the downtime', observed: observe({ oldPv: legacyPv(), claim: oldClaim, podsUsingClaim: ['db-0'] }), action: 'refuse', reason: /in use by Pod\(s\) db-0.*stop them first/ },
    { name: 'a Released PV is skipped, not an error (only bound PVs are migrated)', observed: observe({ oldPv: legacyPv({ phase: 'Released' }), claim: undefined }), action: 'skip', reason: /Released, not Bound/ },
    { name: 'a claim that is gone is refused', observed: observe({ oldPv: legacyPv() }), action: 'refuse', reason: /no longer exists/ },
    { name: 'another provisioner\'s PV is refused', observed: observe({ oldPv: { ...legacyPv(), metadata: { name: OLD, annotations: { 'pv.kubernetes.io/provisioned-by': 'x.io/y' } } }, claim: oldClaim }), action: 'refuse', reason: /not an in-tree rbd PV of ceph\.com\/rbd/ },
    { name: 'a PV of the new name that is not this migration\'s is refused', observed: observe({ oldPv: legacyPv(), newPv: { metadata: { name: NEW } }, claim: oldClaim }), action: 'refuse', reason: /not this migration's/ },
    { name: 'crash after the record: the rest', observed: observe({ oldPv: oldRecorded, claim: oldClaim }), action: 'resume', steps: ['create-pv', 'delete-claim', 'delete-old-pv', 'create-claim', 'tag-image', 'restore-policy'] },
    { name: 'crash after the new PV: from the claim on', observed: observe({ oldPv: oldRecorded, newPv: converted.volume, claim: oldClaim }), action: 'resume', steps: ['delete-claim', 'delete-old-pv', 'create-claim', 'tag-image', 'restore-policy'] },
    { name: 'crash after the claim was deleted: a Pod is no longer a reason to refuse', observed: observe({ oldPv: oldRecorded, newPv: converted.volume }), action: 'resume', steps: ['delete-old-pv', 'create-claim', 'tag-image', 'restore-policy'] },
    { name: 'crash after the old PV went: found by the new PV\'s record', observed: observe({ newPv: converted.volume }), action: 'resume', steps: ['create-claim', 'tag-image', 'restore-policy'] },
    { name: 'crash after the claim was recreated', observed: observe({ newPv: converted.volume, claim: newClaim, imageTagged: false }), action: 'resume', steps: ['tag-image', 'restore-policy'] },
    { name: 'crash after the image was tagged', observed: observe({ newPv: converted.volume, claim: newClaim, imageTagged: true }), action: 'resume', steps: ['restore-policy'] },
    { name: 'finished: nothing', observed: observe({ newPv: recorded(converted.volume, true), claim: newClaim }), action: 'done', steps: [] },
    { name: 'a claim of the same name made by someone else meanwhile is refused', observed: observe({ newPv: converted.volume, claim: { ...newClaim, spec: { ...newClaim.spec, volumeName: 'other' } } }), action: 'refuse', reason: /recreated by someone else/ },
    { name: 'the old claim still used mid-migration is refused', observed: observe({ oldPv: oldRecorded, newPv: converted.volume, claim: oldClaim, podsUsingClaim: ['db-0'] }), action: 'refuse', reason: /db-0/ },
    { name: 'neither PV: refused', observed: observe({}), action: 'refuse', reason: /does not exist/ },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const entry = planEntry(row.observed, 'ceph.com/rbd');
      assert.equal(entry.action, row.action, entry.reason);
      if (row.steps) assert.deepEqual(entry.steps, row.steps);
      if (row.reason) assert.match(entry.reason ?? '', row.reason);
    });
  }

  test('the new PV\'s clusterID: derived from the monitors as for a class, or --cluster-id', () => {
    const observed = observe({ oldPv: legacyPv(), claim: oldClaim });
    assert.equal(planEntry(observed, 'ceph.com/rbd').clusterID, converted.volume.spec?.csi?.volumeAttributes?.['clusterID']);
    assert.equal(planEntry(observed, 'ceph.com/rbd', 'ceph-prod').clusterID, 'ceph-prod');
  });

  test('the printed plan numbers each step and states the downtime', () => {
    const text = describeEntry(planEntry(observe({ oldPv: legacyPv(), claim: oldClaim }), 'ceph.com/rbd'), 'Delete');
    assert.match(text, /^PV pvc-\S+ \(claim apps\/data\) image kube\/kubernetes-dynamic-pvc-\S+: convert\n/);
    assert.match(text, /1\. record: set PV .* reclaim policy to Retain \(from Delete/);
    assert.match(text, /3\. delete-claim: .*DOWNTIME starts/);
    assert.match(text, /2\. create-pv: .*clusterID rbd-[0-9a-f]{32} \(ceph-csi's config map needs it\)/);
    assert.match(text, /7\. restore-policy: set PV .*-csi's reclaim policy back to Delete/);
  });
});

describe('migrate and audit: argument errors name the flag and what it allows', () => {
  const migrateErrors: Array<[string[], RegExp]> = [
    [[], /--all or one or more --pv/],
    [['--all', '--pv=a'], /--all or one or more --pv/],
    [['--pv=Bad_Name'], /--pv: "Bad_Name" is not a PV name; allowed:/],
    [['--all', '--admin-secret=nope'], /--admin-secret: "nope" is not <namespace>\/<name> of a Secret; allowed:/],
    [['--all', '--admin-id=ops'], /--admin-id needs --admin-secret/],
    [['--all', '--wait-timeout=soon'], /--wait-timeout: "soon" .*allowed: 1 to 3600/],
    [['--all', '--from-provisioner=rbd.provisioner.ceph.io'], /--from-provisioner: .* is --provisioner-name too; allowed: .*ceph\.com\/rbd/],
    [['--all', '--namespace=Not OK'], /--namespace: "Not OK" is not a namespace name; allowed:/],
    [['--all', '--key=AQB'], /Unknown option '--key'/],
  ];
  for (const [args, message] of migrateErrors) {
    test(`migrate ${args.join(' ') || '(nothing)'}`, () => assert.throws(() => parseMigrateArgs(args, {}), (err: unknown) => err instanceof UsageError && message.test(err.message)));
  }

  test('migrate defaults: dry run, ceph.com/rbd, our default name, POD_NAMESPACE', () => {
    const options = parseMigrateArgs(['--all'], { POD_NAMESPACE: 'rbd-system' });
    assert.ok(options !== 'help');
    assert.equal(options.apply, false);
    assert.equal(options.fromProvisioner, 'ceph.com/rbd');
    assert.equal(options.provisionerName, 'rbd.provisioner.ceph.io');
    assert.equal(options.namespace, 'rbd-system');
  });

  test('audit --output=yaml names the flag and the allowed values', () => {
    assert.throws(() => parseAuditArgs(['--output=yaml'], {}), (err: unknown) => err instanceof UsageError && /--output: "yaml" is not an output format; allowed: text, json/.test(err.message));
  });

  test('audit: only an image with its PV, or whose claim is still being provisioned, is well', () => {
    const finding = { location: 'l', image: 'p/i', pv: 'pvc-1', claim: 'a/b' };
    assert.equal(imageIsWrong({ ...finding, state: 'pv-may-exist', verdict: 'has-pv' }), false);
    assert.equal(imageIsWrong({ ...finding, state: 'unrecorded', verdict: 'claim-exists' }), false);
    assert.equal(imageIsWrong({ ...finding, state: 'unrecorded', verdict: 'has-pv' }), true);
    assert.equal(imageIsWrong({ ...finding, state: 'pv-may-exist', verdict: 'unsure' }), true);
    assert.equal(imageIsWrong({ ...finding, state: 'unrecorded', verdict: 'orphan' }), true);
    assert.equal(imageIsWrong({ ...finding, state: 'unrecorded', verdict: 'orphan', action: 'deleted' }), false);
  });
});

describe('takeover of the retired provisioner\'s PVs (--take-over-provisioner)', () => {
  const ours = 'rbd.provisioner.ceph.io';
  const rows: Array<[string, V1PersistentVolume, string[], string]> = [
    ['off by default: skipped', legacyPv({ phase: 'Released' }), [], 'skip'],
    ['Released, Delete: deleted', legacyPv({ phase: 'Released' }), ['ceph.com/rbd'], 'delete'],
    ['Released, Retain: kept', legacyPv({ phase: 'Released', policy: 'Retain' }), ['ceph.com/rbd'], 'skip'],
    ['Bound: no finalizer of ours is added, nothing done', legacyPv(), ['ceph.com/rbd'], 'skip'],
    ['Failed: nothing', legacyPv({ phase: 'Failed' }), ['ceph.com/rbd'], 'skip'],
  ];
  for (const [name, pv, takeOver, action] of rows) test(name, () => assert.equal(decideVolume(pv, ours, takeOver).action, action));

  test('the flag: comma-separated names; our own name is refused, naming the flag', () => {
    assert.deepEqual(parseConfig(['--take-over-provisioner=ceph.com/rbd, other.io/rbd'], {}).takeOverProvisioners, ['ceph.com/rbd', 'other.io/rbd']);
    assert.deepEqual(parseConfig([], {}).takeOverProvisioners, []);
    assert.throws(() => parseConfig(['--take-over-provisioner=rbd.provisioner.ceph.io'], {}), (err: unknown) => err instanceof ConfigError && /^--take-over-provisioner: .*own name/.test(err.message));
    assert.throws(() => parseConfig(['--take-over-provisioner=bad name!'], {}), (err: unknown) => err instanceof ConfigError && err.message.startsWith('--take-over-provisioner: '));
  });
});
