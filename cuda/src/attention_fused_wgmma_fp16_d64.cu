// The Hopper fused forward kernels for float16 inputs with head dimension 64 (dense, 1:2 and 2:4).
#include "attention_fused_wgmma.cuh"

namespace dfss {
namespace fused {

template FusedKernels fused_attention_wgmma_kernels<__half, 64>();

}  // namespace fused
}  // namespace dfss
