// --version, run as users run it: the built entry point as its own process, with nothing to connect to.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const main = path.join(root, 'dist', 'src', 'main.js');
const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  // No kubeconfig, no Ceph, and an HTTP port that is taken by nobody: --version must start none of it.
  const result = spawnSync(process.execPath, [main, ...args], {
    encoding: 'utf8', timeout: 30_000, env: { PATH: process.env['PATH'] ?? '', KUBECONFIG: '/nonexistent' },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('rbd-provisioner --version', () => {
  test('prints package.json\'s version and the Node.js version, exits 0 and starts nothing', () => {
    const { code, stdout, stderr } = run('--version');
    assert.equal(code, 0, stderr);
    assert.equal(stdout, `rbd-provisioner ${version} (node ${process.version})\n`);
    assert.equal(stderr, '');
  });

  test('wins over other flags, even bad ones, as --help does', () => {
    const { code, stdout } = run('--workers=0', '--version', '--http-address=:1');
    assert.equal(code, 0);
    assert.equal(stdout, `rbd-provisioner ${version} (node ${process.version})\n`);
  });

  test('--help lists --version and the external-provisioner aliases', () => {
    const { code, stdout } = run('--help');
    assert.equal(code, 0);
    for (const text of ['--version', '(alias --leader-election,', '(alias --http-endpoint,', '(alias --worker-threads,', '--retry-interval-start=<duration>', '--retry-interval-max=<duration>']) {
      assert.ok(stdout.includes(text), `--help shows ${text}`);
    }
  });

  test('an alias and its flag that disagree: exit 2, naming both', () => {
    const { code, stdout, stderr } = run('--leader-elect=true', '--leader-election=false');
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.match(stderr, /--leader-elect=true and --leader-election=false disagree/);
  });
});
