// The exponential of the fast kernels: exp(x) as 2^(x log2 e) on the MUFU unit (ex2.approx, relative error about
// 2^-22), with the log2(e) folded by the caller into an fma that it needs anyway. The reference kernels keep expf.
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

}  // namespace dfss
