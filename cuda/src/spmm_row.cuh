// Step 5 of dfss.h for one query row, by one thread block: out_i = sum over the kept slots of p * v[key], with
// the keys decoded from the metadata. Used by the staged spmm kernel and the fused reference.
#pragma once

#include <cstdint>

#include "attention_shape.h"
#include "dtype.cuh"
#include "layout.h"

namespace dfss {

// probs_row[C] (stored as Prob, already rounded to the input dtype) and metadata_row[W] (unused when dense)
// give row `row` of P; writes out[b, h, i, 0 .. Dv-1]. partials: shared memory of blockDim.x floats. All
// threads of the block call it.
//
// Work split: the block covers `columns` output columns at a time (Dv, or blockDim.x when Dv is larger); the
// `parts` groups of threads left over split the slots into contiguous ranges. Each thread accumulates its range
// in ascending slot order (= ascending key order) with fmaf in float32, and the parts' sums are added in part
// order. Slots with p == 0 (masked keys, pruned rows) add nothing and are skipped, as are slots past the end of
// the row, which name no key of v.
template <typename Prob, typename Io>
__device__ void spmm_row(const AttentionShape &shape, const Prob *probs_row, const uint32_t *metadata_row,
                         const Io *v, Io *out, int64_t row, float *partials) {
  const RowCoordinates at = row_coordinates(shape, row);
  const Io *v_head = v + at.batch * shape.v.batch + at.head_kv * shape.v.head;
  Io *out_row = out + at.batch * shape.out.batch + at.head_q * shape.out.head + at.i * shape.out.row;

  const int64_t values_per_row = shape.layout.values_per_row;
  const int threads = static_cast<int>(blockDim.x);
  const int columns = shape.head_dim_v < threads ? static_cast<int>(shape.head_dim_v) : threads;
  const int parts = threads / columns;
  const int column = static_cast<int>(threadIdx.x) % columns;
  const int part = static_cast<int>(threadIdx.x) / columns;
  const int64_t slots_per_part = (values_per_row + parts - 1) / parts;
  const int64_t slot_begin = part * slots_per_part;
  const int64_t slot_end = slot_begin + slots_per_part < values_per_row ? slot_begin + slots_per_part : values_per_row;

  for (int64_t first_column = 0; first_column < shape.head_dim_v; first_column += columns) {
    const int64_t d = first_column + column;
    float sum = 0.0f;
    if (part < parts && d < shape.head_dim_v) {
      for (int64_t c = slot_begin; c < slot_end; ++c) {
        const float p = to_float(probs_row[c]);
        if (p == 0.0f) continue;
        const int64_t key = key_of_slot(shape.layout, metadata_row, c);
        if (key >= shape.seq_k) continue;
        sum = fmaf(p, to_float(v_head[key * shape.v.row + d]), sum);
      }
    }
    partials[threadIdx.x] = sum;
    __syncthreads();
    if (part == 0 && d < shape.head_dim_v) {
      float total = 0.0f;
      for (int other = 0; other < parts; ++other) total += partials[other * columns + column];
      out_row[d] = from_float<Io>(total);
    }
    __syncthreads();  // partials is rewritten for the next columns
  }
}

}  // namespace dfss
