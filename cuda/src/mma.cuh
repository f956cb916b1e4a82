// Thin wrappers of the warp-level tensor-core and asynchronous-copy PTX instructions of sm_80 and later: mma.sync
// m16n8k16, mma.sp::ordered_metadata m16n8k32 (2:4 sparse A), ldmatrix and cp.async. Fragment layouts are those of
// the PTX ISA ("Matrix fragments for mma.m16n8k16", "Matrix fragments for sparse mma.m16n8k32"); with
// group = lane / 4 and quad_lane = lane % 4:
//   A (16 x 16, row major):  a0 = (group, 2q..2q+1), a1 = (group + 8, 2q..), a2 = (group, 8 + 2q..),
//                            a3 = (group + 8, 8 + 2q..); for the sparse m16n8k32 the same over the 16 x 16
//                            compressed values (2 kept of every 4 logical columns).
//   B (k x 8, column major): b_r = (rows 8r + 2q .. 8r + 2q + 1, column group); 2 registers for k = 16, 4 for the
//                            sparse k = 32.
//   C / D (16 x 8, float):   d0, d1 = (group, 2q..2q+1), d2, d3 = (group + 8, 2q..2q+1).
// Every wrapper is a no-op trap below sm_80: the kernels that use them are compiled out there.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace dfss {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define DFSS_MMA_AVAILABLE 1
#else
#define DFSS_MMA_AVAILABLE 0
#endif

// The PTX type name of a 16-bit element type, spliced into the instruction strings.
template <typename T>
struct MmaElement;
template <>
struct MmaElement<__half> {
  static constexpr bool is_bf16 = false;
};
template <>
struct MmaElement<__nv_bfloat16> {
  static constexpr bool is_bf16 = true;
};

// d += a * b, m16n8k16, fp16 or bf16 inputs, fp32 accumulators.
template <typename T>
__device__ __forceinline__ void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if DFSS_MMA_AVAILABLE
  if constexpr (MmaElement<T>::is_bf16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
#else
  (void)d, (void)a, (void)b;
  __trap();
#endif
}

// d += a * b, m16n8k32 with A 2:4 sparse: a holds the 16 x 16 kept values, `metadata` their in-group indices
// (PTX ISA "sparse matrix storage": per row, 4 bits per group of 4 columns, the first kept index in the low 2 bits;
// with sparsity selector 0, lanes with quad_lane 0 and 1 supply it: quad_lane 0 the groups of columns 0..15,
// quad_lane 1 those of columns 16..31, each with row `group` in bits 0..15 and row group + 8 in bits 16..31).
// The indices of a group must ascend (ordered metadata) and differ. With Selector 1, quad lanes 2 and 3 supply the
// metadata instead (same layout), so one register can carry the metadata of two consecutive mma.sp.
template <typename T, int Selector = 0>
__device__ __forceinline__ void mma_sp_m16n8k32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[4],
                                                uint32_t metadata) {
  static_assert(Selector == 0 || Selector == 1, "sparsity selector of m16n8k32: 0 or 1");
#if DFSS_MMA_AVAILABLE
  if constexpr (MmaElement<T>::is_bf16) {
    asm volatile(
        "mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9, %10, %11}, {%0, %1, %2, %3}, %12, %13;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]), "r"(metadata),
          "n"(Selector));
  } else {
    asm volatile(
        "mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9, %10, %11}, {%0, %1, %2, %3}, %12, %13;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]), "r"(metadata),
          "n"(Selector));
  }
#else
  (void)d, (void)a, (void)b, (void)metadata;
  __trap();
#endif
}

__device__ __forceinline__ uint32_t shared_address(const void *pointer) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(pointer));
}

// Four 8 x 8 matrices of 16-bit elements from shared memory: lane 8j + r gives the address of row r of matrix j
// (16 contiguous bytes); r[j] receives matrix j, lane l holding elements (l / 4, 2 (l % 4) .. 2 (l % 4) + 1).
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void *row) {
#if DFSS_MMA_AVAILABLE
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
#else
  (void)r, (void)row;
  __trap();
#endif
}

// As ldmatrix_x4, each matrix transposed: lane l receives elements (2 (l % 4) .. 2 (l % 4) + 1, l / 4) of it.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void *row) {
#if DFSS_MMA_AVAILABLE
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
#else
  (void)r, (void)row;
  __trap();
#endif
}

// 16 bytes from global to shared memory, asynchronously; with `fill_zero` nothing is read and the 16 bytes are
// zeros (source rows past the end of a tensor). Both addresses are 16-byte aligned.
__device__ __forceinline__ void cp_async_16(void *shared, const void *global, bool fill_zero) {
#if DFSS_MMA_AVAILABLE
  const int source_bytes = fill_zero ? 0 : 16;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(shared)), "l"(global),
               "r"(source_bytes)
               : "memory");
#else
  (void)shared, (void)global, (void)fill_zero;
  __trap();
#endif
}

// Closes the group of the cp.async calls issued since the last commit.
__device__ __forceinline__ void cp_async_commit() {
#if DFSS_MMA_AVAILABLE
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits until at most `Pending` committed groups of this thread are still in flight.
template <int Pending>
__device__ __forceinline__ void cp_async_wait() {
#if DFSS_MMA_AVAILABLE
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory");
#endif
}

// Two 16-bit elements packed low-first into one register, as the fragments hold them.
__device__ __forceinline__ uint32_t pack_bits(uint16_t low, uint16_t high) {
  return static_cast<uint32_t>(low) | (static_cast<uint32_t>(high) << 16);
}

}  // namespace dfss
