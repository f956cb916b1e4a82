// Steps 1-3 of dfss.h for one query row, by one thread block: scaled scores, masks, N:M pruning, written in the
// compressed layout (values and metadata). Used by the staged sddmm_prune kernel and the fused reference.
#pragma once

#include <cmath>
#include <cstdint>

#include "attention_shape.h"
#include "dtype.cuh"
#include "layout.h"
#include "mask.h"
#include "select.cuh"

namespace dfss {

// Keys scored per step; a multiple of the keys of one metadata word (32 for 2:4, 64 for 1:2), so each metadata
// word is built from one tile.
constexpr int kScoreTileKeys = 1024;

// q_row . k_row over d = 0 .. n-1 in float32, by one warp: lane l accumulates the products of d = l, l + 32, ...
// in ascending order (fmaf), then the 32 partial sums are added by a fixed butterfly. Every lane returns the
// same value.
template <typename In>
__device__ float warp_dot(const In *q_row, const In *k_row, int64_t n) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  float partial = 0.0f;
  for (int64_t d = lane; d < n; d += 32) partial = fmaf(to_float(q_row[d]), to_float(k_row[d]), partial);
  for (int offset = 16; offset > 0; offset /= 2) partial += __shfl_xor_sync(0xffffffffu, partial, offset);
  return partial;
}

// Step 1 for one allowed key: scale * (q_row . k_row). Every kernel that must make the forward's N:M choice again
// (the reference backward) computes scores through this function, so they are the same bits.
template <typename In>
__device__ float scaled_score(const AttentionShape &shape, const In *q_row, const In *k_row) {
  return shape.scale * warp_dot(q_row, k_row, shape.head_dim);
}

// Writes row `row` of the compressed scores: values_row[C] (kept scaled scores, -inf where masked or past the
// end, stored as Value) and, unless dense, metadata_row[W]. seqlens_q / seqlens_k: device arrays [B] or
// nullptr. tile_scores: shared memory of kScoreTileKeys floats. All threads of the block call it.
template <typename In, typename Value>
__device__ void sddmm_prune_row(const AttentionShape &shape, const In *q, const In *k, const int32_t *seqlens_q,
                                const int32_t *seqlens_k, int64_t row, Value *values_row, uint32_t *metadata_row,
                                float *tile_scores) {
  const RowCoordinates at = row_coordinates(shape, row);
  const int64_t valid_q = valid_length(seqlens_q, at.batch, shape.seq_q);
  const int64_t valid_k = valid_length(seqlens_k, at.batch, shape.seq_k);
  const int64_t key_end = allowed_key_end(at.i, valid_q, valid_k, shape.causal);
  const In *q_row = q + at.batch * shape.q.batch + at.head_q * shape.q.head + at.i * shape.q.row;
  const In *k_head = k + at.batch * shape.k.batch + at.head_kv * shape.k.head;

  const CompressedLayout &layout = shape.layout;
  const int64_t padded_keys = layout.groups * layout.m;  // the row's keys plus the past-the-end slots of the last group
  const int warp = static_cast<int>(threadIdx.x / 32);
  const int warps = static_cast<int>(blockDim.x / 32);

  for (int64_t tile_start = 0; tile_start < padded_keys; tile_start += kScoreTileKeys) {
    const int tile_keys = static_cast<int>(padded_keys - tile_start < kScoreTileKeys ? padded_keys - tile_start
                                                                                      : kScoreTileKeys);
    // Steps 1-2: one warp per key. Masked keys and keys past the end are -inf without a product.
    for (int t = warp; t < tile_keys; t += warps) {
      const int64_t j = tile_start + t;
      float score = -INFINITY;
      if (j < key_end) score = scaled_score(shape, q_row, k_head + j * shape.k.row);
      if (threadIdx.x % 32 == 0) tile_scores[t] = score;
    }
    __syncthreads();

    if (is_dense(layout)) {
      for (int t = static_cast<int>(threadIdx.x); t < tile_keys; t += static_cast<int>(blockDim.x)) {
        values_row[tile_start + t] = from_float<Value>(tile_scores[t]);
      }
    } else {
      // Step 3: one thread per metadata word, which covers groups_per_word whole groups of this tile.
      const int word_groups = groups_per_word(layout);
      const int tile_words = (tile_keys + word_groups * layout.m - 1) / (word_groups * layout.m);
      for (int w = static_cast<int>(threadIdx.x); w < tile_words; w += static_cast<int>(blockDim.x)) {
        const int64_t first_group = tile_start / layout.m + static_cast<int64_t>(w) * word_groups;
        uint32_t word = 0;
        for (int64_t g = first_group; g < first_group + word_groups && g < layout.groups; ++g) {
          float group_scores[kMaxGroupSize];
          for (int p = 0; p < layout.m; ++p) group_scores[p] = tile_scores[g * layout.m + p - tile_start];
          const unsigned kept = select_n_of_m(group_scores, layout.n, layout.m);
          int64_t slot = g * layout.n;  // kept values of group g fill slots [gN, gN + N) in ascending key order
          for (int p = 0; p < layout.m; ++p) {
            if ((kept >> p & 1u) == 0) continue;
            values_row[slot] = from_float<Value>(group_scores[p]);
            word |= static_cast<uint32_t>(p) << index_shift(layout, slot);
            ++slot;
          }
        }
        metadata_row[(tile_start / layout.m) / word_groups + w] = word;
      }
    }
    __syncthreads();  // the next tile overwrites tile_scores
  }
}

}  // namespace dfss
