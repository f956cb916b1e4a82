// The float math of the fast kernels: the exponential, exp(x) as 2^(x log2 e) on the MUFU unit (ex2.approx, relative
// error about 2^-22), with the log2(e) folded by the caller into an fma that it needs anyway (the reference kernels
// keep expf); maxima that keep NaN; sums and maxima over the lanes that share a row of an mma fragment.
#pragma once

namespace dfss {

constexpr float kLog2e = 1.4426950408889634f;

// 2^x, with 2^-inf = 0 (masked and pruned scores) and subnormal results flushed to 0.
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// exp(value - max) with max_log2e = max log2(e): one fma and one MUFU op.
__device__ __forceinline__ float exp_below(float value, float max_log2e) {
  return exp2_approx(fmaf(value, kLog2e, -max_log2e));
}

// The larger of a and b, NaN when either is (max.NaN): a maximum of scores taken with it is NaN exactly when some
// score is, which tells a kernel whether the cheaper NaN-free choice (select.cuh) applies, at no cost beyond the
// maximum.
__device__ __forceinline__ float max_or_nan(float a, float b) {
  float larger;
  asm("max.NaN.f32 %0, %1, %2;\n" : "=f"(larger) : "f"(a), "f"(b));
  return larger;
}

// The largest (fmaxf) and the sum of x over the 4 lanes of a quad, the lanes that share a row of an mma fragment.
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

}  // namespace dfss
