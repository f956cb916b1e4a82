// Fused forward attention (dfss_attention_forward), reference version: each block takes one query row at a time
// and runs the three staged steps on it through a per-block scratch row in global memory:
//   1. sddmm_prune_row:        scaled, masked, pruned float32 scores and their metadata -> scratch;
//   2. compressed_softmax_row: p = exp(s - max) / sum, rounded to the input dtype, and lse -> scratch;
//   3. spmm_row:               out = sum p v, accumulated in float32, written in the input dtype.
// Unlike the staged entry points, the scores stay in float32 between steps 1 and 2 (only P is rounded), as
// dfss.h specifies for the fused operation. Scratch is (C + W) * 4 bytes per resident block, never rows x Nk.
#include <algorithm>
#include <cstdint>

#include "compressed_softmax_row.cuh"
#include "launch.h"
#include "reference_kernels.h"
#include "sddmm_prune_row.cuh"
#include "spmm_row.cuh"
#include "status.h"
#include "workspace.h"

namespace dfss {
namespace {

// Upper bound of the scratch rows' memory; fewer blocks run (each looping over more rows) when rows are long.
constexpr int64_t kScratchBudgetBytes = int64_t{512} << 20;

template <typename In>
__global__ void __launch_bounds__(kReferenceThreads)
    attention_reference_kernel(AttentionShape shape, const In *q, const In *k, const In *v, In *out, float *lse,
                               const int32_t *seqlens_q, const int32_t *seqlens_k, float *scratch_values,
                               uint32_t *scratch_metadata) {
  __shared__ float tile_scores[kScoreTileKeys];
  __shared__ float reduce_scratch[kReferenceThreads];
  const CompressedLayout &layout = shape.layout;
  float *scores = scratch_values + blockIdx.x * layout.values_per_row;
  uint32_t *metadata = scratch_metadata + blockIdx.x * layout.words_per_row;

  for (int64_t row = blockIdx.x; row < shape.rows(); row += gridDim.x) {
    sddmm_prune_row<In, float>(shape, q, k, seqlens_q, seqlens_k, row, scores, metadata, tile_scores);
    __syncthreads();
    compressed_softmax_row<In, float>(scores, scores, layout.values_per_row, lse != nullptr ? lse + row : nullptr,
                                      reduce_scratch);
    __syncthreads();
    spmm_row<float, In>(shape, scores, metadata, v, seqlens_k, out, row, reduce_scratch);
    __syncthreads();  // the scratch row is rewritten for the block's next row
  }
}

}  // namespace

dfss_status attention_forward_reference(const AttentionCall &call, const void *q, const void *k, const void *v,
                                        void *out, float *lse) {
  return dispatch_dtype(call.shape.dtype, [&](auto tag) {
    using In = typename decltype(tag)::type;
    const auto kernel = attention_reference_kernel<In>;
    const CompressedLayout &layout = call.shape.layout;
    int grid = 0;
    DFSS_RETURN_IF_ERROR(row_loop_grid(reinterpret_cast<const void *>(kernel), call.shape.rows(), &grid));
    const int64_t scratch_row_bytes = (layout.values_per_row + layout.words_per_row) * 4;
    grid = static_cast<int>(std::min<int64_t>(grid, std::max<int64_t>(1, kScratchBudgetBytes / scratch_row_bytes)));

    StreamWorkspace workspace(call.stream);
    const size_t scratch_values_count = static_cast<size_t>(grid) * layout.values_per_row;
    const size_t scratch_metadata_count = static_cast<size_t>(grid) * layout.words_per_row;
    DFSS_RETURN_IF_ERROR(workspace.allocate(StreamWorkspace::lengths_bytes(call.seqlens_q, call.seqlens_k) +
                                            StreamWorkspace::bytes_for<float>(scratch_values_count) +
                                            StreamWorkspace::bytes_for<uint32_t>(scratch_metadata_count)));
    const int32_t *seqlens_q = nullptr;
    const int32_t *seqlens_k = nullptr;
    DFSS_RETURN_IF_ERROR(workspace.upload_lengths(call.seqlens_q, call.seqlens_k, &seqlens_q, &seqlens_k));
    float *scratch_values = workspace.carve<float>(scratch_values_count);
    uint32_t *scratch_metadata = workspace.carve<uint32_t>(scratch_metadata_count);

    clear_stale_cuda_error();
    kernel<<<grid, kReferenceThreads, 0, call.stream>>>(
        call.shape, static_cast<const In *>(q), static_cast<const In *>(k), static_cast<const In *>(v),
        static_cast<In *>(out), lse, seqlens_q, seqlens_k, scratch_values, scratch_metadata);
    return check_launch("attention_reference_kernel");
  });
}

}  // namespace dfss
