// Launch configuration and launch checks of the kernels.
#include "launch.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <climits>
#include <map>
#include <mutex>
#include <utility>

#include "device.h"
#include "status.h"

namespace dfss {

dfss_status row_loop_grid(const void *kernel, int64_t rows, int *grid) {
  int device = 0;
  DFSS_RETURN_IF_ERROR(current_device(&device));
  int multiprocessors = 0;
  DFSS_RETURN_IF_ERROR(check_cuda(cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device),
                                  "cudaDeviceGetAttribute(cudaDevAttrMultiProcessorCount)"));
  int blocks_per_multiprocessor = 0;
  DFSS_RETURN_IF_ERROR(check_cuda(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_multiprocessor, kernel, kReferenceThreads, 0),
      "cudaOccupancyMaxActiveBlocksPerMultiprocessor"));
  if (blocks_per_multiprocessor < 1) blocks_per_multiprocessor = 1;
  const int64_t resident = static_cast<int64_t>(multiprocessors) * blocks_per_multiprocessor;
  *grid = static_cast<int>(rows < resident ? rows : resident);
  return DFSS_SUCCESS;
}

dfss_status check_launch(const char *kernel) { return check_cuda(cudaGetLastError(), kernel); }

void clear_stale_cuda_error() { (void)cudaGetLastError(); }

bool tensor_core_kernel_ready(const void *kernel, int device, size_t dynamic_shared_bytes, int min_arch) {
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
  int minor = 0;
  if (cudaFuncGetAttributes(&attributes, kernel) == cudaSuccess &&
      cudaDeviceGetAttribute(&shared_limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) == cudaSuccess &&
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess &&
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) == cudaSuccess) {
    usable = 10 * major + minor >= min_arch && attributes.binaryVersion >= min_arch &&
             attributes.sharedSizeBytes + dynamic_shared_bytes <= static_cast<size_t>(shared_limit);
  }
  if (!usable) clear_stale_cuda_error();
  ready.emplace(key, usable);
  return usable;
}

dfss_status allow_shared_memory(const void *kernel, size_t shared_bytes) {
  constexpr size_t kDefaultSharedLimit = 48 * 1024;
  if (shared_bytes <= kDefaultSharedLimit) return DFSS_SUCCESS;
  return check_cuda(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared_bytes)),
      "cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize)");
}

dfss_status launch_work_items(const void *kernel, void *argument, int64_t work_items, int threads, size_t shared_bytes,
                              cudaStream_t stream, const char *name) {
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(work_items, INT_MAX));
  DFSS_RETURN_IF_ERROR(allow_shared_memory(kernel, shared_bytes));
  void *arguments[] = {argument};
  clear_stale_cuda_error();
  return check_cuda(cudaLaunchKernel(kernel, dim3(grid), dim3(threads), arguments, shared_bytes, stream), name);
}

}  // namespace dfss
