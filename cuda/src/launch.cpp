// Launch configuration and launch checks of the reference kernels.
#include "launch.h"

#include <cuda_runtime_api.h>

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

}  // namespace dfss
