// kube-scheduler places Pods on the Node objects tests register (no kubelet runs here).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import {
  adminKubeConfig,
  createNamespace,
  deletePodNow,
  ensureControlPlane,
  objectState,
  registerNode,
  uniqueName,
  unpulledImage,
  waitFor,
  type TestNamespace,
  type TestNode,
} from '../support/kube.js';

const wait = { timeoutMs: 30_000, intervalMs: 200 };

describe('kube-scheduler', () => {
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let ns: TestNamespace;
  const nodes: TestNode[] = [];
  const pods: string[] = [];

  before(async () => {
    kc = adminKubeConfig(await ensureControlPlane());
    core = kc.makeApiClient(k8s.CoreV1Api);
    ns = await createNamespace(kc, 'cp-scheduler');
  });

  after(async () => {
    for (const pod of pods) await deletePodNow(kc, ns.name, pod);
    for (const node of nodes) await node.cleanup();
    await ns.cleanup();
  });

  /** A Pod that only the given Node can take (every test's Nodes share the one scheduler). */
  async function createPodFor(node: TestNode): Promise<string> {
    const name = uniqueName('pod');
    pods.push(name);
    await core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name },
        spec: {
          nodeSelector: { 'kubernetes.io/hostname': node.name },
          containers: [{ name: 'main', image: unpulledImage, resources: { requests: { cpu: '100m', memory: '64Mi' } } }],
        },
      },
    });
    return name;
  }

  const podScheduled = (pod: k8s.V1Pod) => pod.status?.conditions?.find((c) => c.type === 'PodScheduled');

  test('binds a Pod to a registered Ready Node', async () => {
    const node = await registerNode(kc, 'cp-node');
    nodes.push(node);
    const name = await createPodFor(node);
    const pod = await waitFor(
      `pod ${ns.name}/${name} to be bound to node ${node.name}`,
      async (observe) => {
        const obj = await core.readNamespacedPod({ name, namespace: ns.name });
        observe(objectState(obj));
        return obj.spec?.nodeName === undefined ? undefined : obj;
      },
      wait,
    );
    assert.equal(pod.spec?.nodeName, node.name);
    assert.equal(podScheduled(pod)?.status, 'True');
    // A Binding from the scheduler, not a default: the Pod never had a nodeName of its own.
    const events = await core.listNamespacedEvent({ namespace: ns.name, fieldSelector: `involvedObject.name=${name}` });
    const scheduled = events.items.find((e) => e.reason === 'Scheduled');
    assert.ok(scheduled, `no Scheduled event for pod ${name}: ${JSON.stringify(events.items.map((e) => e.reason))}`);
    assert.match(scheduled.message ?? '', new RegExp(`to ${node.name}`));
  });

  test('leaves a Pod Pending when its only Node is cordoned', async () => {
    const node = await registerNode(kc, 'cp-cordoned', { unschedulable: true });
    nodes.push(node);
    const name = await createPodFor(node);
    const condition = await waitFor(
      `pod ${ns.name}/${name} to be found unschedulable`,
      async (observe) => {
        const obj = await core.readNamespacedPod({ name, namespace: ns.name });
        observe(objectState(obj));
        const found = podScheduled(obj);
        return found?.status === 'False' ? found : undefined;
      },
      wait,
    );
    assert.equal(condition.reason, 'Unschedulable');
    // Turned down for the cordon (the NodeUnschedulable filter), not for some other reason such as a taint.
    assert.match(condition.message ?? '', /1 node\(s\) were unschedulable/);
    assert.doesNotMatch(condition.message ?? '', /taint/);
    const pod = await core.readNamespacedPod({ name, namespace: ns.name });
    assert.equal(pod.spec?.nodeName, undefined);
    assert.equal(pod.status?.phase, 'Pending');
  });
});
