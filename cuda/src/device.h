// Device checks shared by the entry points.
#pragma once

#include "dfss.h"

namespace dfss {

// DFSS_SUCCESS when a CUDA driver and at least one GPU are there; DFSS_ERROR_NO_DEVICE with the reason otherwise.
dfss_status require_device();

// The calling thread's current device (after require_device succeeded).
dfss_status current_device(int *device);

}  // namespace dfss
