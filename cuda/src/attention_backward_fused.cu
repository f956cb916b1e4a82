// Dispatch of the fused tensor-core backward (attention_backward_fused_kernel.cuh). It takes exactly the 16-bit calls
// whose forward the fused tensor-core forward takes (fused::choose_fused_forward, attention_fused.cu: sm_80 or later,
// float16 / bfloat16 with pattern dense, 1:2 or 2:4, head_dim == head_dim_v in {32, 64, 96, 128}, aligned rows), so that
// both passes compute the scores with the same arithmetic (score_step) and make the same N:M choice. Its own kernels
// exist wherever the forward's do (the same files, architectures and a smaller shared-memory need); dout, dq, dk and
// dv may have any layout the validation accepts. Where the forward runs a Hopper kernel (sm_90a, head dims 64 and 128)
// and dout rows start on 16-byte boundaries, both backward kernels run on wgmma (attention_backward_wgmma.cuh: the
// same scores and choices).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "attention_backward.h"
#include "attention_backward_fused_launch.cuh"
#include "attention_fused_launch.cuh"
#include "launch.h"
#include "status.h"
#include "workspace.h"

namespace dfss {
namespace {

using fused::FusedBackwardKernel;
using fused::FusedBackwardKernels;
using fused::FusedBackwardParams;

constexpr int64_t kElementBytes = 2;

// The dtype and head dimensions of the fused backward: the fused forward's, float32 aside.
bool shape_supported(const AttentionShape &shape) {
  return (shape.dtype == DFSS_DTYPE_FLOAT16 || shape.dtype == DFSS_DTYPE_BFLOAT16) &&
         shape.head_dim == shape.head_dim_v && fused::fused_head_dim_supported(shape.head_dim);
}

#if defined(DFSS_BUILT_SM90A)
FusedBackwardKernels wgmma_backward_kernels_of(dfss_dtype dtype, int64_t head_dim) {
  const bool half = dtype == DFSS_DTYPE_FLOAT16;
  if (head_dim == 64) {
    return half ? fused::fused_backward_wgmma_kernels<__half, 64>()
                : fused::fused_backward_wgmma_kernels<__nv_bfloat16, 64>();
  }
  return half ? fused::fused_backward_wgmma_kernels<__half, 128>()
              : fused::fused_backward_wgmma_kernels<__nv_bfloat16, 128>();
}
#endif

FusedBackwardKernels backward_kernels_of(dfss_dtype dtype, int64_t head_dim) {
  const bool half = dtype == DFSS_DTYPE_FLOAT16;
  switch (head_dim) {
    case 32: return half ? fused::fused_backward_kernels<__half, 32>() : fused::fused_backward_kernels<__nv_bfloat16, 32>();
    case 64: return half ? fused::fused_backward_kernels<__half, 64>() : fused::fused_backward_kernels<__nv_bfloat16, 64>();
    case 96: return half ? fused::fused_backward_kernels<__half, 96>() : fused::fused_backward_kernels<__nv_bfloat16, 96>();
    default: return half ? fused::fused_backward_kernels<__half, 128>() : fused::fused_backward_kernels<__nv_bfloat16, 128>();
  }
}

}  // namespace

uint64_t attention_backward_tensor_core_workspace_bytes(const AttentionShape &shape) {
  if (!shape_supported(shape)) return 0;
  // Past 2^56 rows (more than any memory holds) the sum could wrap: report no size at all.
  if (shape.rows() > (int64_t{1} << 56)) return UINT64_MAX;
  // The per-batch lengths (room for both, used or not) and D_i per query row.
  const size_t batch = static_cast<size_t>(shape.batch);
  return StreamWorkspace::bytes_for<int32_t>(batch) + StreamWorkspace::bytes_for<int32_t>(batch) +
         StreamWorkspace::bytes_for<float>(static_cast<size_t>(shape.rows()));
}

bool attention_backward_tensor_core(const AttentionCall &call, const BackwardArguments &arguments,
                                    dfss_status *status) {
  const AttentionShape &shape = call.shape;
  if (!shape_supported(shape)) return false;
  fused::FusedChoice forward{};
  if (!fused::choose_fused_forward(shape, arguments.q, arguments.k, arguments.v, arguments.out, &forward)) return false;
  const int pattern = is_dense(shape.layout) ? DFSS_PATTERN_DENSE
                                             : (shape.layout.m == 2 ? DFSS_PATTERN_1_2 : DFSS_PATTERN_2_4);
  const int index = fused::fused_backward_pattern_index(pattern);
  const FusedBackwardKernels kernels = backward_kernels_of(shape.dtype, shape.head_dim);
  FusedBackwardKernel dq_kernel = kernels.dq[index];
  FusedBackwardKernel dk_dv_kernel = kernels.dk_dv[index];
  const int head_dim = static_cast<int>(shape.head_dim);
  size_t dq_shared = fused::fused_backward_dq_shared_bytes(head_dim, kElementBytes);
  size_t dk_dv_shared = fused::fused_backward_dk_dv_shared_bytes(head_dim, kElementBytes);
  const bool dout_async = aligned(arguments.dout, 16) && rows_aligned(arguments.strides.dout, 16 / kElementBytes);
  // Never false where the forward's kernel is ready (same build, less shared memory); declining here would let the
  // reference backward recompute the scores with other arithmetic.
  if (!tensor_core_kernel_ready(reinterpret_cast<const void *>(dq_kernel), forward.device, dq_shared) ||
      !tensor_core_kernel_ready(reinterpret_cast<const void *>(dk_dv_kernel), forward.device, dk_dv_shared)) {
    return false;
  }
#if defined(DFSS_BUILT_SM90A)
  // Where the forward ran a Hopper kernel (so DFSS_FUSED_WGMMA=0 turns off both passes' ones), the backward runs the
  // Hopper kernels when dO can be copied with cp.async.
  if (forward.hopper && dout_async) {
    const FusedBackwardKernels hopper = wgmma_backward_kernels_of(shape.dtype, head_dim);
    const size_t hopper_dq_shared = fused::fused_backward_dq_wgmma_shared_bytes(head_dim, kElementBytes);
    const size_t hopper_dk_dv_shared = fused::fused_backward_dk_dv_wgmma_shared_bytes(head_dim, kElementBytes);
    if (tensor_core_kernel_ready(reinterpret_cast<const void *>(hopper.dq[index]), forward.device, hopper_dq_shared,
                                 90) &&
        tensor_core_kernel_ready(reinterpret_cast<const void *>(hopper.dk_dv[index]), forward.device,
                                 hopper_dk_dv_shared, 90)) {
      dq_kernel = hopper.dq[index];
      dk_dv_kernel = hopper.dk_dv[index];
      dq_shared = hopper_dq_shared;
      dk_dv_shared = hopper_dk_dv_shared;
    }
  }
#endif

  *status = [&]() -> dfss_status {
    // The carves follow attention_backward_tensor_core_workspace_bytes; the lengths take their room only when given.
    StreamWorkspace workspace(call.stream, arguments.workspace);
    FusedBackwardParams params{};
    params.shape = shape;
    params.strides = arguments.strides;
    params.q = arguments.q;
    params.k = arguments.k;
    params.v = arguments.v;
    params.out = arguments.out;
    params.dout = arguments.dout;
    params.lse = arguments.lse;
    params.dq = arguments.dq;
    params.dk = arguments.dk;
    params.dv = arguments.dv;
    DFSS_RETURN_IF_ERROR(workspace.upload_lengths(call.seqlens_q, call.seqlens_k, &params.seqlens_q, &params.seqlens_k));
    params.row_dot = workspace.carve<float>(static_cast<size_t>(shape.rows()));
    params.query_tiles = (shape.seq_q + fused::kBlockRows - 1) / fused::kBlockRows;
    params.key_tiles = (shape.seq_k + fused::kTileKeys - 1) / fused::kTileKeys;
    params.dq_work_items = shape.batch * shape.heads_q * params.query_tiles;         // <= B Hq Nq (validated)
    params.dk_dv_work_items = shape.batch * shape.heads_kv * params.key_tiles;      // <= B Hkv Nk
    params.dout_async = dout_async;
    params.gradient_pairs = aligned(arguments.dq, 2 * kElementBytes) && aligned(arguments.dk, 2 * kElementBytes) &&
                            aligned(arguments.dv, 2 * kElementBytes) && rows_aligned(arguments.strides.dq, 2) &&
                            rows_aligned(arguments.strides.dk, 2) && rows_aligned(arguments.strides.dv, 2);
    // dq first: it writes D_i, which the dk / dv kernel reads (same stream).
    DFSS_RETURN_IF_ERROR(launch_work_items(reinterpret_cast<const void *>(dq_kernel), &params, params.dq_work_items,
                                           fused::kThreads, dq_shared, call.stream, "attention_backward_dq_kernel"));
    return launch_work_items(reinterpret_cast<const void *>(dk_dv_kernel), &params, params.dk_dv_work_items,
                             fused::kThreads, dk_dv_shared, call.stream, "attention_backward_dk_dv_kernel");
  }();
  return true;
}

}  // namespace dfss
