// Index arithmetic of the staged tensor-core kernels (sddmm_prune_tensor_core.cuh, spmm_tensor_core.cuh): where a
// thread's accumulators sit among the logical keys of a key tile (permuted as key_permutation.h says), and how the
// metadata of dfss.h becomes the metadata register of mma.sp. Plain integer code for host and device, so that a CPU
// model of the fragments can check it.
#pragma once

#include <cstdint>

#include "host_device.h"

namespace dfss {
namespace staged {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kTileRows = kWarps * 16;  // query rows of a block: 16 per warp (one m16 row block)
constexpr int kTileKeys = 64;           // keys of one step of the key loop

// Shared-memory row stride (elements) of a [rows, width] 16-bit tile: 16 bytes of padding make the 8 rows that one
// ldmatrix reads fall on 8 different 16-byte bank groups for every width that is a multiple of 16.
DFSS_HOST_DEVICE constexpr int padded_stride(int width) { return width + 8; }

// sddmm: quad lane a's c-th key (c in 0..3) of key block u (16 keys) is accumulator element
// acc[2u + accumulator_tile_of(c)][2r + accumulator_column_of(c)] of its row r (0: group, 1: group + 8).
DFSS_HOST_DEVICE constexpr int accumulator_tile_of(int c) { return c >> 1; }
DFSS_HOST_DEVICE constexpr int accumulator_column_of(int c) { return c & 1; }

// 1:2 as 2:4: slots 2g and 2g + 1 of a 1:2 row (keys 4g + a and 4g + 2 + b) are the two kept values of the group
// of 4 keys 4g .. 4g + 3, with indices a and 2 + b. So 16 bits of a 1:2 metadata stream (bit i: slot i) become a
// 32-bit 2:4 word by moving bit i to bit 2i (a to bit 4g, b to bit 4g + 2) and setting bit 3 of every nibble.
DFSS_HOST_DEVICE constexpr uint32_t metadata_2_4_of_1_2(uint32_t bits) {
  uint32_t x = bits & 0xFFFFu;
  x = (x | (x << 8)) & 0x00FF00FFu;
  x = (x | (x << 4)) & 0x0F0F0F0Fu;
  x = (x | (x << 2)) & 0x33333333u;
  x = (x | (x << 1)) & 0x55555555u;
  return x | 0x88888888u;
}

// A 2:4 word with every empty nibble (groups past the end of a row, whose trailing bits dfss.h leaves 0, or words
// past it) set to indices (0, 1): 0b0000 is no valid metadata for mma.sp, and those slots hold 0 anyway.
DFSS_HOST_DEVICE constexpr uint32_t fill_empty_groups(uint32_t word) {
  const uint32_t pairs = word | (word >> 1);
  const uint32_t nonzero = (pairs | (pairs >> 2)) & 0x11111111u;
  return word | ((~nonzero & 0x11111111u) << 2);
}

// The mma.sp m16n8k32 metadata register (sparsity selector 0) of quad lane `quad_lane` from the 2:4 words of the
// 32 keys of the step for rows group (top) and group + 8 (bottom): quad lane 0 supplies the groups of keys 0..15
// (the low halves), quad lane 1 those of keys 16..31 (the high halves), each with the top row in bits 0..15. Quad
// lanes 2 and 3 are not read with selector 0; they get the same as 0 and 1.
DFSS_HOST_DEVICE constexpr uint32_t sparse_metadata_register(uint32_t top, uint32_t bottom, int quad_lane) {
  return (quad_lane & 1) ? ((top >> 16) | (bottom & 0xFFFF0000u)) : ((top & 0xFFFFu) | (bottom << 16));
}

}  // namespace staged
}  // namespace dfss
