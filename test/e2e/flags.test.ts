// external-provisioner's flag names and the retry intervals, on the controller process as users start it: a claim
// of a bad class is retried every --retry-interval-max (the delay after an error only a human can fix), not every
// 5 minutes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setupE2e, type E2e } from '../support/e2e.js';
import type { ControllerProcess } from '../support/controller.js';

let e2e: E2e;
let controller: ControllerProcess;

before(async () => {
  e2e = await setupE2e('flags');
  controller = await e2e.startController({
    extraArgs: ['--worker-threads=2', '--leader-election=false', '--retry-interval-start=100ms', '--retry-interval-max=1s', '--log-level=debug'],
  });
});

after(async () => {
  await e2e?.cleanup();
});

/** The controller's JSON log lines so far. */
function logLines(): Record<string, unknown>[] {
  return controller.output().split('\n').flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

describe('flags as external-provisioner names them', () => {
  test('--worker-threads and --leader-election set the workers and leader election', () => {
    const starting = logLines().find((line) => line['message'] === 'starting');
    assert.ok(starting !== undefined, controller.output());
    assert.equal(starting['workers'], 2);
    assert.equal(starting['leaderElect'], false);
  });

  test('--retry-interval-max: a claim of a bad class gets ProvisioningFailed and is retried every 1s', async () => {
    const storageClass = await e2e.createClass({ ...e2e.baseParameters(), poool: 'x' });
    const claim = await e2e.createClaim(storageClass);
    const item = `claim:${e2e.namespace}/${claim.metadata!.name!}`;
    const event = await e2e.waitEvent(claim.metadata!.name!, 'ProvisioningFailed');
    assert.equal(event.type, 'Warning');
    const deadline = Date.now() + 20_000;
    let retries: Record<string, unknown>[] = [];
    while (retries.length < 4 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      retries = logLines().filter((line) => line['message'] === 'scheduled a retry' && line['item'] === item);
    }
    // With the default (5m) there would be one retry scheduled in this time, not four.
    assert.ok(retries.length >= 4, `retries scheduled: ${JSON.stringify(retries)}`);
    for (const retry of retries) {
      assert.equal(retry['kind'], 'slow');
      assert.equal(retry['delayMs'], 1000);
    }
    assert.equal((await e2e.readClaim(claim.metadata!.name!))?.status?.phase, 'Pending');
  });
});
