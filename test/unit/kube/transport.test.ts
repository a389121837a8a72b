// KubeTransport against a local HTTP server: a request or watch whose signal aborts before the request is sent must
// settle with the abort, never leave an 'error' event without a listener (that ends the process: RELIABILITY 27 did).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeTransport } from '../../../src/kube/transport.js';

let server: Server;
let transport: KubeTransport;
let requests = 0;

before(async () => {
  server = createServer((req, res) => {
    requests++;
    res.setHeader('content-type', 'application/json');
    res.end(req.url?.includes('watch=true') ? '{"type":"ADDED","object":{}}\n' : '{"kind":"Status"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'local', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'nobody' }],
    contexts: [{ name: 'local', cluster: 'local', user: 'nobody' }],
    currentContext: 'local',
  });
  transport = new KubeTransport(kubeConfig, { maxSockets: 4 });
});

after(() => {
  transport.close();
  server.close();
});

/** Fails the test if anything reaches the process's last-resort handlers meanwhile. */
async function withoutUncaught(run: () => Promise<void>): Promise<void> {
  const uncaught: unknown[] = [];
  const record = (error: unknown): void => void uncaught.push(error);
  process.on('uncaughtException', record);
  process.on('unhandledRejection', record);
  try {
    await run();
    await new Promise((resolve) => setTimeout(resolve, 50));
  } finally {
    process.off('uncaughtException', record);
    process.off('unhandledRejection', record);
  }
  assert.deepEqual(uncaught, []);
}

test('a request answers with the server\'s JSON', async () => {
  assert.deepEqual(await transport.request({ method: 'GET', path: '/api', timeoutMs: 5_000 }), { kind: 'Status' });
});

test('a request whose signal is already aborted rejects with the reason and sends nothing', async () => {
  await withoutUncaught(async () => {
    const before = requests;
    const reason = new Error('lease request timed out');
    await assert.rejects(transport.request({ method: 'GET', path: '/api', timeoutMs: 5_000, signal: AbortSignal.abort(reason) }), reason);
    assert.equal(requests, before);
  });
});

test('a request whose signal aborts while the connection is being prepared rejects with the reason', async () => {
  await withoutUncaught(async () => {
    const abort = new AbortController();
    const reason = new Error('leadership lost');
    const pending = transport.request({ method: 'GET', path: '/api', timeoutMs: 5_000, signal: abort.signal });
    abort.abort(reason);
    await assert.rejects(pending, reason);
  });
});

test('a watch whose signal aborts before it is sent ends quietly', async () => {
  await withoutUncaught(async () => {
    const abort = new AbortController();
    const objects: unknown[] = [];
    const pending = transport.stream('/api/v1/pods', { watch: true }, (object) => objects.push(object), abort.signal);
    abort.abort(new Error('stopping'));
    await pending;
    assert.deepEqual(objects, []);
  });
});

test('a watch hands over each object the server sends', async () => {
  const objects: unknown[] = [];
  await transport.stream('/api/v1/pods', { watch: true }, (object) => objects.push(object), new AbortController().signal);
  assert.deepEqual(objects, [{ type: 'ADDED', object: {} }]);
});
