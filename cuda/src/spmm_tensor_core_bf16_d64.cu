// spmm on tensor cores for bfloat16, head dim 64: one instantiation per file, so they compile in parallel.
#include "spmm_tensor_core.cuh"

namespace dfss {
template dfss_status launch_spmm_tensor_core<DFSS_DTYPE_BFLOAT16, 64>(
    const AttentionCall &, const void *, const uint32_t *, const void *, void *, const float *, float *);
}  // namespace dfss
