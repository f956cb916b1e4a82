// The tensor maps (TMA descriptors, sm_90) of the warp-specialized Hopper forward's q, k and v
// (attention_fused_warp_specialized.cuh), encoded on the host.
#pragma once

#include <cuda.h>

#include "attention_shape.h"

namespace dfss {

// Maps whose boxes are the kernel's 64-column panels of 64-row tiles, written in the 128-byte swizzle layout, with
// zeros for rows past the sequence:
//   - q_map, v_map, and k_map of the dense pattern: dims (column, row, head, batch), box (64, 64, 1, 1);
//   - k_map of the sparse patterns, whose tiles permute the keys (key_permutation.h: tile row 16u + 8h + 2a + e holds
//     key 16u + 4a + 2h + e): dims (column, key % 4, key / 4, head, batch), box (64, 2, 4, 1, 1); a box at
//     (key % 4, key / 4) = (2h, 4u) of a tile lands on its rows 16u + 8h .. + 7 in the tile's order
//     (key_permutation.h: tma_key_box_*, checked on the host by test_tma_key_boxes). Keys past the
//     sequence are zeros only when seq_k is a multiple of 4 (else the last group's keys past it lie inside the map).
// Returns false, and the kernel is not used, where a map cannot describe the tensors (the driver's entry point is
// missing, a stride is not a multiple of 16 bytes, or seq_k is not a multiple of 4 for a sparse k_map).
bool attention_tensor_maps(const AttentionShape &shape, const void *q, const void *k, const void *v, CUtensorMap *q_map,
                           CUtensorMap *k_map, CUtensorMap *v_map);

}  // namespace dfss
