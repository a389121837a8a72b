import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import {
  adminKubeConfig,
  createNamespace,
  ensureControlPlane,
  isApiError,
  kubectl,
  tokenKubeConfig,
  waitFor,
  type ControlPlane,
  type TestNamespace,
} from '../support/kube.js';

describe('RBAC and service account tokens', () => {
  let controlPlane: ControlPlane;
  let admin: k8s.KubeConfig;
  let ns: TestNamespace;
  const serviceAccount = 'provisioner';

  before(async () => {
    controlPlane = await ensureControlPlane();
    admin = adminKubeConfig(controlPlane);
    ns = await createNamespace(admin, 'cp-rbac');
    await admin.makeApiClient(k8s.CoreV1Api).createNamespacedServiceAccount({
      namespace: ns.name,
      body: { metadata: { name: serviceAccount } },
    });
  });

  after(async () => {
    await ns.cleanup();
  });

  const createToken = async (): Promise<string> =>
    (await kubectl(['create', 'token', serviceAccount, '-n', ns.name, '--duration=10m'])).trim();

  const listClaimsAs = (kc: k8s.KubeConfig) =>
    kc.makeApiClient(k8s.CoreV1Api).listNamespacedPersistentVolumeClaim({ namespace: ns.name });

  test('a token from `kubectl create token` authenticates as the service account', async () => {
    const token = await createToken();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'not a JWT');
    const review = await tokenKubeConfig(controlPlane, token)
      .makeApiClient(k8s.AuthenticationV1Api)
      .createSelfSubjectReview({ body: {} });
    assert.equal(review.status?.userInfo?.username, `system:serviceaccount:${ns.name}:${serviceAccount}`);
    assert.ok(review.status?.userInfo?.groups?.includes('system:serviceaccounts'));
  });

  test('a token the server did not sign is rejected with 401', async () => {
    const token = await createToken();
    const [header, payload] = token.split('.');
    const forged = `${header}.${payload}.${Buffer.from('not the signature').toString('base64url')}`;
    await assert.rejects(listClaimsAs(tokenKubeConfig(controlPlane, forged)), (err: unknown) => {
      assert.ok(isApiError(err, 401), `expected 401, got ${String(err)}`);
      return true;
    });
  });

  test('a service account with no role gets 403, and gets through after a Role and RoleBinding', async () => {
    const asServiceAccount = tokenKubeConfig(controlPlane, await createToken());
    await assert.rejects(listClaimsAs(asServiceAccount), (err: unknown) => {
      assert.ok(isApiError(err, 403), `expected 403, got ${String(err)}`);
      const body = String((err as k8s.ApiException<unknown>).body);
      assert.match(body, new RegExp(`system:serviceaccount:${ns.name}:${serviceAccount}`));
      assert.match(body, /cannot list resource \\?"persistentvolumeclaims\\?"/);
      return true;
    });

    const rbac = admin.makeApiClient(k8s.RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: ns.name,
      body: {
        metadata: { name: 'claim-reader' },
        rules: [{ apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['get', 'list', 'watch'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns.name,
      body: {
        metadata: { name: 'claim-reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'claim-reader' },
        subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace: ns.name }],
      },
    });

    // The authorizer reads RBAC objects from an informer, so the grant lands within moments.
    const list = await waitFor(
      'the service account to be allowed to list claims',
      async (observe) => {
        try {
          return await listClaimsAs(asServiceAccount);
        } catch (err) {
          observe(isApiError(err, 403) ? 'still 403 Forbidden' : String(err));
          return undefined;
        }
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    assert.deepEqual(list.items, []);

    // The role grants reads only.
    await assert.rejects(
      asServiceAccount.makeApiClient(k8s.CoreV1Api).deleteCollectionNamespacedPersistentVolumeClaim({ namespace: ns.name }),
      (err: unknown) => isApiError(err, 403),
    );
  });
});
