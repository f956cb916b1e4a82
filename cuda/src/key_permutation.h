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

// The same tile brought by TMA (the Hopper forward's producer; tensor_map.h): the tensor map's dims (column, key % 4,
// key / 4, ...) with box (64, 2, 4) make a copy write 8 tile rows in the box's order, key % 4 fastest. Box b (0 .. 7)
// of a tile starts at key % 4 = tma_key_box_low(b) and key / 4 = (the tile's first key) / 4 + tma_key_box_high(b),
// and writes rows tma_key_box_row(b) .. + 7: with b = 2u + h, rows 16u + 8h + 2a + e get keys 16u + 4a + 2h + e.
constexpr int kTmaKeyBoxes = 8;
DFSS_HOST_DEVICE constexpr int tma_key_box_low(int box) { return 2 * (box % 2); }
DFSS_HOST_DEVICE constexpr int tma_key_box_high(int box) { return 4 * (box / 2); }
DFSS_HOST_DEVICE constexpr int tma_key_box_row(int box) { return 8 * box; }

}  // namespace dfss
