// The fused backward on Hopper's warpgroup tensor cores (sm_90a): the work items of the warp-level kernels
// (attention_backward_fused_kernel.cuh: one warpgroup, 64 query rows against 64 keys at a time; the same scores,
// N:M choice, P, dS and D_i) with their products issued as the Hopper forward issues its own (WarpgroupMmaEngine).
// In both kernels S = Q K^T and dP = dO V^T are the forward's S (issue_scores: Q / dO and K / V from shared memory,
// the rows of K and V permuted as the forward's K, so that each thread holds whole groups of 4 keys and dP lines up
// with S); the scores are the forward's bits, so the choice is the forward's (the GPU tests check the gradients of a
// GPU forward's choices).
//   dq:     dQ += dS K as the forward's P V (issue_values: dS from registers in P's layout, K in natural key order as
//           the forward's V; the sparse patterns' wgmma.sp on the step's metadata, since dS is pruned along the
//           reduction). Tiles: Q, dO, V, and three K tiles: sparse patterns read S's K (permuted) from one and dS K's
//           (natural order) from the other two by step parity; dense, both products read K from tile step % 2. The
//           next step's K and V are copied while a step's choice, dS and dS K run.
//   dk, dv: per query tile of the key tile's query heads, P and dS go to shared memory as [query row][key] tiles in
//           natural key order (zeros where pruned or masked), then dV += P^T dO and dK += dS^T Q as wgmma with both
//           operands in shared memory (P / dS M-major, dO / Q N-major: the tiles that S and dP read K-major). Tiles:
//           K, V, Q and dO of two query tiles (the next one's copied while a tile runs), P, dS.
// Head dims 64 and 128, dout rows on 16-byte boundaries (cp.async copies dO).
#pragma once

#include "attention_backward_fused_kernel.cuh"
#include "attention_fused_wgmma.cuh"
#include "wgmma.cuh"

namespace dfss {
namespace fused {

// ----- dq ---------------------------------------------------------------------------------------------------

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
  zero_accumulators(dq);

  if (key_steps > 0) {
    T *const q_tile = smem;
    T *const do_tile = smem + kTileElements;
    T *const v_tile = smem + 2 * kTileElements;
    const auto score_keys = [&](int64_t step) { return smem + (kSparse ? 3 : 3 + step % 2) * kTileElements; };
    const auto product_keys = [&](int64_t step) { return smem + ((kSparse ? 4 : 3) + step % 2) * kTileElements; };
    const auto load_step = [&](int64_t step) {
      const int64_t key = step * kTileKeys;
      load_tile<T, D>(score_keys(step), tensors.k, shape.k.row, key, place.valid_k, KeyRow<Pattern>{}, Layout{});
      load_tile<T, D>(v_tile, tensors.v, shape.v.row, key, place.valid_k, KeyRow<Pattern>{}, Layout{});
      if constexpr (kSparse) {
        load_tile<T, D>(product_keys(step), tensors.k, shape.k.row, key, place.valid_k, NaturalRow{}, Layout{});
      }
    };
    load_tile<T, D>(q_tile, tensors.q, shape.q.row, place.first_row, place.valid_q, NaturalRow{}, Layout{});
    load_tile<T, D>(do_tile, tensors.dout, params.strides.dout.row, place.first_row, place.valid_q, NaturalRow{},
                    Layout{});
    load_step(0);
    cp_async_commit();

    const int64_t warp_key_end = warp_seen_key_end(at.key_end);
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
  run_work_items(params.dq_work_items,
                 [&](int64_t work) { backward_dq_wgmma_block<T, D, Pattern>(params, work, smem); });
#else
  (void)params;
  __trap();
#endif
}

// ----- dk, dv -----------------------------------------------------------------------------------------------

template <typename T, int D, int Pattern>
__device__ __forceinline__ void backward_dk_dv_wgmma_block(const FusedBackwardParams &params, int64_t work, T *smem) {
  using Engine = WarpgroupMmaEngine<T, D, Pattern>;
  using Layout = typename Engine::Layout;
  constexpr int kTileElements = Engine::kTileElements;
  constexpr int kScoreTileElements = kBlockRows * kTileKeys;  // P, dS: one 64-column panel
  constexpr uint32_t kScoreTileBytes = kScoreTileElements * sizeof(T);
  constexpr int kOutBlocks = D / 8;

  const AttentionShape &shape = params.shape;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int group = lane / 4;
  const int quad = lane % 4;
  const KeyTilePlace place = place_key_tile(params, work);
  const int64_t batch = place.batch, first_key = place.first_key;

  float dk[kOutBlocks][4];
  float dv[kOutBlocks][4];
  zero_accumulators(dk);
  zero_accumulators(dv);

  if (first_key < place.valid_k && place.valid_q > 0) {
    const T *k = static_cast<const T *>(params.k) + batch * shape.k.batch + place.head_kv * shape.k.head;
    const T *v = static_cast<const T *>(params.v) + batch * shape.v.batch + place.head_kv * shape.v.head;
    T *const k_tile = smem;
    T *const v_tile = smem + kTileElements;
    const auto q_tile = [&](int64_t item) { return smem + (2 + item % 2) * kTileElements; };
    const auto do_tile = [&](int64_t item) { return smem + (4 + item % 2) * kTileElements; };
    T *const p_tile = smem + 6 * kTileElements;
    T *const ds_tile = p_tile + kScoreTileElements;
    load_tile<T, D>(k_tile, k, shape.k.row, first_key, place.valid_k, KeyRow<Pattern>{}, Layout{});
    load_tile<T, D>(v_tile, v, shape.v.row, first_key, place.valid_k, KeyRow<Pattern>{}, Layout{});

    // The work item's query tiles, `tiles` a query head of the kv head's group: item i is tile first_tile + i % tiles
    // of query head i / tiles of the group.
    const int64_t first_tile = first_seeing_tile(place, shape.causal);
    const int64_t tiles = (place.valid_q + kBlockRows - 1) / kBlockRows - first_tile;
    const int64_t items = place.heads_per_kv * tiles;
    const auto head_of = [&](int64_t item) { return place.head_kv * place.heads_per_kv + item / tiles; };
    const auto first_row_of = [&](int64_t item) { return (first_tile + item % tiles) * kBlockRows; };
    const auto load_query_tile = [&](int64_t item) {
      const int64_t head_q = head_of(item), first_row = first_row_of(item);
      const T *q = static_cast<const T *>(params.q) + batch * shape.q.batch + head_q * shape.q.head;
      const T *dout = static_cast<const T *>(params.dout) + batch * params.strides.dout.batch +
                      head_q * params.strides.dout.head;
      load_tile<T, D>(q_tile(item), q, shape.q.row, first_row, place.valid_q, NaturalRow{}, Layout{});
      load_tile<T, D>(do_tile(item), dout, params.strides.dout.row, first_row, place.valid_q, NaturalRow{}, Layout{});
    };
    load_query_tile(0);
    cp_async_commit();

    const int lane_key = key_of_score<Pattern>(0, 0, quad);
    // P^T and dS^T as M-major A operands: one panel, 8-row atoms along the query rows.
    const SwizzledDescriptor p_operand(p_tile, kScoreTileBytes, Engine::kAtomBytes);
    const SwizzledDescriptor ds_operand(ds_tile, kScoreTileBytes, Engine::kAtomBytes);
    for (int64_t item = 0; item < items; ++item) {
      // This item's Q and dO (and K, V) are in shared memory, and every warp is done with item - 1's products: its
      // Q and dO tiles take the next item's, and P and dS are free.
      Engine::tiles_arrived();
      if (item + 1 < items) load_query_tile(item + 1);
      cp_async_commit();

      const int64_t head_q = head_of(item), first_row = first_row_of(item);
      const int64_t row_base = (batch * shape.heads_q + head_q) * shape.seq_q;
      const BackwardRows at = dk_dv_rows_of(params, place, row_base, first_row, warp, group);

      // Steps 1-2 for the warp's 16 rows, as the forward runs them, and dP; store_p_ds_block makes the choice.
      float s[kScoreBlocks][4];
      float dp[kScoreBlocks][4];
      Engine::issue_scores(s, q_tile(item), k_tile);
      Engine::issue_scores(dp, do_tile(item), v_tile);
      wgmma_wait<0>();
      fence_accumulators(s);
      fence_accumulators(dp);
      scale_and_mask<Pattern>(s, shape.scale, first_key + kTileKeys > warp_seen_key_end(at.key_end), at.key_end,
                              first_key, lane_key);
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        store_p_ds_block<T, Pattern>(p_tile, ds_tile, s, dp[2 * u], dp[2 * u + 1], u, at, warp * 16 + group,
                                     quad, [](int row, int key) { return Layout::offset(row, key / 8) + key % 8; });
      }
      fence_proxy_async_shared();
      __syncthreads();

      // dV += P^T dO and dK += dS^T Q over the tile's 64 rows: keys 16 warp .. + 15 are the warp's accumulator rows.
      const SwizzledDescriptor dout_operand = Engine::values(do_tile(item));
      const SwizzledDescriptor q_operand = Engine::values(q_tile(item));
      fence_accumulators(dv);
      fence_accumulators(dk);
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < 4; ++ks) {
        const uint32_t rows = Engine::key_bytes(16 * ks);  // query rows 16 ks .. + 15 of every operand
        wgmma_m64nNk16_ss_mn_major<T, D>(dv, p_operand.at(rows), dout_operand.at(rows));
      }
#pragma unroll
      for (int ks = 0; ks < 4; ++ks) {
        const uint32_t rows = Engine::key_bytes(16 * ks);
        wgmma_m64nNk16_ss_mn_major<T, D>(dk, ds_operand.at(rows), q_operand.at(rows));
      }
      wgmma_commit();
      wgmma_wait<0>();
      fence_accumulators(dv);
      fence_accumulators(dk);
    }
    cp_async_wait<0>();  // nothing stays in flight into the next work item's tiles
  }
  store_dk_dv<T, D>(params, place, dk, dv, warp, lane);
}

// Blocks a SM: 2 at D = 128 (shared memory: 113 KiB each, 255 registers); at D = 64, 3 for the sparse patterns (168
// registers, 16-32 bytes of spills) and 2 for dense (at 3 it spills 120 bytes), measured on the H200 (bench/NOTES.md
// v9: sparse 4-6 % faster at 3 than at 2, dense 5 % slower).
constexpr int backward_dk_dv_wgmma_min_blocks(int head_dim, int pattern) {
  return head_dim == 64 && pattern != DFSS_PATTERN_DENSE ? 3 : 2;
}

template <typename T, int D, int Pattern>
__global__ void __launch_bounds__(kThreads, backward_dk_dv_wgmma_min_blocks(D, Pattern))
    attention_backward_dk_dv_wgmma_kernel(FusedBackwardParams params) {
#if DFSS_WGMMA_AVAILABLE
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  T *smem = WarpgroupMmaEngine<T, D, Pattern>::tiles(shared_bytes);
  run_work_items(params.dk_dv_work_items,
                 [&](int64_t work) { backward_dk_dv_wgmma_block<T, D, Pattern>(params, work, smem); });
#else
  (void)params;
  __trap();
#endif
}

template <typename T, int D>
FusedBackwardKernels fused_backward_wgmma_kernels() {
  return FusedBackwardKernels{
      {attention_backward_dq_wgmma_kernel<T, D, DFSS_PATTERN_DENSE>,
       attention_backward_dq_wgmma_kernel<T, D, DFSS_PATTERN_1_2>,
       attention_backward_dq_wgmma_kernel<T, D, DFSS_PATTERN_2_4>},
      {attention_backward_dk_dv_wgmma_kernel<T, D, DFSS_PATTERN_DENSE>,
       attention_backward_dk_dv_wgmma_kernel<T, D, DFSS_PATTERN_1_2>,
       attention_backward_dk_dv_wgmma_kernel<T, D, DFSS_PATTERN_2_4>}};
}

}  // namespace fused
}  // namespace dfss
