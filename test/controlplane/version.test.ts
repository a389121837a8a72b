import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { adminKubeConfig, ensureControlPlane, kubectl, type ControlPlane } from '../support/kube.js';

describe('control plane version', () => {
  let controlPlane: ControlPlane;
  before(async () => {
    controlPlane = await ensureControlPlane();
  });

  test('the API server reports the pinned release, not an unstamped build', async () => {
    assert.match(controlPlane.version, /^v1\.\d+\.\d+$/);
    const info = await adminKubeConfig(controlPlane).makeApiClient(k8s.VersionApi).getCode();
    assert.equal(info.gitVersion, controlPlane.version);
    assert.doesNotMatch(info.gitVersion, /^v0\.0\.0/);
    const [, major, minor] = /^v(\d+)\.(\d+)\./.exec(controlPlane.version) ?? [];
    assert.equal(info.major, major);
    assert.equal(info.minor, minor);
  });

  test('kubectl sees the same server version', async () => {
    const reported = JSON.parse(await kubectl(['version', '-o', 'json'])) as { serverVersion: { gitVersion: string } };
    assert.equal(reported.serverVersion.gitVersion, controlPlane.version);
  });
});
