// Bad classes fail with events that name the field, create nothing, and do not stop the controller; no key ever
// shows up in its output (debug logging on) or in any event.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setupE2e, type E2e } from '../support/e2e.js';
import type { ControllerProcess } from '../support/controller.js';

let e2e: E2e;
let controller: ControllerProcess;

before(async () => {
  e2e = await setupE2e('fail');
  controller = await e2e.startController({ extraArgs: ['--log-level=debug'] });
});

after(async () => {
  await e2e?.cleanup();
});

describe('invalid StorageClasses', () => {
  const cases: [string, (base: Record<string, string>) => Record<string, string>, RegExp][] = [
    ['an unknown key', (p) => ({ ...p, poool: 'x' }), /"poool": unknown parameter; allowed: monitors/],
    ['a missing pool', (p) => ({ ...p, pool: 'no-such-pool' }), /no-such-pool.*pool does not exist/],
    ['an unknown feature', (p) => ({ ...p, imageFeatures: 'layering,warp-drive' }), /"imageFeatures".*unknown feature "warp-drive".*allowed:.*layering/],
    ['a missing secret', (p) => ({ ...p, adminSecretName: 'no-such-secret' }), /secret .*\/no-such-secret not found/],
    ['imageFormat 1', (p) => ({ ...p, imageFormat: '1' }), /"imageFormat".*allowed: "?2/],
    ['unparsable monitors (brackets)', (p) => ({ ...p, monitors: '[::1' }), /"monitors": unbalanced brackets; allowed: comma-separated monitor addresses/],
    ['unparsable monitors (a space)', (p) => ({ ...p, monitors: 'mon a' }), /"monitors": "mon a" is not a host name or IPv4 address; allowed:/],
  ];
  for (const [what, params, expected] of cases) {
    test(`${what}: ProvisioningFailed naming the field; no image`, async () => {
      const storageClass = await e2e.createClass(params(e2e.baseParameters()));
      const claim = await e2e.createClaim(storageClass);
      const event = await e2e.waitEvent(claim.metadata!.name!, 'ProvisioningFailed');
      assert.equal(event.type, 'Warning');
      assert.match(event.message ?? '', expected);
      assert.equal((await e2e.readClaim(claim.metadata!.name!))?.status?.phase, 'Pending');
      assert.ok(!(await e2e.images()).includes(`pvc-${claim.metadata!.uid}`));
    });
  }

  // RELIABILITY 19: another provisioner's claim, and a claim that names its PV (spec.volumeName) already.
  test('claims that are not ours get no image, no PV and no event from us (RELIABILITY 19)', async () => {
    const foreignClass = await e2e.createClass(e2e.baseParameters(), { provisioner: 'someone-else.example.com' });
    const foreign = await e2e.createClaim(foreignClass);
    const ours = await e2e.createClass(e2e.baseParameters());
    const preBound = await e2e.core.createNamespacedPersistentVolumeClaim({
      namespace: e2e.namespace,
      body: {
        metadata: { name: `prebound-${foreign.metadata!.uid!.slice(0, 8)}` },
        spec: { storageClassName: ours, volumeName: 'a-pv-an-admin-will-make', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
      },
    });
    // A positive control made after them: once it is Bound, the controller has seen the other two.
    const control = await e2e.createClaim(ours);
    await e2e.waitBound(control.metadata!.name!);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const images = await e2e.images();
    for (const claim of [foreign, preBound]) {
      const name = claim.metadata!.name!;
      assert.equal((await e2e.readClaim(name))?.status?.phase, 'Pending', `${name} stays Pending`);
      assert.ok(!images.some((image) => image.includes(claim.metadata!.uid!)), `no image for ${name}`);
      assert.equal(await e2e.readVolume(`pvc-${claim.metadata!.uid}`), undefined, `no PV for ${name}`);
      const ourEvents = (await e2e.events(name)).filter((e) => e.source?.component === e2e.provisionerName || e.reportingComponent === e2e.provisionerName);
      assert.deepEqual(ourEvents.map((e) => `${e.reason}: ${e.message}`), [], `no event from us on ${name}`);
    }
  });

  test('the controller keeps serving other claims', async () => {
    const storageClass = await e2e.createClass(e2e.baseParameters());
    const claim = await e2e.createClaim(storageClass);
    await e2e.waitBound(claim.metadata!.name!);
    assert.equal(controller.child.exitCode, null, 'controller still running');
  });

  test('the cephx key never appears in the controller output or in any event', async () => {
    const key = e2e.ceph.adminKey;
    assert.ok(controller.output().length > 0, 'controller printed something');
    assert.ok(controller.output().includes('"level":"debug"'), 'debug logging was on');
    assert.ok(!controller.output().includes(key), 'key in controller output');
    const events = [
      ...(await e2e.core.listNamespacedEvent({ namespace: e2e.namespace })).items,
      ...(await e2e.core.listNamespacedEvent({ namespace: 'default' })).items,
    ];
    assert.ok(events.length > 0);
    for (const event of events) assert.ok(!JSON.stringify(event).includes(key), `key in event ${event.reason}`);
  });
});
