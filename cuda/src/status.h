// Statuses and the calling thread's last error message: how every entry point reports failure.
#pragma once

#include <cuda_runtime_api.h>

#include <exception>

#include "dfss.h"

namespace dfss {

// Records `format` (printf style) as the calling thread's last error message and returns `status`.
dfss_status fail(dfss_status status, const char *format, ...) __attribute__((format(printf, 2, 3)));

// Turns a failed CUDA call into a status and a message that carries CUDA's name and text of the error:
// no driver / no GPU -> DFSS_ERROR_NO_DEVICE, allocation -> DFSS_ERROR_OUT_OF_MEMORY, missing kernel image for
// the GPU -> DFSS_ERROR_UNSUPPORTED, anything else -> DFSS_ERROR_CUDA. `operation` names what failed.
dfss_status fail_cuda(cudaError_t error, const char *operation);

// DFSS_SUCCESS for cudaSuccess, else fail_cuda(error, operation).
inline dfss_status check_cuda(cudaError_t error, const char *operation) {
  return error == cudaSuccess ? DFSS_SUCCESS : fail_cuda(error, operation);
}

void clear_last_error();
const char *last_error_message();

// Runs the body of a C entry point: no C++ exception crosses the ABI, the last error message is cleared on
// success, and a failure always leaves a message behind.
template <typename Body>
dfss_status api_call(const char *function, Body &&body) noexcept {
  try {
    clear_last_error();
    const dfss_status status = body();
    if (status == DFSS_SUCCESS) {
      clear_last_error();
    } else if (last_error_message()[0] == '\0') {
      fail(status, "%s failed", function);
    }
    return status;
  } catch (const std::exception &error) {
    return fail(DFSS_ERROR_INTERNAL, "%s: internal error: %s", function, error.what());
  } catch (...) {
    return fail(DFSS_ERROR_INTERNAL, "%s: internal error: unknown exception", function);
  }
}

}  // namespace dfss

// Returns from the enclosing function when `expression` (a dfss_status) is not DFSS_SUCCESS.
#define DFSS_RETURN_IF_ERROR(expression)               \
  do {                                                 \
    const dfss_status dfss_status_ = (expression);     \
    if (dfss_status_ != DFSS_SUCCESS) return dfss_status_; \
  } while (0)
