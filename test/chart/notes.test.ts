// NOTES.txt: `helm template` does not print it, so a copy of the chart renders it into a ConfigMap.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { load } from 'js-yaml';
import { chartDir, onlyOfKind, render, runCommand, type Manifest } from './helm.js';

describe('NOTES.txt', () => {
  let scratch: string;
  let probeChart: string;

  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'rbd-chart-notes-'));
    probeChart = path.join(scratch, 'rbd-provisioner');
    await cp(chartDir, probeChart, { recursive: true });
    const notes = await readFile(path.join(chartDir, 'templates', 'NOTES.txt'), 'utf8');
    await writeFile(
      path.join(probeChart, 'templates', 'notes-probe.yaml'),
      `{{- define "notes-probe" -}}\n${notes}\n{{- end -}}\n` +
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-probe\ndata:\n  notes: {{ include "notes-probe" . | toJson }}\n',
    );
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  async function notesFor(values: object): Promise<string> {
    const manifests = await render(values, { chart: probeChart, showOnly: 'templates/notes-probe.yaml', release: 'demo', namespace: 'storage' });
    return (onlyOfKind<Manifest & { data: { notes: string } }>(manifests, 'ConfigMap')).data.notes;
  }

  test('shows how to create a first claim on the chart\'s class and how to watch it and its events', async () => {
    const notes = await notesFor({});
    assert.match(notes, /kind: PersistentVolumeClaim\n[\s\S]*storageClassName: rbd\n/);
    assert.match(notes, /kubectl get pvc rbd-first-claim -n default -w/);
    assert.match(notes, /kubectl get events -n default --field-selector involvedObject\.name=rbd-first-claim/);
    assert.match(notes, /helm test demo -n storage --logs/);
  });

  test('tells the truth about readiness: installed, not running, and how to see ready replicas', async () => {
    const notes = await notesFor({ replicaCount: 3 });
    assert.doesNotMatch(notes, /is running/);
    assert.match(notes, /is installed in namespace storage as "rbd\.provisioner\.ceph\.io"\n\(3 replica\(s\), one active at a time\)\. Installed is not ready/);
    assert.match(notes, /READY shows\nat least 1\/3/);
    assert.match(notes, /\n  kubectl get deployment demo-rbd-provisioner -n storage\n/);
    assert.match(notes, /\n  kubectl rollout status deployment\/demo-rbd-provisioner -n storage --timeout=2m\n/);
  });

  test('the first-claim command works as printed (run here with a kubectl that keeps what it is given)', async () => {
    const notes = await notesFor({});
    const command = /^cat <<'YAML' \| kubectl apply -f -\n[\s\S]*?\nYAML$/m.exec(notes)?.[0];
    assert.ok(command !== undefined, `a copy-pasteable command in:\n${notes}`);
    const fakeBin = path.join(scratch, 'bin');
    await mkdir(fakeBin, { recursive: true });
    await writeFile(path.join(fakeBin, 'kubectl'), '#!/usr/bin/env bash\nprintf "%s\\n" "$*" >"$FAKE_ARGS"\ncat >"$FAKE_STDIN"\n', { mode: 0o755 });
    const env = { PATH: `${fakeBin}:${process.env['PATH'] ?? ''}`, FAKE_ARGS: path.join(scratch, 'args'), FAKE_STDIN: path.join(scratch, 'stdin') };
    const run = await runCommand('bash', ['-c', command], { env });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(await readFile(env.FAKE_ARGS, 'utf8'), 'apply -f -\n');
    const claim = load(await readFile(env.FAKE_STDIN, 'utf8')) as V1PersistentVolumeClaim;
    assert.deepEqual(claim, {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'rbd-first-claim', namespace: 'default' },
      spec: { storageClassName: 'rbd', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    });
  });

  test('for a class the release does not create, says what to create and which Secrets are granted', async () => {
    const notes = await notesFor({});
    assert.match(notes, /StorageClass "rbd" is not created by this release/);
    assert.match(notes, /provisioner: rbd\.provisioner\.ceph\.io/);
    assert.match(notes, /ceph-admin, ceph-user in namespace storage/);
  });

  test('for a class it creates, uses that class and skips the instructions to create one', async () => {
    const notes = await notesFor({
      storageClasses: [{ name: 'gold', create: true, volumeBindingMode: 'WaitForFirstConsumer', parameters: { pool: 'p' }, secrets: { admin: { name: 'a' } } }],
    });
    assert.match(notes, /storageClassName: gold\n/);
    assert.doesNotMatch(notes, /is not created by this release/);
    assert.match(notes, /waits for a consumer/);
  });

  test('tells how to learn a class\'s clusterID for ceph-csi\'s config map, or where the controller keeps it', async () => {
    const off = await notesFor({ storageClasses: [{ name: 'gold', create: true, parameters: { monitors: '10.0.0.1:6789', pool: 'p' }, secrets: { admin: { name: 'a' } } }] });
    assert.match(off, /node dist\/src\/main\.js cluster-id --monitors="10\.0\.0\.1:6789" --entry/);
    assert.match(off, /cephCsiConfig\.enabled=true/);
    const on = await notesFor({ cephCsiConfig: { enabled: true, namespace: 'ceph-csi-rbd', name: 'ceph-csi-config' } });
    assert.match(on, /keeps the entries of this release's clusterIDs in the\nconfig map ceph-csi-rbd\/ceph-csi-config/);
    assert.match(on, /kubectl get configmap ceph-csi-config -n ceph-csi-rbd -o jsonpath='\{\.data\.config\\\.json\}'/);
    assert.doesNotMatch(on, /cluster-id --monitors/);
  });
});

