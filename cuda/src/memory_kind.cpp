// Memory kind checks through cudaPointerGetAttributes.
#include "memory_kind.h"

#include <cuda_runtime_api.h>

#include "device.h"
#include "status.h"

namespace dfss {
namespace {

dfss_status pointer_attributes(const char *name, const void *pointer, cudaPointerAttributes *attributes) {
  const cudaError_t error = cudaPointerGetAttributes(attributes, pointer);
  if (error == cudaSuccess) return DFSS_SUCCESS;
  const dfss_status status = fail_cuda(error, "cudaPointerGetAttributes");
  if (status != DFSS_ERROR_CUDA) return status;
  return fail(DFSS_ERROR_INVALID_ARGUMENT, "%s: expected a pointer CUDA can classify, got %p (%s)", name, pointer,
              cudaGetErrorName(error));
}

const char *kind_name(cudaMemoryType type) {
  switch (type) {
    case cudaMemoryTypeUnregistered: return "host memory";
    case cudaMemoryTypeHost: return "page-locked host memory";
    case cudaMemoryTypeDevice: return "device memory";
    case cudaMemoryTypeManaged: return "managed memory";
  }
  return "memory of an unknown kind";
}

}  // namespace

dfss_status check_device_memory(const char *name, const void *pointer) {
  cudaPointerAttributes attributes;
  DFSS_RETURN_IF_ERROR(pointer_attributes(name, pointer, &attributes));
  if (attributes.type == cudaMemoryTypeManaged) return DFSS_SUCCESS;
  if (attributes.type != cudaMemoryTypeDevice) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT,
                "%s: expected device memory (from dfss_malloc or another CUDA allocator), got %s at %p", name,
                kind_name(attributes.type), pointer);
  }
  int device = 0;
  DFSS_RETURN_IF_ERROR(current_device(&device));
  if (attributes.device != device) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT, "%s: expected memory of the current device (%d), got memory of device %d",
                name, device, attributes.device);
  }
  return DFSS_SUCCESS;
}

dfss_status check_host_memory(const char *name, const void *pointer) {
  cudaPointerAttributes attributes;
  DFSS_RETURN_IF_ERROR(pointer_attributes(name, pointer, &attributes));
  if (attributes.type == cudaMemoryTypeDevice) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT, "%s: expected host memory, got device memory at %p", name, pointer);
  }
  return DFSS_SUCCESS;
}

}  // namespace dfss
