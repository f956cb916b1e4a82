// Launch configuration and launch checks shared by the kernels.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "dfss.h"

namespace dfss {

// Threads of every reference kernel's block: one block works on one query row at a time. A power of two
// (block_reduce) and a multiple of 32 (warp_dot).
constexpr int kReferenceThreads = 256;

// Blocks of `kernel` (kReferenceThreads threads) that the current device runs at once, but no more than
// `rows`: the grid of a row loop whose blocks each take rows blockIdx.x, blockIdx.x + gridDim.x, ...
dfss_status row_loop_grid(const void *kernel, int64_t rows, int *grid);

// The launch error of `kernel`, if any, as a status (call right after the launch).
dfss_status check_launch(const char *kernel);

// Resets a non-sticky error left by an earlier runtime call, so check_launch reports only the launch's own.
void clear_stale_cuda_error();

// Whether `kernel`, a tensor-core kernel, can run on `device` with `dynamic_shared_bytes` of dynamic shared memory:
// the device is sm_<min_arch> or later, the kernel has an image for it built for sm_<min_arch> or later (an sm_75
// image of a tensor-core kernel has an empty body), and the device grants a block that much shared memory. Asked of
// the driver once per kernel and device (a kernel's need is fixed); a missing image is an answer, not an error of
// the call.
bool tensor_core_kernel_ready(const void *kernel, int device, size_t dynamic_shared_bytes, int min_arch = 80);

// Lets `kernel` take `shared_bytes` of dynamic shared memory: above the default 48 KiB a kernel must ask for it,
// before every launch (a device reset forgets it).
dfss_status allow_shared_memory(const void *kernel, size_t shared_bytes);

// Launches `kernel`, whose one parameter is *argument, with one block of `threads` threads a work item (the kernel's
// blocks take items blockIdx.x, + gridDim.x, ..., which loops only past INT_MAX items), so that the hardware hands the
// next item to the first free SM and balances uneven (causal) items; shared_bytes of dynamic shared memory. A failure
// comes back as a status naming `name`.
dfss_status launch_work_items(const void *kernel, void *argument, int64_t work_items, int threads, size_t shared_bytes,
                              cudaStream_t stream, const char *name);

}  // namespace dfss
