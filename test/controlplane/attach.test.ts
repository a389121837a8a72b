// kube-controller-manager's attach-detach controller asks for CSI attachments (VolumeAttachment objects) for Pods
// on Nodes whose attach/detach it manages. Nothing plays the external-attacher here, so none becomes attached.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import {
  adminKubeConfig,
  createBoundClaim,
  createNamespace,
  deletePodNow,
  ensureControlPlane,
  ignoreNotFound,
  registerNode,
  uniqueName,
  unpulledImage,
  waitFor,
  type BoundClaim,
  type TestNamespace,
  type TestNode,
} from '../support/kube.js';

const wait = { timeoutMs: 30_000, intervalMs: 200 };

describe('attach-detach controller', () => {
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let storage: k8s.StorageV1Api;
  let ns: TestNamespace;
  let node: TestNode;
  const drivers: string[] = [];
  const claims: BoundClaim[] = [];
  const pods: string[] = [];

  before(async () => {
    kc = adminKubeConfig(await ensureControlPlane());
    core = kc.makeApiClient(k8s.CoreV1Api);
    storage = kc.makeApiClient(k8s.StorageV1Api);
    ns = await createNamespace(kc, 'cp-attach');
    node = await registerNode(kc, 'cp-attach-node', {
      annotations: { 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' },
    });
  });

  after(async () => {
    for (const pod of pods) await deletePodNow(kc, ns.name, pod);
    for (const attachment of await attachmentsOf(claims.map((c) => c.volume.metadata!.name!))) {
      await ignoreNotFound(storage.deleteVolumeAttachment({ name: attachment.metadata!.name! }));
    }
    await ns.cleanup();
    for (const { volume } of claims) await ignoreNotFound(core.deletePersistentVolume({ name: volume.metadata!.name! }));
    for (const name of drivers) await ignoreNotFound(storage.deleteCSIDriver({ name }));
    await node.cleanup();
  });

  async function createDriver(attachRequired: boolean): Promise<string> {
    const name = `${uniqueName(attachRequired ? 'attach' : 'noattach')}.csi.test.invalid`;
    drivers.push(name);
    await storage.createCSIDriver({ body: { metadata: { name }, spec: { attachRequired, podInfoOnMount: false } } });
    return name;
  }

  /** A Pod already on the node (spec.nodeName, as if scheduled) that mounts the claim. */
  async function createPodUsing(claim: BoundClaim): Promise<string> {
    const name = uniqueName('pod');
    pods.push(name);
    await core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name },
        spec: {
          nodeName: node.name,
          containers: [{ name: 'main', image: unpulledImage, volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
          volumes: [{ name: 'data', persistentVolumeClaim: { claimName: claim.claim.metadata!.name! } }],
        },
      },
    });
    return name;
  }

  async function attachmentsOf(volumes: string[]): Promise<k8s.V1VolumeAttachment[]> {
    const all = await storage.listVolumeAttachment();
    return all.items.filter((a) => volumes.includes(a.spec.source.persistentVolumeName ?? ''));
  }

  test('creates a VolumeAttachment for a CSI volume that needs attaching, and none for one that does not', async () => {
    const attached = await createBoundClaim(kc, ns.name, 'attach-claim', await createDriver(true));
    const unattached = await createBoundClaim(kc, ns.name, 'noattach-claim', await createDriver(false));
    claims.push(attached, unattached);
    // The one that must not get an attachment goes first, so it is not merely later than the wait below.
    await createPodUsing(unattached);
    await createPodUsing(attached);

    const attachedVolume = attached.volume.metadata!.name!;
    const attachment = await waitFor(
      `a VolumeAttachment of volume ${attachedVolume} on node ${node.name}`,
      async (observe) => {
        const found = await attachmentsOf([attachedVolume]);
        const all = await storage.listVolumeAttachment();
        observe({ attachments: all.items.map((a) => ({ name: a.metadata?.name, spec: a.spec })) });
        return found[0];
      },
      wait,
    );
    assert.equal(attachment.spec.attacher, attached.volume.spec!.csi!.driver);
    assert.equal(attachment.spec.nodeName, node.name);
    assert.equal(attachment.spec.source.persistentVolumeName, attachedVolume);
    assert.notEqual(attachment.status?.attached, true, 'nothing here attaches volumes, yet it is marked attached');

    // The controller handles both Pods from the same informer; give it a moment more, then look again.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    assert.deepEqual(
      (await attachmentsOf([unattached.volume.metadata!.name!])).map((a) => a.metadata?.name),
      [],
      'a volume whose CSIDriver has attachRequired: false got a VolumeAttachment',
    );
  });
});
