// Checks that a caller's pointer is the kind of memory an argument needs, so that a host pointer passed as a
// device pointer (or the reverse) is a clear error instead of a crash. Both need a device (require_device).
#pragma once

#include "dfss.h"

namespace dfss {

// `pointer` must be device memory of the current device, or managed memory. `name` names the argument.
dfss_status check_device_memory(const char *name, const void *pointer);

// `pointer` must be readable and writable by the host: anything but device-only memory.
dfss_status check_host_memory(const char *name, const void *pointer);

}  // namespace dfss
