// float32 products on tensor cores with float32 accuracy (3xTF32). A tensor core reads a .tf32 operand as 1 + 8 + 10
// bits; a float32 x is therefore split as x = big + small, big = x rounded to tf32 (cvt.rna) and small = the rest
// rounded to tf32, and a b = big_a big_b + big_a small_b + small_a big_b + small_a small_b, of which the last term
// (below 2^-22 |a b|) is dropped: three mma per product, small terms first. Each product then carries a relative
// error of about 2^-21 instead of tf32's 2^-11, and inputs that tf32 holds exactly (small integers: small = 0)
// give exact products, so exact scores stay exact. Measured on a host model of this split against float64 (random
// normal and uniform [0, 1) inputs, dot products of 32 to 1024 terms, float32 accumulation per k8 chunk): the error
// stays below 1.5e-7 of sum |a_i b_i|, where a float32 fma loop reaches 3e-7 and one tf32 product 3.5e-4.
//
// Wrappers of mma.sync m16n8k8 .tf32 and mma.sp::ordered_metadata m16n8k16 .tf32 (1:2 sparse A), PTX ISA "Matrix
// fragments for mma.m16n8k8" and "... for sparse mma.m16n8k16 with .tf32"; with group = lane / 4, quad = lane % 4:
//   A (16 x 8, row major):  a0 = (group, quad), a1 = (group + 8, quad), a2 = (group, quad + 4),
//                           a3 = (group + 8, quad + 4); for the sparse m16n8k16 the same over the 16 x 8 kept
//                           values, kept value c of a row being the one kept of columns 2c, 2c + 1.
//   B (k x 8, column major): b_i = (row quad + 4 i, column group); 2 registers for k = 8, 4 for the sparse k = 16.
//   C / D (16 x 8, float):   d0, d1 = (group, 2 quad .. 2 quad + 1), d2, d3 = (group + 8, 2 quad ..).
//   Sparse metadata: 4 bits per kept value, 0b0100 when it is column 2c, 0b1110 when it is column 2c + 1 (the
//   tf32 element counts as two 16-bit halves of a 2:4 group); with sparsity selector s, quad lane 2s holds kept
//   values 0..3 of a row and quad lane 2s + 1 kept values 4..7, row group in bits 0..15, row group + 8 in bits
//   16..31 (tf32_fragments.h builds these words).
// Every wrapper is a trap below sm_80: the kernels that use them are compiled out there.
#pragma once

#include <cstdint>

#include "mma.cuh"

namespace dfss {

// A float32 operand split for 3xTF32: big + small == x up to 2^-22 |x|.
struct SplitTf32 {
  uint32_t big, small;
};

__device__ __forceinline__ uint32_t round_to_tf32(float x) {
#if DFSS_MMA_AVAILABLE
  uint32_t bits;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(bits) : "f"(x));
  return bits;
#else
  (void)x;
  __trap();
  return 0u;
#endif
}

// Infinities and NaN stay whole in big (small = 0), so that they reach the product as float32 would carry them.
__device__ __forceinline__ SplitTf32 split_tf32(float x) {
  const uint32_t big = round_to_tf32(x);
  const float rest = x - __uint_as_float(big);
  return SplitTf32{big, round_to_tf32(fabsf(rest) < INFINITY ? rest : 0.0f)};
}

template <int N>
__device__ __forceinline__ void split_tf32(const float (&x)[N], SplitTf32 (&parts)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) parts[i] = split_tf32(x[i]);
}

// d += a * b, one m16n8k8 .tf32 product.
__device__ __forceinline__ void mma_m16n8k8_tf32(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                                 uint32_t b0, uint32_t b1) {
#if DFSS_MMA_AVAILABLE
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
  (void)d, (void)a0, (void)a1, (void)a2, (void)a3, (void)b0, (void)b1;
  __trap();
#endif
}

// d += a * b with sparse A (1:2), one m16n8k16 .tf32 product.
template <int Selector>
__device__ __forceinline__ void mma_sp_m16n8k16_tf32(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                                     uint32_t a3, uint32_t b0, uint32_t b1, uint32_t b2, uint32_t b3,
                                                     uint32_t metadata) {
  static_assert(Selector == 0 || Selector == 1, "sparsity selector of m16n8k16 .tf32: 0 or 1");
#if DFSS_MMA_AVAILABLE
  asm volatile(
      "mma.sp::ordered_metadata.sync.aligned.m16n8k16.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, "
      "{%4, %5, %6, %7}, {%8, %9, %10, %11}, {%0, %1, %2, %3}, %12, %13;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "r"(b2), "r"(b3), "r"(metadata), "n"(Selector));
#else
  (void)d, (void)a0, (void)a1, (void)a2, (void)a3, (void)b0, (void)b1, (void)b2, (void)b3, (void)metadata;
  __trap();
#endif
}

// d += a * b in float32 accuracy: m16n8k8 3xTF32 (a: a0..a3 of the layout above, b: b0, b1).
__device__ __forceinline__ void mma_m16n8k8_3xtf32(float (&d)[4], const SplitTf32 (&a)[4], const SplitTf32 (&b)[2]) {
  mma_m16n8k8_tf32(d, a[0].small, a[1].small, a[2].small, a[3].small, b[0].big, b[1].big);
  mma_m16n8k8_tf32(d, a[0].big, a[1].big, a[2].big, a[3].big, b[0].small, b[1].small);
  mma_m16n8k8_tf32(d, a[0].big, a[1].big, a[2].big, a[3].big, b[0].big, b[1].big);
}

// d += a * b with 1:2 sparse A in float32 accuracy: m16n8k16 3xTF32, the same metadata for the three products.
template <int Selector>
__device__ __forceinline__ void mma_sp_m16n8k16_3xtf32(float (&d)[4], const SplitTf32 (&a)[4],
                                                       const SplitTf32 (&b)[4], uint32_t metadata) {
  mma_sp_m16n8k16_tf32<Selector>(d, a[0].small, a[1].small, a[2].small, a[3].small, b[0].big, b[1].big, b[2].big,
                                 b[3].big, metadata);
  mma_sp_m16n8k16_tf32<Selector>(d, a[0].big, a[1].big, a[2].big, a[3].big, b[0].small, b[1].small, b[2].small,
                                 b[3].small, metadata);
  mma_sp_m16n8k16_tf32<Selector>(d, a[0].big, a[1].big, a[2].big, a[3].big, b[0].big, b[1].big, b[2].big, b[3].big,
                                 metadata);
}

// acc[j] += A B_j^T in float32 accuracy (3xTF32, m16n8k8) over Width columns, for the warp's 16 rows of A and rows
// 8j .. 8j + 7 of B (j < Blocks): the S = Q K^T of a 64-key tile. a_at points at A's row `group`, column `quad` (the
// warp's first row counted as 0), b_at at B's row `group`, column `quad`; both have Stride floats a row.
template <int Width, int Stride, int Blocks>
__device__ __forceinline__ void product_3xtf32_nt(float (&acc)[Blocks][4], const float *a_at, const float *b_at) {
  static_assert(Width % 8 == 0, "whole k8 steps");
  // Two k-steps at a time: a full unroll keeps too many fragments in flight (spills at Width = 128).
#pragma unroll 2
  for (int ks = 0; ks < Width / 8; ++ks) {
    const float *a_step = a_at + 8 * ks;
    const float a_values[4] = {a_step[0], a_step[8 * Stride], a_step[4], a_step[8 * Stride + 4]};
    SplitTf32 a[4];
    split_tf32(a_values, a);
#pragma unroll
    for (int j = 0; j < Blocks; ++j) {
      const float *b_step = b_at + 8 * j * Stride + 8 * ks;
      const float b_values[2] = {b_step[0], b_step[4]};
      SplitTf32 b[2];
      split_tf32(b_values, b);
      mma_m16n8k8_3xtf32(acc[j], a, b);
    }
  }
}

}  // namespace dfss
