// Dispatch of the fused tensor-core forward (attention_fused_kernel.cuh; float32: attention_fused_tf32_kernel.cuh,
// 3xTF32 in float32 accuracy). It takes a call when
//   - the current device is sm_80 or later, the kernel has an image for it built for sm_80 or later, and the device
//     has the kernel's shared memory (float32 tiles take twice the bytes of 16-bit ones),
//   - the dtype is float16, bfloat16 or float32, with pattern dense, 1:2 or 2:4,
//   - head_dim == head_dim_v, one of 32, 64, 96, 128,
//   - q, k and v rows start on 16-byte boundaries (pointers and batch / head / row strides; cp.async copies 16
//     bytes: 8 elements of 16 bits, 4 of float32), and out rows on the boundaries of two elements (pairs of elements
//     are stored together);
// and declines every other call, which the reference kernel then runs. The fused backward
// (attention_backward_fused.cu) takes its calls by the same test (choose_fused_forward).
// Of the calls it takes, those of float16 / bfloat16 with head_dim 64 or 128 on an sm_90 device run the Hopper
// kernels (wgmma) where the library holds their sm_90a image, unless the environment variable DFSS_FUSED_WGMMA is 0;
// the others run the warp-level kernels (mma.sync, attention_fused_kernel.cuh). Of the Hopper kernels, the
// warp-specialized ones (TMA copies, attention_fused_warp_specialized.cuh) run where tensor maps describe q, k and v
// (tensor_map.h: strides of whole 16-byte units, and seq_k a multiple of 4 for the sparse patterns) and where they
// pay (warp_specialized_pays; DFSS_FUSED_WARP_SPECIALIZED=1: always, 0: never); the others run
// attention_fused_wgmma.cuh's. All make the same choices (the same scores bits), which the fused backward repeats.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "attention_fused_launch.cuh"
#include "launch.h"
#include "status.h"
#include "tensor_core_kernels.h"
#include "tensor_map.h"
#include "workspace.h"

namespace dfss {
namespace {

using fused::FusedAttentionParams;
using fused::FusedKernel;
using fused::FusedKernels;

FusedKernels kernels_of(dfss_dtype dtype, int64_t head_dim) {
  if (dtype == DFSS_DTYPE_FLOAT32) {
    switch (head_dim) {
      case 32: return fused::fused_attention_f32_kernels<32>();
      case 64: return fused::fused_attention_f32_kernels<64>();
      case 96: return fused::fused_attention_f32_kernels<96>();
      default: return fused::fused_attention_f32_kernels<128>();
    }
  }
  const bool half = dtype == DFSS_DTYPE_FLOAT16;
  switch (head_dim) {
    case 32: return half ? fused::fused_attention_kernels<__half, 32>() : fused::fused_attention_kernels<__nv_bfloat16, 32>();
    case 64: return half ? fused::fused_attention_kernels<__half, 64>() : fused::fused_attention_kernels<__nv_bfloat16, 64>();
    case 96: return half ? fused::fused_attention_kernels<__half, 96>() : fused::fused_attention_kernels<__nv_bfloat16, 96>();
    default: return half ? fused::fused_attention_kernels<__half, 128>() : fused::fused_attention_kernels<__nv_bfloat16, 128>();
  }
}

FusedKernels wgmma_kernels_of(dfss_dtype dtype, int64_t head_dim) {
  const bool half = dtype == DFSS_DTYPE_FLOAT16;
  if (head_dim == 64) {
    return half ? fused::fused_attention_wgmma_kernels<__half, 64>()
                : fused::fused_attention_wgmma_kernels<__nv_bfloat16, 64>();
  }
  return half ? fused::fused_attention_wgmma_kernels<__half, 128>()
              : fused::fused_attention_wgmma_kernels<__nv_bfloat16, 128>();
}

// DFSS_FUSED_WGMMA=0 keeps the Hopper kernels off (read once): the warp-level kernels run instead, for comparison.
bool wgmma_allowed() {
  static const bool allowed = [] {
    const char *value = std::getenv("DFSS_FUSED_WGMMA");
    return value == nullptr || std::strcmp(value, "0") != 0;
  }();
  return allowed;
}

// When the warp-specialized Hopper kernels run (DFSS_FUSED_WARP_SPECIALIZED, read once): 0 never, 1 on every call
// they can take (for tests and comparisons), unset (or anything else) where they measured faster than the other
// Hopper kernels (warp_specialized_pays).
enum class WarpSpecializedUse { kNever, kAlways, kWherePays };

WarpSpecializedUse warp_specialized_use() {
  static const WarpSpecializedUse use = [] {
    const char *value = std::getenv("DFSS_FUSED_WARP_SPECIALIZED");
    if (value != nullptr && std::strcmp(value, "0") == 0) return WarpSpecializedUse::kNever;
    if (value != nullptr && std::strcmp(value, "1") == 0) return WarpSpecializedUse::kAlways;
    return WarpSpecializedUse::kWherePays;
  }();
  return use;
}

// Measured on the H200 (bench/NOTES.md, v8): faster without a causal mask from seq_q = kWarpSpecializedMinRows on
// (blocks of 192 or 256 rows; below, the last block of a head is mostly empty rows); with one, slower (the
// consumers of a block run its longest rows' key steps).
constexpr int64_t kWarpSpecializedMinRows = 2048;
bool warp_specialized_pays(const AttentionShape &shape) {
  return !shape.causal && shape.seq_q >= kWarpSpecializedMinRows;
}

// Sets the work items of params to blocks of block_rows query rows: ceil(Nq / block_rows) a head.
void count_work_items(fused::FusedAttentionParams &params, int64_t block_rows) {
  const AttentionShape &shape = params.shape;
  params.query_tiles = (shape.seq_q + block_rows - 1) / block_rows;
  params.work_items = shape.batch * shape.heads_q * params.query_tiles;  // <= B Hq Nq, which fits (validated)
}

template <typename Kernels>
auto kernel_of(const Kernels &kernels, const CompressedLayout &layout) -> decltype(kernels.dense) {
  if (is_dense(layout)) return kernels.dense;
  return layout.m == 2 ? kernels.one_of_two : kernels.two_of_four;
}

#if defined(DFSS_BUILT_SM90A)
fused::WarpSpecializedKernels warp_specialized_kernels_of(dfss_dtype dtype, int64_t head_dim) {
  const bool half = dtype == DFSS_DTYPE_FLOAT16;
  if (head_dim == 64) {
    return half ? fused::fused_attention_warp_specialized_kernels<__half, 64>()
                : fused::fused_attention_warp_specialized_kernels<__nv_bfloat16, 64>();
  }
  return half ? fused::fused_attention_warp_specialized_kernels<__half, 128>()
              : fused::fused_attention_warp_specialized_kernels<__nv_bfloat16, 128>();
}

// Launches the warp-specialized kernel of a call the Hopper kernels took, when tensor maps describe its tensors;
// false (nothing launched) otherwise.
bool launch_warp_specialized(const AttentionShape &shape, const fused::FusedChoice &choice,
                             fused::FusedAttentionParams params, cudaStream_t stream, dfss_status *status) {
  const WarpSpecializedUse use = warp_specialized_use();
  if (use == WarpSpecializedUse::kNever || (use == WarpSpecializedUse::kWherePays && !warp_specialized_pays(shape))) {
    return false;
  }
  const int head_dim = static_cast<int>(shape.head_dim);
  const void *kernel =
      reinterpret_cast<const void *>(kernel_of(warp_specialized_kernels_of(shape.dtype, head_dim), shape.layout));
  const size_t shared_bytes = fused::fused_warp_specialized_shared_bytes(head_dim, 2);
  if (!tensor_core_kernel_ready(kernel, choice.device, shared_bytes, 90)) return false;
  fused::WarpSpecializedParams ws{};
  if (!attention_tensor_maps(shape, params.q, params.k, params.v, &ws.q_map, &ws.k_map, &ws.v_map)) return false;
  count_work_items(params, fused::warp_specialized_block_rows(head_dim));
  ws.fused = params;
  // A block a work item (launch_work_items): measured against one block a SM that loops over a static share of the
  // work items (bench/NOTES.md, v8), that was 2x slower causal (the longest items fell on the same blocks) and 3-5 %
  // slower not causal at N = 4096.
  *status = launch_work_items(kernel, &ws, params.work_items, fused::warp_specialized_threads(head_dim), shared_bytes,
                              stream, "attention_fused_warp_specialized_kernel");
  return true;
}
#endif

}  // namespace

namespace fused {

bool choose_fused_forward(const AttentionShape &shape, const void *q, const void *k, const void *v, const void *out,
                          FusedChoice *choice) {
  const bool float32 = shape.dtype == DFSS_DTYPE_FLOAT32;
  if (shape.dtype != DFSS_DTYPE_FLOAT16 && shape.dtype != DFSS_DTYPE_BFLOAT16 && !float32) return false;
  if (shape.head_dim != shape.head_dim_v || !fused_head_dim_supported(shape.head_dim)) return false;
  const int64_t element_bytes = float32 ? 4 : 2;
  const int64_t copy_elements = 16 / element_bytes;
  if (!aligned(q, 16) || !aligned(k, 16) || !aligned(v, 16) || !rows_aligned(shape.q, copy_elements) ||
      !rows_aligned(shape.k, copy_elements) || !rows_aligned(shape.v, copy_elements)) {
    return false;
  }
  if (!aligned(out, static_cast<size_t>(2 * element_bytes)) || !rows_aligned(shape.out, 2)) return false;

  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    clear_stale_cuda_error();
    return false;
  }
  const int head_dim = static_cast<int>(shape.head_dim);
#if defined(DFSS_BUILT_SM90A)
  if (!float32 && fused_wgmma_head_dim_supported(head_dim) && wgmma_allowed()) {
    const FusedKernel kernel = kernel_of(wgmma_kernels_of(shape.dtype, head_dim), shape.layout);
    const size_t shared_bytes = fused_wgmma_shared_bytes(head_dim, static_cast<size_t>(element_bytes));
    if (tensor_core_kernel_ready(reinterpret_cast<const void *>(kernel), device, shared_bytes, 90)) {
      *choice = FusedChoice{kernel, shared_bytes, device, true};
      return true;
    }
  }
#endif
  const FusedKernel kernel = kernel_of(kernels_of(shape.dtype, shape.head_dim), shape.layout);
  const size_t shared_bytes = float32 ? fused_f32_shared_bytes(head_dim)
                                      : fused_shared_bytes(head_dim, static_cast<size_t>(element_bytes));
  if (!tensor_core_kernel_ready(reinterpret_cast<const void *>(kernel), device, shared_bytes)) return false;
  *choice = FusedChoice{kernel, shared_bytes, device, false};
  return true;
}

}  // namespace fused

bool attention_forward_tensor_core(const AttentionCall &call, const void *q, const void *k, const void *v, void *out,
                                   float *lse, dfss_status *status) {
  const AttentionShape &shape = call.shape;
  fused::FusedChoice choice{};
  if (!fused::choose_fused_forward(shape, q, k, v, out, &choice)) return false;

  *status = [&]() -> dfss_status {
    StreamWorkspace workspace(call.stream);
    DFSS_RETURN_IF_ERROR(workspace.allocate(StreamWorkspace::lengths_bytes(call.seqlens_q, call.seqlens_k)));
    FusedAttentionParams params{};
    params.shape = shape;
    params.q = q;
    params.k = k;
    params.v = v;
    params.out = out;
    params.lse = lse;
    DFSS_RETURN_IF_ERROR(workspace.upload_lengths(call.seqlens_q, call.seqlens_k, &params.seqlens_q, &params.seqlens_k));
#if defined(DFSS_BUILT_SM90A)
    dfss_status launched = DFSS_SUCCESS;
    if (choice.hopper && launch_warp_specialized(shape, choice, params, call.stream, &launched)) return launched;
#endif
    count_work_items(params, fused::kBlockRows);
    return launch_work_items(reinterpret_cast<const void *>(choice.kernel), &params, params.work_items,
                             fused::kThreads, choice.shared_bytes, call.stream, "attention_fused_kernel");
  }();
  return true;
}

}  // namespace dfss
