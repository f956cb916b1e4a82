// Device memory blocks kept for reuse. A cudaMalloc costs tens of microseconds and a cudaFree waits until the
// whole device is idle, so an attention call that allocated its output and a dispose() that freed it would cost
// more than the call's own work on small problems. Instead a released block goes back to this cache and the next
// request of its size class takes it.
//
// Reuse is safe because every operation of the TypeScript API runs on the legacy default stream (dfss.h: NULL),
// whichever thread enqueues it: work that uses a reused block is ordered after all work queued before the block
// was released, including the kernels that wrote it. A block released while a copy is still being issued on
// koffi's worker thread (holdDuring) returns only once that copy is queued, for the same reason.
//
// Memory goes back to the device only in releaseCached(): on request, when an allocation runs out of memory
// (then the allocation is retried once), and at process exit.
import { NativeError } from '../errors.js';

/** Device memory owned by a tensor's storage. */
export interface DeviceBuffer {
  readonly address: bigint;
  /** The bytes asked for (the block behind them may be larger). */
  readonly bytes: number;
  /** Gives the memory back for reuse, once no copy that holds it is still being issued; later calls do nothing. */
  release(): void;
  /** Keeps the memory from reuse until `work` (a copy issued on another thread) settles; returns `work`. */
  holdDuring<T>(work: Promise<T>): Promise<T>;
}

/** The device allocator behind the cache. */
export interface RawDeviceMemory {
  /** A new allocation of `bytes`; throws a NativeError (DFSS_ERROR_OUT_OF_MEMORY when the device is full). */
  malloc(bytes: number): bigint;
  /** Frees an allocation of malloc; never throws. */
  free(address: bigint): void;
}

export interface DeviceCacheStats {
  /** Bytes of the blocks behind live buffers. */
  readonly inUseBytes: number;
  /** Bytes of the blocks kept for reuse. */
  readonly cachedBytes: number;
  readonly cachedBlocks: number;
}

const SMALL_ROUNDING = 512;
const SMALL_LIMIT = 1 << 20;
const LARGE_ROUNDING = 2 << 20;

/**
 * The size class of a request: up to 1 MiB rounded up to 512 bytes, above it to 2 MiB (the granularity in which
 * the CUDA driver maps large allocations, so the rounding costs no device memory).
 */
export function blockBytes(bytes: number): number {
  const rounding = bytes <= SMALL_LIMIT ? SMALL_ROUNDING : LARGE_ROUNDING;
  return Math.max(1, Math.ceil(bytes / rounding)) * rounding;
}

export class DeviceBlockCache {
  readonly #raw: RawDeviceMemory;
  /** Free blocks by size class. */
  readonly #free = new Map<number, bigint[]>();
  #cachedBytes = 0;
  #cachedBlocks = 0;
  #inUseBytes = 0;

  constructor(raw: RawDeviceMemory) {
    this.#raw = raw;
  }

  /** A block of at least `bytes` bytes (>= 1): a cached one of its size class, else a new allocation. */
  acquire(bytes: number): DeviceBuffer {
    const size = blockBytes(bytes);
    const cached = this.#free.get(size)?.pop();
    let address: bigint;
    if (cached !== undefined) {
      address = cached;
      this.#cachedBytes -= size;
      this.#cachedBlocks--;
    } else {
      address = this.#allocate(size);
    }
    this.#inUseBytes += size;
    return new CachedBlock(address, bytes, size, this.#return);
  }

  /** Frees every cached block (blocks in use stay theirs and come back to the cache). Returns the bytes freed. */
  releaseCached(): number {
    const freed = this.#cachedBytes;
    for (const addresses of this.#free.values()) for (const address of addresses) this.#raw.free(address);
    this.#free.clear();
    this.#cachedBytes = 0;
    this.#cachedBlocks = 0;
    return freed;
  }

  get stats(): DeviceCacheStats {
    return { inUseBytes: this.#inUseBytes, cachedBytes: this.#cachedBytes, cachedBlocks: this.#cachedBlocks };
  }

  #allocate(size: number): bigint {
    try {
      return this.#raw.malloc(size);
    } catch (error) {
      const outOfMemory = error instanceof NativeError && error.status === 'DFSS_ERROR_OUT_OF_MEMORY';
      if (!outOfMemory || this.#cachedBlocks === 0) throw error;
      this.releaseCached();
      return this.#raw.malloc(size);
    }
  }

  readonly #return = (address: bigint, size: number): void => {
    this.#inUseBytes -= size;
    let list = this.#free.get(size);
    if (list === undefined) this.#free.set(size, (list = []));
    list.push(address);
    this.#cachedBytes += size;
    this.#cachedBlocks++;
  };
}

class CachedBlock implements DeviceBuffer {
  readonly address: bigint;
  readonly bytes: number;
  readonly #size: number;
  readonly #giveBack: (address: bigint, size: number) => void;
  #holds = 0;
  #released = false;

  constructor(address: bigint, bytes: number, size: number, giveBack: (address: bigint, size: number) => void) {
    this.address = address;
    this.bytes = bytes;
    this.#size = size;
    this.#giveBack = giveBack;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#holds === 0) this.#giveBack(this.address, this.#size);
  }

  holdDuring<T>(work: Promise<T>): Promise<T> {
    // Once released, the block may already serve another owner: a copy started now would touch its memory, and
    // the hold's end would cache the block a second time (two owners later). Callers check liveness first.
    if (this.#released) throw new Error('internal error: a copy was started on a released device block');
    this.#holds++;
    return work.finally(() => {
      this.#holds--;
      if (this.#released && this.#holds === 0) this.#giveBack(this.address, this.#size);
    });
  }
}
