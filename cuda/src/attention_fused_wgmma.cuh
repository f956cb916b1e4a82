// The fused forward on Hopper's warpgroup tensor cores (sm_90a): the block of attention_fused_kernel.cuh (4 warps =
// one warpgroup, 64 query rows, key steps of 64; the same masks, N:M choice, online softmax and output) with steps 1
// and 5 issued by the warpgroup as wgmma (wgmma.cuh):
//   1. S = Q K^T: D / 16 wgmma m64n64k16 with Q and K from shared memory: no fragment loads, no mma per 16 x 8 block;
//   5. O += P V: P from registers (the fragments the warp-level kernel builds), V from shared memory: dense 4 wgmma
//      m64nDk16, sparse 2 wgmma.sp m64nDk32 (2:4; 1:2 as a stricter 2:4) with the same metadata register.
// The tiles are stored in the 128-byte swizzle layout wgmma reads (64-column panels of 1024-byte atoms); K's rows are
// permuted as in the warp-level kernel, so each thread's accumulators hold whole groups of 4 keys. The scores are the
// warp-level kernel's bits (checked by the GPU tests: the fused backward, on mma.sync, makes the forward's choices).
// The key steps are pipelined: step j's P.V runs while step j + 1's softmax does (pipelined_key_steps). Head dims 64
// and 128 (whole panels).
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
  __device__ __forceinline__ static constexpr int offset(int p, int unit) {
    return (unit / 8) * (kTileKeys * 64) + p * 64 + (((unit % 8) ^ (p % 8)) * 8);
  }
  template <typename T>
  __device__ __forceinline__ T *operator()(T *tile, int p, int unit) const {
    return tile + offset(p, unit);
  }
};

// The warpgroup engine of attention_fused_block: its key steps run pipelined (pipelined_key_steps: P(j) V(j) on the
// tensor cores while the softmax of S(j + 1) runs; +1-6 % over issuing and waiting for each product at once, with
// the same 3-4 blocks a SM: bench/NOTES.md, v7), the other blocks of the SM filling the waits that remain.
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

  // The step's pair maxima are kept from the row maxima to the N:M choice (recomputing them, measured in v7, was
  // 1-5 % slower for 2:4 despite fewer spills).
  static constexpr bool kKeepsPairMaxima = true;
  // The key steps in pipelined_key_steps' order (else attention_fused_block's own).
  static constexpr bool kPipelined = true;

  // cp.async writes through the generic proxy, wgmma reads through the async proxy: the fence orders the two.
  // Waits for this thread's copies but the newest `Pending` groups.
  template <int Pending = 0>
  __device__ __forceinline__ static void tiles_arrived() {
    cp_async_wait<Pending>();
    fence_proxy_async_shared();
    __syncthreads();
  }

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

  // 1. S = Q K^T, issued and committed as one wgmma group (not waited for).
  __device__ __forceinline__ static void issue_scores(float (&s)[kScoreBlocks][4], const T *q_tile, const T *k_tile) {
    const SwizzledDescriptor q = k_major(q_tile), k = k_major(k_tile);
    wgmma_fence();
    wgmma_m64n64k16_ss<T, false>(s, q.at(k_step_bytes(0)), k.at(k_step_bytes(0)));
#pragma unroll
    for (int ks = 1; ks < D / 16; ++ks) wgmma_m64n64k16_ss<T, true>(s, q.at(k_step_bytes(ks)), k.at(k_step_bytes(ks)));
    wgmma_commit();
  }

  // 5. O += P V, issued and committed as one wgmma group (not waited for).
  __device__ __forceinline__ static void issue_values(float (&o)[kOutBlocks][4], const uint32_t (&a)[kSparse ? 2 : 4][4],
                                                      uint32_t metadata, const T *v_tile) {
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
  }

  // The key steps of attention_fused_block with each step's P.V on the tensor cores while the next step's softmax
  // runs (the overlap inside a warpgroup of FlashAttention-3): step j issues S(j + 1) = Q K(j + 1)^T and O += P(j) V(j)
  // as two wgmma groups, waits for the first only, and runs the softmax and N:M choice of S(j + 1) (softmax_step)
  // while P(j) V(j) runs; O is rescaled after it (O, P(j) V(j) included, times the factor of step j + 1's maxima, as
  // the in-order steps do at step j + 1: the same bits). `tiles` brings the tiles and says when they are free again
  // (CopiedTiles below: the block's own copies; the warp-specialized kernel's: a producer warpgroup's).
  template <typename Tiles>
  __device__ __forceinline__ static void pipelined_key_steps(Tiles &tiles, int64_t key_steps, float scale,
                                                             const StepRows<kOutBlocks> &rows) {
    // Step 0's scores and softmax.
    tiles.first_scores_ready();
    ScoredStep scored;
    StepOperand<Pattern> p;
    uint32_t metadata;
    float correction[2];
    issue_scores(scored.s, tiles.q_tile(), tiles.k_tile(0));
    wgmma_wait<0>();
    fence_accumulators(scored.s);
    tiles.scores_read(0);
    // O is still zero: nothing to rescale.
    softmax_step<T, Pattern, kKeepsPairMaxima, false>(rows, scored, 0, scale, correction, p, metadata);
    pack_operand<T>(p);

    // Every step but the last: S(step + 1) and P(step) V(step) on the tensor cores, then the softmax of S(step + 1).
    for (int64_t step = 0; step + 1 < key_steps; ++step) {
      tiles.step_ready(step);
      issue_scores(scored.s, tiles.q_tile(), tiles.k_tile(step + 1));
      issue_values(rows.o, p.a, metadata, tiles.v_tile(step));
      wgmma_wait<1>();  // S(step + 1); P(step) V(step) may still run
      fence_accumulators(scored.s);
      tiles.scores_read(step + 1);
      uint32_t next_metadata;
      const bool raised = softmax_step<T, Pattern, kKeepsPairMaxima, false>(rows, scored, (step + 1) * kTileKeys,
                                                                          scale, correction, p, next_metadata);
      wgmma_wait<0>();
      fence_accumulators(rows.o);
      tiles.values_read(step);
      if (raised) rescale_output(rows.o, correction);
      // P(step + 1) becomes an operand only now: registers that a wgmma reads, written by other instructions while
      // a wgmma group is in flight, make ptxas serialize the wgmma (warning C7513). The move keeps the metadata's
      // last write here too.
      pack_operand<T>(p);
      asm volatile("mov.b32 %0, %1;" : "=r"(metadata) : "r"(next_metadata));
    }
    // The last step's P.V.
    tiles.last_values_ready(key_steps - 1);
    issue_values(rows.o, p.a, metadata, tiles.v_tile(key_steps - 1));
    wgmma_wait<0>();
    fence_accumulators(rows.o);
    tiles.values_read(key_steps - 1);
  }

  // The tiles of pipelined_key_steps copied by the block's own threads (cp.async): Q, one K tile (K(j + 2) is copied
  // once every warp's S(j + 1) has read K(j + 1), a barrier), two V tiles (V(j + 1) is copied during the whole of
  // step j).
  struct CopiedTiles {
    const AttentionShape &shape;
    const QueryTilePlace &place;
    const T *q, *k, *v;
    T *smem;

    __device__ __forceinline__ const T *q_tile() const { return smem; }
    __device__ __forceinline__ const T *k_tile(int64_t) const { return smem + kTileElements; }
    __device__ __forceinline__ T *v_tile(int64_t step) const { return smem + (2 + step % 2) * kTileElements; }
    __device__ __forceinline__ void load_keys(int64_t step) const {
      load_tile<T, D>(smem + kTileElements, k, shape.k.row, step * kTileKeys, place.valid_k, KeyRow<Pattern>{},
                      Layout{});
    }
    __device__ __forceinline__ void load_values(int64_t step) const {
      load_tile<T, D>(v_tile(step), v, shape.v.row, step * kTileKeys, place.valid_k, NaturalRow{}, Layout{});
    }

    // Q and K(0) are in shared memory (V(0) on its way).
    __device__ __forceinline__ void first_scores_ready() const {
      load_tile<T, D>(smem, q, shape.q.row, place.first_row, place.valid_q, NaturalRow{}, Layout{});
      load_keys(0);
      cp_async_commit();
      load_values(0);
      cp_async_commit();
      tiles_arrived<1>();
    }
    // Every warp's S(step) has been computed: K(step + 1) goes into K's tile.
    __device__ __forceinline__ void scores_read(int64_t step) const {
      __syncthreads();
      if (step + 1 < place.key_steps) load_keys(step + 1);
      cp_async_commit();
    }
    // V(step) and K(step + 1) have arrived, and every warp is done with step - 1 (V(step - 1)'s tile is free).
    __device__ __forceinline__ void step_ready(int64_t step) const {
      tiles_arrived();
      load_values(step + 1);
      cp_async_commit();
    }
    __device__ __forceinline__ void last_values_ready(int64_t) const { tiles_arrived(); }
    __device__ __forceinline__ void values_read(int64_t) const {}
  };

  __device__ __forceinline__ static void pipelined_key_steps(const FusedAttentionParams &params,
                                                             const QueryTilePlace &place, const T *q, const T *k,
                                                             const T *v, const StepRows<kOutBlocks> &rows, T *smem) {
    CopiedTiles tiles{params.shape, place, q, k, v, smem};
    pipelined_key_steps(tiles, place.key_steps, params.shape.scale, rows);
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
