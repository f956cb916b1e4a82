// The Hopper kernels of the fused backward (dq and dk / dv) for bfloat16 inputs with head dimension 64 (dense, 1:2 and 2:4).
#include "attention_backward_wgmma.cuh"

namespace dfss {
namespace fused {

template FusedBackwardKernels fused_backward_wgmma_kernels<__nv_bfloat16, 64>();

}  // namespace fused
}  // namespace dfss
