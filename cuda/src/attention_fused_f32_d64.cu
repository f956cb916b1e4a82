// The fused tensor-core forward kernels for float32 inputs (3xTF32) with head dimension 64 (dense, 1:2 and 2:4).
#include "attention_fused_tf32_kernel.cuh"

namespace dfss {
namespace fused {

template FusedKernels fused_attention_f32_kernels<64>();

}  // namespace fused
}  // namespace dfss
