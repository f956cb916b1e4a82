// The dq kernel of the fused backward on Hopper's warpgroup tensor cores (sm_90a): backward_dq_block's work item
// (attention_backward_fused_kernel.cuh: one warpgroup, 64 query rows, key steps of 64; the same scores, N:M choice, dS
// and D_i) with its three products issued as the Hopper forward issues its two (WarpgroupMmaEngine):
//   S = Q K^T and dP = dO V^T as the forward's S (issue_scores: Q / dO and K / V from shared memory, the rows of K
//   and V permuted as the forward's K, so that each thread holds whole groups of 4 keys and dP lines up with S);
//   dQ += dS K as the forward's P V (issue_values: dS from registers in P's layout, K in natural key order as the
//   forward's V; the sparse patterns' wgmma.sp on the step's metadata, since dS is pruned along the reduction).
// The scores are the forward's bits, so the choice is the forward's (the GPU tests check the gradients of a GPU
// forward's choices). Tiles, in the 128-byte swizzle layout: Q, dO, V, and three K tiles: sparse patterns read S's K
// (permuted) from one and dS K's (natural order) from the other two by step parity; dense, both products read K from
// tile step % 2. The next step's K and V are copied while a step's choice, dS and dS K run. Head dims 64 and 128, dout
// rows on 16-byte boundaries (cp.async copies dO).
#pragma once

#include "attention_backward_fused_kernel.cuh"
#include "attention_fused_wgmma.cuh"

namespace dfss {
namespace fused {

template <typename T, int D, int Pattern>
__device__ __forceinline__ void backward_dq_wgmma_block(const FusedBackwardParams &params, int64_t work, T *smem) {
  using Engine = WarpgroupMmaEngine<T, D, Pattern>;
  using Layout = typename Engine::Layout;
  constexpr bool kSparse = Pattern != DFSS_PATTERN_DENSE;
  constexpr int kTileElements = Engine::kTileElements;
  constexpr int kOutBlocks = D / 8;

  const AttentionShape &shape = params.shape;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int quad = lane % 4;
  const QueryTilePlace place =
      place_query_tile(shape, params.seqlens_q, params.seqlens_k, params.query_tiles, work, warp, lane / 4);
  const DqTensors<T> tensors = dq_tensors_of<T>(params, place);
  const BackwardRows at = dq_rows_of<T, D>(params, place, tensors.dout, tensors.out, warp, lane);
  const int64_t key_steps = place.key_steps;

  float dq[kOutBlocks][4];
#pragma unroll
  for (int n = 0; n < kOutBlocks; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.0f;

  if (key_steps > 0) {
    T *const q_tile = smem;
    T *const do_tile = smem + kTileElements;
    T *const v_tile = smem + 2 * kTileElements;
    const auto score_keys = [&](int64_t step) { return smem + (kSparse ? 3 : 3 + step % 2) * kTileElements; };
    const auto product_keys = [&](int64_t step) { return smem + ((kSparse ? 4 : 3) + step % 2) * kTileElements; };
    const auto load_step = [&](int64_t step) {
      const int64_t key = step * kTileKeys;
      load_tile<T, D>(score_keys(step), tensors.k, shape.k.row, key, shape.seq_k, KeyRow<Pattern>{}, Layout{});
      load_tile<T, D>(v_tile, tensors.v, shape.v.row, key, shape.seq_k, KeyRow<Pattern>{}, Layout{});
      if constexpr (kSparse) {
        load_tile<T, D>(product_keys(step), tensors.k, shape.k.row, key, shape.seq_k, NaturalRow{}, Layout{});
      }
    };
    load_tile<T, D>(q_tile, tensors.q, shape.q.row, place.first_row, shape.seq_q, NaturalRow{}, Layout{});
    load_tile<T, D>(do_tile, tensors.dout, params.strides.dout.row, place.first_row, shape.seq_q, NaturalRow{},
                    Layout{});
    load_step(0);
    cp_async_commit();

    const int64_t warp_key_end = warp_key_end_of(at);
    const int lane_key = key_of_score<Pattern>(0, 0, quad);
    for (int64_t step = 0; step < key_steps; ++step) {
      const int64_t step_key = step * kTileKeys;
      // This step's tiles are in shared memory for every warp, and every warp is done with step - 1's dS K.
      Engine::tiles_arrived();

      ScoredStep scored;
      float dp[kScoreBlocks][4];
      Engine::issue_scores(scored.s, q_tile, score_keys(step));
      Engine::issue_scores(dp, do_tile, v_tile);
      wgmma_wait<0>();
      fence_accumulators(scored.s);
      fence_accumulators(dp);

      // Every warp's S and dP have read K and V: the next step's come while this one's dS and dS K run.
      __syncthreads();
      if (step + 1 < key_steps) load_step(step + 1);
      cp_async_commit();

      choose_kept_scores<Pattern>(scored, shape.scale, step_key + kTileKeys > warp_key_end, at.key_end, step_key,
                                  lane_key, lane);
      uint32_t a[kSparse ? 2 : 4][4];
#pragma unroll
      for (int u = 0; u < 4; ++u) ds_operand_block<T, Pattern>(a, scored, dp[2 * u], dp[2 * u + 1], u, at);

      Engine::issue_values(dq, a, scored.metadata, product_keys(step));
      wgmma_wait<0>();
      fence_accumulators(dq);
    }
    cp_async_wait<0>();  // nothing stays in flight into the next work item's tiles
  }
  store_dq<T, D>(params, place.batch, place.head_q, at, dq, quad);
}

// Blocks a SM: 2 at D = 128 (shared memory: 97 KiB each); 4 at D = 64 (128 registers, 48 bytes of spills; 1-2 %
// faster than 3 at 156 registers, measured on the H200: bench/NOTES.md v9).
constexpr int backward_dq_wgmma_min_blocks(int head_dim) { return head_dim == 64 ? 4 : 2; }

template <typename T, int D, int Pattern>
__global__ void __launch_bounds__(kThreads, backward_dq_wgmma_min_blocks(D))
    attention_backward_dq_wgmma_kernel(FusedBackwardParams params) {
  // wgmma exists on sm_90a only; the dispatch launches this kernel only where that image runs.
#if DFSS_WGMMA_AVAILABLE
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  T *smem = WarpgroupMmaEngine<T, D, Pattern>::tiles(shared_bytes);
  for (int64_t work = blockIdx.x; work < params.dq_work_items; work += gridDim.x) {
    backward_dq_wgmma_block<T, D, Pattern>(params, work, smem);
    __syncthreads();  // the next work item rewrites the tiles
  }
#else
  (void)params;
  __trap();
#endif
}

template <typename T, int D>
FusedBackwardDqKernels fused_backward_dq_wgmma_kernels() {
  return FusedBackwardDqKernels{{attention_backward_dq_wgmma_kernel<T, D, DFSS_PATTERN_DENSE>,
                                 attention_backward_dq_wgmma_kernel<T, D, DFSS_PATTERN_1_2>,
                                 attention_backward_dq_wgmma_kernel<T, D, DFSS_PATTERN_2_4>}};
}

}  // namespace fused
}  // namespace dfss
