// The warp-specialized Hopper fused forward kernels for bfloat16 inputs with head dimension 64 (dense, 1:2 and 2:4).
#include "attention_fused_warp_specialized.cuh"

namespace dfss {
namespace fused {

template WarpSpecializedKernels fused_attention_warp_specialized_kernels<__nv_bfloat16, 64>();

}  // namespace fused
}  // namespace dfss
