// What the dispatch of the fused tensor-core backward (attention_backward_fused.cu) knows of its kernels: their
// parameters, their shared memory, and one set of kernels per element type and head dimension, each set compiled
// in its own file (attention_backward_fused_<dtype>_d<D>.cu) so that the builds run in parallel.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstddef>
#include <cstdint>

#include "attention_fused_fragments.cuh"
#include "attention_fused_launch.cuh"
#include "attention_shape.h"
#include "validate.h"

namespace dfss {
namespace fused {

// One backward call, as the kernels read it. Pointers are device memory; seqlens_q / seqlens_k are device copies of
// the per-batch lengths or nullptr; row_dot ([B, Hq, Nq] float32, in the workspace) receives D_i = dout_i . out_i
// from the dq kernel, which runs first, and the dk / dv kernel reads it.
struct FusedBackwardParams {
  AttentionShape shape;
  BackwardStrides strides;  // dout, dq, dk, dv
  const void *q, *k, *v, *out, *dout;
  const float *lse;
  void *dq, *dk, *dv;
  float *row_dot;
  const int32_t *seqlens_q, *seqlens_k;
  int64_t query_tiles;     // ceil(Nq / kBlockRows)
  int64_t key_tiles;       // ceil(Nk / kTileKeys)
  int64_t dq_work_items;   // B * Hq * query_tiles: one dq block's work each
  int64_t dk_dv_work_items;  // B * Hkv * key_tiles: one dk / dv block's work each
  bool dout_async;         // dout rows start on 16-byte boundaries: tiles are copied with cp.async
  bool gradient_pairs;     // dq, dk and dv rows start on 4-byte boundaries: pairs of elements are stored together
};

using FusedBackwardKernel = void (*)(FusedBackwardParams);

// Indexed by pattern: [0] dense, [1] 1:2, [2] 2:4 (fused_backward_pattern_index).
struct FusedBackwardKernels {
  FusedBackwardKernel dq[3], dk_dv[3];
};

DFSS_HOST_DEVICE constexpr int fused_backward_pattern_index(int pattern) {
  return pattern == DFSS_PATTERN_DENSE ? 0 : (pattern == DFSS_PATTERN_1_2 ? 1 : 2);
}

// Row stride (elements) of the P and dS tiles of the dk / dv kernel: [64 query rows][64 keys], padded as
// tile_stride pads (an odd number of 16-byte units: conflict-free ldmatrix).
constexpr int kScoreTileStride = kTileKeys + 8;

// Dynamic shared memory of a dq block: Q, V and two K tiles (one of which holds dO until it is in registers), 64
// rows each.
DFSS_HOST_DEVICE constexpr size_t fused_backward_dq_shared_bytes(int head_dim, size_t element_bytes) {
  return size_t{4} * kTileKeys * static_cast<size_t>(tile_stride(head_dim)) * element_bytes;
}

// Dynamic shared memory of a dk / dv block: K, V, Q, dO tiles, and the P and dS tiles of one query tile. At most
// 88 KiB (D = 128): within the 99 KiB that every sm_80+ device gives a block.
DFSS_HOST_DEVICE constexpr size_t fused_backward_dk_dv_shared_bytes(int head_dim, size_t element_bytes) {
  return (size_t{4} * kTileKeys * static_cast<size_t>(tile_stride(head_dim)) +
          size_t{2} * kBlockRows * static_cast<size_t>(kScoreTileStride)) *
         element_bytes;
}

// The kernels of element type T (__half or __nv_bfloat16) and head dimension D; defined in
// attention_backward_fused_kernel.cuh and instantiated once, in attention_backward_fused_<dtype>_d<D>.cu.
template <typename T, int D>
FusedBackwardKernels fused_backward_kernels();

extern template FusedBackwardKernels fused_backward_kernels<__half, 32>();
extern template FusedBackwardKernels fused_backward_kernels<__half, 64>();
extern template FusedBackwardKernels fused_backward_kernels<__half, 96>();
extern template FusedBackwardKernels fused_backward_kernels<__half, 128>();
extern template FusedBackwardKernels fused_backward_kernels<__nv_bfloat16, 32>();
extern template FusedBackwardKernels fused_backward_kernels<__nv_bfloat16, 64>();
extern template FusedBackwardKernels fused_backward_kernels<__nv_bfloat16, 96>();
extern template FusedBackwardKernels fused_backward_kernels<__nv_bfloat16, 128>();

// The Hopper kernels (attention_backward_wgmma.cuh, sm_90a; elsewhere they trap): head dims 64 and 128 of 16-bit
// types, dout rows on 16-byte boundaries. Defined there and instantiated once, in
// attention_backward_wgmma_<dtype>_d<D>.cu.
template <typename T, int D>
FusedBackwardKernels fused_backward_wgmma_kernels();

extern template FusedBackwardKernels fused_backward_wgmma_kernels<__half, 64>();
extern template FusedBackwardKernels fused_backward_wgmma_kernels<__half, 128>();
extern template FusedBackwardKernels fused_backward_wgmma_kernels<__nv_bfloat16, 64>();
extern template FusedBackwardKernels fused_backward_wgmma_kernels<__nv_bfloat16, 128>();

// Their dynamic shared memory, tiles of 64 rows in the 128-byte swizzle layout from a kTileAlignment boundary. dq: Q,
// dO, V and three K tiles. dk / dv: K, V, two Q and two dO tiles, and the [64 query rows][64 keys] P and dS tiles.
DFSS_HOST_DEVICE constexpr size_t fused_backward_dq_wgmma_shared_bytes(int head_dim, size_t element_bytes) {
  return size_t{6} * kTileKeys * static_cast<size_t>(head_dim) * element_bytes + kTileAlignment;
}
DFSS_HOST_DEVICE constexpr size_t fused_backward_dk_dv_wgmma_shared_bytes(int head_dim, size_t element_bytes) {
  return (size_t{6} * kTileKeys * static_cast<size_t>(head_dim) + size_t{2} * kBlockRows * kTileKeys) * element_bytes +
         kTileAlignment;
}

}  // namespace fused
}  // namespace dfss
