// The fused tensor-core backward kernels for bfloat16 inputs with head dimension 96 (dense, 1:2 and 2:4).
#include "attention_backward_fused_kernel.cuh"

namespace dfss {
namespace fused {

template FusedBackwardKernels fused_backward_kernels<__nv_bfloat16, 96>();

}  // namespace fused
}  // namespace dfss
