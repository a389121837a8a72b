// The addon grows the buffer of a librbd call that answers ERANGE up to 256 KiB and no further (addon/grow.h):
// real image metadata on both sides of that bound.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { InvalidArgument, type Pool } from '../../src/ceph/index.js';
import { native } from '../../src/ceph/native.js';
import type { ClusterHandle, ImageHandle, IoCtxHandle, NativeError } from '../../src/ceph/rbd-native.js';
import { openTestPool, uniqueName, type OpenTestPool } from '../support/ceph.js';

// kGrowLimit: the most the addon hands librbd, in bytes for strings.
const LIMIT = 256 * 1024;
const MiB = 1024 * 1024;

let fixture: OpenTestPool;
let pool: Pool;
let cluster: ClusterHandle;
let ioctx: IoCtxHandle;

before(async () => {
  fixture = await openTestPool('limits');
  pool = fixture.pool;
  cluster = await native.radosConnect({ user: 'admin', monHost: fixture.ceph.monHost, key: fixture.ceph.adminKey });
  ioctx = await native.radosIoctxCreate(cluster, pool.name);
});

after(async () => {
  if (ioctx) await native.radosIoctxDestroy(ioctx);
  if (cluster) await native.radosShutdown(cluster);
  await fixture?.close();
});

async function rejection(promise: Promise<unknown>): Promise<NativeError> {
  return promise.then(
    (value) => assert.fail(`expected a rejection, got ${JSON.stringify(value)?.slice(0, 80)}`),
    (err: unknown) => err as NativeError,
  );
}

/** Runs fn on a fresh image of the test pool, straight through the addon; closes and removes it after. */
async function withRawImage(prefix: string, fn: (image: ImageHandle, name: string) => Promise<void>): Promise<void> {
  const name = uniqueName(prefix);
  await native.rbdCreate4(ioctx, name, MiB);
  const image = await native.rbdOpen(ioctx, name);
  try {
    await fn(image, name);
  } finally {
    await native.rbdClose(image);
    await native.rbdRemove(ioctx, name);
  }
}

describe('results larger than the addon accepts', () => {
  test('a metadata value that needs exactly the limit is read; one byte more is ERANGE naming the call', async () => {
    await withRawImage('meta-limit', async (image, name) => {
      // librbd hands back the value and its NUL: LIMIT - 1 characters need LIMIT bytes.
      const fits = 'a'.repeat(LIMIT - 1);
      await native.rbdMetadataSet(image, 'fits', fits);
      assert.equal(await native.rbdMetadataGet(image, 'fits'), fits);
      assert.deepEqual(await native.rbdMetadataList(image), { fits });

      await native.rbdMetadataSet(image, 'over', 'b'.repeat(LIMIT));
      const err = await rejection(native.rbdMetadataGet(image, 'over'));
      assert.ok(err instanceof Error);
      assert.equal(err.code, 'ERANGE');
      assert.equal(err.errno, 34);
      assert.equal(err.op, 'rbd_metadata_get');
      assert.equal(err.object, `${pool.name}/${name}`);
      assert.equal(err.message,
        `rbd_metadata_get ${pool.name}/${name}: result needs ${LIMIT + 1} bytes, more than the addon's limit of ${LIMIT} bytes (ERANGE)`);
      // The message names the call and the image, never the key or the value.
      assert.doesNotMatch(err.message, /over|bbbb/);

      // Listing holds every value, with its NUL: LIMIT + (LIMIT + 1).
      const listed = await rejection(native.rbdMetadataList(image));
      assert.equal(listed.code, 'ERANGE');
      assert.equal(listed.op, 'rbd_metadata_list');
      assert.match(listed.message, new RegExp(`: result needs ${2 * LIMIT + 1} bytes, more than the addon's limit of ${LIMIT} bytes \\(ERANGE\\)$`));

      // Nothing was left behind: the same image handle goes on working.
      await native.rbdMetadataRemove(image, 'over');
      assert.deepEqual(Object.keys(await native.rbdMetadataList(image)), ['fits']);
    });
  });

  test('through the Ceph layer the rejection keeps code ERANGE and the native message as its cause', async () => {
    const name = uniqueName('meta-limit-ts');
    await pool.createImage(name, MiB);
    try {
      await pool.withImage(name, async (image) => {
        await image.setMetadata('over', 'c'.repeat(LIMIT));
        const err = await image.getMetadata('over').then(() => undefined, (e: unknown) => e);
        assert.ok(err instanceof InvalidArgument, String(err));
        assert.equal(err.code, 'ERANGE');
        assert.equal(err.op, 'rbd_metadata_get');
        assert.match(String((err.cause as Error).message), /more than the addon's limit of 262144 bytes/);
      });
    } finally {
      await pool.removeImage(name);
    }
  });

  test('many metadata entries under the limit are listed whole, the buffers grown to fit', async () => {
    await withRawImage('meta-many', async (image) => {
      const expected: Record<string, string> = {};
      // 200 values of 1000 bytes: far past the first buffer (4 KiB), well under the limit.
      for (let i = 0; i < 200; i++) {
        const key = `key-${String(i).padStart(3, '0')}`;
        expected[key] = String(i % 10).repeat(1000);
        await native.rbdMetadataSet(image, key, expected[key]);
      }
      assert.deepEqual(await native.rbdMetadataList(image), expected);
    });
  });
});
