// The Hopper dq kernels of the fused backward for bfloat16 inputs with head dimension 128 (dense, 1:2 and 2:4).
#include "attention_backward_dq_wgmma.cuh"

namespace dfss {
namespace fused {

template FusedBackwardDqKernels fused_backward_dq_wgmma_kernels<__nv_bfloat16, 128>();

}  // namespace fused
}  // namespace dfss
