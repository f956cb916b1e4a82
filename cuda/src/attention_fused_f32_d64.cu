// The fused tensor-core forward kernels for float32 inputs (3xTF32) with head dimension 64 (dense and 1:2: float32
// has no 2:4).
#include "attention_fused_tf32_kernel.cuh"

namespace dfss {
namespace fused {

template FusedKernels fused_attention_f32_kernels<64>();

}  // namespace fused
}  // namespace dfss
