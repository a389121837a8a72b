// From a Pod to an attached volume with the real control plane: kube-scheduler places Pods (or spec.nodeName does),
// kube-controller-manager's attach-detach controller asks for VolumeAttachments on Nodes whose attach/detach it
// manages, and the controller process marks them attached. No kubelet runs: the test registers the Nodes and
// deletes Pods at once, as `kubectl delete --force --grace-period=0` does.
import * as k8s from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isLeader, type ControllerProcess } from '../support/controller.js';
import { setupE2e, type E2e } from '../support/e2e.js';
import { deletePodNow, ignoreNotFound, registerNode, uniqueName, unpulledImage, waitFor, type TestNode } from '../support/kube.js';

const DRIVER = 'rbd.csi.ceph.com';
const MANAGED_ATTACH = { 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' };
const ZONE_LABEL = 'rbd-provisioner.test/zone';
const FAST_LEASE = ['--leader-election-retry-period=500ms', '--leader-election-renew-deadline=4s', '--leader-election-lease-duration=5s'];

let e2e: E2e;
let storageClass: string;
let createdDriver = false;
const nodes: TestNode[] = [];
const pods: string[] = [];

before(async () => {
  e2e = await setupE2e('pods');
  // ceph-csi's CSIDriver object, as its chart installs it (kept if some other test or an admin made it already).
  const existing = await ignoreNotFound(e2e.storage.readCSIDriver({ name: DRIVER }));
  if (existing === undefined) {
    await e2e.storage.createCSIDriver({
      body: { metadata: { name: DRIVER }, spec: { attachRequired: true, podInfoOnMount: true, fsGroupPolicy: 'File', seLinuxMount: true } },
    });
    createdDriver = true;
  } else {
    assert.equal(existing.spec.attachRequired, true, `the CSIDriver ${DRIVER} that exists must require attach`);
  }
  storageClass = await e2e.createClass(e2e.baseParameters());
});

after(async () => {
  for (const pod of pods) await deletePodNow(e2e.kc, e2e.namespace, pod);
  for (const attachment of (await e2e.storage.listVolumeAttachment()).items) {
    if (nodes.some((n) => n.name === attachment.spec.nodeName)) await ignoreNotFound(e2e.storage.deleteVolumeAttachment({ name: attachment.metadata!.name! }));
  }
  for (const node of nodes) await node.cleanup();
  if (createdDriver) await ignoreNotFound(e2e.storage.deleteCSIDriver({ name: DRIVER }));
  await e2e?.cleanup();
});

async function node(labels: Record<string, string> = {}): Promise<TestNode> {
  const registered = await registerNode(e2e.kc, 'e2e-pods-node', { labels, annotations: MANAGED_ATTACH });
  nodes.push(registered);
  return registered;
}

async function boundClaim(): Promise<string> {
  const claim = await e2e.createClaim(storageClass);
  await e2e.waitBound(claim.metadata!.name!);
  return claim.metadata!.name!;
}

/** A Pod using the claim: on `nodeName` directly, or left to the scheduler (within nodeSelector). */
async function createPod(claimName: string, placement: { nodeName: string } | { nodeSelector: Record<string, string> }): Promise<string> {
  const name = uniqueName('pod');
  pods.push(name);
  await e2e.core.createNamespacedPod({
    namespace: e2e.namespace,
    body: {
      metadata: { name },
      spec: {
        ...placement,
        containers: [{ name: 'main', image: unpulledImage, volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName } }],
      },
    },
  });
  return name;
}

async function volumeOf(claimName: string): Promise<k8s.V1PersistentVolume> {
  const claim = await e2e.readClaim(claimName);
  const pv = claim?.spec?.volumeName === undefined ? undefined : await e2e.readVolume(claim.spec.volumeName);
  assert.ok(pv !== undefined, `claim ${claimName} has a PV`);
  return pv;
}

async function attachmentOf(pvName: string): Promise<k8s.V1VolumeAttachment | undefined> {
  return (await e2e.storage.listVolumeAttachment()).items.find((a) => a.spec.source.persistentVolumeName === pvName);
}

async function waitAttached(pvName: string, nodeName: string, intervalMs = 100): Promise<k8s.V1VolumeAttachment> {
  return waitFor(`a VolumeAttachment of ${pvName} on ${nodeName}, attached`, async (observe) => {
    const attachment = await attachmentOf(pvName);
    observe(attachment && { spec: attachment.spec, status: attachment.status, finalizers: attachment.metadata?.finalizers });
    return attachment?.spec.nodeName === nodeName && attachment.status?.attached === true ? attachment : undefined;
  }, { timeoutMs: 60_000, intervalMs });
}

/** The attach-detach controller's record on the Node: `kubernetes.io/csi/<driver>^<volumeHandle>`. */
async function attachedOnNode(nodeName: string): Promise<string[]> {
  const status = (await e2e.core.readNode({ name: nodeName })).status;
  return (status?.volumesAttached ?? []).map((v) => v.name);
}

async function waitDetached(pvName: string, podName: string, nodeName: string): Promise<void> {
  await deletePodNow(e2e.kc, e2e.namespace, podName);
  await e2e.waitGone(`the VolumeAttachment of ${pvName}`, () => attachmentOf(pvName));
  const handle = `kubernetes.io/csi/${DRIVER}^${(await e2e.readVolume(pvName))!.spec!.csi!.volumeHandle}`;
  await waitFor(`${handle} gone from ${nodeName}'s volumesAttached`, async (observe) => {
    const listed = await attachedOnNode(nodeName);
    observe(listed);
    return listed.includes(handle) ? undefined : true;
  }, { timeoutMs: 30_000, intervalMs: 200 });
}

async function scheduledNode(podName: string): Promise<string> {
  return waitFor(`Pod ${podName} scheduled`, async (observe) => {
    const pod = await e2e.core.readNamespacedPod({ name: podName, namespace: e2e.namespace });
    observe({ nodeName: pod.spec?.nodeName, conditions: pod.status?.conditions });
    return pod.spec?.nodeName || undefined;
  }, { timeoutMs: 60_000, intervalMs: 200 });
}

const median = (samples: number[]): number => {
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

describe('pods', () => {
  let controller: ControllerProcess;

  before(async () => {
    controller = await e2e.startController();
  });

  test('a Pod on a node gets its volume attached and listed on the Node; deleting it detaches', async (t) => {
    const target = await node();
    const claimName = await boundClaim();
    const pv = await volumeOf(claimName);
    const handle = `kubernetes.io/csi/${DRIVER}^${pv.spec!.csi!.volumeHandle}`;

    const pod = await createPod(claimName, { nodeName: target.name });
    const attachment = await waitAttached(pv.metadata!.name!, target.name);
    assert.equal(attachment.spec.attacher, DRIVER);
    assert.equal(attachment.status?.attachError, undefined);
    await waitFor(`${handle} in ${target.name}'s volumesAttached`, async (observe) => {
      const listed = await attachedOnNode(target.name);
      observe(listed);
      return listed.includes(handle) ? true : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    await waitDetached(pv.metadata!.name!, pod, target.name);

    // The median from Pod creation to status.attached over 20 Pods, one after the other.
    // Split at the moment the attach-detach controller's VolumeAttachment is first seen: its part, then ours.
    const total: number[] = [];
    const requested: number[] = [];
    const attached: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      const next = await createPod(claimName, { nodeName: target.name });
      await waitFor('the VolumeAttachment', async () => attachmentOf(pv.metadata!.name!), { timeoutMs: 60_000, intervalMs: 10 });
      const seen = performance.now();
      await waitAttached(pv.metadata!.name!, target.name, 10);
      const done = performance.now();
      total.push(done - started);
      requested.push(seen - started);
      attached.push(done - seen);
      await waitDetached(pv.metadata!.name!, next, target.name);
    }
    const sorted = [...total].sort((a, b) => a - b);
    t.diagnostic(`Pod created -> VolumeAttachment attached: median ${median(total).toFixed(0)} ms over 20 (min ${sorted[0]!.toFixed(0)}, max ${sorted[19]!.toFixed(0)}; polled every 10 ms)`);
    t.diagnostic(`  of which Pod -> VolumeAttachment created (attach-detach controller): median ${median(requested).toFixed(0)} ms; created -> attached (this controller): median ${median(attached).toFixed(0)} ms`);
  });

  test('a Pod placed by kube-scheduler gets its volume attached on the node it was given', async () => {
    const group = uniqueName('grp');
    await node({ 'rbd-provisioner.test/group': group });
    await node({ 'rbd-provisioner.test/group': group });
    const claimName = await boundClaim();
    const pod = await createPod(claimName, { nodeSelector: { 'rbd-provisioner.test/group': group } });
    const placed = await scheduledNode(pod);
    assert.ok(nodes.some((n) => n.name === placed), `scheduled on one of ours, not ${placed}`);
    const pv = await volumeOf(claimName);
    await waitAttached(pv.metadata!.name!, placed);
    await waitDetached(pv.metadata!.name!, pod, placed);
  });

  test('WaitForFirstConsumer: bound only once the scheduler places the Pod, on a node the allowedTopologies allow', async () => {
    const group = uniqueName('grp');
    const zone = uniqueName('zone');
    // Listed first and equally fit: only the class's allowedTopologies keep the scheduler off it.
    await node({ 'rbd-provisioner.test/group': group, [ZONE_LABEL]: `${zone}-other` });
    const allowed = await node({ 'rbd-provisioner.test/group': group, [ZONE_LABEL]: zone });
    await node({ 'rbd-provisioner.test/group': group });
    const className = await e2e.createClass(e2e.baseParameters(), {
      volumeBindingMode: 'WaitForFirstConsumer',
      allowedTopologies: [{ matchLabelExpressions: [{ key: ZONE_LABEL, values: [zone] }] }],
    });
    const claimName = (await e2e.createClaim(className)).metadata!.name!;
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    assert.equal((await e2e.readClaim(claimName))?.status?.phase, 'Pending', 'no Pod yet: the claim waits');

    const pod = await createPod(claimName, { nodeSelector: { 'rbd-provisioner.test/group': group } });
    const pv = await e2e.waitBound(claimName);
    assert.equal((await e2e.readClaim(claimName))?.metadata?.annotations?.['volume.kubernetes.io/selected-node'], allowed.name);
    assert.equal(await scheduledNode(pod), allowed.name);
    // The PV keeps the class's topology, so a later Pod of the claim lands where the admin allowed it too.
    assert.deepEqual(JSON.parse(JSON.stringify(pv.spec?.nodeAffinity)), {
      required: { nodeSelectorTerms: [{ matchExpressions: [{ key: ZONE_LABEL, operator: 'In', values: [zone] }] }] },
    });
    await waitAttached(pv.metadata!.name!, allowed.name);
    await waitDetached(pv.metadata!.name!, pod, allowed.name);
  });

  test('restarted mid-attach: every attachment ends attached, none half-done', async () => {
    const target = await node();
    const claims = await Promise.all(Array.from({ length: 6 }, () => boundClaim()));
    const volumes = await Promise.all(claims.map(async (c) => (await volumeOf(c)).metadata!.name!));
    await controller.stop('SIGKILL');
    const created = await Promise.all(claims.map((c) => createPod(c, { nodeName: target.name })));
    // Asked for while no controller runs: the attach-detach controller's requests wait, unattached.
    await waitFor('a VolumeAttachment for every Pod', async () => ((await Promise.all(volumes.map(attachmentOf))).every(Boolean) ? true : undefined), { timeoutMs: 60_000, intervalMs: 200 });

    // Killed again as soon as it has attached one of them, then started for good.
    const interrupted = await e2e.startController({ extraArgs: FAST_LEASE });
    await waitFor('one attachment attached', async () => ((await Promise.all(volumes.map(attachmentOf))).some((a) => a?.status?.attached) ? true : undefined), { timeoutMs: 60_000, intervalMs: 20 });
    await interrupted.stop('SIGKILL');
    controller = await e2e.startController({ extraArgs: FAST_LEASE });
    for (const volume of volumes) {
      const attachment = await waitAttached(volume, target.name);
      assert.equal(attachment.status?.attachError, undefined);
      assert.equal(attachment.metadata?.finalizers, undefined, 'no finalizer left behind');
    }
    for (const [i, pod] of created.entries()) await waitDetached(volumes[i]!, pod, target.name);
  });

  test('two replicas: only the leader attaches; after it dies the other takes over attach and detach', async () => {
    await controller.stop();
    const target = await node();
    const [first, second] = [await e2e.startController({ extraArgs: FAST_LEASE }), await e2e.startController({ extraArgs: FAST_LEASE })];
    const leaderOf = async (): Promise<ControllerProcess | undefined> => {
      const leading = await Promise.all([first, second].map((c) => isLeader(c)));
      return leading[0] && !leading[1] ? first : leading[1] && !leading[0] ? second : undefined;
    };
    const leader = await waitFor('one leader of two replicas', leaderOf, { timeoutMs: 60_000, intervalMs: 200 });
    const standby = leader === first ? second : first;

    const before = await boundClaim();
    const beforeVolume = (await volumeOf(before)).metadata!.name!;
    const beforePod = await createPod(before, { nodeName: target.name });
    await waitAttached(beforeVolume, target.name);
    assert.doesNotMatch(standby.output(), new RegExp(beforeVolume), 'the standby never acts on the attachment');

    await leader.stop('SIGKILL');
    await waitFor('the standby leads', async () => ((await isLeader(standby)) ? true : undefined), { timeoutMs: 60_000, intervalMs: 200 });
    const afterClaim = await boundClaim();
    const afterVolume = (await volumeOf(afterClaim)).metadata!.name!;
    const afterPod = await createPod(afterClaim, { nodeName: target.name });
    await waitAttached(afterVolume, target.name);
    await waitDetached(beforeVolume, beforePod, target.name);
    await waitDetached(afterVolume, afterPod, target.name);
    controller = standby;
  });
});
