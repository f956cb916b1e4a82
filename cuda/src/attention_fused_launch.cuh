// What the dispatch of the fused tensor-core forward (attention_fused.cu) knows of its kernels: their parameters,
// their shared memory, and one set of kernels (dense, 1:2, 2:4) per element type and head dimension, each set
// compiled in its own file (attention_fused_<dtype>_d<D>.cu, float32: attention_fused_f32_d<D>.cu) so that the
// builds run in parallel.
#pragma once

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstddef>
#include <cstdint>

#include "attention_fused_fragments.cuh"
#include "attention_shape.h"
#include "tf32_fragments.h"

namespace dfss {
namespace fused {

// One fused forward call, as the kernels read it. Pointers are device memory; seqlens_q / seqlens_k are device
// copies of the per-batch lengths or nullptr (all rows / keys valid); lse is nullptr when not requested.
struct FusedAttentionParams {
  AttentionShape shape;
  const void *q, *k, *v;
  void *out;
  float *lse;
  const int32_t *seqlens_q, *seqlens_k;
  int64_t query_tiles;  // ceil(Nq / kBlockRows)
  int64_t work_items;   // B * Hq * query_tiles: one block's work each
};

using FusedKernel = void (*)(FusedAttentionParams);

struct FusedKernels {
  FusedKernel dense, one_of_two, two_of_four;
};

// Head dimensions (D == Dv) with kernels.
DFSS_HOST_DEVICE constexpr bool fused_head_dim_supported(int64_t head_dim) {
  return head_dim == 32 || head_dim == 64 || head_dim == 96 || head_dim == 128;
}

// Dynamic shared memory of a block: the Q tile, one K tile and one V tile, kTileKeys (= kBlockRows) rows each.
DFSS_HOST_DEVICE constexpr size_t fused_shared_bytes(int head_dim, size_t element_bytes) {
  return size_t{3} * kTileKeys * static_cast<size_t>(tile_stride(head_dim)) * element_bytes;
}

// The same for the float32 kernels (attention_fused_tf32_kernel.cuh): float32 tiles of tf32_tile_stride(D) floats a row.
DFSS_HOST_DEVICE constexpr size_t fused_f32_shared_bytes(int head_dim) {
  return size_t{3} * kTileKeys * static_cast<size_t>(tf32_tile_stride(head_dim)) * sizeof(float);
}

// The fused forward's kernel for a call, its dynamic shared memory, the current device, and whether the kernel is a
// Hopper one (wgmma).
struct FusedChoice {
  FusedKernel kernel;
  size_t shared_bytes;
  int device;
  bool hopper;
};

// Whether the fused forward takes the call (attention_fused.cu says when), and with what. The fused backward asks
// this too, so that it takes exactly the calls whose forward the fused kernel ran: both compute the scores with the
// same arithmetic and keep the same keys.
bool choose_fused_forward(const AttentionShape &shape, const void *q, const void *k, const void *v, const void *out,
                          FusedChoice *choice);

// The kernels of element type T (__half or __nv_bfloat16) and head dimension D; defined in
// attention_fused_kernel.cuh and instantiated once, in attention_fused_<dtype>_d<D>.cu.
template <typename T, int D>
FusedKernels fused_attention_kernels();

extern template FusedKernels fused_attention_kernels<__half, 32>();
extern template FusedKernels fused_attention_kernels<__half, 64>();
extern template FusedKernels fused_attention_kernels<__half, 96>();
extern template FusedKernels fused_attention_kernels<__half, 128>();
extern template FusedKernels fused_attention_kernels<__nv_bfloat16, 32>();
extern template FusedKernels fused_attention_kernels<__nv_bfloat16, 64>();
extern template FusedKernels fused_attention_kernels<__nv_bfloat16, 96>();
extern template FusedKernels fused_attention_kernels<__nv_bfloat16, 128>();

// The Hopper kernels (attention_fused_wgmma.cuh, sm_90a): head dims 64 and 128 of 16-bit types. Their tiles (Q, K
// and two V tiles), in the 128-byte swizzle layout, have no padding and start on a kTileAlignment boundary of the
// dynamic shared memory.
constexpr size_t kTileAlignment = 1024;
DFSS_HOST_DEVICE constexpr bool fused_wgmma_head_dim_supported(int64_t head_dim) {
  return head_dim == 64 || head_dim == 128;
}
DFSS_HOST_DEVICE constexpr size_t fused_wgmma_shared_bytes(int head_dim, size_t element_bytes) {
  return size_t{4} * kTileKeys * static_cast<size_t>(head_dim) * element_bytes + kTileAlignment;
}

// The Hopper kernels of element type T and head dimension D; defined in attention_fused_wgmma.cuh and instantiated
// once, in attention_fused_wgmma_<dtype>_d<D>.cu. Their code is built for sm_90a only (elsewhere they trap).
template <typename T, int D>
FusedKernels fused_attention_wgmma_kernels();

extern template FusedKernels fused_attention_wgmma_kernels<__half, 64>();
extern template FusedKernels fused_attention_wgmma_kernels<__half, 128>();
extern template FusedKernels fused_attention_wgmma_kernels<__nv_bfloat16, 64>();
extern template FusedKernels fused_attention_wgmma_kernels<__nv_bfloat16, 128>();

// The warp-specialized Hopper kernels (attention_fused_warp_specialized.cuh, sm_90a): a producer warpgroup copying
// the tiles with TMA and warp_specialized_consumers(D) warpgroups of 64 query rows each sharing them. Their
// parameters: the fused forward's, with query_tiles and work_items counted in blocks of
// warp_specialized_block_rows(D) rows, and the tensor maps of q, k and v (tensor_map.h: attention_tensor_maps).
// Consumers a block (measured on the H200, bench/NOTES.md v8): at D = 128, 3 (160 registers each) over 2 (232) and
// 4 (112, which spill); at D = 64, 4 (112) over 3 (160): the sparse patterns' softmax wants warps more than registers.
DFSS_HOST_DEVICE constexpr int warp_specialized_consumers(int head_dim) { return head_dim == 64 ? 4 : 3; }
DFSS_HOST_DEVICE constexpr int warp_specialized_threads(int head_dim) {
  return (warp_specialized_consumers(head_dim) + 1) * 128;
}
DFSS_HOST_DEVICE constexpr int warp_specialized_block_rows(int head_dim) {
  return warp_specialized_consumers(head_dim) * kBlockRows;
}

struct WarpSpecializedParams {
  FusedAttentionParams fused;
  CUtensorMap q_map, k_map, v_map;
};

using WarpSpecializedKernel = void (*)(WarpSpecializedParams);

struct WarpSpecializedKernels {
  WarpSpecializedKernel dense, one_of_two, two_of_four;
};

// K and V tiles in flight (measured, bench/NOTES.md v8: a third pair is 2-7 % faster for the sparse patterns at
// D = 128, no faster at D = 64).
DFSS_HOST_DEVICE constexpr int warp_specialized_stages(int head_dim) { return head_dim == 64 ? 2 : 3; }

// Dynamic shared memory: the consumers' Q tiles and the K and V tiles in flight, on a kTileAlignment boundary.
DFSS_HOST_DEVICE constexpr size_t fused_warp_specialized_shared_bytes(int head_dim, size_t element_bytes) {
  const int tiles = warp_specialized_consumers(head_dim) + 2 * warp_specialized_stages(head_dim);
  return static_cast<size_t>(tiles) * kTileKeys * static_cast<size_t>(head_dim) * element_bytes + kTileAlignment;
}

// The warp-specialized kernels of element type T and head dimension D (64 or 128); defined in
// attention_fused_warp_specialized.cuh and instantiated once, in attention_fused_warp_specialized_<dtype>_d<D>.cu.
// Their code is built for sm_90a only (elsewhere they trap).
template <typename T, int D>
WarpSpecializedKernels fused_attention_warp_specialized_kernels();

extern template WarpSpecializedKernels fused_attention_warp_specialized_kernels<__half, 64>();
extern template WarpSpecializedKernels fused_attention_warp_specialized_kernels<__half, 128>();
extern template WarpSpecializedKernels fused_attention_warp_specialized_kernels<__nv_bfloat16, 64>();
extern template WarpSpecializedKernels fused_attention_warp_specialized_kernels<__nv_bfloat16, 128>();

// The float32 kernels (3xTF32) of head dimension D; defined in attention_fused_tf32_kernel.cuh and instantiated once,
// in attention_fused_f32_d<D>.cu.
template <int D>
FusedKernels fused_attention_f32_kernels();

extern template FusedKernels fused_attention_f32_kernels<32>();
extern template FusedKernels fused_attention_f32_kernels<64>();
extern template FusedKernels fused_attention_f32_kernels<96>();
extern template FusedKernels fused_attention_f32_kernels<128>();

}  // namespace fused
}  // namespace dfss
