// Steps 4, 6 and 7 of dfss.h for one compressed row, by one thread block: softmax over the finite values, the
// probabilities rounded to the input dtype, and the row's log-sum-exp. Used by the staged compressed_softmax
// kernel and the fused reference.
#pragma once

#include <cmath>
#include <cstdint>

#include "block_reduce.cuh"
#include "dtype.cuh"

namespace dfss {

// Reads values_in[C] and writes values_out[C] (may be the same array): p = exp(s - max) / sum over the finite s,
// rounded to In (the dtype P has before P.V) and stored as Value. A row with no finite value gets p = 0 and
// lse = -inf. lse: the row's float32 entry, or nullptr. reduce_scratch: shared memory of blockDim.x floats. All
// threads of the block call it. Sums run per thread over slots c = t, t + blockDim.x, ... and then through
// block_reduce's fixed tree.
template <typename In, typename Value>
__device__ void compressed_softmax_row(const Value *values_in, Value *values_out, int64_t values_per_row, float *lse,
                                       float *reduce_scratch) {
  const int64_t first = threadIdx.x;
  const int64_t step = blockDim.x;

  float max_value = -INFINITY;
  for (int64_t c = first; c < values_per_row; c += step) max_value = fmaxf(max_value, to_float(values_in[c]));
  max_value = block_reduce(max_value, reduce_scratch, MaxOp{});

  if (max_value == -INFINITY) {  // nothing finite is left: zeros, never NaN
    for (int64_t c = first; c < values_per_row; c += step) values_out[c] = from_float<Value>(0.0f);
    if (lse != nullptr && threadIdx.x == 0) *lse = -INFINITY;
    return;
  }

  float sum = 0.0f;
  for (int64_t c = first; c < values_per_row; c += step) sum += expf(to_float(values_in[c]) - max_value);
  sum = block_reduce(sum, reduce_scratch, SumOp{});

  // Every read of values_in is done (block_reduce synchronizes), so writing in place is safe.
  for (int64_t c = first; c < values_per_row; c += step) {
    const float p = expf(to_float(values_in[c]) - max_value) / sum;
    values_out[c] = from_float<Value>(round_to<In>(p));
  }
  if (lse != nullptr && threadIdx.x == 0) *lse = max_value + logf(sum);
}

}  // namespace dfss
