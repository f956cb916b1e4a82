// Staged step 3 (dfss_spmm): out = P v from compressed probabilities and metadata, one block per query row.
#include "launch.h"
#include "reference_kernels.h"
#include "spmm_row.cuh"
#include "status.h"
#include "workspace.h"

namespace dfss {
namespace {

template <typename In>
__global__ void __launch_bounds__(kReferenceThreads)
    spmm_kernel(AttentionShape shape, const In *probs, const uint32_t *metadata, const In *v,
                const int32_t *seqlens_k, In *out) {
  __shared__ float partials[kReferenceThreads];
  const CompressedLayout &layout = shape.layout;
  for (int64_t row = blockIdx.x; row < shape.rows(); row += gridDim.x) {
    const uint32_t *metadata_row = is_dense(layout) ? nullptr : metadata + row * layout.words_per_row;
    spmm_row<In, In>(shape, probs + row * layout.values_per_row, metadata_row, v, seqlens_k, out, row, partials);
  }
}

}  // namespace

dfss_status spmm_reference(const AttentionCall &call, const void *probs, const uint32_t *metadata, const void *v,
                           void *out) {
  StreamWorkspace workspace(call.stream);
  const int32_t *seqlens_q = nullptr;  // not needed
  const int32_t *seqlens_k = nullptr;
  DFSS_RETURN_IF_ERROR(workspace.allocate_lengths({}, call.seqlens_k, &seqlens_q, &seqlens_k));
  return dispatch_dtype(call.shape.dtype, [&](auto tag) {
    using In = typename decltype(tag)::type;
    const auto kernel = spmm_kernel<In>;
    int grid = 0;
    DFSS_RETURN_IF_ERROR(row_loop_grid(reinterpret_cast<const void *>(kernel), call.shape.rows(), &grid));
    clear_stale_cuda_error();
    kernel<<<grid, kReferenceThreads, 0, call.stream>>>(call.shape, static_cast<const In *>(probs), metadata,
                                                         static_cast<const In *>(v), seqlens_k, static_cast<In *>(out));
    return check_launch("spmm_kernel");
  });
}

}  // namespace dfss
