// Device memory and streams: what a caller in any language needs besides the attention entry points.
#include <cuda_runtime_api.h>

#include "device.h"
#include "memory_kind.h"
#include "status.h"

using dfss::api_call;
using dfss::check_cuda;
using dfss::fail;

namespace {

dfss_status require_pointer(const char *name, const void *pointer, uint64_t bytes) {
  if (pointer == nullptr && bytes > 0) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT, "%s: expected a pointer to %llu bytes, got NULL", name,
                static_cast<unsigned long long>(bytes));
  }
  return DFSS_SUCCESS;
}

}  // namespace

extern "C" {

DFSS_API dfss_status dfss_malloc(void **ptr, uint64_t bytes) {
  return api_call("dfss_malloc", [&] {
    if (ptr == nullptr) return fail(DFSS_ERROR_INVALID_ARGUMENT, "ptr: expected a pointer to a void *, got NULL");
    if (bytes == 0) return fail(DFSS_ERROR_INVALID_ARGUMENT, "bytes: expected a size > 0, got 0");
    DFSS_RETURN_IF_ERROR(dfss::require_device());
    void *allocation = nullptr;
    DFSS_RETURN_IF_ERROR(check_cuda(cudaMalloc(&allocation, bytes), "cudaMalloc"));
    *ptr = allocation;
    return DFSS_SUCCESS;
  });
}

DFSS_API dfss_status dfss_free(void *ptr) {
  return api_call("dfss_free", [&] {
    if (ptr == nullptr) return DFSS_SUCCESS;
    DFSS_RETURN_IF_ERROR(dfss::require_device());
    DFSS_RETURN_IF_ERROR(dfss::check_device_memory("ptr", ptr));
    return check_cuda(cudaFree(ptr), "cudaFree");
  });
}

DFSS_API dfss_status dfss_memcpy(void *dst, const void *src, uint64_t bytes, dfss_memcpy_kind kind,
                                 dfss_stream stream) {
  return api_call("dfss_memcpy", [&] {
    cudaMemcpyKind cuda_kind;
    switch (kind) {
      case DFSS_MEMCPY_HOST_TO_DEVICE: cuda_kind = cudaMemcpyHostToDevice; break;
      case DFSS_MEMCPY_DEVICE_TO_HOST: cuda_kind = cudaMemcpyDeviceToHost; break;
      case DFSS_MEMCPY_DEVICE_TO_DEVICE: cuda_kind = cudaMemcpyDeviceToDevice; break;
      default:
        return fail(DFSS_ERROR_INVALID_ARGUMENT,
                    "kind: expected DFSS_MEMCPY_HOST_TO_DEVICE (0), DFSS_MEMCPY_DEVICE_TO_HOST (1) or "
                    "DFSS_MEMCPY_DEVICE_TO_DEVICE (2), got %d",
                    static_cast<int>(kind));
    }
    DFSS_RETURN_IF_ERROR(require_pointer("dst", dst, bytes));
    DFSS_RETURN_IF_ERROR(require_pointer("src", src, bytes));
    DFSS_RETURN_IF_ERROR(dfss::require_device());
    if (bytes == 0) return DFSS_SUCCESS;
    const bool dst_on_device = kind != DFSS_MEMCPY_DEVICE_TO_HOST;
    const bool src_on_device = kind != DFSS_MEMCPY_HOST_TO_DEVICE;
    DFSS_RETURN_IF_ERROR(dst_on_device ? dfss::check_device_memory("dst", dst) : dfss::check_host_memory("dst", dst));
    DFSS_RETURN_IF_ERROR(src_on_device ? dfss::check_device_memory("src", src) : dfss::check_host_memory("src", src));

    const cudaStream_t cuda_stream = static_cast<cudaStream_t>(stream);
    DFSS_RETURN_IF_ERROR(check_cuda(cudaMemcpyAsync(dst, src, bytes, cuda_kind, cuda_stream), "cudaMemcpyAsync"));
    if (kind == DFSS_MEMCPY_DEVICE_TO_DEVICE) return DFSS_SUCCESS;
    // A copy from page-locked host memory is still reading the buffer when cudaMemcpyAsync returns, and a copy to
    // the host has not written it yet; waiting for the stream is what lets the caller reuse or read the buffer
    // on return, whatever kind of host memory it passed.
    return check_cuda(cudaStreamSynchronize(cuda_stream), "cudaStreamSynchronize");
  });
}

DFSS_API dfss_status dfss_memset(void *dst, int32_t value, uint64_t bytes, dfss_stream stream) {
  return api_call("dfss_memset", [&] {
    if (value < 0 || value > 255) {
      return fail(DFSS_ERROR_INVALID_ARGUMENT, "value: expected a byte value 0 <= value <= 255, got %d", value);
    }
    DFSS_RETURN_IF_ERROR(require_pointer("dst", dst, bytes));
    DFSS_RETURN_IF_ERROR(dfss::require_device());
    if (bytes == 0) return DFSS_SUCCESS;
    DFSS_RETURN_IF_ERROR(dfss::check_device_memory("dst", dst));
    return check_cuda(cudaMemsetAsync(dst, value, bytes, static_cast<cudaStream_t>(stream)), "cudaMemsetAsync");
  });
}

DFSS_API dfss_status dfss_stream_create(dfss_stream *stream) {
  return api_call("dfss_stream_create", [&] {
    if (stream == nullptr) {
      return fail(DFSS_ERROR_INVALID_ARGUMENT, "stream: expected a pointer to a dfss_stream, got NULL");
    }
    DFSS_RETURN_IF_ERROR(dfss::require_device());
    cudaStream_t created = nullptr;
    DFSS_RETURN_IF_ERROR(check_cuda(cudaStreamCreate(&created), "cudaStreamCreate"));
    *stream = created;
    return DFSS_SUCCESS;
  });
}

DFSS_API dfss_status dfss_stream_destroy(dfss_stream stream) {
  return api_call("dfss_stream_destroy", [&] {
    if (stream == nullptr) {
      return fail(DFSS_ERROR_INVALID_ARGUMENT,
                  "stream: expected a stream from dfss_stream_create, got NULL (the default stream cannot be destroyed)");
    }
    DFSS_RETURN_IF_ERROR(dfss::require_device());
    return check_cuda(cudaStreamDestroy(static_cast<cudaStream_t>(stream)), "cudaStreamDestroy");
  });
}

DFSS_API dfss_status dfss_stream_synchronize(dfss_stream stream) {
  return api_call("dfss_stream_synchronize", [&] {
    DFSS_RETURN_IF_ERROR(dfss::require_device());
    return check_cuda(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
  });
}

}  // extern "C"
