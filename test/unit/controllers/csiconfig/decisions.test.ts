// The merge of ceph-csi's config.json: only our entries change; foreign entries, unknown keys and other provisioners'
// ownership are kept; conflicts are reported, never overwritten.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type ClusterEntry, type EntrySource, type MergeInput, mergeConfig, wantedEntries,
} from '../../../../src/controllers/csiconfig/decisions.js';

const ME = 'rbd.provisioner.ceph.io';
const A: ClusterEntry = { clusterID: 'rbd-a', monitors: ['10.0.0.1:6789', '10.0.0.2:6789'], radosNamespace: '' };
const B: ClusterEntry = { clusterID: 'rbd-b', monitors: ['[v2:10.0.0.9:3300,v1:10.0.0.9:6789]'], radosNamespace: 'team-b' };
const FOREIGN = { clusterID: 'theirs', monitors: ['192.168.1.1:6789'], cephFS: { subvolumeGroup: 'csi' }, readAffinity: { enabled: true } };

const ownership = (ids: Record<string, string[]>): string => JSON.stringify(ids);
const merge = (input: Partial<MergeInput> & Pick<MergeInput, 'wanted'>) => {
  const result = mergeConfig({ configJson: undefined, ownership: undefined, provisionerName: ME, ...input });
  assert.equal(result.kind, 'merged', JSON.stringify(result));
  if (result.kind !== 'merged') throw new Error('unreachable');
  return { ...result, list: JSON.parse(result.configJson) as unknown[], owners: result.ownership === undefined ? undefined : JSON.parse(result.ownership) as Record<string, string[]> };
};
const wanted = (...entries: ClusterEntry[]) => new Map(entries.map((e) => [e.clusterID, e]));

describe('mergeConfig', () => {
  test('an absent map gets our entries, in ceph-csi\'s shape, and records that they are ours', () => {
    const r = merge({ wanted: wanted(B, A) });
    assert.equal(r.changed, true);
    assert.deepEqual(r.list, [
      { clusterID: 'rbd-a', monitors: A.monitors, rbd: { radosNamespace: '' } },
      { clusterID: 'rbd-b', monitors: B.monitors, rbd: { radosNamespace: 'team-b' } },
    ]);
    assert.deepEqual(r.added, ['rbd-a', 'rbd-b']);
    assert.deepEqual(r.owners, { [ME]: ['rbd-a', 'rbd-b'] });
  });

  test('nothing wanted and nothing there: nothing to write (the map is not created)', () => {
    assert.equal(merge({ wanted: wanted() }).changed, false);
  });

  test('entries of others are kept as they are, with their unknown keys; ours are appended', () => {
    const configJson = JSON.stringify([FOREIGN, 'not an entry', { monitors: ['x'] }]);
    const r = merge({ configJson, wanted: wanted(A) });
    assert.deepEqual(r.list.slice(0, 3), [FOREIGN, 'not an entry', { monitors: ['x'] }]);
    assert.deepEqual(r.list[3], { clusterID: 'rbd-a', monitors: A.monitors, rbd: { radosNamespace: '' } });
    assert.deepEqual(r.owners, { [ME]: ['rbd-a'] });
  });

  test('already as wanted: unchanged, and the text is not rewritten', () => {
    const configJson = `[${JSON.stringify(FOREIGN)},\n {"clusterID":"rbd-a","monitors":["10.0.0.2:6789","10.0.0.1:6789"],"rbd":{"radosNamespace":""}}]`;
    const r = merge({ configJson, ownership: ownership({ [ME]: ['rbd-a'] }), wanted: wanted(A) });
    assert.equal(r.changed, false);
    assert.equal(r.configJson, configJson);
  });

  test('our entry is updated in place, keeping keys someone added to it', () => {
    const ours = { clusterID: 'rbd-b', monitors: ['old:6789'], rbd: { radosNamespace: 'team-b', mirrorDaemonCount: 2 }, readAffinity: { enabled: true } };
    const r = merge({ configJson: JSON.stringify([ours, FOREIGN]), ownership: ownership({ [ME]: ['rbd-b'] }), wanted: wanted(B) });
    assert.deepEqual(r.updated, ['rbd-b']);
    assert.deepEqual(r.list, [{ ...ours, monitors: B.monitors, rbd: { radosNamespace: 'team-b', mirrorDaemonCount: 2 } }, FOREIGN]);
  });

  test('ours and no longer wanted: dropped; foreign entries and other provisioners\' ownership stay', () => {
    const configJson = JSON.stringify([{ clusterID: 'rbd-a', monitors: A.monitors, rbd: { radosNamespace: '' } }, FOREIGN, { clusterID: 'other', monitors: ['m'] }]);
    const r = merge({ configJson, ownership: ownership({ [ME]: ['rbd-a'], 'other.provisioner': ['other'] }), wanted: wanted() });
    assert.equal(r.changed, true);
    assert.deepEqual(r.removed, ['rbd-a']);
    assert.deepEqual(r.list, [FOREIGN, { clusterID: 'other', monitors: ['m'] }]);
    assert.deepEqual(r.owners, { 'other.provisioner': ['other'] });
  });

  test('the last of ours dropped and no other owner: the annotation goes', () => {
    const configJson = JSON.stringify([{ clusterID: 'rbd-a', monitors: A.monitors, rbd: { radosNamespace: '' } }]);
    const r = merge({ configJson, ownership: ownership({ [ME]: ['rbd-a'] }), wanted: wanted() });
    assert.deepEqual(r.list, []);
    assert.equal(r.ownership, undefined);
  });

  test('a foreign entry with our clusterID and the same contents serves us: not touched, not taken over', () => {
    const theirs = { clusterID: 'rbd-b', monitors: [...B.monitors], radosNamespace: 'team-b' };
    const r = merge({ configJson: JSON.stringify([theirs]), wanted: wanted(B) });
    assert.equal(r.changed, false);
    assert.deepEqual(r.conflicts, []);
    assert.deepEqual(r.owned, []);
  });

  test('a foreign entry with our clusterID and other monitors or namespace: a conflict, left as it is', () => {
    for (const theirs of [
      { clusterID: 'rbd-a', monitors: ['10.9.9.9:6789'] },
      { clusterID: 'rbd-a', monitors: A.monitors, rbd: { radosNamespace: 'elsewhere' } },
    ]) {
      const configJson = JSON.stringify([theirs]);
      const r = merge({ configJson, wanted: wanted(A) });
      assert.equal(r.changed, false);
      assert.equal(r.configJson, configJson);
      assert.equal(r.conflicts.length, 1);
      assert.equal(r.conflicts[0]!.clusterID, 'rbd-a');
      assert.deepEqual(r.conflicts[0]!.theirs.monitors, theirs.monitors);
    }
  });

  test('our entry removed by hand is written again; a second copy of ours is dropped', () => {
    const r = merge({ configJson: JSON.stringify([FOREIGN]), ownership: ownership({ [ME]: ['rbd-a'] }), wanted: wanted(A) });
    assert.deepEqual(r.added, ['rbd-a']);
    const copy = { clusterID: 'rbd-a', monitors: A.monitors, rbd: { radosNamespace: '' } };
    const twice = merge({ configJson: JSON.stringify([copy, copy]), ownership: ownership({ [ME]: ['rbd-a'] }), wanted: wanted(A) });
    assert.deepEqual(twice.list, [copy]);
  });

  test('two provisioners sharing the map and one entry: each lists it, and it stays until neither needs it', () => {
    const OTHER = 'other.provisioner';
    const entry = { clusterID: 'rbd-a', monitors: A.monitors, rbd: { radosNamespace: '' } };
    const configJson = JSON.stringify([entry]);
    // The other provisioner wrote it; we need the same: we list it too, the text is not rewritten.
    const joined = merge({ configJson, ownership: ownership({ [OTHER]: ['rbd-a'] }), wanted: wanted(A) });
    assert.equal(joined.configJson, configJson);
    assert.deepEqual(joined.owners, { [OTHER]: ['rbd-a'], [ME]: ['rbd-a'] });
    // We no longer need it: we drop our claim, not the entry.
    const left = merge({ configJson, ownership: joined.ownership, wanted: wanted() });
    assert.deepEqual(left.list, [entry]);
    assert.deepEqual(left.owners, { [OTHER]: ['rbd-a'] });
    // It is shared and we now want other monitors: a conflict, not an overwrite.
    const moved = merge({ configJson, ownership: joined.ownership, wanted: wanted({ ...A, monitors: ['10.0.0.7:6789'] }) });
    assert.equal(moved.changed, false);
    assert.deepEqual(moved.conflicts.map((c) => c.clusterID), ['rbd-a']);
    // The other one leaves it to us alone (as its own merge does): ours again to drop.
    const alone = merge({ configJson, ownership: ownership({ [ME]: ['rbd-a'] }), wanted: wanted() });
    assert.deepEqual(alone.list, []);
  });

  test('not a JSON list: unreadable, nothing to write', () => {
    for (const configJson of ['{', '{"clusterID":"x"}', '"text"']) {
      const r = mergeConfig({ configJson, ownership: undefined, provisionerName: ME, wanted: wanted(A) });
      assert.equal(r.kind, 'unreadable', configJson);
    }
  });

  test('an unreadable ownership annotation: nothing is taken for ours, so nothing is dropped', () => {
    const configJson = JSON.stringify([{ clusterID: 'rbd-a', monitors: A.monitors, rbd: { radosNamespace: '' } }]);
    const r = merge({ configJson, ownership: 'not json', wanted: wanted() });
    assert.deepEqual(r.list, JSON.parse(configJson));
    assert.deepEqual(r.removed, []);
  });
});

describe('wantedEntries', () => {
  const source = (kind: EntrySource['kind'], name: string, entry: ClusterEntry): EntrySource => ({ kind, name, entry });
  test('classes and PVs on one clusterID with the same contents give one entry', () => {
    const { wanted: w, disagreements } = wantedEntries([source('PersistentVolume', 'pv-1', A), source('StorageClass', 'fast', A), source('StorageClass', 'b', B)]);
    assert.deepEqual([...w.keys()].sort(), ['rbd-a', 'rbd-b']);
    assert.deepEqual(disagreements, []);
  });
  test('a class wins over a PV (whose monitors may be older); between classes the first by name; the rest disagree', () => {
    const moved: ClusterEntry = { ...A, monitors: ['10.0.0.3:6789'] };
    const { wanted: w, disagreements } = wantedEntries([source('PersistentVolume', 'pv-old', A), source('StorageClass', 'zeta', { ...A, radosNamespace: 'x' }), source('StorageClass', 'alpha', moved)]);
    assert.deepEqual(w.get('rbd-a'), moved);
    assert.deepEqual(disagreements.map((d) => [d.source.name, d.kept.name]), [['zeta', 'alpha'], ['pv-old', 'alpha']]);
  });
});
