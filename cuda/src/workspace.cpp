// StreamWorkspace: cudaMallocAsync / cudaFreeAsync on the call's stream, or plain cudaMalloc / cudaFree on
// devices without stream-ordered allocation.
#include "workspace.h"

#include "device.h"
#include "status.h"

namespace dfss {

StreamWorkspace::~StreamWorkspace() {
  if (base_ == nullptr || !owned_) return;
  // A failure here can only follow a device error that the call has already reported.
  if (stream_ordered_) {
    (void)cudaFreeAsync(base_, stream_);
  } else {
    (void)cudaStreamSynchronize(stream_);  // the call's kernels may still be using the memory
    (void)cudaFree(base_);
  }
}

dfss_status StreamWorkspace::allocate(size_t bytes) {
  if (bytes == 0) return DFSS_SUCCESS;
  int device = 0;
  DFSS_RETURN_IF_ERROR(current_device(&device));
  int pools_supported = 0;
  DFSS_RETURN_IF_ERROR(check_cuda(cudaDeviceGetAttribute(&pools_supported, cudaDevAttrMemoryPoolsSupported, device),
                                  "cudaDeviceGetAttribute(cudaDevAttrMemoryPoolsSupported)"));
  void *memory = nullptr;
  if (pools_supported != 0) {
    DFSS_RETURN_IF_ERROR(check_cuda(cudaMallocAsync(&memory, bytes, stream_), "cudaMallocAsync (workspace)"));
  } else {
    DFSS_RETURN_IF_ERROR(check_cuda(cudaMalloc(&memory, bytes), "cudaMalloc (workspace)"));
  }
  base_ = static_cast<char *>(memory);
  stream_ordered_ = pools_supported != 0;
  return DFSS_SUCCESS;
}

dfss_status StreamWorkspace::upload(const std::vector<int32_t> &values, const int32_t **device_copy) {
  *device_copy = nullptr;
  if (values.empty()) return DFSS_SUCCESS;
  int32_t *copy = carve<int32_t>(values.size());
  // `values` is pageable host memory: cudaMemcpyAsync returns once it has been staged, so the vector may be
  // released when the call returns while the copy itself stays ordered on the stream.
  DFSS_RETURN_IF_ERROR(check_cuda(
      cudaMemcpyAsync(copy, values.data(), values.size() * sizeof(int32_t), cudaMemcpyHostToDevice, stream_),
      "cudaMemcpyAsync (per-batch lengths)"));
  *device_copy = copy;
  return DFSS_SUCCESS;
}

}  // namespace dfss
