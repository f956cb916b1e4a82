// The launchers of the staged tensor-core kernels, one explicit instantiation per (dtype, head dim) in its own
// file (sddmm_prune_tensor_core_<dtype>_d<D>.cu, spmm_tensor_core_<dtype>_d<D>.cu) so that they compile in
// parallel. staged_tensor_core.cpp decides which call they take (tensor_core_kernels.h) and calls them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dfss.h"
#include "validate.h"

namespace dfss {

// Head dims (D of sddmm_prune, Dv of spmm) with an instantiation.
constexpr int kStagedHeadDims[] = {16, 32, 64, 96, 128};

// Each launches on call.stream and returns the launch status. Preconditions (checked by the caller): a device of
// compute capability 8.0 or later; dtype float16 or bfloat16, or float32 with pattern dense or 1:2; q / k (v) base
// pointers 16-byte aligned and their batch, head and row strides multiples of 8 elements (4 for float32); at most
// INT32_MAX thread blocks (staged_grid_blocks). row_max and lse (the folded softmax of dfss_attention_staged,
// 16-bit only): with row_max not NULL, sddmm_prune also writes each row's maximum there, and spmm reads scores instead
// of probabilities, their rows' maxima from row_max, and writes lse (if not NULL).
template <dfss_dtype Dtype, int HeadDim>
dfss_status launch_sddmm_prune_tensor_core(const AttentionCall &call, const void *q, const void *k, void *values,
                                           uint32_t *metadata, float *row_max);

template <dfss_dtype Dtype, int HeadDimV>
dfss_status launch_spmm_tensor_core(const AttentionCall &call, const void *probs, const uint32_t *metadata,
                                    const void *v, void *out, const float *row_max, float *lse);

// dfss_attention_staged in one kernel (staged_on_chip.cuh), 16-bit 2:4 and 1:2 with D = Dv = HeadDim: out and lse
// (if not NULL) as the two folded kernels above write them, the compressed scores kept in shared memory.
// staged_on_chip_shared_bytes: the dynamic shared memory a block of it takes for rows of `key_tiles` key tiles.
template <dfss_dtype Dtype, int HeadDim>
dfss_status launch_staged_on_chip(const AttentionCall &call, const void *q, const void *k, const void *v, void *out,
                                  float *lse);
template <dfss_dtype Dtype, int HeadDim>
size_t staged_on_chip_shared_bytes(int64_t key_tiles);

// Thread blocks of the sddmm_prune and spmm grids: one per 64 query rows of each (batch, query head).
int64_t staged_grid_blocks(const AttentionShape &shape);

// Key tiles (64 keys) of a compressed row: the key steps of sddmm_prune and spmm.
int64_t staged_key_tiles(const AttentionShape &shape);

// Softmax over compressed rows for every dtype: 8 or 16 threads per row for rows of up to 64 16-byte vectors, one
// warp per longer row, or one block per row when there are too few long rows to fill `multiprocessors`
// multiprocessors (compressed_softmax_fast.cu).
dfss_status launch_compressed_softmax_fast(const AttentionCall &call, const void *values_in, void *values_out,
                                           float *lse, int multiprocessors);

}  // namespace dfss
