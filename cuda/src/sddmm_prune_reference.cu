// Staged step 1 (dfss_sddmm_prune): compressed scores and metadata, one block per query row.
#include "launch.h"
#include "reference_kernels.h"
#include "sddmm_prune_row.cuh"
#include "status.h"
#include "workspace.h"

namespace dfss {
namespace {

// The values are stored in the input dtype (each kept score rounded to it); selection uses the float32 scores.
template <typename In>
__global__ void __launch_bounds__(kReferenceThreads)
    sddmm_prune_kernel(AttentionShape shape, const In *q, const In *k, const int32_t *seqlens_q,
                       const int32_t *seqlens_k, In *values, uint32_t *metadata) {
  __shared__ float tile_scores[kScoreTileKeys];
  const CompressedLayout &layout = shape.layout;
  for (int64_t row = blockIdx.x; row < shape.rows(); row += gridDim.x) {
    uint32_t *metadata_row = is_dense(layout) ? nullptr : metadata + row * layout.words_per_row;
    sddmm_prune_row<In, In>(shape, q, k, seqlens_q, seqlens_k, row, values + row * layout.values_per_row,
                            metadata_row, tile_scores);
  }
}

}  // namespace

dfss_status sddmm_prune_reference(const AttentionCall &call, const void *q, const void *k, void *values,
                                  uint32_t *metadata) {
  return dispatch_dtype(call.shape.dtype, [&](auto tag) {
    using In = typename decltype(tag)::type;
    const auto kernel = sddmm_prune_kernel<In>;
    int grid = 0;
    DFSS_RETURN_IF_ERROR(row_loop_grid(reinterpret_cast<const void *>(kernel), call.shape.rows(), &grid));

    StreamWorkspace workspace(call.stream);
    const int32_t *seqlens_q = nullptr;
    const int32_t *seqlens_k = nullptr;
    DFSS_RETURN_IF_ERROR(workspace.allocate_lengths(call.seqlens_q, call.seqlens_k, &seqlens_q, &seqlens_k));

    clear_stale_cuda_error();
    kernel<<<grid, kReferenceThreads, 0, call.stream>>>(call.shape, static_cast<const In *>(q),
                                                         static_cast<const In *>(k), seqlens_q, seqlens_k,
                                                         static_cast<In *>(values), metadata);
    return check_launch("sddmm_prune_kernel");
  });
}

}  // namespace dfss
