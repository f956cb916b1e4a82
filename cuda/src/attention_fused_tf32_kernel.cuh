// The fused forward on tensor cores for float32 inputs (dfss_attention_forward, sm_80 and later): the kernel of
// attention_fused_kernel.cuh (same blocks of 4 warps x 16 query rows, same steps of 64 keys, same masks, causal step
// skipping, lengths, grouped-query heads, strides, online softmax and lse), with every product on tf32 tensor cores
// in float32 accuracy (3xTF32, mma_tf32.cuh: three mma per product on the tf32 split x = big + small), so results
// keep the float32 semantics of dfss.h:
//   1. S = Q K^T with mma.sync m16n8k8 .tf32; float32 Q, K and V tiles in shared memory (tf32_tile_stride), K and V
//      brought in with cp.async as in the 16-bit kernel; Q and K fragments split on their way into registers;
//   2. scale and masks as dfss.h says, on the steps that need them;
//   3. the N:M choice in registers, before any exponential, by the selection networks of select.cuh:
//      - 1:2 keeps K in natural order: the m16n8k8 accumulator gives each quad lane keys 2 quad, 2 quad + 1 of a
//        block of 8, one whole pair, and the kept value of pair quad (quad + 4) of 16 keys is the sparse A element
//        of P.V; the metadata (tf32_fragments.h) meets in its quad lanes in three shuffles per 32 keys;
//      - 2:4 does not exist for float32 (dfss.h): tf32 sparse tensor cores run 1:2 only;
//   4. online softmax over the kept scores (exp2 with log2(e) folded in, float32 running max and sum);
//   5. P.V: 1:2 with mma.sp::ordered_metadata m16n8k16 .tf32 (3 per 16 keys and 8 output columns), V's rows
//      permuted in shared memory (tf32_sparse_v_key_of_row) so the B fragments meet no bank conflict; dense
//      with mma.sync m16n8k8 .tf32 on the same code, P's element for key column 2 quad (+1) as A column quad (+4)
//      and V's rows read in the order of the scores;
//   6. out = O / sum in float32, lse = max + log(sum); zeros and -inf for a row with no finite score.
// P is not rounded to a 16-bit type here: dfss.h rounds p to the input dtype, which for float32 is p itself.
#pragma once

#include <cmath>
#include <cstdint>

#include "attention_fused_kernel.cuh"
#include "mma_tf32.cuh"
#include "tf32_fragments.h"

namespace dfss {
namespace fused {

// Row p of a float32 V tile holds this key of the tile: the order of the scores (natural) for dense, the order of
// the sparse B fragments for 1:2.
template <int Pattern>
struct Tf32ValueRow {
  DFSS_HOST_DEVICE constexpr int operator()(int p) const {
    if constexpr (Pattern == DFSS_PATTERN_1_2) {
      return tf32_sparse_v_key_of_row(p);
    } else {
      return p;
    }
  }
};

// Copies 64 float32 rows of D elements into a tile of tf32_tile_stride(D) floats a row: load_tile moves 16-byte units,
// and a float32 row of D elements is the 16-bit row of 2D elements, with the same padding.
template <int D, typename RowOf>
__device__ __forceinline__ void load_f32_tile(float *tile, const float *source, int64_t row_stride, int64_t first,
                                              int64_t limit, RowOf row_of) {
  static_assert(2 * tf32_tile_stride(D) == tile_stride(2 * D), "the float32 tile is the 16-bit tile of twice the width");
  load_tile<__half, 2 * D>(reinterpret_cast<__half *>(tile), reinterpret_cast<const __half *>(source), 2 * row_stride,
                           first, limit, row_of);
}

// One block's work item (as attention_fused_block): query tile `work % query_tiles`, counted from the end, of head
// (work / query_tiles) % Hq of batch entry work / (query_tiles Hq).
template <int D, int Pattern>
__device__ __forceinline__ void attention_fused_f32_block(const FusedAttentionParams &params, int64_t work, float *smem) {
  // dfss.h offers float32 with the dense and 1:2 patterns only: tf32 sparse tensor cores run 1:2.
  static_assert(Pattern == DFSS_PATTERN_DENSE || Pattern == DFSS_PATTERN_1_2, "float32 runs dense and 1:2");
  // K's tile keeps natural key order: each quad lane's accumulator columns are whole 1:2 pairs.
  constexpr int kKeyOrder = DFSS_PATTERN_DENSE;
  constexpr bool kSparseProduct = Pattern == DFSS_PATTERN_1_2;
  constexpr int kStride = tf32_tile_stride(D);
  constexpr int kTileElements = kTileKeys * kStride;
  constexpr int kOutBlocks = D / 8;  // 8-column blocks of the output
  static_assert(kBlockRows == kTileKeys, "the Q tile and the K / V tiles share the tile size");
  static_assert(D % 32 == 0, "bank-conflict-free tiles need D a multiple of 32");

  const AttentionShape &shape = params.shape;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int group = lane / 4;
  const int quad = lane % 4;
  const QueryTilePlace place =
      place_query_tile(shape, params.seqlens_q, params.seqlens_k, params.query_tiles, work, warp, group);
  const int64_t batch = place.batch, head_q = place.head_q, head_kv = place.head_kv, first_row = place.first_row;
  const int64_t(&key_end)[2] = place.key_end;
  const int64_t key_steps = place.key_steps;

  const float *q = static_cast<const float *>(params.q) + batch * shape.q.batch + head_q * shape.q.head;
  const float *k = static_cast<const float *>(params.k) + batch * shape.k.batch + head_kv * shape.k.head;
  const float *v = static_cast<const float *>(params.v) + batch * shape.v.batch + head_kv * shape.v.head;

  float o[kOutBlocks][4];
#pragma unroll
  for (int n = 0; n < kOutBlocks; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.0f, 0.0f};  // this thread's part; the quad's parts are added at the end

  if (key_steps > 0) {
    float *q_tile = smem;
    float *k_tile = smem + kTileElements;
    float *v_tile = smem + 2 * kTileElements;
    load_f32_tile<D>(q_tile, q, shape.q.row, first_row, place.valid_q, NaturalRow{});
    load_f32_tile<D>(k_tile, k, shape.k.row, 0, place.valid_k, KeyRow<kKeyOrder>{});
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();

    // The warp's Q rows: A fragments are read from shared memory at every step (in registers, split, they would take
    // D registers a thread).
    const float *q_rows = q_tile + (warp * 16 + group) * kStride + quad;
    const int64_t warp_key_end = warp_seen_key_end(key_end);
    const int lane_key = key_of_score<kKeyOrder>(0, 0, quad);

    for (int64_t step = 0; step < key_steps; ++step) {
      const int64_t step_key = step * kTileKeys;
      load_f32_tile<D>(v_tile, v, shape.v.row, step_key, place.valid_k, Tf32ValueRow<Pattern>{});
      cp_async_commit();

      // 1. S = Q K^T: score block j holds tile rows 8j .. 8j + 7 of K; a thread, columns 2 quad, 2 quad + 1 of them.
      float s[kScoreBlocks][4];
#pragma unroll
      for (int j = 0; j < kScoreBlocks; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
      product_3xtf32_nt<D, kStride>(s, q_rows, k_tile + group * kStride + quad);

      // 2. Scale and masks. s[j][2r + e]: row r, key step_key + key_of_score(j, e, quad).
      const bool masked = step_key + kTileKeys > warp_key_end;
      scale_and_mask<kKeyOrder>(s, shape.scale, masked, key_end, step_key, lane_key);

      // 3. The N:M choice and the step's row maxima. 1:2: kept[u][r][h] is the kept score of row r in the pair of
      // score block 2u + h (keys 16u + 8h + 2 quad, + 1), the A element of P.V; metadata[c] serves the 16-key steps
      // 2c (selector 0) and 2c + 1 (selector 1).
      float step_max[2] = {-INFINITY, -INFINITY};
      float kept[kSparseProduct ? 4 : 1][2][2];
      uint32_t metadata[2] = {0u, 0u};
      if constexpr (kSparseProduct) {
        uint32_t shares[4][2];  // [u][h]: this quad lane's nibbles of both rows, where the words have them
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          uint32_t nibbles[2][2];  // [h][r]
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            const GroupChoice choice = select_1_of_2_pairs(s[2 * u][2 * r], s[2 * u][2 * r + 1], s[2 * u + 1][2 * r],
                                                           s[2 * u + 1][2 * r + 1]);
            kept[u][r][0] = choice.first;
            kept[u][r][1] = choice.second;
            nibbles[0][r] = tf32_nibble(choice.nibble & 1u);         // index of the kept key of pair (0, 1)
            nibbles[1][r] = tf32_nibble((choice.nibble >> 2) & 1u);  // pair (2, 3): bit 2 (bit 3 is always set)
            step_max[r] = fmaxf(step_max[r], choice.group_max);
          }
#pragma unroll
          for (int h = 0; h < 2; ++h) shares[u][h] = metadata_share(nibbles[h][0], nibbles[h][1], quad);
        }
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const uint32_t pair_shares[2][2] = {{shares[2 * c][0], shares[2 * c][1]},
                                              {shares[2 * c + 1][0], shares[2 * c + 1][1]}};
          metadata[c] = gather_metadata(pair_shares, quad, [](uint32_t value, int mask) {
            return __shfl_xor_sync(0xffffffffu, value, mask);
          });
        }
      } else {
#pragma unroll
        for (int j = 0; j < kScoreBlocks; ++j) {
#pragma unroll
          for (int r = 0; r < 2; ++r) step_max[r] = fmaxf(step_max[r], fmaxf(s[j][2 * r], s[j][2 * r + 1]));
        }
      }

      // 4. Online softmax: new running maxima, rescale what was accumulated under the old ones.
      float scaled_base[2];
      update_running_max(o, row_max, row_sum, step_max, scaled_base);

      // P, unnormalized, in place of the scores it comes from.
      if constexpr (kSparseProduct) {
#pragma unroll
        for (int u = 0; u < 4; ++u) {
#pragma unroll
          for (int r = 0; r < 2; ++r) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              kept[u][r][h] = exp2_approx(fmaf(kept[u][r][h], kLog2e, -scaled_base[r]));
              row_sum[r] += kept[u][r][h];
            }
          }
        }
      } else {
#pragma unroll
        for (int j = 0; j < kScoreBlocks; ++j) {
#pragma unroll
          for (int r = 0; r < 2; ++r) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              s[j][2 * r + e] = exp2_approx(fmaf(s[j][2 * r + e], kLog2e, -scaled_base[r]));
              row_sum[r] += s[j][2 * r + e];
            }
          }
        }
      }

      // V(step) has arrived for every thread, and no warp reads K(step) any more: bring K(step + 1).
      cp_async_wait<0>();
      __syncthreads();
      if (step + 1 < key_steps) {
        load_f32_tile<D>(k_tile, k, shape.k.row, step_key + kTileKeys, place.valid_k, KeyRow<kKeyOrder>{});
      }
      cp_async_commit();

      // 5. O += P V.
      if constexpr (kSparseProduct) {
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          // A: kept values quad (keys 0..7 of the 16) and quad + 4 (keys 8..15) of rows group and group + 8.
          const float a_values[4] = {kept[u][0][0], kept[u][1][0], kept[u][0][1], kept[u][1][1]};
          SplitTf32 a[4];
          split_tf32(a_values, a);
          const float *v_block = v_tile + 16 * u * kStride + group;
#pragma unroll
          for (int n = 0; n < kOutBlocks; ++n) {
            float b_values[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) b_values[i] = v_block[tf32_sparse_v_row(i, quad) * kStride + 8 * n];
            SplitTf32 b[4];
            split_tf32(b_values, b);
            if (u % 2 == 0) {
              mma_sp_m16n8k16_3xtf32<0>(o[n], a, b, metadata[u / 2]);
            } else {
              mma_sp_m16n8k16_3xtf32<1>(o[n], a, b, metadata[u / 2]);
            }
          }
        }
      } else {
#pragma unroll
        for (int j = 0; j < kScoreBlocks; ++j) {
          // A column quad is the score of tile row 8j + 2 quad (element 0), column quad + 4 that of row 8j + 2 quad + 1;
          // V's tile rows are in the order of K's, so B row quad (quad + 4) is V tile row 8j + 2 quad (+ 1).
          const float a_values[4] = {s[j][0], s[j][2], s[j][1], s[j][3]};
          SplitTf32 a[4];
          split_tf32(a_values, a);
          const float *v_rows = v_tile + (8 * j + 2 * quad) * kStride + group;
#pragma unroll
          for (int n = 0; n < kOutBlocks; ++n) {
            const float b_values[2] = {v_rows[8 * n], v_rows[kStride + 8 * n]};
            SplitTf32 b[2];
            split_tf32(b_values, b);
            mma_m16n8k8_3xtf32(o[n], a, b);
          }
        }
      }

      // K(step + 1) has arrived, and no warp reads V(step) any more.
      cp_async_wait<0>();
      __syncthreads();
    }
  }

  // 6. Out and lse.
  store_output_rows<float>(params, place, o, row_max, row_sum, quad);
}

template <int D, int Pattern>
__global__ void __launch_bounds__(kThreads) attention_fused_f32_kernel(FusedAttentionParams params) {
  // Tensor-core code exists for sm_80 and later only; the dispatch never launches this kernel on older devices.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  float *smem = reinterpret_cast<float *>(shared_bytes);
  for (int64_t work = blockIdx.x; work < params.work_items; work += gridDim.x) {
    attention_fused_f32_block<D, Pattern>(params, work, smem);
    __syncthreads();  // the next work item rewrites the tiles
  }
#else
  (void)params;
#endif
}

template <int D>
FusedKernels fused_attention_f32_kernels() {
  // No 2:4 kernel: dfss.h refuses float32 2:4 before any dispatch.
  return FusedKernels{attention_fused_f32_kernel<D, DFSS_PATTERN_DENSE>, attention_fused_f32_kernel<D, DFSS_PATTERN_1_2>,
                      nullptr};
}

}  // namespace fused
}  // namespace dfss
