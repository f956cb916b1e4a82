// The fused forward on Hopper's warpgroup tensor cores (sm_90a): the block of attention_fused_kernel.cuh (4 warps =
// one warpgroup, 64 query rows, key steps of 64; the same masks, N:M choice, online softmax and output) with steps 1
// and 5 issued by the warpgroup as wgmma (wgmma.cuh):
//   1. S = Q K^T: D / 16 wgmma m64n64k16 with Q and K from shared memory: no fragment loads, no mma per 16 x 8 block;
//   5. O += P V: P from registers (the fragments the warp-level kernel builds), V from shared memory: dense 4 wgmma
//      m64nDk16, sparse 2 wgmma.sp m64nDk32 (2:4; 1:2 as a stricter 2:4) with the same metadata register.
// The tiles are stored in the 128-byte swizzle layout wgmma reads (64-column panels of 1024-byte atoms); K's rows are
// permuted as in the warp-level kernel, so each thread's accumulators hold whole groups of 4 keys. The scores are the
// warp-level kernel's bits (checked by the GPU tests: the fused backward, on mma.sync, makes the forward's choices).
// Head dims 64 and 128 (whole panels).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "attention_fused_kernel.cuh"
#include "wgmma.cuh"

namespace dfss {
namespace fused {

// Where 16-byte unit `unit` of tile row p sits in a tile of the 128-byte swizzle layout: panel unit / 8 (64 columns,
// kTileKeys rows of 128 bytes), row p of it, unit (unit % 8) ^ (p % 8) of that row.
struct SwizzledTile {
  template <typename T>
  __device__ __forceinline__ T *operator()(T *tile, int p, int unit) const {
    return tile + (unit / 8) * (kTileKeys * 64) + p * 64 + (((unit % 8) ^ (p % 8)) * 8);
  }
};

// The warpgroup engine of attention_fused_block: each product is issued, committed and waited for at once, the other
// blocks of the SM filling the wait. (Issuing S(j + 1) and P(j) V(j) together and computing the softmax of S(j + 1)
// while P(j) V(j) runs, on double-buffered K and V tiles, measured no faster: bench/NOTES.md, v4.)
template <typename T, int D, int Pattern>
struct WarpgroupMmaEngine {
  static_assert(D == 64 || D == 128, "wgmma tiles are whole 64-column panels");
  static constexpr bool kSparse = Pattern != DFSS_PATTERN_DENSE;
  static constexpr int kTileElements = kTileKeys * D;
  static constexpr int kOutBlocks = D / 8;
  static constexpr uint32_t kPanelBytes = kTileKeys * 64 * sizeof(T);
  static constexpr uint32_t kAtomBytes = 8 * 64 * sizeof(T);  // 8 rows of 128 bytes
  using Layout = SwizzledTile;

  // The block's tiles start on the first kTileAlignment boundary (the swizzle atom) of its dynamic shared memory; the
  // launch asks for kTileAlignment bytes more than the tiles.
  __device__ __forceinline__ static T *tiles(unsigned char *shared_bytes) {
    const uintptr_t address = reinterpret_cast<uintptr_t>(shared_bytes);
    return reinterpret_cast<T *>((address + kTileAlignment - 1) & ~uintptr_t{kTileAlignment - 1});
  }

  // Two K tiles: K(step + 1) is copied during the whole of step `step` (4 tiles a block: 3 blocks a SM fit at
  // D = 128), where one tile left it only P.V's time to arrive (bench/NOTES.md v6).
  static constexpr int kKeyTiles = 2;
  // The step's pair maxima are kept from the row maxima to the N:M choice (no spills; attention_fused_block).
  static constexpr bool kKeepsPairMaxima = true;

  // cp.async writes through the generic proxy, wgmma reads through the async proxy: the fence orders the two.
  // Waits for this thread's copies but the newest `Pending` groups.
  template <int Pending = 0>
  __device__ __forceinline__ static void tiles_arrived() {
    cp_async_wait<Pending>();
    fence_proxy_async_shared();
    __syncthreads();
  }

  __device__ __forceinline__ void prepare(const T *, int, int) {}

  // A K-major operand (the Q or K tile) at k-step ks: columns 16 ks .. 16 ks + 15, 32 bytes into its panel's rows.
  __device__ __forceinline__ static SwizzledDescriptor k_major(const T *tile) {
    return SwizzledDescriptor(tile, 16, kAtomBytes);
  }
  __device__ __forceinline__ static constexpr uint32_t k_step_bytes(int ks) {
    return ((ks / 4) * (kTileKeys * 64) + (ks % 4) * 16) * sizeof(T);
  }

  // V's keys first_key .. as the N-major B operand of P.V: rows of D elements, panels kPanelBytes apart.
  __device__ __forceinline__ static SwizzledDescriptor values(const T *v_tile) {
    return SwizzledDescriptor(v_tile, kPanelBytes, kAtomBytes);
  }
  __device__ __forceinline__ static constexpr uint32_t key_bytes(int first_key) { return first_key * 64 * sizeof(T); }

  // 1. S = Q K^T.
  __device__ __forceinline__ void scores(float (&s)[kScoreBlocks][4], const T *q_tile, const T *k_tile, int) const {
    const SwizzledDescriptor q = k_major(q_tile), k = k_major(k_tile);
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      wgmma_m64n64k16_ss<T>(s, q.at(k_step_bytes(ks)), k.at(k_step_bytes(ks)), ks > 0);
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_accumulators(s);
  }

  // 5. O += P V.
  __device__ __forceinline__ static void accumulate_values(float (&o)[kOutBlocks][4],
                                                           const uint32_t (&a)[kSparse ? 2 : 4][4], uint32_t metadata,
                                                           const T *v_tile, int) {
    const SwizzledDescriptor v = values(v_tile);
    fence_accumulators(o);
    wgmma_fence();
    if constexpr (kSparse) {
      wgmma_sp_m64nNk32_rs<T, D, 0>(o, a[0], v.at(key_bytes(0)), metadata);
      wgmma_sp_m64nNk32_rs<T, D, 1>(o, a[1], v.at(key_bytes(32)), metadata);
    } else {
#pragma unroll
      for (int ks = 0; ks < 4; ++ks) wgmma_m64nNk16_rs<T, D>(o, a[ks], v.at(key_bytes(16 * ks)));
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_accumulators(o);
  }
};

// Blocks per SM that the register budget aims at: a block waits on each of its products, and the other blocks'
// warpgroups keep the tensor cores busy meanwhile. Measured on the H200 (bench/NOTES.md, v4): 4 at D = 64 (a few
// bytes of spills in the sparse kernels), 3 at D = 128 (52-148 bytes of spills, still faster than 2).
constexpr int fused_wgmma_min_blocks(int head_dim) { return head_dim == 64 ? 4 : 3; }

template <typename T, int D, int Pattern>
__global__ void __launch_bounds__(kThreads, fused_wgmma_min_blocks(D))
    attention_fused_wgmma_kernel(FusedAttentionParams params) {
  // wgmma exists on sm_90a only; the dispatch launches this kernel only where that image runs.
#if DFSS_WGMMA_AVAILABLE
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  run_fused_blocks<T, D, Pattern, WarpgroupMmaEngine<T, D, Pattern>>(params, shared_bytes);
#else
  (void)params;
  __trap();
#endif
}

template <typename T, int D>
FusedKernels fused_attention_wgmma_kernels() {
  return FusedKernels{attention_fused_wgmma_kernel<T, D, DFSS_PATTERN_DENSE>,
                      attention_fused_wgmma_kernel<T, D, DFSS_PATTERN_1_2>,
                      attention_fused_wgmma_kernel<T, D, DFSS_PATTERN_2_4>};
}

}  // namespace fused
}  // namespace dfss
