// Block-wide reductions in a fixed order, so that the same input gives the same bits on every run.
#pragma once

namespace dfss {

// Every thread of the block calls it with its partial value; every thread gets the result. `scratch` is shared
// memory of blockDim.x floats; blockDim.x must be a power of two. The partials are combined by a fixed tree:
// scratch[t] = op(scratch[t], scratch[t + stride]) for stride = blockDim.x / 2, ..., 1.
template <typename Op>
__device__ float block_reduce(float value, float *scratch, Op op) {
  const unsigned t = threadIdx.x;
  scratch[t] = value;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (t < stride) scratch[t] = op(scratch[t], scratch[t + stride]);
    __syncthreads();
  }
  const float result = scratch[0];
  __syncthreads();  // scratch may be reused as soon as this returns
  return result;
}

struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

struct SumOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};

}  // namespace dfss
