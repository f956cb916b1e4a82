// The Hopper dq kernels of the fused backward for float16 inputs with head dimension 64 (dense, 1:2 and 2:4).
#include "attention_backward_dq_wgmma.cuh"

namespace dfss {
namespace fused {

template FusedBackwardDqKernels fused_backward_dq_wgmma_kernels<__half, 64>();

}  // namespace fused
}  // namespace dfss
