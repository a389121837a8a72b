// Helpers for proving the chart against the real control plane (test/support/kube.ts): install it, start
// the controller locally as the chart's ServiceAccount with the chart's own arguments, and ask the API
// server what that ServiceAccount may do. No tests here; the live suite imports these.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { type ControlPlane, adminKubeConfig, helm, kubectl, tokenKubeConfig } from '../support/kube.js';
import { chartDir, onlyOfKind, render } from './helm.js';

export interface Release {
  name: string;
  namespace: string;
  /** The values given to helm, as a values file would give them (lists replace the defaults'). */
  values: object;
}

async function withValuesFile<T>(values: object, use: (file: string) => Promise<T>): Promise<T> {
  const scratch = await mkdtemp(path.join(tmpdir(), 'rbd-chart-live-'));
  try {
    const file = path.join(scratch, 'values.yaml');
    await writeFile(file, JSON.stringify(values));
    return await use(file);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** `helm install` into the release namespace (created by helm). Pods stay Pending without a kubelet: no --wait. */
export function installChart(controlPlane: ControlPlane, release: Release): Promise<string> {
  return withValuesFile(release.values, (file) =>
    helm(['install', release.name, chartDir, '--namespace', release.namespace, '--create-namespace', '--values', file], {
      controlPlane,
      timeoutMs: 120_000,
    }),
  );
}

export function uninstallChart(controlPlane: ControlPlane, release: Release): Promise<string> {
  return helm(['uninstall', release.name, '--namespace', release.namespace, '--wait', '--timeout', '60s'], { controlPlane, timeoutMs: 120_000 });
}

export interface ControllerInvocation {
  /** The Deployment's container args, unchanged. */
  args: string[];
  /** The container's env with downward-API fields resolved as the kubelet would for `podName`. */
  env: Record<string, string>;
  serviceAccount: string;
}

/**
 * How the chart's Deployment starts the controller, for starting it locally: append --kubeconfig (and, to run
 * beside other processes, an --http-address of your own; a later flag wins) to `args`.
 */
export async function chartControllerInvocation(release: Release, podName = `${release.name}-local`): Promise<ControllerInvocation> {
  const manifests = await render(release.values, { release: release.name, namespace: release.namespace, tests: false });
  return deploymentInvocation(onlyOfKind<k8s.V1Deployment>(manifests, 'Deployment'), release.namespace, podName);
}

/** How a Deployment (rendered, or read back from the API server) starts its container, as the kubelet would. */
export function deploymentInvocation(deployment: k8s.V1Deployment, namespace: string, podName: string): ControllerInvocation {
  const pod = deployment.spec?.template.spec;
  const container = pod?.containers[0];
  if (pod === undefined || container === undefined) throw new Error('the chart rendered a Deployment without a container');
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    const field = variable.valueFrom?.fieldRef?.fieldPath;
    if (field === 'metadata.namespace') env[variable.name] = namespace;
    else if (field === 'metadata.name') env[variable.name] = podName;
    else if (variable.value !== undefined) env[variable.name] = variable.value;
    else throw new Error(`env ${variable.name} comes from a source this helper does not resolve`);
  }
  return { args: container.args ?? [], env, serviceAccount: pod.serviceAccountName ?? 'default' };
}

/** A kubeconfig file that authenticates as the ServiceAccount with a TokenRequest token (mode 0600). */
export async function writeServiceAccountKubeconfig(
  controlPlane: ControlPlane,
  namespace: string,
  serviceAccount: string,
  file: string,
  durationSeconds = 3600,
): Promise<void> {
  const token = (
    await kubectl(['create', 'token', serviceAccount, '--namespace', namespace, '--duration', `${durationSeconds}s`], { controlPlane })
  ).trim();
  if (token === '') throw new Error(`kubectl create token ${namespace}/${serviceAccount} returned nothing`);
  const kc = tokenKubeConfig(controlPlane, token, `system:serviceaccount:${namespace}:${serviceAccount}`);
  await writeFile(file, kc.exportConfig(), { mode: 0o600 });
}

/** What `kubectl auth can-i --as system:serviceaccount:<ns>:<sa>` answers, asked with a SubjectAccessReview. */
export async function serviceAccountMay(
  controlPlane: ControlPlane,
  namespace: string,
  serviceAccount: string,
  attributes: k8s.V1ResourceAttributes,
): Promise<boolean> {
  const authorization = adminKubeConfig(controlPlane).makeApiClient(k8s.AuthorizationV1Api);
  const review = await authorization.createSubjectAccessReview({
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: `system:serviceaccount:${namespace}:${serviceAccount}`,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
        resourceAttributes: attributes,
      },
    },
  });
  return review.status?.allowed === true;
}
