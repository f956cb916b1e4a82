// Placeholder until the staged tensor-core kernels land: they decline every call (the reference kernels run it).
#include "tensor_core_kernels.h"

namespace dfss {

bool sddmm_prune_tensor_core(const AttentionCall &, const void *, const void *, void *, uint32_t *, dfss_status *) {
  return false;
}

bool compressed_softmax_tensor_core(const AttentionCall &, const void *, void *, float *, dfss_status *) {
  return false;
}

bool spmm_tensor_core(const AttentionCall &, const void *, const uint32_t *, const void *, void *, dfss_status *) {
  return false;
}

}  // namespace dfss
