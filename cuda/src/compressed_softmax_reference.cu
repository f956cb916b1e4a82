// Staged step 2 (dfss_compressed_softmax): softmax over each compressed row, one block per row.
#include "compressed_softmax_row.cuh"
#include "launch.h"
#include "reference_kernels.h"
#include "status.h"

namespace dfss {
namespace {

// Values and probabilities are both in the input dtype; values_out may be values_in.
template <typename In>
__global__ void __launch_bounds__(kReferenceThreads)
    compressed_softmax_kernel(AttentionShape shape, const In *values_in, In *values_out, float *lse) {
  __shared__ float reduce_scratch[kReferenceThreads];
  const int64_t values_per_row = shape.layout.values_per_row;
  for (int64_t row = blockIdx.x; row < shape.rows(); row += gridDim.x) {
    compressed_softmax_row<In, In>(values_in + row * values_per_row, values_out + row * values_per_row,
                                   values_per_row, lse != nullptr ? lse + row : nullptr, reduce_scratch);
  }
}

}  // namespace

dfss_status compressed_softmax_reference(const AttentionCall &call, const void *values_in, void *values_out,
                                         float *lse) {
  return dispatch_dtype(call.shape.dtype, [&](auto tag) {
    using In = typename decltype(tag)::type;
    const auto kernel = compressed_softmax_kernel<In>;
    int grid = 0;
    DFSS_RETURN_IF_ERROR(row_loop_grid(reinterpret_cast<const void *>(kernel), call.shape.rows(), &grid));
    clear_stale_cuda_error();
    kernel<<<grid, kReferenceThreads, 0, call.stream>>>(call.shape, static_cast<const In *>(values_in),
                                                         static_cast<In *>(values_out), lse);
    return check_launch("compressed_softmax_kernel");
  });
}

}  // namespace dfss
