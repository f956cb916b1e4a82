// Dispatch of the fused tensor-core backward (attention_backward_fused_kernel.cuh). It takes exactly the calls whose
// forward the fused tensor-core forward takes (attention_fused.cu), checked the same way:
//   - the current device is sm_80 or later and the forward kernel of the call has an image for it built for sm_80
//     or later, with its shared memory available,
//   - the dtype is float16 or bfloat16, with pattern dense, 1:2 or 2:4,
//   - head_dim == head_dim_v, one of 32, 64, 128,
//   - q, k and v rows start on 16-byte boundaries, out rows on 4-byte boundaries;
// so that both passes compute the scores with the same arithmetic (score_step) and make the same N:M choice. Its own
// kernels exist wherever the forward's do (the same files, architectures and a smaller shared-memory need); dout,
// dq, dk and dv may have any layout the validation accepts.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

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

// The dtype and head dimensions of the fused forward (and so of this backward).
bool shape_supported(const AttentionShape &shape) {
  return (shape.dtype == DFSS_DTYPE_FLOAT16 || shape.dtype == DFSS_DTYPE_BFLOAT16) &&
         shape.head_dim == shape.head_dim_v && fused::fused_head_dim_supported(shape.head_dim);
}

bool aligned(const void *pointer, size_t bytes) { return reinterpret_cast<uintptr_t>(pointer) % bytes == 0; }

// Every row of the tensor starts `elements` elements after a multiple of them from the (aligned) pointer.
bool rows_aligned(const Strides4 &strides, int64_t elements) {
  return strides.batch % elements == 0 && strides.head % elements == 0 && strides.row % elements == 0;
}

// Whether `kernel` can run on `device` with `shared_bytes` of dynamic shared memory: an image built for sm_80 or
// later (an sm_75 image has an empty body) and enough shared memory. Asked once per kernel and device. The same
// test as the forward's dispatch makes of its kernels.
bool kernel_ready(const void *kernel, int device, size_t shared_bytes) {
  static std::mutex mutex;
  static std::map<std::pair<const void *, int>, bool> ready;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_pair(kernel, device);
  const auto known = ready.find(key);
  if (known != ready.end()) return known->second;

  bool usable = false;
  cudaFuncAttributes attributes{};
  int shared_limit = 0;
  int major = 0;
  if (cudaFuncGetAttributes(&attributes, kernel) == cudaSuccess &&
      cudaDeviceGetAttribute(&shared_limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) == cudaSuccess &&
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess) {
    usable = major >= 8 && attributes.binaryVersion >= 80 &&
             attributes.sharedSizeBytes + shared_bytes <= static_cast<size_t>(shared_limit);
  }
  if (!usable) clear_stale_cuda_error();  // a missing image is an answer here, not an error of the call
  ready.emplace(key, usable);
  return usable;
}

template <typename T, int D>
struct KernelsOf {
  static fused::FusedKernels forward() { return fused::fused_attention_kernels<T, D>(); }
  static FusedBackwardKernels backward() { return fused::fused_backward_kernels<T, D>(); }
};

template <typename Body>
auto with_kernels(dfss_dtype dtype, int64_t head_dim, Body &&body) {
  const bool half = dtype == DFSS_DTYPE_FLOAT16;
  switch (head_dim) {
    case 32: return half ? body(KernelsOf<__half, 32>{}) : body(KernelsOf<__nv_bfloat16, 32>{});
    case 64: return half ? body(KernelsOf<__half, 64>{}) : body(KernelsOf<__nv_bfloat16, 64>{});
    default: return half ? body(KernelsOf<__half, 128>{}) : body(KernelsOf<__nv_bfloat16, 128>{});
  }
}

// Sets the shared memory a kernel asks for above the default 48 KiB (on every launch: a device reset forgets it),
// then launches it with `grid` blocks.
dfss_status launch(FusedBackwardKernel kernel, int64_t work_items, size_t shared_bytes, FusedBackwardParams &params,
                   cudaStream_t stream, const char *name) {
  constexpr size_t kDefaultSharedLimit = 48 * 1024;
  if (shared_bytes > kDefaultSharedLimit) {
    DFSS_RETURN_IF_ERROR(check_cuda(cudaFuncSetAttribute(reinterpret_cast<const void *>(kernel),
                                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                         static_cast<int>(shared_bytes)),
                                    "cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize)"));
  }
  // Blocks loop over work items when there are more than a grid holds.
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(work_items, INT_MAX));
  void *arguments[] = {&params};
  clear_stale_cuda_error();
  return check_cuda(cudaLaunchKernel(reinterpret_cast<const void *>(kernel), dim3(grid), dim3(fused::kThreads),
                                     arguments, shared_bytes, stream),
                    name);
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
  const int64_t copy_elements = 16 / kElementBytes;
  if (!aligned(arguments.q, 16) || !aligned(arguments.k, 16) || !aligned(arguments.v, 16) ||
      !rows_aligned(shape.q, copy_elements) || !rows_aligned(shape.k, copy_elements) ||
      !rows_aligned(shape.v, copy_elements)) {
    return false;
  }
  if (!aligned(arguments.out, 2 * kElementBytes) || !rows_aligned(shape.out, 2)) return false;

  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    clear_stale_cuda_error();
    return false;
  }
  const int pattern = is_dense(shape.layout) ? DFSS_PATTERN_DENSE
                                             : (shape.layout.m == 2 ? DFSS_PATTERN_1_2 : DFSS_PATTERN_2_4);
  const int index = fused::fused_backward_pattern_index(pattern);
  const int head_dim = static_cast<int>(shape.head_dim);
  FusedBackwardKernel dq_kernel = nullptr;
  FusedBackwardKernel dk_dv_kernel = nullptr;
  const bool forward_ready = with_kernels(shape.dtype, shape.head_dim, [&](auto kernels) {
    const fused::FusedKernels forward = decltype(kernels)::forward();
    const FusedBackwardKernels backward = decltype(kernels)::backward();
    const fused::FusedKernel forward_kernel =
        index == 0 ? forward.dense : (index == 1 ? forward.one_of_two : forward.two_of_four);
    dq_kernel = backward.dq[index];
    dk_dv_kernel = backward.dk_dv[index];
    return kernel_ready(reinterpret_cast<const void *>(forward_kernel), device,
                        fused::fused_shared_bytes(head_dim, kElementBytes));
  });
  if (!forward_ready) return false;
  const size_t dq_shared = fused::fused_backward_dq_shared_bytes(head_dim, kElementBytes);
  const size_t dk_dv_shared = fused::fused_backward_dk_dv_shared_bytes(head_dim, kElementBytes);
  // Never false where the forward's kernel is ready (same build, less shared memory); declining here would let the
  // reference backward recompute the scores with other arithmetic.
  if (!kernel_ready(reinterpret_cast<const void *>(dq_kernel), device, dq_shared) ||
      !kernel_ready(reinterpret_cast<const void *>(dk_dv_kernel), device, dk_dv_shared)) {
    return false;
  }

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
    DFSS_RETURN_IF_ERROR(workspace.upload(call.seqlens_q, &params.seqlens_q));
    DFSS_RETURN_IF_ERROR(workspace.upload(call.seqlens_k, &params.seqlens_k));
    params.row_dot = workspace.carve<float>(static_cast<size_t>(shape.rows()));
    params.query_tiles = (shape.seq_q + fused::kBlockRows - 1) / fused::kBlockRows;
    params.key_tiles = (shape.seq_k + fused::kTileKeys - 1) / fused::kTileKeys;
    params.dq_work_items = shape.batch * shape.heads_q * params.query_tiles;         // <= B Hq Nq (validated)
    params.dk_dv_work_items = shape.batch * shape.heads_kv * params.key_tiles;      // <= B Hkv Nk
    params.dout_async = aligned(arguments.dout, 16) && rows_aligned(arguments.strides.dout, copy_elements);
    params.gradient_pairs = aligned(arguments.dq, 2 * kElementBytes) && aligned(arguments.dk, 2 * kElementBytes) &&
                            aligned(arguments.dv, 2 * kElementBytes) && rows_aligned(arguments.strides.dq, 2) &&
                            rows_aligned(arguments.strides.dk, 2) && rows_aligned(arguments.strides.dv, 2);
    // dq first: it writes D_i, which the dk / dv kernel reads (same stream).
    DFSS_RETURN_IF_ERROR(launch(dq_kernel, params.dq_work_items, dq_shared, params, call.stream,
                                "attention_backward_dq_kernel"));
    return launch(dk_dv_kernel, params.dk_dv_work_items, dk_dv_shared, params, call.stream,
                  "attention_backward_dk_dv_kernel");
  }();
  return true;
}

}  // namespace dfss
