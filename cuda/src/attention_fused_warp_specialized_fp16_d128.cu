// The warp-specialized Hopper fused forward kernels for float16 inputs with head dimension 128 (dense, 1:2 and 2:4).
#include "attention_fused_warp_specialized.cuh"

namespace dfss {
namespace fused {

template WarpSpecializedKernels fused_attention_warp_specialized_kernels<__half, 128>();

}  // namespace fused
}  // namespace dfss
