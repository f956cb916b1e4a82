// Step 5 of dfss.h for one query row, by one thread block: out_i = sum over the kept slots of p * v[key], with
// the keys decoded from the metadata. Used by the staged spmm kernel, the fused reference and (as the product of a
// compressed row with a matrix) the reference backward.
#pragma once

#include <cstdint>

#include "attention_shape.h"
#include "dtype.cuh"
#include "layout.h"
#include "mask.h"

namespace dfss {

// out_row[d] = factor * sum over the slots c of a compressed row of weights_row[c] * matrix[key_c, d], for
// d = 0 .. width-1: the product of one compressed row (C = layout.values_per_row slots, keys decoded from
// metadata_row, unused when dense) with a [Nk, width] matrix whose row `key` starts at matrix + key * row_stride.
// Used for P v (spmm_row) and for the backward's dS k. partials: shared memory of blockDim.x floats. All threads
// of the block call it.
//
// Work split: the block covers `columns` output columns at a time (width, or blockDim.x when width is larger);
// the `parts` groups of threads left over split the slots into contiguous ranges. Each thread accumulates its
// range in ascending slot order (= ascending key order) with fmaf in float32, the parts' sums are added in part
// order, and the total is multiplied by factor. Slots with weight 0 (masked keys, pruned rows) add nothing and
// are skipped, as are slots of keys at or past key_limit (past the end of the row, or the batch entry's Nk_b).
template <typename Weight, typename Io>
__device__ void compressed_row_product(const CompressedLayout &layout, int64_t key_limit, const Weight *weights_row,
                                       const uint32_t *metadata_row, const Io *matrix, int64_t row_stride,
                                       int64_t width, float factor, Io *out_row, float *partials) {
  const int64_t values_per_row = layout.values_per_row;
  const int threads = static_cast<int>(blockDim.x);
  const int columns = width < threads ? static_cast<int>(width) : threads;
  const int parts = threads / columns;
  const int column = static_cast<int>(threadIdx.x) % columns;
  const int part = static_cast<int>(threadIdx.x) / columns;
  const int64_t slots_per_part = (values_per_row + parts - 1) / parts;
  const int64_t slot_begin = part * slots_per_part;
  const int64_t slot_end = slot_begin + slots_per_part < values_per_row ? slot_begin + slots_per_part : values_per_row;

  for (int64_t first_column = 0; first_column < width; first_column += columns) {
    const int64_t d = first_column + column;
    float sum = 0.0f;
    if (part < parts && d < width) {
      for (int64_t c = slot_begin; c < slot_end; ++c) {
        const float weight = to_float(weights_row[c]);
        if (weight == 0.0f) continue;
        const int64_t key = key_of_slot(layout, metadata_row, c);
        if (key >= key_limit) continue;
        sum = fmaf(weight, to_float(matrix[key * row_stride + d]), sum);
      }
    }
    partials[threadIdx.x] = sum;
    __syncthreads();
    if (part == 0 && d < width) {
      float total = 0.0f;
      for (int other = 0; other < parts; ++other) total += partials[other * columns + column];
      out_row[d] = from_float<Io>(total * factor);
    }
    __syncthreads();  // partials is rewritten for the next columns
  }
}

// probs_row[C] (stored as Prob, already rounded to the input dtype) and metadata_row[W] (unused when dense)
// give row `row` of P; writes out[b, h, i, 0 .. Dv-1] = sum over the kept slots of p * v[key], keys past the batch
// entry's Nk_b (seqlens_k, nullptr: Nk) left out. partials: shared memory of blockDim.x floats. All threads of the
// block call it.
template <typename Prob, typename Io>
__device__ void spmm_row(const AttentionShape &shape, const Prob *probs_row, const uint32_t *metadata_row,
                         const Io *v, const int32_t *seqlens_k, Io *out, int64_t row, float *partials) {
  const RowCoordinates at = row_coordinates(shape, row);
  const Io *v_head = v + at.batch * shape.v.batch + at.head_kv * shape.v.head;
  Io *out_row = out + at.batch * shape.out.batch + at.head_q * shape.out.head + at.i * shape.out.row;
  const int64_t valid_k = valid_length(seqlens_k, at.batch, shape.seq_k);
  compressed_row_product(shape.layout, valid_k, probs_row, metadata_row, v_head, shape.v.row, shape.head_dim_v, 1.0f,
                         out_row, partials);
}

}  // namespace dfss
