// Status strings, the thread-local last error message, and the mapping of CUDA errors to statuses.
#include "status.h"

#include <cstdarg>
#include <cstdio>

namespace dfss {
namespace {

// One message per thread; it stays valid until the thread's next call into the library.
thread_local char t_last_error[2048] = "";

// Why a CUDA error means "no usable device", or nullptr when it does not.
const char *no_device_reason(cudaError_t error) {
  switch (error) {
    case cudaErrorNoDevice: return "no CUDA-capable GPU was found";
    case cudaErrorInsufficientDriver: return "CUDA driver not found, or older than the CUDA runtime of this library";
    case cudaErrorInitializationError: return "the CUDA driver failed to initialize";
    case cudaErrorInvalidDevice: return "the device index does not exist";
    case cudaErrorDevicesUnavailable: return "every CUDA device is busy or unavailable";
    case cudaErrorStubLibrary: return "only a stub of the CUDA driver library was found";
    case cudaErrorSystemDriverMismatch: return "the CUDA driver library and the kernel driver versions differ";
    case cudaErrorCompatNotSupportedOnDevice: return "the CUDA forward-compatibility driver does not support this GPU";
    case cudaErrorSystemNotReady: return "the CUDA system is not ready (is the fabric manager running?)";
    default: return nullptr;
  }
}

}  // namespace

dfss_status fail(dfss_status status, const char *format, ...) {
  va_list arguments;
  va_start(arguments, format);
  std::vsnprintf(t_last_error, sizeof t_last_error, format, arguments);
  va_end(arguments);
  return status;
}

dfss_status fail_cuda(cudaError_t error, const char *operation) {
  // Reset the runtime's record of a non-sticky error, so that the launch checks of later calls report only
  // their own errors.
  (void)cudaGetLastError();
  const char *name = cudaGetErrorName(error);
  const char *text = cudaGetErrorString(error);
  if (const char *reason = no_device_reason(error)) {
    return fail(DFSS_ERROR_NO_DEVICE, "no CUDA device: %s (%s: %s)", reason, name, text);
  }
  if (error == cudaErrorMemoryAllocation) {
    return fail(DFSS_ERROR_OUT_OF_MEMORY, "%s: out of device memory (%s: %s)", operation, name, text);
  }
  if (error == cudaErrorNoKernelImageForDevice || error == cudaErrorUnsupportedPtxVersion) {
    return fail(DFSS_ERROR_UNSUPPORTED,
                "%s: this build of libdfss has no GPU code for the current device (built for compute capabilities "
                "%s) (%s: %s)",
                operation, DFSS_BUILT_ARCHITECTURES, name, text);
  }
  return fail(DFSS_ERROR_CUDA, "%s: %s: %s", operation, name, text);
}

void clear_last_error() { t_last_error[0] = '\0'; }

const char *last_error_message() { return t_last_error; }

}  // namespace dfss

extern "C" {

DFSS_API const char *dfss_status_string(dfss_status status) {
  switch (status) {
    case DFSS_SUCCESS: return "DFSS_SUCCESS: the call succeeded";
    case DFSS_ERROR_INVALID_ARGUMENT: return "DFSS_ERROR_INVALID_ARGUMENT: an argument is out of its documented range";
    case DFSS_ERROR_NO_DEVICE: return "DFSS_ERROR_NO_DEVICE: no CUDA driver, no GPU, or a device index that does not exist";
    case DFSS_ERROR_UNSUPPORTED: return "DFSS_ERROR_UNSUPPORTED: a valid combination this build or this GPU does not implement";
    case DFSS_ERROR_OUT_OF_MEMORY: return "DFSS_ERROR_OUT_OF_MEMORY: device memory exhausted";
    case DFSS_ERROR_CUDA: return "DFSS_ERROR_CUDA: a CUDA runtime error";
    case DFSS_ERROR_INTERNAL: return "DFSS_ERROR_INTERNAL: a bug in the library";
  }
  return "DFSS_ERROR_UNKNOWN: not a dfss_status value";
}

DFSS_API const char *dfss_last_error_message(void) { return dfss::last_error_message(); }

}  // extern "C"
