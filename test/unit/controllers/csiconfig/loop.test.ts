// The ceph-csi config loop wired as the controller wires it, over the in-memory API server.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { CONFIG_KEY, type ClusterEntries, OWNERSHIP_ANNOTATION } from '../../../../src/controllers/csiconfig/decisions.js';
import { PROVISIONER, apiError, makeClass, makeCsiVolume } from '../../fakes.js';
import { runController } from '../running.js';

const NS = 'ceph-csi-rbd';
const NAME = 'ceph-csi-config';

/** The test's stand-in for the RBD side: parameters clusterID/monitors/ns say the entry; "bad" throws. */
const entries: ClusterEntries = {
  forClass(parameters) {
    if (parameters?.['bad'] !== undefined) throw new Error('bad class');
    const clusterID = parameters?.['clusterID'];
    if (clusterID === undefined) return undefined;
    return { clusterID, monitors: (parameters?.['monitors'] ?? '').split(','), radosNamespace: parameters?.['ns'] ?? '' };
  },
  forVolume(volume) {
    const clusterID = volume.spec?.csi?.volumeAttributes?.['clusterID'];
    const monitors = volume.metadata?.annotations?.['test/monitors'];
    return clusterID === undefined || monitors === undefined ? undefined : { clusterID, monitors: monitors.split(','), radosNamespace: '' };
  },
};

function ourVolume(name: string, clusterID: string, monitors: string): V1PersistentVolume {
  const volume = makeCsiVolume(name);
  volume.metadata!.annotations = { ...volume.metadata!.annotations, 'test/monitors': monitors };
  volume.spec!.csi!.volumeAttributes = { clusterID };
  return volume;
}

function setup(options: { on?: boolean } = {}) {
  const on = options.on !== false;
  const { kube, clock, lines, metric, shutdown } = runController({
    config: on ? { cephCsiConfig: { namespace: NS, name: NAME } } : {},
    deps: on ? { clusterEntries: entries } : {},
  });
  const map = () => kube.configMaps.get(`${NS}/${NAME}`);
  const list = () => JSON.parse(map()?.data?.[CONFIG_KEY] ?? '[]') as Array<Record<string, unknown>>;
  const owned = () => JSON.parse(map()?.metadata?.annotations?.[OWNERSHIP_ANNOTATION] ?? '{}') as Record<string, string[]>;
  return { kube, clock, lines, metric, shutdown, map, list, owned };
}

describe('ceph-csi config loop', () => {
  test('creates the map with our classes\' entries; another provisioner\'s and bad classes bring none; a deleted class takes its entry away', async () => {
    const { kube, clock, list, owned, metric, shutdown } = setup();
    kube.putClass(makeClass('fast', { parameters: { clusterID: 'c-fast', monitors: 'm1:6789,m2:6789' } }));
    kube.putClass(makeClass('other', { provisioner: 'someone.else', parameters: { clusterID: 'c-other', monitors: 'x' } }));
    kube.putClass(makeClass('broken', { parameters: { bad: 'yes' } }));
    await clock.advance(0);
    assert.deepEqual(list(), [{ clusterID: 'c-fast', monitors: ['m1:6789', 'm2:6789'], rbd: { radosNamespace: '' } }]);
    assert.deepEqual(owned(), { [PROVISIONER]: ['c-fast'] });
    assert.equal(await metric('rbd_provisioner_ceph_csi_config_syncs_total', { result: 'created' }), 1);

    kube.putClass(makeClass('ns', { parameters: { clusterID: 'c-ns', monitors: 'm1:6789', ns: 'team' } }));
    await clock.advance(0);
    assert.deepEqual(list().map((e) => [e['clusterID'], e['rbd']]), [['c-fast', { radosNamespace: '' }], ['c-ns', { radosNamespace: 'team' }]]);

    kube.removeClass('fast');
    await clock.advance(0);
    assert.deepEqual(list().map((e) => e['clusterID']), ['c-ns']);
    assert.deepEqual(owned(), { [PROVISIONER]: ['c-ns'] });
    assert.equal(await metric('rbd_provisioner_ceph_csi_config_owned_entries'), 1);
    await shutdown();
  });

  test('foreign entries and other keys survive; our PVs keep their entry after their class is gone', async () => {
    const { kube, clock, map, list, shutdown } = setup();
    const foreign = { clusterID: 'theirs', monitors: ['10.1.1.1:6789'], cephFS: { subvolumeGroup: 'g' } };
    kube.putConfigMap(NS, {
      metadata: { name: NAME, labels: { app: 'ceph-csi' }, annotations: { keep: 'me' } },
      data: { [CONFIG_KEY]: JSON.stringify([foreign]), 'cluster-mapping.json': '[]' },
    });
    kube.putClass(makeClass('fast', { parameters: { clusterID: 'c-fast', monitors: 'm1' } }));
    kube.putVolume(ourVolume('pvc-1', 'c-fast', 'm1'));
    kube.putVolume(ourVolume('pvc-old', 'c-old', 'm0'));
    await clock.advance(0);
    assert.deepEqual(list(), [foreign, { clusterID: 'c-fast', monitors: ['m1'], rbd: { radosNamespace: '' } }, { clusterID: 'c-old', monitors: ['m0'], rbd: { radosNamespace: '' } }]);
    assert.equal(map()?.data?.['cluster-mapping.json'], '[]');
    assert.equal(map()?.metadata?.labels?.['app'], 'ceph-csi');
    assert.equal(map()?.metadata?.annotations?.['keep'], 'me');

    kube.removeClass('fast');
    await clock.advance(0);
    assert.deepEqual(list().map((e) => e['clusterID']), ['theirs', 'c-fast', 'c-old'], 'pvc-1 still needs c-fast');
    kube.removeVolume('pvc-1');
    kube.removeVolume('pvc-old');
    await clock.advance(0);
    assert.deepEqual(list(), [foreign]);
    assert.equal(map()?.metadata?.annotations?.[OWNERSHIP_ANNOTATION], undefined);
    await shutdown();
  });

  test('a foreign entry with our clusterID and other monitors: left alone, one Warning event on the class naming the clusterID', async () => {
    const { kube, clock, list, metric, shutdown } = setup();
    const theirs = { clusterID: 'c-fast', monitors: ['10.9.9.9:6789'] };
    kube.putConfigMap(NS, { metadata: { name: NAME }, data: { [CONFIG_KEY]: JSON.stringify([theirs]) } });
    kube.putClass(makeClass('fast', { parameters: { clusterID: 'c-fast', monitors: 'm1:6789' } }));
    await clock.advance(0);
    assert.deepEqual(list(), [theirs]);
    await clock.advance(0);
    const warnings = kube.events.filter((e) => e.reason === 'CephCsiConfigConflict');
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.type, 'Warning');
    assert.equal(warnings[0]!.involvedObject.kind, 'StorageClass');
    assert.equal(warnings[0]!.involvedObject.name, 'fast');
    assert.match(warnings[0]!.message!, /clusterID "c-fast" written by someone else, with monitors \["10\.9\.9\.9:6789"\].*needs monitors \["m1:6789"\].*rbd-provisioner cluster-id/);
    assert.equal(await metric('rbd_provisioner_ceph_csi_config_conflicts'), 1);
    // Another run (a class added) reports nothing new about it.
    kube.putClass(makeClass('more', { parameters: { clusterID: 'c-more', monitors: 'm1:6789' } }));
    await clock.advance(0);
    await clock.advance(0);
    assert.equal(kube.events.filter((e) => e.reason === 'CephCsiConfigConflict').length, 1);
    assert.deepEqual(list().map((e) => e['clusterID']), ['c-fast', 'c-more']);
    await shutdown();
  });

  test('a write that conflicts (409) reads the map again and merges into what another writer just wrote', async () => {
    const { kube, clock, list, metric, shutdown } = setup();
    kube.putConfigMap(NS, { metadata: { name: NAME }, data: { [CONFIG_KEY]: '[]' } });
    const late = { clusterID: 'late', monitors: ['l'] };
    let first = true;
    kube.hook('replaceConfigMap', () => {
      if (!first) return;
      first = false;
      // Another writer lands between our read and our write.
      kube.putConfigMap(NS, { metadata: { name: NAME }, data: { [CONFIG_KEY]: JSON.stringify([late]) } });
    });
    kube.putClass(makeClass('fast', { parameters: { clusterID: 'c-fast', monitors: 'm1' } }));
    await clock.advance(0);
    assert.deepEqual(list().map((e) => e['clusterID']), ['late', 'c-fast']);
    assert.equal(await metric('rbd_provisioner_ceph_csi_config_syncs_total', { result: 'updated' }), 1);
    assert.equal(kube.calls.filter((c) => c === 'replaceConfigMap').length, 2);
    await shutdown();
  });

  test('a write refused as invalid (422, e.g. an immutable map) is a failure with backoff, not a race re-read at once', async () => {
    const { kube, clock, metric, shutdown } = setup();
    kube.putConfigMap(NS, { metadata: { name: NAME }, data: { [CONFIG_KEY]: '[]' } });
    kube.fail('replaceConfigMap', apiError(422, 'Invalid'));
    kube.putClass(makeClass('fast', { parameters: { clusterID: 'c-fast', monitors: 'm1' } }));
    await clock.advance(0);
    assert.equal(kube.calls.filter((c) => c === 'replaceConfigMap').length, 1);
    assert.equal(await metric('rbd_provisioner_ceph_csi_config_syncs_total', { result: 'failed' }), 1);
    await shutdown();
  });

  test('a map that is not a JSON list is not touched (Warning event on it)', async () => {
    const { kube, clock, map, shutdown } = setup();
    kube.putConfigMap(NS, { metadata: { name: NAME }, data: { [CONFIG_KEY]: '{not json' } });
    kube.putClass(makeClass('fast', { parameters: { clusterID: 'c-fast', monitors: 'm1' } }));
    await clock.advance(0);
    assert.equal(map()?.data?.[CONFIG_KEY], '{not json');
    assert.ok(kube.events.some((e) => e.reason === 'CephCsiConfigUnreadable' && e.involvedObject.kind === 'ConfigMap'));
    assert.equal(kube.calls.includes('replaceConfigMap'), false);
    await shutdown();
  });

  test('creating the map when RBAC forbids it: logged, retried slowly, nothing else breaks', async () => {
    const { kube, clock, lines, metric, shutdown } = setup();
    kube.fail('createConfigMap', apiError(403, 'Forbidden'));
    kube.putClass(makeClass('fast', { parameters: { clusterID: 'c-fast', monitors: 'm1' } }));
    await clock.advance(0);
    assert.equal(await metric('rbd_provisioner_ceph_csi_config_syncs_total', { result: 'forbidden' }), 1);
    assert.ok(lines.some((l) => JSON.stringify(l).includes('not allowed to read or write ceph-csi')));
    await shutdown();
  });

  test('off (the default): the map is never read nor written', async () => {
    const { kube, clock, shutdown } = setup({ on: false });
    kube.putClass(makeClass('fast', { parameters: { clusterID: 'c-fast', monitors: 'm1' } }));
    await clock.advance(0);
    assert.equal(kube.calls.some((c) => c.includes('ConfigMap')), false);
    assert.equal(kube.configMaps.size, 0);
    await shutdown();
  });
});
