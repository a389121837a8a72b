// Native calls that fail in ways Ceph cannot be asked for still end as one rejected promise of the usual shape, and
// the process and the addon's threads carry on: a C++ exception at the entry point, on a pool thread or while the
// result is built (through the test-only addon of test/addon/faults, built from the addon's own sources), and a
// pool thread that cannot be started (the real addon in a child process under a thread limit).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { NativeError } from '../../src/ceph/rbd-native.js';
import { repoRoot } from '../support/ceph.js';

interface Faults {
  /** Resolves 'ok' when `where` is 'nowhere'; else throws `kind` at the entry point, in Execute() or in Result(). */
  throwIn(where: 'entry' | 'execute' | 'result' | 'nowhere', kind: string): Promise<string>;
  throwSync(kind: string): void;
  /** GrowToFit over a call whose result needs `needs` elements; resolves with the sizes it was handed. */
  growToFit(initial: number, needs: number, reports: boolean): Promise<number[]>;
  poolStats(): { inflight: number; completed: number };
  /** A detached release (what a finalizer hands the pool) that takes `ms` and then creates the file at `path`. */
  releaseSlowly(ms: number, path: string): void;
}

const faults = createRequire(import.meta.url)(
  path.join(repoRoot, 'test', 'addon', 'faults', 'build', 'Release', 'rbd_native_faults.node'),
) as Faults;

const LIMIT = 256 * 1024;

async function rejection(promise: Promise<unknown>): Promise<NativeError> {
  return promise.then(
    (value) => assert.fail(`expected a rejection, got ${JSON.stringify(value)}`),
    (err: unknown) => err as NativeError,
  );
}

// What each kind of exception becomes. The what() of a std::exception never reaches the message.
const KINDS = [
  { kind: 'bad_alloc', code: 'ENOMEM', errno: 12, message: /: out of memory in the addon \(ENOMEM\)$/ },
  { kind: 'runtime_error', code: 'ERR_NATIVE_EXCEPTION', errno: undefined, message: /: unexpected C\+\+ exception \(std::runtime_error\) in the addon$/ },
  { kind: 'other', code: 'ERR_NATIVE_EXCEPTION', errno: undefined, message: /: unexpected C\+\+ exception \(.*NotAStdException\) in the addon$/ },
] as const;

describe('C++ exceptions become rejections', () => {
  for (const where of ['entry', 'execute', 'result'] as const) {
    for (const { kind, code, errno, message } of KINDS) {
      test(`${kind} thrown ${where === 'entry' ? 'at the entry point' : `in ${where === 'execute' ? 'Execute()' : 'Result()'}`}`, async () => {
        const err = await rejection(faults.throwIn(where, kind));
        assert.ok(err instanceof Error, String(err));
        assert.equal(err.code, code);
        assert.equal(err.errno, errno);
        // Before anything is queued the only name at hand is the export's; after, the operation's and its object.
        assert.equal(err.op, where === 'entry' ? 'throwIn' : 'fault_call');
        assert.equal(err.object, where === 'entry' ? '' : 'pool/image');
        assert.match(err.message, message);
        assert.doesNotMatch(err.message, /what\(\) text/);
      });
    }
  }

  test('a synchronous export throws a JS error of the same shape', () => {
    for (const { kind, code, message } of KINDS) {
      assert.throws(() => faults.throwSync(kind), (e: unknown) => {
        const err = e as NativeError;
        return err.code === code && err.op === 'throwSync' && message.test(err.message);
      });
    }
  });

  test('pool threads outlive the exceptions they catch: a burst of throwing calls, then a normal one', async () => {
    const before = faults.poolStats().completed;
    const results = await Promise.allSettled(Array.from({ length: 64 }, (_, i) => faults.throwIn('execute', KINDS[i % 3]!.kind)));
    assert.deepEqual(results.filter((r) => r.status === 'fulfilled'), []);
    assert.equal(await faults.throwIn('nowhere', 'bad_alloc'), 'ok');
    const stats = faults.poolStats();
    assert.equal(stats.completed - before, 65);
    assert.equal(stats.inflight, 0);
  });
});

// A handle collected during environment teardown is released on a pool thread (rados_shutdown); exit must wait
// for it, or the thread races librbd's exit-time destructors and the process dies of SIGSEGV or SIGABRT.
describe('process exit waits for native releases still running', () => {
  const faultsAddon = path.join(repoRoot, 'test', 'addon', 'faults', 'build', 'Release', 'rbd_native_faults.node');
  for (const [how, ending] of [['the event loop ends', ''], ['process.exit()', 'process.exit(0);']] as const) {
    test(`when ${how}`, async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'rbd-exit-'));
      try {
        const marker = path.join(dir, 'released');
        const script = `require(process.argv[1]).releaseSlowly(500, process.argv[2]); ${ending}`;
        await promisify(execFile)(process.execPath, ['-e', script, faultsAddon, marker]);
        assert.equal(await readFile(marker, 'utf8'), 'released\n');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('GrowToFit stops at 256 Ki elements', () => {
  test('a call that says what it needs gets exactly that, up to the limit itself', async () => {
    assert.deepEqual(await faults.growToFit(16, 5, true), [16]);
    assert.deepEqual(await faults.growToFit(16, 1000, true), [16, 1000]);
    assert.deepEqual(await faults.growToFit(16, LIMIT, true), [16, LIMIT]);
    // A first size over the limit is cut down to it.
    assert.deepEqual(await faults.growToFit(4 * LIMIT, 10, true), [LIMIT]);
  });

  test('a call that only says "too small" is handed doubling sizes, the last one the limit itself', async () => {
    assert.deepEqual(await faults.growToFit(1000, LIMIT, false),
      [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, LIMIT]);
  });

  test('one element more is ERANGE naming the call and the limit, whether or not the call said how much', async () => {
    const told = await rejection(faults.growToFit(16, LIMIT + 1, true));
    assert.equal(told.code, 'ERANGE');
    assert.equal(told.errno, 34);
    assert.equal(told.op, 'fault_grow');
    assert.equal(told.message, `fault_grow pool/image: result needs ${LIMIT + 1} entries, more than the addon's limit of ${LIMIT} entries (ERANGE)`);
    const guessed = await rejection(faults.growToFit(1000, LIMIT + 1, false));
    assert.equal(guessed.code, 'ERANGE');
    assert.equal(guessed.message, `fault_grow pool/image: result needs more than the addon's limit of ${LIMIT} entries (ERANGE)`);
  });
});

// The child: loads the real addon, says "ready <pid>", then answers each line on stdin with the outcome of one call
// (a connect that fails at once, on its pool thread, for lack of a ceph.conf) as a line of JSON.
const CHILD = `
const native = require(process.argv[1]);
const lines = require('node:readline').createInterface({ input: process.stdin });
lines.on('line', () => {
  native.radosConnect({ user: 'admin', confPath: '/nonexistent/ceph.conf' }).then(
    () => console.log(JSON.stringify({ resolved: true })),
    (e) => console.log(JSON.stringify({ code: e.code, errno: e.errno, op: e.op, object: e.object, message: e.message })));
});
console.log('ready ' + process.pid);
`;

test('a call for which no pool thread can be started is rejected at once, and the next one runs', async (t) => {
  // RLIMIT_NPROC binds only non-root users: as root, the child runs as nobody. prlimit runs as the child's user too
  // (a user may lower and raise, up to the hard limit, the soft limits of its own processes).
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot ? { uid: 65534, gid: 65534 } : {};
  let node = process.execPath;
  let addon = path.join(repoRoot, 'build', 'Release', 'rbd_native.node');
  let scratch: string | undefined;
  if (asRoot) {
    // nobody may not reach root's files (the Node 24 our scripts fetch lives in root's cache): copies it can run.
    scratch = await mkdtemp(path.join(tmpdir(), 'nproc-'));
    await chmod(scratch, 0o755);
    [node, addon] = [path.join(scratch, 'node'), path.join(scratch, 'rbd_native.node')];
    await copyFile(process.execPath, node);
    await copyFile(path.join(repoRoot, 'build', 'Release', 'rbd_native.node'), addon);
    await Promise.all([chmod(node, 0o755), chmod(addon, 0o755)]);
  }
  t.after(() => (scratch === undefined ? undefined : rm(scratch, { recursive: true, force: true })));
  const child = spawn(node, ['-e', CHILD, addon], { ...ids, cwd: '/', stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const nextLine = async (): Promise<string> => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      const { value, done } = await lines.next();
      assert.ok(!done, 'the child ended (or was killed after 20 s of silence) before answering');
      return value as string;
    } finally {
      clearTimeout(timer);
    }
  };
  const prlimit = (...args: string[]) => promisify(execFile)('prlimit', ['--pid', String(child.pid), ...args], ids);
  try {
    assert.match(await nextLine(), /^ready \d+$/);
    const soft = (await prlimit('--nproc', '--raw', '--noheadings', '--output=SOFT')).stdout.trim();
    // The child already has more threads than this: no new one can start.
    await prlimit('--nproc=1:');
    child.stdin.write('call\n');
    const refused = JSON.parse(await nextLine()) as NativeError;
    assert.equal(refused.code, 'EAGAIN');
    assert.equal(refused.errno, 11);
    assert.equal(refused.op, 'rados_connect');
    assert.equal(refused.object, 'client.admin');
    assert.equal(refused.message, 'rados_connect client.admin: could not start a thread for the call (EAGAIN)');

    await prlimit(`--nproc=${soft}:`);
    child.stdin.write('call\n');
    const ran = JSON.parse(await nextLine()) as NativeError;
    assert.equal(ran.code, 'ENOENT', JSON.stringify(ran));
    assert.equal(ran.op, 'rados_connect');
  } finally {
    child.stdin.end();
    child.kill();
  }
});
