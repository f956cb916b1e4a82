// Device queries and selection: count, info, set / get, synchronize.
#include "device.h"

#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstring>

#include "status.h"

namespace dfss {
namespace {

dfss_status device_count(int *count) {
  *count = 0;
  int found = 0;
  DFSS_RETURN_IF_ERROR(check_cuda(cudaGetDeviceCount(&found), "cudaGetDeviceCount"));
  if (found <= 0) return fail(DFSS_ERROR_NO_DEVICE, "no CUDA device: the CUDA driver reports no GPU");
  *count = found;
  return DFSS_SUCCESS;
}

// A device index that does not exist is DFSS_ERROR_NO_DEVICE (dfss.h), named as the `device` argument.
dfss_status require_device_index(int32_t device) {
  int count = 0;
  DFSS_RETURN_IF_ERROR(device_count(&count));
  if (device < 0 || device >= count) {
    return fail(DFSS_ERROR_NO_DEVICE, "device: expected 0 <= device < %d (the number of CUDA devices), got %d", count,
                device);
  }
  return DFSS_SUCCESS;
}

// Free memory is a property of a context, so it is read with `device` made current for a moment.
dfss_status free_memory_of(int device, uint64_t *free_bytes) {
  int previous = 0;
  DFSS_RETURN_IF_ERROR(check_cuda(cudaGetDevice(&previous), "cudaGetDevice"));
  DFSS_RETURN_IF_ERROR(check_cuda(cudaSetDevice(device), "cudaSetDevice"));
  size_t free_memory = 0;
  size_t total_memory = 0;
  const cudaError_t error = cudaMemGetInfo(&free_memory, &total_memory);
  const cudaError_t restore = cudaSetDevice(previous);
  DFSS_RETURN_IF_ERROR(check_cuda(error, "cudaMemGetInfo"));
  DFSS_RETURN_IF_ERROR(check_cuda(restore, "cudaSetDevice"));
  *free_bytes = free_memory;
  return DFSS_SUCCESS;
}

}  // namespace

dfss_status require_device() {
  int count = 0;
  return device_count(&count);
}

dfss_status current_device(int *device) { return check_cuda(cudaGetDevice(device), "cudaGetDevice"); }

}  // namespace dfss

using dfss::api_call;
using dfss::check_cuda;
using dfss::fail;

extern "C" {

DFSS_API dfss_status dfss_device_count(int32_t *count) {
  return api_call("dfss_device_count", [&] {
    if (count == nullptr) return fail(DFSS_ERROR_INVALID_ARGUMENT, "count: expected a pointer to an int32_t, got NULL");
    int found = 0;
    const dfss_status status = dfss::device_count(&found);
    *count = found;  // 0 where there is no device, as dfss.h promises
    return status;
  });
}

DFSS_API dfss_status dfss_device_get_info(int32_t device, dfss_device_info *info) {
  return api_call("dfss_device_get_info", [&] {
    if (info == nullptr) {
      return fail(DFSS_ERROR_INVALID_ARGUMENT, "info: expected a pointer to a dfss_device_info, got NULL");
    }
    DFSS_RETURN_IF_ERROR(dfss::require_device_index(device));
    cudaDeviceProp properties;
    DFSS_RETURN_IF_ERROR(check_cuda(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties"));
    dfss_device_info result;
    std::memset(&result, 0, sizeof result);
    std::snprintf(result.name, sizeof result.name, "%s", properties.name);
    result.compute_major = properties.major;
    result.compute_minor = properties.minor;
    result.multiprocessor_count = properties.multiProcessorCount;
    result.sparse_tensor_cores = properties.major >= 8 ? 1 : 0;
    result.total_memory_bytes = properties.totalGlobalMem;
    DFSS_RETURN_IF_ERROR(dfss::free_memory_of(device, &result.free_memory_bytes));
    *info = result;
    return DFSS_SUCCESS;
  });
}

DFSS_API dfss_status dfss_device_set(int32_t device) {
  return api_call("dfss_device_set", [&] {
    DFSS_RETURN_IF_ERROR(dfss::require_device_index(device));
    return check_cuda(cudaSetDevice(device), "cudaSetDevice");
  });
}

DFSS_API dfss_status dfss_device_get(int32_t *device) {
  return api_call("dfss_device_get", [&] {
    if (device == nullptr) return fail(DFSS_ERROR_INVALID_ARGUMENT, "device: expected a pointer to an int32_t, got NULL");
    DFSS_RETURN_IF_ERROR(dfss::require_device());
    int current = 0;
    DFSS_RETURN_IF_ERROR(dfss::current_device(&current));
    *device = current;
    return DFSS_SUCCESS;
  });
}

DFSS_API dfss_status dfss_device_synchronize(void) {
  return api_call("dfss_device_synchronize", [&] {
    DFSS_RETURN_IF_ERROR(dfss::require_device());
    return check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  });
}

}  // extern "C"
