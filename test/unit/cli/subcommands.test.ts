// migrate and audit as users run them (the built entry point as its own process): usage errors exit 2 and name the
// flag before any cluster is needed; --help exits 0.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src', 'main.js');

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [main, ...args], {
    encoding: 'utf8', timeout: 30_000, env: { PATH: process.env['PATH'] ?? '', KUBECONFIG: '/nonexistent' },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('rbd-provisioner migrate and audit: usage', () => {
  test('migrate --help prints the usage, with the downtime, and exits 0', () => {
    const { code, stdout } = run('migrate', '--help');
    assert.equal(code, 0);
    assert.match(stdout, /^Usage: rbd-provisioner migrate/);
    assert.match(stdout, /DOWNTIME/);
  });

  test('migrate without --all or --pv exits 2 naming both', () => {
    const { code, stderr } = run('migrate');
    assert.equal(code, 2);
    assert.match(stderr, /^rbd-provisioner migrate: give either --all or one or more --pv=<name>/);
  });

  test('a key on the command line is no flag: exit 2', () => {
    const { code, stderr } = run('migrate', '--all', '--admin-key=AQBh3dZiAAAAABAAlQhbRLzEGG7nDQ2nb9NR5g==');
    assert.equal(code, 2);
    assert.match(stderr, /Unknown option '--admin-key'/);
    assert.ok(!stderr.includes('AQBh3dZi'), 'the key is not echoed');
  });

  test('audit --output=yaml exits 2 naming the flag and the allowed values; --help exits 0', () => {
    const bad = run('audit', '--output=yaml');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^rbd-provisioner audit: --output: "yaml" is not an output format; allowed: text, json/);
    const help = run('audit', '--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: rbd-provisioner audit/);
  });
});
