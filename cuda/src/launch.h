// Launch configuration and launch checks shared by the reference kernels.
#pragma once

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

}  // namespace dfss
