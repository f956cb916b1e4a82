// The fused tensor-core forward kernels for bfloat16 inputs with head dimension 96 (dense, 1:2 and 2:4).
#include "attention_fused_kernel.cuh"

namespace dfss {
namespace fused {

template FusedKernels fused_attention_kernels<__nv_bfloat16, 96>();

}  // namespace fused
}  // namespace dfss
