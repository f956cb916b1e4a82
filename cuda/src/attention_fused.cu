// Dispatch of the fused tensor-core forward (attention_fused_kernel.cuh; float32: attention_fused_tf32_kernel.cuh,
// 3xTF32 in float32 accuracy). It takes a call when
//   - the current device is sm_80 or later, the kernel has an image for it built for sm_80 or later, and the device
//     has the kernel's shared memory (float32 tiles take twice the bytes of 16-bit ones),
//   - the dtype is float16, bfloat16 or float32, with pattern dense, 1:2 or 2:4,
//   - head_dim == head_dim_v, one of 32, 64, 128,
//   - q, k and v rows start on 16-byte boundaries (pointers and batch / head / row strides; cp.async copies 16
//     bytes: 8 elements of 16 bits, 4 of float32), and out rows on the boundaries of two elements (pairs of elements
//     are stored together);
// and declines every other call, which the reference kernel then runs.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "attention_fused_launch.cuh"
#include "launch.h"
#include "status.h"
#include "tensor_core_kernels.h"
#include "workspace.h"

namespace dfss {
namespace {

using fused::FusedAttentionParams;
using fused::FusedKernel;
using fused::FusedKernels;

constexpr int kMaxCachedDevices = 64;

// Compute capability (10 major + minor) of each device, 0 until first asked.
std::atomic<int> device_architectures[kMaxCachedDevices];

int device_architecture(int device) {
  if (device < 0 || device >= kMaxCachedDevices) return 0;
  int architecture = device_architectures[device].load(std::memory_order_relaxed);
  if (architecture != 0) return architecture;
  int major = 0;
  int minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    clear_stale_cuda_error();
    return 0;
  }
  architecture = 10 * major + minor;
  device_architectures[device].store(architecture, std::memory_order_relaxed);
  return architecture;
}

// Whether `kernel` can run on `device` with `shared_bytes` of dynamic shared memory: an image built for sm_80 or
// later (an sm_75 image has an empty body) and enough shared memory. Asked once per kernel and device.
bool kernel_ready(FusedKernel kernel, int device, size_t shared_bytes) {
  static std::mutex mutex;
  static std::map<std::pair<FusedKernel, int>, bool> ready;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_pair(kernel, device);
  const auto known = ready.find(key);
  if (known != ready.end()) return known->second;

  bool usable = false;
  cudaFuncAttributes attributes{};
  int shared_limit = 0;
  if (cudaFuncGetAttributes(&attributes, reinterpret_cast<const void *>(kernel)) == cudaSuccess &&
      cudaDeviceGetAttribute(&shared_limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) == cudaSuccess) {
    usable = attributes.binaryVersion >= 80 &&
             attributes.sharedSizeBytes + shared_bytes <= static_cast<size_t>(shared_limit);
  }
  if (!usable) clear_stale_cuda_error();  // a missing image is an answer here, not an error of the call
  ready.emplace(key, usable);
  return usable;
}

FusedKernels kernels_of(dfss_dtype dtype, int64_t head_dim) {
  if (dtype == DFSS_DTYPE_FLOAT32) {
    switch (head_dim) {
      case 32: return fused::fused_attention_f32_kernels<32>();
      case 64: return fused::fused_attention_f32_kernels<64>();
      default: return fused::fused_attention_f32_kernels<128>();
    }
  }
  const bool half = dtype == DFSS_DTYPE_FLOAT16;
  switch (head_dim) {
    case 32: return half ? fused::fused_attention_kernels<__half, 32>() : fused::fused_attention_kernels<__nv_bfloat16, 32>();
    case 64: return half ? fused::fused_attention_kernels<__half, 64>() : fused::fused_attention_kernels<__nv_bfloat16, 64>();
    default: return half ? fused::fused_attention_kernels<__half, 128>() : fused::fused_attention_kernels<__nv_bfloat16, 128>();
  }
}

FusedKernel kernel_of(const FusedKernels &kernels, const CompressedLayout &layout) {
  if (is_dense(layout)) return kernels.dense;
  return layout.m == 2 ? kernels.one_of_two : kernels.two_of_four;
}

bool aligned(const void *pointer, size_t bytes) { return reinterpret_cast<uintptr_t>(pointer) % bytes == 0; }

// Every row of the tensor starts `elements` elements after a multiple of them from the (aligned) pointer.
bool rows_aligned(const Strides4 &strides, int64_t elements) {
  return strides.batch % elements == 0 && strides.head % elements == 0 && strides.row % elements == 0;
}

}  // namespace

bool attention_forward_tensor_core(const AttentionCall &call, const void *q, const void *k, const void *v, void *out,
                                   float *lse, dfss_status *status) {
  const AttentionShape &shape = call.shape;
  const bool float32 = shape.dtype == DFSS_DTYPE_FLOAT32;
  if (shape.dtype != DFSS_DTYPE_FLOAT16 && shape.dtype != DFSS_DTYPE_BFLOAT16 && !float32) return false;
  if (shape.head_dim != shape.head_dim_v || !fused::fused_head_dim_supported(shape.head_dim)) return false;
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
  if (device_architecture(device) < 80) return false;
  const FusedKernel kernel = kernel_of(kernels_of(shape.dtype, shape.head_dim), shape.layout);
  const int head_dim = static_cast<int>(shape.head_dim);
  const size_t shared_bytes = float32 ? fused::fused_f32_shared_bytes(head_dim)
                                      : fused::fused_shared_bytes(head_dim, static_cast<size_t>(element_bytes));
  if (!kernel_ready(kernel, device, shared_bytes)) return false;

  *status = [&]() -> dfss_status {
    StreamWorkspace workspace(call.stream);
    DFSS_RETURN_IF_ERROR(workspace.allocate(StreamWorkspace::bytes_for<int32_t>(call.seqlens_q.size()) +
                                            StreamWorkspace::bytes_for<int32_t>(call.seqlens_k.size())));
    FusedAttentionParams params{};
    params.shape = shape;
    params.q = q;
    params.k = k;
    params.v = v;
    params.out = out;
    params.lse = lse;
    DFSS_RETURN_IF_ERROR(workspace.upload(call.seqlens_q, &params.seqlens_q));
    DFSS_RETURN_IF_ERROR(workspace.upload(call.seqlens_k, &params.seqlens_k));
    params.query_tiles = (shape.seq_q + fused::kBlockRows - 1) / fused::kBlockRows;
    params.work_items = shape.batch * shape.heads_q * params.query_tiles;  // <= B Hq Nq, which fits (validated)
    // Blocks loop over work items when there are more than a grid holds.
    const unsigned grid = static_cast<unsigned>(std::min<int64_t>(params.work_items, INT_MAX));
    // Above the default 48 KiB a kernel must ask for its shared memory; set on every launch, since a device reset
    // forgets it.
    constexpr size_t kDefaultSharedLimit = 48 * 1024;
    if (shared_bytes > kDefaultSharedLimit) {
      DFSS_RETURN_IF_ERROR(check_cuda(cudaFuncSetAttribute(reinterpret_cast<const void *>(kernel),
                                                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                           static_cast<int>(shared_bytes)),
                                      "cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize)"));
    }
    void *arguments[] = {&params};
    clear_stale_cuda_error();
    return check_cuda(cudaLaunchKernel(reinterpret_cast<const void *>(kernel), dim3(grid), dim3(fused::kThreads),
                                       arguments, shared_bytes, call.stream),
                      "attention_fused_kernel");
  }();
  return true;
}

}  // namespace dfss
