// Thin wrappers of Hopper's asynchronous copy machinery (sm_90a): shared-memory barriers (mbarrier) with transaction
// counts, tensor-map copies (TMA, cp.async.bulk.tensor) from global into shared memory that complete on such a
// barrier, and setmaxnreg, which moves registers between the warpgroups of a block. The warp-specialized Hopper
// forward (attention_fused_warp_specialized.cuh) is built on them. Outside sm_90a they trap or do nothing: the
// kernels that use them are compiled out there.
#pragma once

#include <cstdint>

#include "mma.cuh"
#include "wgmma.cuh"

namespace dfss {

// A barrier of `count` arrivals (plus, per phase, the bytes announced by arrive_expect_bytes), in shared memory.
__device__ __forceinline__ void mbarrier_init(uint64_t *barrier, uint32_t count) {
#if DFSS_WGMMA_AVAILABLE
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(shared_address(barrier)), "r"(count) : "memory");
#else
  (void)barrier, (void)count;
#endif
}

// Makes the barriers this thread initialized visible to the other threads (and to the copy engine) after a
// __syncthreads.
__device__ __forceinline__ void mbarrier_init_fence() {
#if DFSS_WGMMA_AVAILABLE
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}

// One arrival on the barrier's current phase.
__device__ __forceinline__ void mbarrier_arrive(uint64_t *barrier) {
#if DFSS_WGMMA_AVAILABLE
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(shared_address(barrier)) : "memory");
#else
  (void)barrier;
#endif
}

// One arrival, and `bytes` more that copies must bring before the phase completes.
__device__ __forceinline__ void mbarrier_arrive_expect_bytes(uint64_t *barrier, uint32_t bytes) {
#if DFSS_WGMMA_AVAILABLE
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(shared_address(barrier)), "r"(bytes)
               : "memory");
#else
  (void)barrier, (void)bytes;
#endif
}

// Waits until the phase of parity `parity` (0 or 1) has completed. A barrier starts in phase 0, so waiting on
// parity 1 before any phase completed returns at once (the "previous" phase counts as done).
__device__ __forceinline__ void mbarrier_wait(uint64_t *barrier, uint32_t parity) {
#if DFSS_WGMMA_AVAILABLE
  const uint32_t address = shared_address(barrier);
  uint32_t done;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(address), "r"(parity)
        : "memory");
  } while (done == 0);
#else
  (void)barrier, (void)parity;
#endif
}

// Copies the box of the tensor map `map` (a __grid_constant__ kernel parameter) at coordinates (innermost first)
// into shared memory at `destination`; its bytes complete on `barrier`.
__device__ __forceinline__ void tma_load_4d(void *destination, const void *map, uint64_t *barrier, int c0, int c1,
                                            int c2, int c3) {
#if DFSS_WGMMA_AVAILABLE
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], "
      "[%6];\n" ::"r"(shared_address(destination)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(shared_address(barrier))
      : "memory");
#else
  (void)destination, (void)map, (void)barrier, (void)c0, (void)c1, (void)c2, (void)c3;
  __trap();
#endif
}

__device__ __forceinline__ void tma_load_5d(void *destination, const void *map, uint64_t *barrier, int c0, int c1,
                                            int c2, int c3, int c4) {
#if DFSS_WGMMA_AVAILABLE
  asm volatile(
      "cp.async.bulk.tensor.5d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5, "
      "%6}], [%7];\n" ::"r"(shared_address(destination)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4), "r"(shared_address(barrier))
      : "memory");
#else
  (void)destination, (void)map, (void)barrier, (void)c0, (void)c1, (void)c2, (void)c3, (void)c4;
  __trap();
#endif
}

// Barrier `id` (1 .. 15; 0 is __syncthreads') of `threads` threads, a multiple of 32: the consumer warpgroups of a
// warp-specialized block meet on it without the producer.
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// The calling warpgroup's registers per thread become `Registers` (a multiple of 8, 24 .. 256): the producer
// warpgroup of a warp-specialized block gives up registers it does not need, the consumers take them.
template <int Registers>
__device__ __forceinline__ void release_registers() {
#if DFSS_WGMMA_AVAILABLE
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(Registers));
#endif
}

template <int Registers>
__device__ __forceinline__ void claim_registers() {
#if DFSS_WGMMA_AVAILABLE
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(Registers));
#endif
}

}  // namespace dfss
