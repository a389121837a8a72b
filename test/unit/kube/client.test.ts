// The real facade, against a small local HTTP server standing in for the API server.
import assert from 'node:assert/strict';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { KubeConfig, V1MicroTime } from '@kubernetes/client-node';
import { KubeApiError, type KubeFacade, createKubeFacade, isAlreadyExists, toKubeApiError } from '../../../src/kube/client.js';

interface Seen {
  method: string;
  url: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: string;
}

const SECRET_B64 = Buffer.from('AQBunit-test-cephx-key==').toString('base64');

const status = (code: number, reason: string, message: string): string => JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });

describe('createKubeFacade (plain JSON over kept-alive HTTP)', () => {
  const seen: Seen[] = [];
  let facade: KubeFacade;
  let baseUrl = '';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', contentType: req.headers['content-type'], authorization: req.headers.authorization, body });
      const url = new URL(req.url ?? '/', baseUrl);
      const json = (code: number, payload: string): void => {
        res.writeHead(code, { 'Content-Type': 'application/json' });
        res.end(payload);
      };
      if (url.pathname === '/api/v1/persistentvolumes' && req.method === 'GET' && url.searchParams.get('watch') === null) {
        if (url.searchParams.get('continue') === 'page2') json(200, JSON.stringify({ kind: 'PersistentVolumeList', metadata: { resourceVersion: '77' }, items: [{ metadata: { name: 'b' } }] }));
        else json(200, JSON.stringify({ kind: 'PersistentVolumeList', metadata: { resourceVersion: '77', continue: 'page2' }, items: [{ metadata: { name: 'a' } }] }));
        return;
      }
      if (url.pathname === '/api/v1/persistentvolumes' && req.method === 'POST') return json(409, status(409, 'AlreadyExists', 'persistentvolumes "pvc-1" already exists'));
      if (url.pathname === '/api/v1/persistentvolumes/pvc-1' && req.method === 'PATCH') return json(200, JSON.stringify({ metadata: { name: 'pvc-1' } }));
      if (url.pathname === '/api/v1/persistentvolumes/pvc-1' && req.method === 'DELETE') return json(404, status(404, 'NotFound', 'persistentvolumes "pvc-1" not found'));
      if (url.pathname === '/api/v1/persistentvolumes/slow') return; // never answers
      if (url.pathname === '/api/v1/namespaces/apps/persistentvolumeclaims/missing') return json(404, status(404, 'NotFound', 'not found'));
      if (url.pathname === '/api/v1/namespaces/ceph/secrets/admin') return json(200, JSON.stringify({ kind: 'Secret', metadata: { name: 'admin' }, data: { key: SECRET_B64 } }));
      if (url.pathname === '/api/v1/namespaces/ceph/secrets/missing') return json(404, status(404, 'NotFound', 'secrets "missing" not found'));
      if (url.pathname === '/api/v1/namespaces/ceph/secrets/forbidden') return json(403, status(403, 'Forbidden', `echoing ${SECRET_B64}`));
      if (url.pathname === '/api/v1/namespaces/ceph/secrets/garbled') return json(200, `{"data":{"key":"${SECRET_B64}"`);
      if (url.pathname === '/api/v1/namespaces/default/events/e1' && req.method === 'PATCH') return json(200, JSON.stringify({ metadata: { name: 'e1' } }));
      if (url.pathname === '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l1' && req.method === 'PUT') return json(200, body);
      if (url.pathname === '/api/v1/persistentvolumeclaims' && url.searchParams.get('watch') === 'true') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write(JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'c1', namespace: 'apps', resourceVersion: '6' } } }) + '\n');
        res.write(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' } }) + '\n');
        res.end();
        return;
      }
      json(404, status(404, 'NotFound', `no route ${req.method} ${url.pathname}`));
    });
  });

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'c', server: baseUrl, skipTLSVerify: true }],
      users: [{ name: 'u', token: 'unit-test-token' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    // Generous: no test here waits for the timeout, and a loaded CI machine can take a while to answer.
    facade = createKubeFacade(kubeConfig, { qps: 1000, burst: 1000, requestTimeoutMs: 10_000 });
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  test('list follows continue tokens and keeps the resourceVersion', async () => {
    const result = await facade.list('volumes');
    assert.deepEqual(result.items.map((i) => i.metadata?.name), ['a', 'b']);
    assert.equal(result.resourceVersion, '77');
    const lists = seen.filter((s) => s.url.startsWith('/api/v1/persistentvolumes?'));
    assert.match(lists[0]?.url ?? '', /limit=500/);
    assert.match(lists[1]?.url ?? '', /continue=page2/);
    assert.equal(lists[0]?.authorization, 'Bearer unit-test-token');
  });

  test('errors carry the HTTP status and the Status reason', async () => {
    const error = await facade.createVolume({ metadata: { name: 'pvc-1' } }).catch((e: unknown) => e);
    assert.ok(error instanceof KubeApiError);
    assert.equal(error.status, 409);
    assert.equal(error.reason, 'AlreadyExists');
    assert.ok(isAlreadyExists(error));
    assert.match(error.message, /create PV: HTTP 409: persistentvolumes "pvc-1" already exists/);
  });

  test('a missing claim reads as undefined', async () => {
    assert.equal(await facade.readClaim('apps', 'missing'), undefined);
  });

  test('a Secret reads as its base64 data map; a missing one as undefined', async () => {
    assert.deepEqual(await facade.readSecretData('ceph', 'admin'), { key: SECRET_B64 });
    assert.equal(await facade.readSecretData('ceph', 'missing'), undefined);
  });

  const secretErrors: { name: string; secret: string; status: number; reason: string; message: string }[] = [
    { name: 'an HTTP error', secret: 'forbidden', status: 403, reason: 'Forbidden', message: 'read secret: HTTP 403 Forbidden' },
    { name: 'an unparsable 200 response', secret: 'garbled', status: 0, reason: 'NoResponse', message: 'read secret: request failed (SyntaxError)' },
  ];
  for (const row of secretErrors) {
    test(`reading a Secret: ${row.name} gives status and reason only, never the body`, async () => {
      const error = await facade.readSecretData('ceph', row.secret).catch((e: unknown) => e);
      assert.ok(error instanceof KubeApiError, String(error));
      assert.equal(error.status, row.status);
      assert.equal(error.reason, row.reason);
      assert.equal(error.message, row.message);
      assert.ok(!error.message.includes(SECRET_B64));
    });
  }

  test('PV patches go out as JSON patch; event patches as merge patch', async () => {
    await facade.patchVolume('pvc-1', [{ op: 'remove', path: '/metadata/finalizers/0' }]);
    const patch = seen.find((s) => s.method === 'PATCH' && s.url.startsWith('/api/v1/persistentvolumes/pvc-1'));
    assert.equal(patch?.contentType, 'application/json-patch+json');
    assert.deepEqual(JSON.parse(patch?.body ?? ''), [{ op: 'remove', path: '/metadata/finalizers/0' }]);
    await facade.patchEvent('default', 'e1', { count: 2 });
    const eventPatch = seen.find((s) => s.method === 'PATCH' && s.url.startsWith('/api/v1/namespaces/default/events/e1'));
    assert.equal(eventPatch?.contentType, 'application/merge-patch+json');
  });

  test('delete sends the uid precondition; 404 means already gone', async () => {
    assert.equal(await facade.deleteVolume('pvc-1', 'uid-1'), false);
    const deleted = seen.find((s) => s.method === 'DELETE');
    assert.deepEqual(JSON.parse(deleted?.body ?? '{}').preconditions, { uid: 'uid-1' });
  });

  test('lease times go out as MicroTime', async () => {
    const time = new V1MicroTime(Date.UTC(2025, 0, 2, 3, 4, 5, 678));
    await facade.replaceLease('kube-system', 'l1', { metadata: { name: 'l1', resourceVersion: '3' }, spec: { holderIdentity: 'me', renewTime: time } });
    const put = seen.find((s) => s.method === 'PUT');
    assert.equal(JSON.parse(put?.body ?? '{}').spec.renewTime, '2025-01-02T03:04:05.678000Z');
  });

  test('a request that hangs times out as a retryable KubeApiError', async () => {
    const error = await facade.readVolume('slow').catch((e: unknown) => e);
    assert.ok(error instanceof KubeApiError, String(error));
    assert.equal(error.status, 0);
    assert.equal(error.reason, 'Timeout');
  });

  test('the caller aborting gets its own reason back, not a timeout', async () => {
    const abort = new AbortController();
    const pending = facade.readVolume('slow', abort.signal);
    setTimeout(() => abort.abort(new Error('lost the lease')), 20);
    await assert.rejects(pending, /lost the lease/);
  });

  test('watch streams events, passes ERROR events through, and resolves when the server ends', async () => {
    const got: string[] = [];
    await facade.watch('claims', '5', (type, object) => got.push(`${type}:${(object as { metadata?: { name?: string }; code?: number }).metadata?.name ?? (object as { code?: number }).code}`), {
      signal: new AbortController().signal,
      timeoutSeconds: 300,
    });
    assert.deepEqual(got, ['ADDED:c1', 'ERROR:410']);
    const watch = seen.find((s) => s.url.startsWith('/api/v1/persistentvolumeclaims?'));
    const params = new URL(watch?.url ?? '', baseUrl).searchParams;
    assert.equal(params.get('watch'), 'true');
    assert.equal(params.get('resourceVersion'), '5');
    assert.equal(params.get('allowWatchBookmarks'), 'true');
    assert.equal(params.get('timeoutSeconds'), '300');
  });

  test('a watch refused with an HTTP error rejects with that status', async () => {
    const error = await facade
      .watch('storageClasses', '1', () => undefined, { signal: new AbortController().signal, timeoutSeconds: 300 })
      .catch((e: unknown) => e);
    assert.ok(error instanceof KubeApiError, String(error));
    assert.equal(error.status, 404);
  });
});

describe('toKubeApiError', () => {
  test('network errors become status 0', () => {
    const error = toKubeApiError('read PV', Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { code: 'ECONNREFUSED' }));
    assert.ok(error instanceof KubeApiError);
    assert.equal(error.status, 0);
    assert.match(error.message, /read PV: connect ECONNREFUSED/);
  });
});
