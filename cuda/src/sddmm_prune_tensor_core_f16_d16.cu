// sddmm_prune on tensor cores for float16, head dim 16: one instantiation per file, so they compile in parallel.
#include "sddmm_prune_tensor_core.cuh"

namespace dfss {
template dfss_status launch_sddmm_prune_tensor_core<DFSS_DTYPE_FLOAT16, 16>(
    const AttentionCall &, const void *, const void *, void *, uint32_t *, float *);
}  // namespace dfss
