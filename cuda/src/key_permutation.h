// The order of keys in a key tile in shared memory that the tensor-core kernels (the staged sddmm and the fused
// forward) load: permuted so that each thread's m16n8 accumulators hold 4 consecutive logical keys, one whole N:M
// group. Plain integer code for host and device, so that a CPU model of the fragments can run it.
#pragma once

#include "host_device.h"

namespace dfss {

// Row p of a permuted key tile holds key tile_key_of_row(p) of the tile. With p = 16u + 8h + 2a + e (h, e in {0, 1},
// a in 0..3) that is key 16u + 4a + 2h + e: the accumulator columns 2a, 2a + 1 of n-tiles (score blocks) 2u and
// 2u + 1, which quad lane a holds, are the 4 consecutive keys 16u + 4a .. 16u + 4a + 3. For the fused forward's
// P.V that is also group a (2u even) or 4 + a (2u + 1) of the 32 keys that one mma.sp m16n8k32 consumes: the
// layout of its compressed A.
DFSS_HOST_DEVICE constexpr int tile_key_of_row(int p) {
  return (p & ~15) | ((p & 6) << 1) | ((p & 8) >> 2) | (p & 1);
}

}  // namespace dfss
