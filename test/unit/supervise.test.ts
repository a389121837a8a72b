// scripts/supervise.sh, which runs the sandbox's controller as a Deployment would.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'scripts', 'supervise.sh');
const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('supervise.sh', () => {
  test('restarts a command that exits, with backoff; TERM stops the command and the supervisor', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'supervise-'));
    const starts = path.join(dir, 'starts');
    // Each run records its start, then exits at once the first two times and stays up from the third.
    const command = `echo started >> ${starts}; [ "$(wc -l < ${starts})" -ge 3 ] && exec sleep 60; exit 3`;
    const supervisor = spawn('bash', [script, 'bash', '-c', command], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    supervisor.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      // Backoff 1 s then 2 s: the third start comes after about 3 s.
      const deadline = Date.now() + 20_000;
      while ((await readFile(starts, 'utf8').catch(() => '')).split('\n').length - 1 < 3) {
        assert.ok(Date.now() < deadline, `not restarted in time: ${stderr}`);
        await settle(100);
      }
      assert.match(stderr, /exited with status 3; restarting in 1s/);
      assert.match(stderr, /exited with status 3; restarting in 2s/);
      const exited = new Promise<number | null>((resolve) => supervisor.once('exit', (code) => resolve(code)));
      supervisor.kill('SIGTERM');
      assert.equal(await exited, 0);
      await settle(300);
      assert.equal((await readFile(starts, 'utf8')).split('\n').length - 1, 3, 'not restarted after TERM');
    } finally {
      supervisor.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
