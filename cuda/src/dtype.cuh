// Element types of dfss_dtype on the device: loads to float32 and stores from float32 with rounding to nearest
// even (NaN, infinities and subnormals kept), and the dispatch from dfss_dtype to a C++ type.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "dfss.h"

namespace dfss {

__device__ inline float to_float(float x) { return x; }
__device__ inline float to_float(__half x) { return __half2float(x); }
__device__ inline float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ T from_float(float x);
template <>
__device__ inline float from_float<float>(float x) { return x; }
template <>
__device__ inline __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// x rounded to T and read back: the value a T tensor would hold.
template <typename T>
__device__ float round_to(float x) {
  return to_float(from_float<T>(x));
}

// lo and hi rounded to T (to nearest even), packed low first: the register of a tensor-core fragment.
template <typename T>
__device__ __forceinline__ uint32_t pack_rounded(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack_rounded<__half>(float lo, float hi) {
  const __half2 pair = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t *>(&pair);
}
template <>
__device__ __forceinline__ uint32_t pack_rounded<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t *>(&pair);
}

// The two T elements of a fragment register, low first, as float32 (exact).
template <typename T>
__device__ __forceinline__ float2 unpack_floats(uint32_t word);
template <>
__device__ __forceinline__ float2 unpack_floats<__half>(uint32_t word) {
  return __half22float2(*reinterpret_cast<const __half2 *>(&word));
}
template <>
__device__ __forceinline__ float2 unpack_floats<__nv_bfloat16>(uint32_t word) {
  return make_float2(__uint_as_float(word << 16), __uint_as_float(word & 0xFFFF0000u));
}

template <typename T>
struct TypeTag {
  using type = T;
};

// Calls body(TypeTag<T>{}) with T the element type of `dtype` (validated before).
template <typename Body>
auto dispatch_dtype(dfss_dtype dtype, Body &&body) {
  switch (dtype) {
    case DFSS_DTYPE_FLOAT16: return body(TypeTag<__half>{});
    case DFSS_DTYPE_BFLOAT16: return body(TypeTag<__nv_bfloat16>{});
    case DFSS_DTYPE_FLOAT32: break;
  }
  return body(TypeTag<float>{});
}

}  // namespace dfss
