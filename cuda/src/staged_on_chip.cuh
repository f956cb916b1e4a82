// dfss_attention_staged for short rows in one kernel: a block runs sddmm_prune_block over its 64 query rows, keeping
// the compressed scores, the metadata and the rows' maxima on chip (OnChipScores in shared memory, the maxima in
// registers), then spmm_block over the same rows, which reads them back instead of from the workspace. The same
// arithmetic in the same order as the two kernels, so the same outputs bit for bit; the compressed scores never
// cross memory, and one launch (and one grid's tail) goes.
//
// Shared memory grows with the keys (OnChipScores::kTileBytes = 4.5 KiB a key tile): staged_tensor_core.cpp takes a
// call here while two blocks fit an SM (on the H200: N <= 1344 at D = 64, N <= 1088 at D = 128), where it measured
// faster than the two kernels; with one block an SM it was slower.
//
// Instantiated per (dtype, head dim) by staged_on_chip_<dtype>_d<D>.cu.
#pragma once

#include <cstdint>

#include "attention_shape.h"
#include "launch.h"
#include "sddmm_prune_tensor_core.cuh"
#include "spmm_tensor_core.cuh"
#include "staged_io.cuh"
#include "staged_tensor_core.h"
#include "status.h"
#include "workspace.h"

namespace dfss {
namespace staged {

// Bytes of the K, then V, tiles (the phases take turns in them), before the on-chip scores.
template <typename T>
DFSS_HOST_DEVICE constexpr size_t on_chip_tile_bytes(int head_dim) {
  const size_t key_tiles = sddmm_shared_bytes<T>(head_dim);
  const size_t value_tiles = 2 * sizeof(T) * static_cast<size_t>(spmm_tile_elements(head_dim));
  return key_tiles > value_tiles ? key_tiles : value_tiles;
}

template <typename T, int HeadDim, int Pattern>
__global__ void __launch_bounds__(kThreads, sddmm_min_blocks(HeadDim, sizeof(T)))
    staged_on_chip_kernel(AttentionShape shape, const T *q, const T *k, const T *v, const int32_t *seqlens_q,
                          const int32_t *seqlens_k, T *out, float *lse) {
#if DFSS_MMA_AVAILABLE
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  const OnChipScores on_chip{shared_bytes + on_chip_tile_bytes<T>(HeadDim)};
  float row_max[2];
  sddmm_prune_block<T, HeadDim, Pattern, true, true>(shape, q, k, seqlens_q, seqlens_k, nullptr, nullptr, nullptr,
                                                     shared_bytes, on_chip, row_max);
  // The tiles change hands, and each quad reads the metadata words its lanes wrote.
  __syncthreads();
  spmm_block<T, HeadDim, Pattern, true, true>(shape, nullptr, nullptr, v, seqlens_k, out, nullptr, lse,
                                              reinterpret_cast<T(*)[spmm_tile_elements(HeadDim)]>(shared_bytes),
                                              on_chip, row_max);
#else
  (void)shape, (void)q, (void)k, (void)v, (void)seqlens_q, (void)seqlens_k, (void)out, (void)lse;
#endif
}

}  // namespace staged

template <dfss_dtype Dtype, int HeadDim>
size_t staged_on_chip_shared_bytes(int64_t key_tiles) {
  using T = typename staged::ElementOf<Dtype>::type;
  return staged::on_chip_tile_bytes<T>(HeadDim) + static_cast<size_t>(key_tiles) * staged::OnChipScores::kTileBytes;
}

template <dfss_dtype Dtype, int HeadDim>
dfss_status launch_staged_on_chip(const AttentionCall &call, const void *q, const void *k, const void *v, void *out,
                                  float *lse) {
  static_assert(Dtype != DFSS_DTYPE_FLOAT32, "the folded softmax is 16-bit only");
  using T = typename staged::ElementOf<Dtype>::type;
  if (call.shape.layout.m == 1) return DFSS_ERROR_INTERNAL;  // staged_tensor_core.cpp takes 2:4 and 1:2 only
  StreamWorkspace workspace(call.stream);
  const int32_t *seqlens_q = nullptr;
  const int32_t *seqlens_k = nullptr;
  DFSS_RETURN_IF_ERROR(workspace.allocate_lengths(call.seqlens_q, call.seqlens_k, &seqlens_q, &seqlens_k));
  const auto kernel = call.shape.layout.m == 4 ? staged::staged_on_chip_kernel<T, HeadDim, DFSS_PATTERN_2_4>
                                               : staged::staged_on_chip_kernel<T, HeadDim, DFSS_PATTERN_1_2>;
  const size_t shared_bytes = staged_on_chip_shared_bytes<Dtype, HeadDim>(staged_key_tiles(call.shape));
  DFSS_RETURN_IF_ERROR(allow_shared_memory(reinterpret_cast<const void *>(kernel), shared_bytes));
  clear_stale_cuda_error();
  kernel<<<static_cast<unsigned>(staged_grid_blocks(call.shape)), staged::kThreads, shared_bytes, call.stream>>>(
      call.shape, static_cast<const T *>(q), static_cast<const T *>(k), static_cast<const T *>(v), seqlens_q,
      seqlens_k, static_cast<T *>(out), lse);
  return check_launch("staged_on_chip_kernel");
}

}  // namespace dfss
