// The fused backward on tensor cores (dfss_attention_backward, sm_80 and later), FlashAttention-2 style, in two
// kernels on the call's stream and without atomics (each gradient element is summed by one thread, in an order
// fixed by the problem):
//   dq:     per tile of 64 query rows (4 warps x 16 rows; dO in registers, Q in shared memory), over the key steps
//           the rows see:
//           steps 1-3 exactly as the forward runs them (score_step: the same scores, the same N:M choice);
//           dP = dO V^T (dense mma, V's rows permuted as K's so that dP lines up with S); at the kept scores
//           p = exp2(s log2 e - lse log2 e) and dS = p (dP - D_i), rounded to the input dtype;
//           dQ += dS K with mma.sp::ordered_metadata m16n8k32 on the forward's metadata (dS is pruned along the keys,
//           the reduction dimension; K in natural key order read through the permuted tile), dense mma for the
//           dense pattern; dq = scale dQ. D_i = dout_i . out_i is computed here (warp_dot) and saved for the next
//           kernel. K(step + 1) is copied while a step runs (two K tiles), V(step + 1) while dS K runs.
//   dk, dv: per tile of 64 keys of a kv head, over the query heads of its group (in order) and their query tiles
//           that see the keys (causal: from the first such row): the same steps 1-3 per warp of 16 query rows,
//           then P (rounded to the input dtype, as the forward's P.V used it) and dS, zeros where pruned or masked,
//           into shared memory in natural key order; then warp w owns keys 16w .. 16w + 15:
//           dV += P^T dO and dK += dS^T Q (dense mma); dk = scale dK.
// Rows and keys past the lengths get zero gradients (their p is 0).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "attention_backward_fused_launch.cuh"
#include "attention_fused_fragments.cuh"
#include "attention_fused_step.cuh"
#include "dtype.cuh"
#include "mask.h"
#include "mma.cuh"
#include "sddmm_prune_row.cuh"
#include "select.cuh"

namespace dfss {
namespace fused {

// The row of a tile loaded with KeyRow<Pattern> that holds key `key` (0 .. 63) of the tile: the inverse of
// key_of_row (key 16u + 4a + 2h + e sits in row 16u + 8h + 2a + e).
template <int Pattern>
DFSS_HOST_DEVICE constexpr int row_of_key(int key) {
  return Pattern == DFSS_PATTERN_DENSE ? key : (key & ~15) | ((key & 2) << 2) | ((key & 12) >> 1) | (key & 1);
}

template <int Pattern>
constexpr bool row_of_key_inverts_key_of_row() {
  for (int p = 0; p < kTileKeys; ++p) {
    if (row_of_key<Pattern>(key_of_row<Pattern>(p)) != p) return false;
  }
  return true;
}
static_assert(row_of_key_inverts_key_of_row<DFSS_PATTERN_2_4>() && row_of_key_inverts_key_of_row<DFSS_PATTERN_1_2>() &&
                  row_of_key_inverts_key_of_row<DFSS_PATTERN_DENSE>(),
              "row_of_key inverts key_of_row");

// `value`, hidden from the compiler's loop-invariant code motion: applied at the top of a loop to the shared-memory
// base and to the lane and warp indices, it keeps the addresses of the loop's many ldmatrix (a lane-dependent part
// plus a constant each, which the instruction can fold) from being computed once before the loop and held in
// registers across it, which would spill at D = 128.
template <typename T>
__device__ __forceinline__ T *opaque(T *pointer) {
  asm volatile("" : "+l"(pointer));
  return pointer;
}
__device__ __forceinline__ int opaque(int value) {
  asm volatile("" : "+r"(value));
  return value;
}

// Accumulators (m16n8 blocks) set to zero.
template <int Blocks>
__device__ __forceinline__ void zero_accumulators(float (&d)[Blocks][4]) {
#pragma unroll
  for (int n = 0; n < Blocks; ++n) d[n][0] = d[n][1] = d[n][2] = d[n][3] = 0.0f;
}

// A backward kernel's blocks: block(work) for work items blockIdx.x, + gridDim.x, ... (the launch gives one block a
// work item but past INT_MAX of them), with a barrier between items, whose tiles share the block's shared memory.
template <typename Block>
__device__ __forceinline__ void run_work_items(int64_t work_items, Block &&block) {
  for (int64_t work = blockIdx.x; work < work_items; work += gridDim.x) {
    block(work);
    __syncthreads();
  }
}

// p = exp(s - lse) from lse_log2 = lse log2(e) (+inf for a row with no finite score: p = 0), as exp2 of one fma.
__device__ __forceinline__ float probability(float s, float lse_log2) {
  return exp2_approx(fmaf(s, kLog2e, -lse_log2));
}

__device__ __forceinline__ float scaled_lse(float lse) { return lse == -INFINITY ? INFINITY : lse * kLog2e; }

// Two adjacent elements of a gradient row, rounded to T: one 4-byte store when rows allow it.
template <typename T>
__device__ __forceinline__ void store_pair(T *at, float lo, float hi, bool pairs) {
  if (pairs) {
    *reinterpret_cast<uint32_t *>(at) = pack_rounded<T>(lo, hi);
  } else {
    at[0] = from_float<T>(lo);
    at[1] = from_float<T>(hi);
  }
}

// Rows first .. first + 63 of a [rows, D] tensor into a tile (as load_tile with natural order); `async`: the rows
// start on 16-byte boundaries and cp.async copies them, else plain loads do (then visible after __syncthreads).
template <typename T, int D>
__device__ __forceinline__ void load_rows(T *tile, const T *source, int64_t row_stride, int64_t first, int64_t limit,
                                          bool async) {
  if (async) {
    load_tile<T, D>(tile, source, row_stride, first, limit, NaturalRow{});
    return;
  }
  for_each_tile_unit<D>([&](int p, int unit) {
    const int64_t row = first + p;
    uint16_t bits[8] = {};
    if (row < limit) {
      const auto *from = reinterpret_cast<const uint16_t *>(source + row * row_stride + unit * 8);
#pragma unroll
      for (int e = 0; e < 8; ++e) bits[e] = from[e];
    }
    *reinterpret_cast<uint4 *>(tile + p * tile_stride(D) + unit * 8) =
        make_uint4(pack_bits(bits[0], bits[1]), pack_bits(bits[2], bits[3]), pack_bits(bits[4], bits[5]),
                   pack_bits(bits[6], bits[7]));
  });
}

// dP of score blocks 2u and 2u + 1 of the step (16 keys, in the order of the K tile, since V's tile is permuted as
// K's): dp[jj] lines up with s[2u + jj]. dO's fragments (A operand, k-steps of 16 columns) come from do_fragment(ks).
template <typename T, int D, typename DoFragment>
__device__ __forceinline__ void step_dp(float (&dp)[2][4], int u, const T *v_tile, int lane, DoFragment &&do_fragment) {
  constexpr int kStride = tile_stride(D);
#pragma unroll
  for (int jj = 0; jj < 2; ++jj) dp[jj][0] = dp[jj][1] = dp[jj][2] = dp[jj][3] = 0.0f;
#pragma unroll
  for (int p = 0; p < D / 32; ++p) {
    uint32_t a_even[4], a_odd[4];
    do_fragment(2 * p, a_even);
    do_fragment(2 * p + 1, a_odd);
#pragma unroll
    for (int jj = 0; jj < 2; ++jj) {
      uint32_t b[4];
      ldmatrix_x4(b, v_tile + k_fragment_row(2 * u + jj, lane) * kStride + k_fragment_unit(p, lane) * 8);
      const uint32_t b_even[2] = {b[0], b[1]};
      const uint32_t b_odd[2] = {b[2], b[3]};
      mma_m16n8k16<T>(dp[jj], a_even, b_even);
      mma_m16n8k16<T>(dp[jj], a_odd, b_odd);
    }
  }
}

// The thread's two rows of one block's query tile, and what the backward needs of them.
struct BackwardRows {
  int64_t rows[2];
  int64_t key_end[2];
  float lse_log2[2];  // scaled_lse of the saved lse; +inf for rows past Nq_b
  float row_dot[2];   // D_i; 0 for rows past Nq_b
};

// ----- dq ---------------------------------------------------------------------------------------------------

// The tensors of a dq work item's head, at its row 0.
template <typename T>
struct DqTensors {
  const T *q, *k, *v, *out, *dout;
};

template <typename T>
__device__ __forceinline__ DqTensors<T> dq_tensors_of(const FusedBackwardParams &params, const QueryTilePlace &place) {
  const AttentionShape &shape = params.shape;
  const int64_t batch = place.batch, head_q = place.head_q, head_kv = place.head_kv;
  DqTensors<T> tensors;
  tensors.q = static_cast<const T *>(params.q) + batch * shape.q.batch + head_q * shape.q.head;
  tensors.k = static_cast<const T *>(params.k) + batch * shape.k.batch + head_kv * shape.k.head;
  tensors.v = static_cast<const T *>(params.v) + batch * shape.v.batch + head_kv * shape.v.head;
  tensors.out = static_cast<const T *>(params.out) + batch * shape.out.batch + head_q * shape.out.head;
  tensors.dout = static_cast<const T *>(params.dout) + batch * params.strides.dout.batch +
                 head_q * params.strides.dout.head;
  return tensors;
}

// The thread's rows of a dq work item (placed by place_query_tile) and their lse and D_i = dout_i . out_i: one
// warp_dot a row of the warp, saved for the dk / dv kernel too. dout and out point at the head's row 0.
template <typename T, int D>
__device__ __forceinline__ BackwardRows dq_rows_of(const FusedBackwardParams &params, const QueryTilePlace &place,
                                                   const T *dout, const T *out, int warp, int lane) {
  const AttentionShape &shape = params.shape;
  const int group = lane / 4;
  const int64_t row_base = (place.batch * shape.heads_q + place.head_q) * shape.seq_q;  // [B, Hq, Nq] index of row 0
  BackwardRows at;
  at.rows[0] = place.rows[0];
  at.rows[1] = place.rows[1];
  at.row_dot[0] = at.row_dot[1] = 0.0f;
  for (int t = 0; t < 16; ++t) {
    const int64_t row = place.first_row + warp * 16 + t;
    if (row >= place.valid_q) break;  // D_i = 0 past Nq_b: padding is never read
    const float dot = warp_dot(dout + row * params.strides.dout.row, out + row * shape.out.row, D);
    if (lane == 0) params.row_dot[row_base + row] = dot;
    if (t == group) at.row_dot[0] = dot;
    if (t == group + 8) at.row_dot[1] = dot;
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    at.key_end[r] = place.key_end[r];
    at.lse_log2[r] = at.rows[r] < place.valid_q ? scaled_lse(params.lse[row_base + at.rows[r]]) : INFINITY;
  }
  return at;
}

// dS = p (dP - D_i) of one score s of row r, with p = exp(s - lse).
__device__ __forceinline__ float score_gradient(float s, float dp, int r, const BackwardRows &at) {
  return probability(s, at.lse_log2[r]) * (dp - at.row_dot[r]);
}

// dS of key block u of a step (score blocks 2u and 2u + 1, whose dP are dp_even and dp_odd) at the kept scores:
// p (dP - D_i) with p = exp(s - lse), rounded to T, into the A operand of dS K in the layout of the forward's P
// operand: a[u / 2][2 (u % 2) + r] holds row r's kept values (sparse: dP picked by the choice's nibble),
// a[u][2 jj + r] row r of score block 2u + jj (dense).
template <typename T, int Pattern>
__device__ __forceinline__ void ds_operand_block(uint32_t (&a)[Pattern != DFSS_PATTERN_DENSE ? 2 : 4][4],
                                                 const ScoredStep &scored, const float (&dp_even)[4],
                                                 const float (&dp_odd)[4], int u, const BackwardRows &at) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if constexpr (Pattern != DFSS_PATTERN_DENSE) {
      const GroupChoice &choice = scored.choice[u / 2][u % 2][r];
      const float dp_first = at_first_kept<Pattern>(choice.nibble, dp_even[2 * r], dp_even[2 * r + 1], dp_odd[2 * r]);
      const float dp_second =
          at_second_kept<Pattern>(choice.nibble, dp_even[2 * r + 1], dp_odd[2 * r], dp_odd[2 * r + 1]);
      a[u / 2][2 * (u % 2) + r] = pack_rounded<T>(score_gradient(choice.first, dp_first, r, at),
                                                  score_gradient(choice.second, dp_second, r, at));
    } else {
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        const float *s = scored.s[2 * u + jj];
        const float *dp = jj == 0 ? dp_even : dp_odd;
        a[u][2 * jj + r] = pack_rounded<T>(score_gradient(s[2 * r], dp[2 * r], r, at),
                                           score_gradient(s[2 * r + 1], dp[2 * r + 1], r, at));
      }
    }
  }
}

// dq = scale dQ on the thread's rows, from accumulators in the m16n8 layout (dq[n]: columns 8n .. 8n + 7).
template <typename T, int D>
__device__ __forceinline__ void store_dq(const FusedBackwardParams &params, int64_t batch, int64_t head_q,
                                         const BackwardRows &at, const float (&dq)[D / 8][4], int quad) {
  const AttentionShape &shape = params.shape;
  T *dq_head = static_cast<T *>(params.dq) + batch * params.strides.dq.batch + head_q * params.strides.dq.head;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (at.rows[r] >= shape.seq_q) continue;
    T *dq_row = dq_head + at.rows[r] * params.strides.dq.row;
    // A row with no finite score (past Nq_b, or fully masked) has zero gradients, also where its products met a
    // non-finite key it masks (0 * NaN).
    const bool sees_none = at.lse_log2[r] == INFINITY;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      store_pair<T>(dq_row + 8 * n + 2 * quad, sees_none ? 0.0f : shape.scale * dq[n][2 * r],
                    sees_none ? 0.0f : shape.scale * dq[n][2 * r + 1], params.gradient_pairs);
    }
  }
}

// One block's work item (place_query_tile: query tile `work % query_tiles`, from the end as the forward, of head
// (work / query_tiles) % Hq of batch entry work / (query_tiles Hq)) on warp-level tensor cores.
template <typename T, int D, int Pattern>
__device__ __forceinline__ void backward_dq_block(const FusedBackwardParams &params, int64_t work, T *smem) {
  constexpr bool kSparse = Pattern != DFSS_PATTERN_DENSE;
  constexpr int kStride = tile_stride(D);
  constexpr int kTileElements = kTileKeys * kStride;
  constexpr int kKSteps = D / 16;
  constexpr int kOutBlocks = D / 8;

  const AttentionShape &shape = params.shape;
  const int thread_warp = static_cast<int>(threadIdx.x) / 32;
  const int thread_lane = static_cast<int>(threadIdx.x) % 32;
  const int quad = thread_lane % 4;
  const QueryTilePlace place = place_query_tile(shape, params.seqlens_q, params.seqlens_k, params.query_tiles, work,
                                                thread_warp, thread_lane / 4);
  const int64_t batch = place.batch, head_q = place.head_q, first_row = place.first_row;
  const DqTensors<T> tensors = dq_tensors_of<T>(params, place);
  const T *q = tensors.q, *k = tensors.k, *v = tensors.v, *dout = tensors.dout;
  const BackwardRows at = dq_rows_of<T, D>(params, place, dout, tensors.out, thread_warp, thread_lane);
  const int64_t key_steps = place.key_steps;  // the keys some row of the block sees, as in the forward

  float dq[kOutBlocks][4];
  zero_accumulators(dq);

  if (key_steps > 0) {
    // Tile 0: Q; tile 1: V of the current step; tiles 2 and 3: K of the even and the odd steps (tile 3 first holds
    // dO until it is in registers).
    load_tile<T, D>(smem, q, shape.q.row, first_row, place.valid_q, NaturalRow{});
    load_rows<T, D>(smem + 3 * kTileElements, dout, params.strides.dout.row, first_row, place.valid_q,
                    params.dout_async);
    load_tile<T, D>(smem + 2 * kTileElements, k, shape.k.row, 0, place.valid_k, KeyRow<Pattern>{});
    load_tile<T, D>(smem + kTileElements, v, shape.v.row, 0, place.valid_k, KeyRow<Pattern>{});
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();

    uint32_t do_fragment[kKSteps][4];
#pragma unroll
    for (int s = 0; s < kKSteps; ++s) {
      ldmatrix_x4(do_fragment[s], smem + 3 * kTileElements + q_fragment_row(thread_warp * 16, thread_lane) * kStride +
                                      q_fragment_unit(s, thread_lane) * 8);
    }
    __syncthreads();  // tile 3 is free for K(1)

    const int64_t warp_key_end = warp_seen_key_end(at.key_end);
    const int lane_key = key_of_score<Pattern>(0, 0, quad);

    // cp.async groups: V(step) is in flight when a step starts (but for step 0), K(step + 1) is issued at its start.
    for (int64_t step = 0; step < key_steps; ++step) {
      const int64_t step_key = step * kTileKeys;
      T *const base = opaque(smem);
      const int lane = opaque(thread_lane);
      const int warp = opaque(thread_warp);
      const T *q_tile = base;
      T *v_tile = base + kTileElements;
      const T *k_tile = base + (step % 2 == 0 ? 2 : 3) * kTileElements;
      if (step + 1 < key_steps) {
        load_tile<T, D>(base + (step % 2 == 0 ? 3 : 2) * kTileElements, k, shape.k.row, step_key + kTileKeys,
                        place.valid_k, KeyRow<Pattern>{});
      }
      cp_async_commit();

      ScoredStep scored;
      score_step<T, D, Pattern>(
          scored,
          [&](int p, uint32_t(&a_even)[4], uint32_t(&a_odd)[4]) {
            const T *row = q_tile + q_fragment_row(warp * 16, lane) * kStride;
            ldmatrix_x4(a_even, row + q_fragment_unit(2 * p, lane) * 8);
            ldmatrix_x4(a_odd, row + q_fragment_unit(2 * p + 1, lane) * 8);
          },
          k_tile, shape.scale, step_key + kTileKeys > warp_key_end, at.key_end, step_key, lane_key, lane);

      cp_async_wait<1>();  // V(step), not necessarily K(step + 1)
      __syncthreads();

      // dS as the A operand of dS K.
      uint32_t a[kSparse ? 2 : 4][4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        float dp[2][4];
        step_dp<T, D>(dp, u, v_tile, lane, [&](int ks, uint32_t(&fragment)[4]) {
#pragma unroll
          for (int i = 0; i < 4; ++i) fragment[i] = do_fragment[ks][i];
        });
        ds_operand_block<T, Pattern>(a, scored, dp[0], dp[1], u, at);
      }

      // No warp reads V(step) any more: V(step + 1) arrives while dS K runs.
      __syncthreads();
      if (step + 1 < key_steps) {
        load_tile<T, D>(v_tile, v, shape.v.row, step_key + kTileKeys, place.valid_k, KeyRow<Pattern>{});
      }
      cp_async_commit();

      // dQ += dS K, K as B in natural key order.
      if constexpr (kSparse) {
#pragma unroll
        for (int n = 0; n < kOutBlocks; ++n) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, k_tile + row_of_key<Pattern>(v_sparse_fragment_row(0, lane)) * kStride +
                                   v_sparse_fragment_unit(n) * 8);
          mma_sp_m16n8k32<T, 0>(dq[n], a[0], b, scored.metadata);
          ldmatrix_x4_trans(b, k_tile + row_of_key<Pattern>(v_sparse_fragment_row(1, lane)) * kStride +
                                   v_sparse_fragment_unit(n) * 8);
          mma_sp_m16n8k32<T, 1>(dq[n], a[1], b, scored.metadata);
        }
      } else {
#pragma unroll
        for (int ks = 0; ks < 4; ++ks) {
#pragma unroll
          for (int n = 0; n < kOutBlocks / 2; ++n) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, k_tile + v_dense_fragment_row(ks, lane) * kStride + v_dense_fragment_unit(n, lane) * 8);
            const uint32_t b_first[2] = {b[0], b[1]};
            const uint32_t b_second[2] = {b[2], b[3]};
            mma_m16n8k16<T>(dq[2 * n], a[ks], b_first);
            mma_m16n8k16<T>(dq[2 * n + 1], a[ks], b_second);
          }
        }
      }

      // K(step + 1) has arrived, and no warp reads K(step) any more (its tile receives K(step + 2)).
      cp_async_wait<1>();
      __syncthreads();
    }
    cp_async_wait<0>();  // nothing stays in flight into the next work item's tiles
  }

  store_dq<T, D>(params, batch, head_q, at, dq, quad);
}

// ----- dk, dv -----------------------------------------------------------------------------------------------

// What a dk / dv block knows of its work item: key tile `work % key_tiles` of kv head (work / key_tiles) % Hkv of
// batch entry work / (key_tiles Hkv), and the batch's lengths.
struct KeyTilePlace {
  int64_t batch, head_kv, heads_per_kv, first_key, valid_q, valid_k;
};

__device__ __forceinline__ KeyTilePlace place_key_tile(const FusedBackwardParams &params, int64_t work) {
  const AttentionShape &shape = params.shape;
  KeyTilePlace place;
  const int64_t head_entry = work / params.key_tiles;
  place.head_kv = head_entry % shape.heads_kv;
  place.batch = head_entry / shape.heads_kv;
  place.heads_per_kv = shape.heads_q / shape.heads_kv;
  place.first_key = (work % params.key_tiles) * kTileKeys;
  place.valid_q = valid_length(params.seqlens_q, place.batch, shape.seq_q);
  place.valid_k = valid_length(params.seqlens_k, place.batch, shape.seq_k);
  return place;
}

// The first query tile of a head with rows that see keys of the key tile (causal: the tile of the first row with
// allowed_key_end(i) > first_key; every later row sees them too).
__device__ __forceinline__ int64_t first_seeing_tile(const KeyTilePlace &place, bool causal) {
  const int64_t first_row = place.first_key - place.valid_k + place.valid_q;
  return (causal ? (first_row > 0 ? first_row : 0) : 0) / kBlockRows;
}

// The thread's rows (first_row + 16 warp + group, + 8) of a query tile in a dk / dv block: the keys they see, lse and
// the D_i that the dq kernel saved. row_base: the [B, Hq, Nq] index of the head's row 0.
__device__ __forceinline__ BackwardRows dk_dv_rows_of(const FusedBackwardParams &params, const KeyTilePlace &place,
                                                      int64_t row_base, int64_t first_row, int warp, int group) {
  const AttentionShape &shape = params.shape;
  BackwardRows at;
  at.rows[0] = first_row + warp * 16 + group;
  at.rows[1] = at.rows[0] + 8;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const bool inside = at.rows[r] < place.valid_q;
    at.key_end[r] = allowed_key_end(at.rows[r], place.valid_q, place.valid_k, shape.causal);
    at.lse_log2[r] = inside ? scaled_lse(params.lse[row_base + at.rows[r]]) : INFINITY;
    at.row_dot[r] = inside ? params.row_dot[row_base + at.rows[r]] : 0.0f;
  }
  return at;
}

// P (rounded to T, as the forward's P.V used it) and dS of key block u of a step (score blocks 2u and 2u + 1 of s,
// scaled and masked, whose dP are dp_even and dp_odd) for the thread's rows (tile rows `row` and row + 8), into
// [query row][key] tiles in natural key order, zeros where pruned or masked: element (row, key) at offset_of(row,
// key), which keeps runs of 4 keys from a multiple of 4 contiguous. Sparse patterns make the N:M choice here, a
// group at a time (only its decisions: no kept values, nibble or metadata register), and compute p and dS at all
// four keys of a group as dense does, then zero the pruned ones with masks: fewer instructions than computing the
// kept pair and spreading it over the keys, and the same values.
template <typename T, int Pattern, typename OffsetOf>
__device__ __forceinline__ void store_p_ds_block(T *p_tile, T *ds_tile, const float (&s)[kScoreBlocks][4],
                                                 const float (&dp_even)[4], const float (&dp_odd)[4], int u,
                                                 const BackwardRows &at, int row, int quad, OffsetOf &&offset_of) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int tile_row = row + 8 * r;
    const float *s_even = s[2 * u];
    const float *s_odd = s[2 * u + 1];
    if constexpr (Pattern != DFSS_PATTERN_DENSE) {
      // Quad lane `quad` holds the group of keys 16u + 4 quad .. + 3 (key_permutation.h): keys +0, +1 in score block
      // 2u, +2, +3 in 2u + 1.
      const float x[4] = {s_even[2 * r], s_even[2 * r + 1], s_odd[2 * r], s_odd[2 * r + 1]};
      const float dp[4] = {dp_even[2 * r], dp_even[2 * r + 1], dp_odd[2 * r], dp_odd[2 * r + 1]};
      const KeptHalves kept = kept_halves(decide_group<Pattern>(x[0], x[1], x[2], x[3]));
      float p[4], ds[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        p[e] = probability(x[e], at.lse_log2[r]);
        ds[e] = p[e] * (dp[e] - at.row_dot[r]);
      }
      const int offset = offset_of(tile_row, 16 * u + 4 * quad);
      *reinterpret_cast<uint2 *>(p_tile + offset) =
          make_uint2(pack_rounded<T>(p[0], p[1]) & kept.keys01, pack_rounded<T>(p[2], p[3]) & kept.keys23);
      *reinterpret_cast<uint2 *>(ds_tile + offset) =
          make_uint2(pack_rounded<T>(ds[0], ds[1]) & kept.keys01, pack_rounded<T>(ds[2], ds[3]) & kept.keys23);
    } else {
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        const float *sj = jj == 0 ? s_even : s_odd;
        const float *dp = jj == 0 ? dp_even : dp_odd;
        const float p0 = probability(sj[2 * r], at.lse_log2[r]);
        const float p1 = probability(sj[2 * r + 1], at.lse_log2[r]);
        const int offset = offset_of(tile_row, 8 * (2 * u + jj) + 2 * quad);
        *reinterpret_cast<uint32_t *>(p_tile + offset) = pack_rounded<T>(p0, p1);
        *reinterpret_cast<uint32_t *>(ds_tile + offset) =
            pack_rounded<T>(p0 * (dp[2 * r] - at.row_dot[r]), p1 * (dp[2 * r + 1] - at.row_dot[r]));
      }
    }
  }
}

// dk = scale dK and dv = dV of the thread's keys (first_key + 16 warp + group, + 8), from accumulators in the m16n8
// layout; zeros for keys past Nk_b, which no row sees.
template <typename T, int D>
__device__ __forceinline__ void store_dk_dv(const FusedBackwardParams &params, const KeyTilePlace &place,
                                            const float (&dk)[D / 8][4], const float (&dv)[D / 8][4], int warp,
                                            int lane) {
  const AttentionShape &shape = params.shape;
  const int group = lane / 4;
  const int quad = lane % 4;
  T *dk_head =
      static_cast<T *>(params.dk) + place.batch * params.strides.dk.batch + place.head_kv * params.strides.dk.head;
  T *dv_head =
      static_cast<T *>(params.dv) + place.batch * params.strides.dv.batch + place.head_kv * params.strides.dv.head;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t key = place.first_key + warp * 16 + group + 8 * r;
    if (key >= shape.seq_k) continue;
    T *dk_row = dk_head + key * params.strides.dk.row;
    T *dv_row = dv_head + key * params.strides.dv.row;
    const bool padding = key >= place.valid_k;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      store_pair<T>(dk_row + 8 * n + 2 * quad, padding ? 0.0f : shape.scale * dk[n][2 * r],
                    padding ? 0.0f : shape.scale * dk[n][2 * r + 1], params.gradient_pairs);
      store_pair<T>(dv_row + 8 * n + 2 * quad, padding ? 0.0f : dv[n][2 * r], padding ? 0.0f : dv[n][2 * r + 1],
                    params.gradient_pairs);
    }
  }
}

// One block's work item (place_key_tile) on warp-level tensor cores.
template <typename T, int D, int Pattern>
__device__ __forceinline__ void backward_dk_dv_block(const FusedBackwardParams &params, int64_t work, T *smem) {
  constexpr int kStride = tile_stride(D);
  constexpr int kTileElements = kTileKeys * kStride;
  constexpr int kOutBlocks = D / 8;

  const AttentionShape &shape = params.shape;
  const KeyTilePlace place = place_key_tile(params, work);
  const int64_t batch = place.batch, head_kv = place.head_kv, first_key = place.first_key;

  const int thread_warp = static_cast<int>(threadIdx.x) / 32;
  const int thread_lane = static_cast<int>(threadIdx.x) % 32;
  const int group = thread_lane / 4;
  const int quad = thread_lane % 4;

  float dk[kOutBlocks][4];
  float dv[kOutBlocks][4];
  zero_accumulators(dk);
  zero_accumulators(dv);

  if (first_key < place.valid_k && place.valid_q > 0) {
    const T *k = static_cast<const T *>(params.k) + batch * shape.k.batch + head_kv * shape.k.head;
    const T *v = static_cast<const T *>(params.v) + batch * shape.v.batch + head_kv * shape.v.head;
    // Tiles: K, V (rows permuted as the forward's K), Q, dO, then P and dS [64 rows][64 keys].
    load_tile<T, D>(smem, k, shape.k.row, first_key, place.valid_k, KeyRow<Pattern>{});
    load_tile<T, D>(smem + kTileElements, v, shape.v.row, first_key, place.valid_k, KeyRow<Pattern>{});
    const int64_t first_tile = first_seeing_tile(place, shape.causal);
    const int64_t end_tile = (place.valid_q + kBlockRows - 1) / kBlockRows;
    const int lane_key = key_of_score<Pattern>(0, 0, quad);

    for (int64_t head_offset = 0; head_offset < place.heads_per_kv; ++head_offset) {
      const int64_t head_q = head_kv * place.heads_per_kv + head_offset;
      const int64_t row_base = (batch * shape.heads_q + head_q) * shape.seq_q;
      const T *q = static_cast<const T *>(params.q) + batch * shape.q.batch + head_q * shape.q.head;
      const T *dout = static_cast<const T *>(params.dout) + batch * params.strides.dout.batch +
                      head_q * params.strides.dout.head;
      for (int64_t tile = first_tile; tile < end_tile; ++tile) {
        const int64_t first_row = tile * kBlockRows;
        T *const base = opaque(smem);
        const int lane = opaque(thread_lane);
        const int warp = opaque(thread_warp);
        const T *k_tile = base;
        const T *v_tile = base + kTileElements;
        T *q_tile = base + 2 * kTileElements;
        T *do_tile = base + 3 * kTileElements;
        T *p_tile = base + 4 * kTileElements;
        T *ds_tile = p_tile + kBlockRows * kScoreTileStride;
        load_tile<T, D>(q_tile, q, shape.q.row, first_row, place.valid_q, NaturalRow{});
        load_rows<T, D>(do_tile, dout, params.strides.dout.row, first_row, place.valid_q, params.dout_async);
        cp_async_commit();

        const BackwardRows at = dk_dv_rows_of(params, place, row_base, first_row, warp, group);
        const int64_t warp_key_end = warp_seen_key_end(at.key_end);
        cp_async_wait<0>();
        __syncthreads();

        // Steps 1-2 for the warp's 16 rows, as the forward runs them; store_p_ds_block makes the choice.
        float s[kScoreBlocks][4];
        score_products<T, D>(
            s,
            [&](int p, uint32_t(&a_even)[4], uint32_t(&a_odd)[4]) {
              const T *row = q_tile + q_fragment_row(warp * 16, lane) * kStride;
              ldmatrix_x4(a_even, row + q_fragment_unit(2 * p, lane) * 8);
              ldmatrix_x4(a_odd, row + q_fragment_unit(2 * p + 1, lane) * 8);
            },
            k_tile, lane);
        scale_and_mask<Pattern>(s, shape.scale, first_key + kTileKeys > warp_key_end, at.key_end, first_key, lane_key);

        // P and dS of the warp's rows into shared memory, natural key order, zeros where pruned or masked.
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          float dp[2][4];
          step_dp<T, D>(dp, u, v_tile, lane, [&](int ks, uint32_t(&fragment)[4]) {
            ldmatrix_x4(fragment, do_tile + q_fragment_row(warp * 16, lane) * kStride + q_fragment_unit(ks, lane) * 8);
          });
          store_p_ds_block<T, Pattern>(p_tile, ds_tile, s, dp[0], dp[1], u, at, warp * 16 + group, quad,
                                       [](int row, int key) { return row * kScoreTileStride + key; });
        }
        __syncthreads();

        // dV += P^T dO and dK += dS^T Q over the tile's 64 rows, for keys 16 warp .. + 15. The A operands are P^T and
        // dS^T: ldmatrix .trans of the [row][key] tiles, matrices (keys 0-7, rows 0-7), (keys 8-15, rows 0-7),
        // (keys 0-7, rows 8-15), (keys 8-15, rows 8-15) of the k-step's 16 rows.
        const int matrix = lane / 8;
        const int a_offset_in_step = ((lane & 7) + 8 * (matrix >> 1)) * kScoreTileStride + (2 * warp + (matrix & 1)) * 8;
        // The same product for both: acc += (A tile)^T (B tile) over the 64 rows.
        const auto accumulate = [&](float(&acc)[kOutBlocks][4], const T *a_tile, const T *b_tile) {
#pragma unroll
          for (int ks = 0; ks < 4; ++ks) {
            uint32_t a[4];
            ldmatrix_x4_trans(a, a_tile + 16 * ks * kScoreTileStride + a_offset_in_step);
#pragma unroll
            for (int n = 0; n < kOutBlocks / 2; ++n) {
              uint32_t b[4];
              ldmatrix_x4_trans(b, b_tile + v_dense_fragment_row(ks, lane) * kStride + v_dense_fragment_unit(n, lane) * 8);
              const uint32_t b_first[2] = {b[0], b[1]};
              const uint32_t b_second[2] = {b[2], b[3]};
              mma_m16n8k16<T>(acc[2 * n], a, b_first);
              mma_m16n8k16<T>(acc[2 * n + 1], a, b_second);
            }
          }
        };
        accumulate(dv, p_tile, do_tile);
        accumulate(dk, ds_tile, q_tile);
        __syncthreads();  // the next query tile rewrites Q, dO, P and dS
      }
    }
    cp_async_commit();
    cp_async_wait<0>();  // nothing stays in flight into the next work item's tiles
  }

  store_dk_dv<T, D>(params, place, dk, dv, thread_warp, thread_lane);
}

template <typename T, int D, int Pattern>
__global__ void __launch_bounds__(kThreads) attention_backward_dq_kernel(FusedBackwardParams params) {
  // Tensor-core code exists for sm_80 and later only; the dispatch never launches this kernel on older devices.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  T *smem = reinterpret_cast<T *>(shared_bytes);
  run_work_items(params.dq_work_items, [&](int64_t work) { backward_dq_block<T, D, Pattern>(params, work, smem); });
#else
  (void)params;
#endif
}

template <typename T, int D, int Pattern>
__global__ void __launch_bounds__(kThreads) attention_backward_dk_dv_kernel(FusedBackwardParams params) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  T *smem = reinterpret_cast<T *>(shared_bytes);
  run_work_items(params.dk_dv_work_items,
                 [&](int64_t work) { backward_dk_dv_block<T, D, Pattern>(params, work, smem); });
#else
  (void)params;
#endif
}

template <typename T, int D>
FusedBackwardKernels fused_backward_kernels() {
  return FusedBackwardKernels{
      {attention_backward_dq_kernel<T, D, DFSS_PATTERN_DENSE>, attention_backward_dq_kernel<T, D, DFSS_PATTERN_1_2>,
       attention_backward_dq_kernel<T, D, DFSS_PATTERN_2_4>},
      {attention_backward_dk_dv_kernel<T, D, DFSS_PATTERN_DENSE>, attention_backward_dk_dv_kernel<T, D, DFSS_PATTERN_1_2>,
       attention_backward_dk_dv_kernel<T, D, DFSS_PATTERN_2_4>}};
}

}  // namespace fused
}  // namespace dfss
