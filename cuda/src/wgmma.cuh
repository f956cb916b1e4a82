// Thin wrappers of Hopper's warpgroup-level tensor-core instructions (wgmma, PTX ISA "Asynchronous Warpgroup Level
// Matrix Multiply-Accumulate Instructions"), sm_90a only: the shared-memory matrix descriptor, the fences, and the
// products the Hopper kernels issue (fp16 / bf16 in, fp32 accumulators):
//   - scores:  D[64 x 64]  (+)= A[64 x 16] B[16 x 64], A and B from shared memory, both K-major;
//   - dense P.V:  D[64 x N] += A[64 x 16] B[16 x N], A from registers, B from shared memory N-major;
//   - sparse P.V: D[64 x N] += A[64 x 32] B[32 x N], A 2:4 sparse from registers (16 kept columns a row) with its
//     metadata register and sparsity selector, B as above;
//   - the backward's P^T dO and dS^T Q: D[64 x N] += A[64 x 16] B[16 x N], A and B from shared memory, both stored
//     M- / N-major (A as 16 rows of its 64 columns' elements: P and dS as [query row][key] tiles).
// A warpgroup is 4 consecutive warps; warp w of it owns accumulator rows 16w .. 16w + 15, laid out as 8-column
// m16n8 accumulators: d[n][0..3] = (group, 8n + 2 quad, + 1), (group + 8, 8n + 2 quad, + 1), with group = lane / 4
// and quad = lane % 4. The register A operands have the layout of mma.sync m16n8k16 A (dense) and of
// mma.sp m16n8k32 A with its metadata (sparse) per warp, so the warp-level fragments of mma.cuh carry over.
// Outside sm_90a the products trap and the fences do nothing: the kernels that use them are compiled out there.
#pragma once

#include <cstdint>

#include "mma.cuh"

namespace dfss {

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define DFSS_WGMMA_AVAILABLE 1
#else
#define DFSS_WGMMA_AVAILABLE 0
#endif

// The descriptor of a matrix in shared memory in the 128-byte swizzle layout: rows of 64 16-bit elements (128 bytes),
// 8-row atoms of 1024 bytes, the 16-byte unit u of row r stored at unit u ^ (r % 8) (SwizzledTile,
// attention_fused_wgmma.cuh). The tile starts at `start` (1024-byte aligned); at(bytes) is the descriptor of the
// matrix `bytes` further on (a multiple of 32 bytes along K for a K-major operand, whole atoms otherwise).
//   stride_bytes: from one group of 8 rows to the next (1024 here);
//   leading_bytes: K-major: unused; N-major: from one 64-column panel to the next.
// Built once per tile, so that each product adds a constant to the low word (where the fields were rebuilt per
// product, about six uniform instructions a descriptor: the SASS, bench/NOTES.md v5). Shared-memory addresses stay
// below 2^18, so the 14-bit start field never carries.
struct SwizzledDescriptor {
  uint32_t low;   // start address >> 4 (bits 0-13), leading byte offset >> 4 (bits 16-29)
  uint32_t high;  // stride byte offset >> 4 (bits 32-45), swizzle mode 1 = 128 bytes (bits 62-63)

  __device__ __forceinline__ SwizzledDescriptor(const void *start, uint32_t leading_bytes, uint32_t stride_bytes)
      : low(((shared_address(start) & 0x3FFFFu) >> 4) | (((leading_bytes >> 4) & 0x3FFFu) << 16)),
        high(((stride_bytes >> 4) & 0x3FFFu) | (1u << 30)) {}

  __device__ __forceinline__ uint64_t at(uint32_t bytes) const {
    return (static_cast<uint64_t>(high) << 32) | (low + (bytes >> 4));
  }
};

// Orders this thread's earlier register writes (accumulators, A fragments) before the warpgroup's next wgmma.
__device__ __forceinline__ void wgmma_fence() {
#if DFSS_WGMMA_AVAILABLE
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}

// Closes the group of the wgmma issued since the last commit.
__device__ __forceinline__ void wgmma_commit() {
#if DFSS_WGMMA_AVAILABLE
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}

// Waits until at most `Pending` committed wgmma groups of the warpgroup are in flight.
template <int Pending>
__device__ __forceinline__ void wgmma_wait() {
#if DFSS_WGMMA_AVAILABLE
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(Pending) : "memory");
#endif
}

// Shared memory written through the generic proxy (plain stores, cp.async) becomes visible to the wgmma that read it
// after this fence in each writing thread, then a barrier.
__device__ __forceinline__ void fence_proxy_async_shared() {
#if DFSS_WGMMA_AVAILABLE
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// Keeps the compiler from moving reads or writes of accumulators across a wgmma and its wait.
template <int Blocks>
__device__ __forceinline__ void fence_accumulators(float (&d)[Blocks][4]) {
#pragma unroll
  for (int n = 0; n < Blocks; ++n) {
#pragma unroll
    for (int i = 0; i < 4; ++i) asm volatile("" : "+f"(d[n][i])::"memory");
  }
}

#define DFSS_WGMMA_BLOCK(n) "+f"(d[n][0]), "+f"(d[n][1]), "+f"(d[n][2]), "+f"(d[n][3])
#define DFSS_WGMMA_ACC64                                                                                        \
  DFSS_WGMMA_BLOCK(0), DFSS_WGMMA_BLOCK(1), DFSS_WGMMA_BLOCK(2), DFSS_WGMMA_BLOCK(3), DFSS_WGMMA_BLOCK(4),      \
      DFSS_WGMMA_BLOCK(5), DFSS_WGMMA_BLOCK(6), DFSS_WGMMA_BLOCK(7)
#define DFSS_WGMMA_ACC128                                                                                       \
  DFSS_WGMMA_ACC64, DFSS_WGMMA_BLOCK(8), DFSS_WGMMA_BLOCK(9), DFSS_WGMMA_BLOCK(10), DFSS_WGMMA_BLOCK(11),       \
      DFSS_WGMMA_BLOCK(12), DFSS_WGMMA_BLOCK(13), DFSS_WGMMA_BLOCK(14), DFSS_WGMMA_BLOCK(15)
// The accumulator operands %0 .. %(N / 2 - 1), then those after them: A's four registers and B's descriptor.
#define DFSS_WGMMA_D64 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define DFSS_WGMMA_D128 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define DFSS_WGMMA_AB64 "{%32, %33, %34, %35}, %36"
#define DFSS_WGMMA_AB128 "{%64, %65, %66, %67}, %68"
#define DFSS_WGMMA_META64 "%37, %38"
#define DFSS_WGMMA_META128 "%69, %70"

// d (+)= A B with m64n64k16: A (64 x 16) at descriptor a, B (16 x 64, stored as 64 rows of K) at descriptor b, both
// K-major. Accumulate false overwrites d, and then d's registers are outputs only: no earlier value of theirs is an
// input of the wgmma (ptxas serializes wgmma whose input registers other instructions write while a wgmma group is
// in flight, as the softmax does to the previous S in pipelined_key_steps).
#define DFSS_WGMMA_OUT_BLOCK(n) "=f"(d[n][0]), "=f"(d[n][1]), "=f"(d[n][2]), "=f"(d[n][3])
#define DFSS_WGMMA_OUT64                                                                                        \
  DFSS_WGMMA_OUT_BLOCK(0), DFSS_WGMMA_OUT_BLOCK(1), DFSS_WGMMA_OUT_BLOCK(2), DFSS_WGMMA_OUT_BLOCK(3),            \
      DFSS_WGMMA_OUT_BLOCK(4), DFSS_WGMMA_OUT_BLOCK(5), DFSS_WGMMA_OUT_BLOCK(6), DFSS_WGMMA_OUT_BLOCK(7)
#define DFSS_WGMMA_SS(TYPE, ACCUMULATORS)                                                                      \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                                   \
               "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " " DFSS_WGMMA_D64                    \
               ", %32, %33, p, 1, 1, 0, 0;\n}\n"                                                               \
               : ACCUMULATORS                                                                                  \
               : "l"(a), "l"(b), "r"(static_cast<int>(Accumulate)))

template <typename T, bool Accumulate>
__device__ __forceinline__ void wgmma_m64n64k16_ss(float (&d)[8][4], uint64_t a, uint64_t b) {
#if DFSS_WGMMA_AVAILABLE
  if constexpr (MmaElement<T>::is_bf16 && Accumulate) {
    DFSS_WGMMA_SS("bf16", DFSS_WGMMA_ACC64);
  } else if constexpr (MmaElement<T>::is_bf16) {
    DFSS_WGMMA_SS("bf16", DFSS_WGMMA_OUT64);
  } else if constexpr (Accumulate) {
    DFSS_WGMMA_SS("f16", DFSS_WGMMA_ACC64);
  } else {
    DFSS_WGMMA_SS("f16", DFSS_WGMMA_OUT64);
  }
#else
  (void)d, (void)a, (void)b;
  __trap();
#endif
}

// d += A B with m64nNk16 (N = 64 or 128): A (64 x 16) in registers (per warp the mma.sync m16n8k16 A fragment of its
// 16 rows), B (16 x N) at descriptor b, N-major (rows of N contiguous elements).
#define DFSS_WGMMA_RS(N, TYPE)                                                                                 \
  asm volatile("wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TYPE "." TYPE " " DFSS_WGMMA_D##N ", "           \
               DFSS_WGMMA_AB##N ", 1, 1, 1, 1;\n"                                                               \
               : DFSS_WGMMA_ACC##N                                                                             \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b))

template <typename T, int N>
__device__ __forceinline__ void wgmma_m64nNk16_rs(float (&d)[N / 8][4], const uint32_t (&a)[4], uint64_t b) {
  static_assert(N == 64 || N == 128, "wgmma P.V: N = 64 or 128");
#if DFSS_WGMMA_AVAILABLE
  constexpr bool bf16 = MmaElement<T>::is_bf16;
  if constexpr (N == 64 && bf16) {
    DFSS_WGMMA_RS(64, "bf16");
  } else if constexpr (N == 64) {
    DFSS_WGMMA_RS(64, "f16");
  } else if constexpr (bf16) {
    DFSS_WGMMA_RS(128, "bf16");
  } else {
    DFSS_WGMMA_RS(128, "f16");
  }
#else
  (void)d, (void)a, (void)b;
  __trap();
#endif
}

// d += A B with m64nNk16 (N = 64 or 128): A (64 x 16) at descriptor a, M-major (stored as 16 rows of 64 contiguous
// elements, one 128-byte swizzle row each), B (16 x N) at descriptor b, N-major.
#define DFSS_WGMMA_DESC64 "%32, %33"
#define DFSS_WGMMA_DESC128 "%64, %65"
#define DFSS_WGMMA_SS_MN(N, TYPE)                                                                              \
  asm volatile("wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TYPE "." TYPE " " DFSS_WGMMA_D##N ", "           \
               DFSS_WGMMA_DESC##N ", 1, 1, 1, 1, 1;\n"                                                         \
               : DFSS_WGMMA_ACC##N                                                                             \
               : "l"(a), "l"(b))

template <typename T, int N>
__device__ __forceinline__ void wgmma_m64nNk16_ss_mn_major(float (&d)[N / 8][4], uint64_t a, uint64_t b) {
  static_assert(N == 64 || N == 128, "wgmma P^T dO: N = 64 or 128");
#if DFSS_WGMMA_AVAILABLE
  constexpr bool bf16 = MmaElement<T>::is_bf16;
  if constexpr (N == 64 && bf16) {
    DFSS_WGMMA_SS_MN(64, "bf16");
  } else if constexpr (N == 64) {
    DFSS_WGMMA_SS_MN(64, "f16");
  } else if constexpr (bf16) {
    DFSS_WGMMA_SS_MN(128, "bf16");
  } else {
    DFSS_WGMMA_SS_MN(128, "f16");
  }
#else
  (void)d, (void)a, (void)b;
  __trap();
#endif
}

// d += A B with m64nNk32, A 2:4 sparse: a holds the kept values (per warp the mma.sp m16n8k32 A fragment of its 16
// rows), `metadata` their in-group indices in the mma.sp layout (quad lanes 2 Selector and 2 Selector + 1 supply
// them); B (32 x N) at descriptor b, N-major.
#define DFSS_WGMMA_SP(N, TYPE)                                                                                 \
  asm volatile("wgmma.mma_async.sp.sync.aligned.m64n" #N "k32.f32." TYPE "." TYPE " " DFSS_WGMMA_D##N ", "        \
               DFSS_WGMMA_AB##N ", " DFSS_WGMMA_META##N ", 1, 1, 1, 1;\n"                                      \
               : DFSS_WGMMA_ACC##N                                                                             \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(metadata), "n"(Selector))

template <typename T, int N, int Selector>
__device__ __forceinline__ void wgmma_sp_m64nNk32_rs(float (&d)[N / 8][4], const uint32_t (&a)[4], uint64_t b,
                                                     uint32_t metadata) {
  static_assert(N == 64 || N == 128, "wgmma P.V: N = 64 or 128");
  static_assert(Selector == 0 || Selector == 1, "sparsity selector of m64nNk32: 0 or 1");
#if DFSS_WGMMA_AVAILABLE
  constexpr bool bf16 = MmaElement<T>::is_bf16;
  if constexpr (N == 64 && bf16) {
    DFSS_WGMMA_SP(64, "bf16");
  } else if constexpr (N == 64) {
    DFSS_WGMMA_SP(64, "f16");
  } else if constexpr (bf16) {
    DFSS_WGMMA_SP(128, "bf16");
  } else {
    DFSS_WGMMA_SP(128, "f16");
  }
#else
  (void)d, (void)a, (void)b, (void)metadata;
  __trap();
#endif
}

#undef DFSS_WGMMA_BLOCK
#undef DFSS_WGMMA_ACC64
#undef DFSS_WGMMA_ACC128
#undef DFSS_WGMMA_D64
#undef DFSS_WGMMA_D128
#undef DFSS_WGMMA_AB64
#undef DFSS_WGMMA_AB128
#undef DFSS_WGMMA_META64
#undef DFSS_WGMMA_META128
#undef DFSS_WGMMA_SS
#undef DFSS_WGMMA_RS
#undef DFSS_WGMMA_SP

}  // namespace dfss
