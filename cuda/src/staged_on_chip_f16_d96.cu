// dfss_attention_staged on chip for float16, head dim 96: one instantiation per file, so they compile in parallel.
#include "staged_on_chip.cuh"

namespace dfss {
template dfss_status launch_staged_on_chip<DFSS_DTYPE_FLOAT16, 96>(const AttentionCall &, const void *, const void *,
                                                                 const void *, void *, float *);
template size_t staged_on_chip_shared_bytes<DFSS_DTYPE_FLOAT16, 96>(int64_t);
}  // namespace dfss
