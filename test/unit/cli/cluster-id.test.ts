// The cluster-id subcommand, run as users run it: the built entry point as its own process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseClassParameters } from '../../../src/rbd/parameters.js';

const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src', 'main.js');

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  // No kubeconfig and no Ceph: the subcommand must need neither.
  const result = spawnSync(process.execPath, [main, 'cluster-id', ...args], {
    encoding: 'utf8', timeout: 30_000, env: { PATH: process.env['PATH'] ?? '', KUBECONFIG: '/nonexistent' },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const classOf = (parameters: Record<string, string>) =>
  parseClassParameters({ adminSecretName: 'a', userSecretName: 'u', ...parameters });

describe('rbd-provisioner cluster-id', () => {
  test('prints the clusterID a class with these monitors gets (the default one, monitors in any order)', () => {
    const { code, stdout, stderr } = run('--monitors', '10.0.0.2:6789, 10.0.0.1:6789');
    assert.equal(code, 0, stderr);
    assert.equal(stdout, `${classOf({ monitors: '10.0.0.1:6789,10.0.0.2:6789' }).clusterID}\n`);
    assert.equal(stderr, '');
  });

  test('with --rados-namespace: the id of a class with that radosNamespace, another than without', () => {
    const { code, stdout } = run('--monitors=[v2:10.0.0.1:3300,v1:10.0.0.1:6789]', '--rados-namespace=team-a');
    assert.equal(code, 0);
    const expected = classOf({ monitors: '[v2:10.0.0.1:3300,v1:10.0.0.1:6789]', radosNamespace: 'team-a' }).clusterID;
    assert.equal(stdout.trim(), expected);
    assert.notEqual(expected, classOf({ monitors: '[v2:10.0.0.1:3300,v1:10.0.0.1:6789]' }).clusterID);
  });

  test('--entry prints the config.json entry ceph-csi needs', () => {
    const { code, stdout } = run('--monitors=mon-a:6789,mon-b', '--rados-namespace=ns1', '--entry');
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(stdout), {
      clusterID: classOf({ monitors: 'mon-a:6789,mon-b', radosNamespace: 'ns1' }).clusterID,
      monitors: ['mon-a:6789', 'mon-b'],
      rbd: { radosNamespace: 'ns1' },
    });
  });

  test('an explicit --cluster-id is checked and printed back', () => {
    assert.equal(run('--monitors=mon-a', '--cluster-id=ba68226a-672f-4ba5-97bc-22840318b2ec').stdout, 'ba68226a-672f-4ba5-97bc-22840318b2ec\n');
  });

  test('bad usage exits 2 and names the problem', () => {
    const missing = run();
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--monitors is required/);
    const bad = run('--monitors=1.2.3.4:99999');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /StorageClass parameter "monitors": "1\.2\.3\.4:99999" has a port outside 1-65535/);
    const badNs = run('--monitors=mon-a', '--rados-namespace=a/b');
    assert.equal(badNs.code, 2);
    assert.match(badNs.stderr, /parameter "radosNamespace"/);
    const unknown = run('--monitors=mon-a', '--pool=x');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown option '--pool'/);
    assert.equal(bad.stdout + badNs.stdout + unknown.stdout, '');
  });

  test('--help prints the usage; the main --help mentions the subcommand', () => {
    const help = run('--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: rbd-provisioner cluster-id --monitors=<list>/);
    const mainHelp = spawnSync(process.execPath, [main, '--help'], { encoding: 'utf8' });
    assert.match(mainHelp.stdout, /rbd-provisioner cluster-id --monitors=<list>/);
  });
});
