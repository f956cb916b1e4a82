// The cache of device blocks behind CUDA tensors (src/cuda/block-cache.ts): size classes, reuse only of released
// blocks, holds of copies in flight, giving memory back, and the retry when the device is full. The cache never
// touches the memory, so it runs here over a model of a device: addresses handed out from a counter, with a
// capacity, and a log of every malloc and free.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { DeviceBlockCache, type RawDeviceMemory, blockBytes } from '../src/cuda/block-cache.js';
import { NativeError } from '../src/errors.js';

const MiB = 1 << 20;

class ModelDevice implements RawDeviceMemory {
  readonly mallocs: number[] = [];
  readonly frees: bigint[] = [];
  readonly live = new Map<bigint, number>();
  #next = 0x7f0000000000n;
  #used = 0;
  failure: NativeError | null = null;

  constructor(readonly capacity = Number.POSITIVE_INFINITY) {}

  malloc(bytes: number): bigint {
    if (this.failure) throw this.failure;
    if (this.#used + bytes > this.capacity) throw new NativeError('DFSS_ERROR_OUT_OF_MEMORY', `dfss_malloc(${bytes} bytes): out of memory`);
    this.mallocs.push(bytes);
    const address = this.#next;
    this.#next += BigInt(bytes);
    this.#used += bytes;
    this.live.set(address, bytes);
    return address;
  }

  free(address: bigint): void {
    const bytes = this.live.get(address);
    assert.ok(bytes !== undefined, `free of ${address.toString(16)}, which is not allocated`);
    this.live.delete(address);
    this.#used -= bytes;
    this.frees.push(address);
  }
}

describe('blockBytes: the size class of a request', () => {
  test('up to 1 MiB in steps of 512 bytes, above it in steps of 2 MiB', () => {
    const cases: [number, number][] = [
      [1, 512],
      [512, 512],
      [513, 1024],
      [16384, 16384],
      [MiB - 1, MiB],
      [MiB, MiB],
      [MiB + 1, 2 * MiB],
      [3 * MiB, 4 * MiB],
      [4 * MiB, 4 * MiB],
    ];
    for (const [bytes, size] of cases) assert.equal(blockBytes(bytes), size, `${bytes} bytes`);
  });
});

describe('DeviceBlockCache', () => {
  test('a released block serves the next request of its size class; a live one is never handed out twice', () => {
    const device = new ModelDevice();
    const cache = new DeviceBlockCache(device);
    const a = cache.acquire(16384);
    const b = cache.acquire(16384);
    assert.notEqual(a.address, b.address);
    assert.equal(a.bytes, 16384, 'the buffer reports the bytes asked for');
    a.release();
    const c = cache.acquire(16000); // the same class (16384 bytes)
    assert.equal(c.address, a.address);
    const d = cache.acquire(32768); // another class: new memory
    assert.ok(d.address !== a.address && d.address !== b.address);
    assert.deepEqual(device.mallocs, [16384, 16384, 32768]);
    assert.deepEqual(device.frees, [], 'nothing is freed on release');
  });

  test('a second release does nothing: the block is cached once', () => {
    const cache = new DeviceBlockCache(new ModelDevice());
    const a = cache.acquire(1000);
    a.release();
    a.release();
    assert.deepEqual(cache.stats, { inUseBytes: 0, cachedBytes: 1024, cachedBlocks: 1 });
    const x = cache.acquire(1000);
    const y = cache.acquire(1000);
    assert.equal(x.address, a.address);
    assert.notEqual(y.address, a.address);
  });

  test('a block released while a copy holds it is reused only once the copy settles, resolved or rejected', async () => {
    const device = new ModelDevice();
    const cache = new DeviceBlockCache(device);
    for (const outcome of ['resolves', 'rejects'] as const) {
      const a = cache.acquire(4096);
      let settle!: () => void;
      const copy = new Promise<void>((resolve, reject) => {
        settle = outcome === 'resolves' ? resolve : () => reject(new Error('copy failed'));
      });
      const held = a.holdDuring(copy);
      a.release();
      const during = cache.acquire(4096);
      assert.notEqual(during.address, a.address, `reused while the copy was in flight (${outcome})`);
      settle();
      if (outcome === 'resolves') await held;
      else await assert.rejects(held, /copy failed/, 'the hold passes the copy\'s failure on');
      const after = cache.acquire(4096);
      assert.equal(after.address, a.address, `not reused after the copy settled (${outcome})`);
      during.release();
      after.release();
    }
  });

  test('a hold asked for after the release is refused, and the block stays cached once', async () => {
    const cache = new DeviceBlockCache(new ModelDevice());
    const a = cache.acquire(4096);
    a.release();
    assert.throws(() => a.holdDuring(Promise.resolve()), /released device block/);
    await Promise.resolve();
    assert.deepEqual(cache.stats, { inUseBytes: 0, cachedBytes: 4096, cachedBlocks: 1 });
    const x = cache.acquire(4096);
    const y = cache.acquire(4096);
    assert.equal(x.address, a.address);
    assert.notEqual(y.address, a.address, 'one released block was handed out twice');
  });

  test('a hold that settles before the release leaves the release immediate', async () => {
    const cache = new DeviceBlockCache(new ModelDevice());
    const a = cache.acquire(4096);
    await a.holdDuring(Promise.resolve());
    a.release();
    assert.equal(cache.acquire(4096).address, a.address);
  });

  test('releaseCached frees exactly the cached blocks; blocks in use come back to the cache later', () => {
    const device = new ModelDevice();
    const cache = new DeviceBlockCache(device);
    const [a, b, c] = [cache.acquire(512), cache.acquire(3 * MiB), cache.acquire(512)];
    a.release();
    b.release();
    assert.deepEqual(cache.stats, { inUseBytes: 512, cachedBytes: 512 + 4 * MiB, cachedBlocks: 2 });
    assert.equal(cache.releaseCached(), 512 + 4 * MiB);
    assert.deepEqual(new Set(device.frees), new Set([a.address, b.address]));
    assert.deepEqual([...device.live.keys()], [c.address]);
    assert.deepEqual(cache.stats, { inUseBytes: 512, cachedBytes: 0, cachedBlocks: 0 });
    c.release();
    assert.equal(device.live.has(c.address), true, 'a block released after releaseCached is cached, not freed');
    assert.equal(cache.releaseCached(), 512);
    assert.equal(device.live.size, 0);
  });

  test('when the device is full, the cached blocks are freed and the allocation is tried once more', () => {
    const device = new ModelDevice(8 * MiB);
    const cache = new DeviceBlockCache(device);
    const held = cache.acquire(4 * MiB);
    cache.acquire(2 * MiB).release(); // cached, another class than the next request
    const big = cache.acquire(4 * MiB - 1); // the class of `held`, none cached: 4 + 2 + 4 MiB > 8 MiB
    assert.equal(device.mallocs.length, 3);
    assert.equal(cache.stats.cachedBlocks, 0, 'the cached block was freed to make room');
    assert.deepEqual(cache.stats, { inUseBytes: 8 * MiB, cachedBytes: 0, cachedBlocks: 0 });
    // With nothing cached to give back, running out of memory is the device's error.
    assert.throws(
      () => cache.acquire(512),
      (e: unknown) => e instanceof NativeError && e.status === 'DFSS_ERROR_OUT_OF_MEMORY' && /512 bytes/.test(e.message),
    );
    held.release();
    big.release();
  });

  test('other allocation failures are passed on without emptying the cache', () => {
    const device = new ModelDevice();
    const cache = new DeviceBlockCache(device);
    cache.acquire(512).release();
    device.failure = new NativeError('DFSS_ERROR_CUDA', 'dfss_malloc: an illegal memory access was encountered');
    assert.throws(() => cache.acquire(2048), (e: unknown) => e === device.failure);
    assert.equal(cache.stats.cachedBlocks, 1);
    assert.deepEqual(device.frees, []);
  });
});
