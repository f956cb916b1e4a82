// The CUDA side of the TypeScript library: whether it can run here, the devices, and device memory. It talks to
// libdfss through ffi/ only. Everything that waits for the GPU (copies to or from the host, synchronization) goes
// through koffi's async calls, so the event loop is never blocked by the GPU; calls that only enqueue work are made
// sync (src/cuda/backend.ts). Device memory comes from a cache of blocks (block-cache.ts).
import process from 'node:process';

import {
  DFSS_MEMCPY_DEVICE_TO_DEVICE,
  DFSS_MEMCPY_DEVICE_TO_HOST,
  DFSS_MEMCPY_HOST_TO_DEVICE,
  DFSS_SUCCESS,
  type DeviceInfo,
  type DfssLibrary,
  loadDfss,
} from '../../ffi/dfss.js';
import { DfssError, NoDeviceError } from '../errors.js';
import { type DeviceBuffer, type DeviceCacheStats, DeviceBlockCache } from './block-cache.js';

export type { DeviceBuffer, DeviceCacheStats } from './block-cache.js';

export interface CudaDevice {
  readonly index: number;
  readonly name: string;
  readonly computeCapability: string;
  readonly multiprocessors: number;
  readonly sparseTensorCores: boolean;
  readonly totalMemoryBytes: number;
}

export interface CudaStatus {
  readonly available: boolean;
  /** Why CUDA is (not) available, in one line. */
  readonly reason: string;
  readonly libraryPath: string | null;
  readonly libraryVersion: string | null;
  readonly devices: readonly CudaDevice[];
}

let cachedStatus: CudaStatus | undefined;

/** Probes libdfss and the devices once; never throws. */
export function cudaStatus(): CudaStatus {
  cachedStatus ??= probe();
  return cachedStatus;
}

function probe(): CudaStatus {
  let lib: DfssLibrary;
  try {
    lib = loadDfss();
  } catch (error) {
    return { available: false, reason: (error as Error).message, libraryPath: null, libraryVersion: null, devices: [] };
  }
  const v = lib.dfss_version();
  const libraryVersion = `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`;
  const count: [number] = [0];
  const status = lib.dfss_device_count(count);
  if (status !== DFSS_SUCCESS || count[0] === 0) {
    const detail = status === DFSS_SUCCESS ? 'no CUDA device found' : lib.dfss_last_error_message();
    return { available: false, reason: detail, libraryPath: lib.path, libraryVersion, devices: [] };
  }
  const devices: CudaDevice[] = [];
  for (let index = 0; index < count[0]; index++) {
    const info: Partial<DeviceInfo> = {};
    lib.check(lib.dfss_device_get_info(index, info), 'dfss_device_get_info');
    devices.push({
      index,
      name: info.name!,
      computeCapability: `${info.compute_major}.${info.compute_minor}`,
      multiprocessors: info.multiprocessor_count!,
      sparseTensorCores: info.sparse_tensor_cores === 1,
      totalMemoryBytes: Number(info.total_memory_bytes),
    });
  }
  const names = devices.map((d) => `${d.name} (sm_${d.computeCapability.replace('.', '')})`).join(', ');
  return { available: true, reason: `libdfss ${libraryVersion} found ${devices.length} device(s): ${names}`, libraryPath: lib.path, libraryVersion, devices };
}

/** libdfss, where CUDA can run; otherwise a NoDeviceError that says why. */
export function requireCuda(): DfssLibrary {
  const status = cudaStatus();
  if (!status.available) throw new NoDeviceError(`the CUDA backend cannot run here: ${status.reason}`);
  return loadDfss();
}

function toBigInt(address: unknown): bigint {
  if (typeof address === 'bigint') return address;
  if (typeof address === 'number') return BigInt(address);
  throw new DfssError('NATIVE', `dfss_malloc returned an address koffi could not express (${String(address)})`);
}

/** Device memory operations used by tensors. */
export interface DeviceMemory {
  /** Device memory of `bytes` bytes, from the cache of released blocks where one fits. */
  allocate(bytes: number): DeviceBuffer;
  upload(dst: DeviceBuffer, src: ArrayBufferView): Promise<void>;
  download(dst: ArrayBufferView, src: DeviceBuffer): Promise<void>;
  copyDeviceToDevice(dst: DeviceBuffer, src: DeviceBuffer, bytes: number): Promise<void>;
  /** Frees the cached blocks; returns their bytes. */
  releaseCached(): number;
  readonly stats: DeviceCacheStats;
}

let memory: DeviceMemory | undefined;
let poisonByte: number | null = null;

/**
 * Fills every device allocation made from now on with `byte` (null: stop), so that an output element a kernel
 * failed to write shows up in tests (0xff is NaN in every float dtype). Blocks reused from the cache are filled too.
 */
export function poisonDeviceAllocations(byte: number | null): void {
  poisonByte = byte;
}

export function getDeviceMemory(): DeviceMemory {
  memory ??= createDeviceMemory(requireCuda());
  return memory;
}

function createDeviceMemory(lib: DfssLibrary): DeviceMemory {
  const cache = new DeviceBlockCache({
    malloc(bytes) {
      const out: [bigint | null] = [null];
      lib.check(lib.dfss_malloc(out, bytes), `dfss_malloc(${bytes} bytes)`);
      return toBigInt(out[0]);
    },
    free(address) {
      // The status is dropped: a failed free cannot be acted on, and a GPU in error reports it on the next real
      // call.
      lib.dfss_free(address);
    },
  });
  // The driver would reclaim the memory with the process anyway; freeing it here keeps tools that track
  // allocations (compute-sanitizer's leak check) quiet.
  process.once('exit', () => cache.releaseCached());
  return {
    allocate(bytes) {
      const buffer = cache.acquire(Math.max(bytes, 1));
      if (poisonByte !== null) {
        const status = lib.dfss_memset(buffer.address, poisonByte, buffer.bytes, null);
        if (status !== DFSS_SUCCESS) {
          buffer.release();
          lib.check(status, 'dfss_memset');
        }
      }
      return buffer;
    },
    upload: (dst, src) =>
      dst.holdDuring(lib.async.dfss_memcpy(dst.address, src, src.byteLength, DFSS_MEMCPY_HOST_TO_DEVICE, null)),
    download: (dst, src) =>
      src.holdDuring(lib.async.dfss_memcpy(dst, src.address, dst.byteLength, DFSS_MEMCPY_DEVICE_TO_HOST, null)),
    copyDeviceToDevice: (dst, src, bytes) =>
      dst.holdDuring(src.holdDuring(lib.async.dfss_memcpy(dst.address, src.address, bytes, DFSS_MEMCPY_DEVICE_TO_DEVICE, null))),
    releaseCached: () => cache.releaseCached(),
    get stats() {
      return cache.stats;
    },
  };
}

/**
 * Gives the device memory that disposed tensors left for reuse back to the device, once the GPU has finished the
 * work queued so far; returns the bytes freed. (Disposing a tensor keeps its memory for the next tensor of that
 * size, so that allocations cost no cudaMalloc; this is the way to hand it to other programs or libraries.)
 * Resolves to 0 where CUDA is not available.
 */
export async function releaseCachedDeviceMemory(): Promise<number> {
  if (!cudaStatus().available || memory === undefined) return 0;
  await synchronize(); // cudaFree would wait for the device, blocking the event loop
  return memory.releaseCached();
}

/** Device memory held by live tensors and kept for reuse, in bytes; zeros where CUDA is not available or unused. */
export function deviceCacheStats(): DeviceCacheStats {
  return memory?.stats ?? { inUseBytes: 0, cachedBytes: 0, cachedBlocks: 0 };
}

/**
 * Waits until the GPU has finished all work queued so far, without blocking the event loop. Kernels run
 * asynchronously: an awaited attention() on device tensors may return before the GPU is done. Resolves at once
 * where CUDA is not available (nothing can be queued there).
 */
export async function synchronize(): Promise<void> {
  if (!cudaStatus().available) return;
  await loadDfss().async.dfss_device_synchronize();
}

/** Free and total memory of the current device now, in bytes. */
export function deviceMemoryUse(): { freeBytes: number; totalBytes: number } {
  const lib = requireCuda();
  const device: [number] = [0];
  lib.check(lib.dfss_device_get(device), 'dfss_device_get');
  const info: Partial<DeviceInfo> = {};
  lib.check(lib.dfss_device_get_info(device[0], info), 'dfss_device_get_info');
  return { freeBytes: Number(info.free_memory_bytes), totalBytes: Number(info.total_memory_bytes) };
}
