// Index arithmetic of the float32 tensor-core kernels (3xTF32, mma_tf32.cuh): the shared-memory row stride of a
// float32 tile, the order of V's rows in the tile that the 1:2 sparse P.V reads, and the metadata words of
// mma.sp m16n8k16 .tf32 built from 1:2 choices. Plain integer code for host and device, so that a CPU model of the
// fragments can run it.
//
// With the m16n8k8 .tf32 accumulator of S = Q K^T, quad lane `quad` holds keys 2 quad and 2 quad + 1 of each block of
// 8 keys: one whole 1:2 pair, whose kept value is at once the A element of the sparse P.V for that pair (kept value
// quad of keys 0..7 and quad + 4 of keys 8..15 of a 16-key step). So 1:2 needs no permutation of K.
#pragma once

#include <cstdint>

#include "host_device.h"

namespace dfss {

// Row stride (floats) of a float32 tile [rows, width]. 4 floats of padding make it 4 (mod 32) words for widths that
// are multiples of 32: the B fragments of the tf32 mma (8 rows by 4 consecutive columns, or 4 rows two apart by 8
// columns) and the A fragments of Q then fall on 32 different banks; rows stay 16-byte aligned for cp.async.
DFSS_HOST_DEVICE constexpr int tf32_tile_stride(int width) { return width + 4; }

// Row p = 16u + 8h + 2q + e (h, e in {0, 1}, q in 0..3) of a V tile read by the sparse 1:2 P.V holds key
// 16u + q + 8h + 4e of the tile: B element b_i (key 16u + q + 4i, i = 2h + e) of quad lane q is then at row
// 16u + 8h + 2q + e, so the 4 quad lanes read rows two apart (banks 8 apart with tf32_tile_stride) instead of
// adjacent rows (a two-way bank conflict).
DFSS_HOST_DEVICE constexpr int tf32_sparse_v_key_of_row(int p) {
  return (p & ~15) | ((p >> 1) & 3) | (p & 8) | ((p & 1) << 2);
}

// The V tile row (within its 16-key block) of B element b_i of quad lane `quad` for the sparse P.V.
DFSS_HOST_DEVICE constexpr int tf32_sparse_v_row(int i, int quad) { return 8 * (i >> 1) + 2 * quad + (i & 1); }

// The 4 metadata bits of one kept tf32 value: 0b0100 when the first of its pair was kept (index 0), 0b1110 when the
// second was (index 1).
DFSS_HOST_DEVICE constexpr uint32_t tf32_nibble(uint32_t index) { return index != 0u ? 0xEu : 0x4u; }

// The metadata of 4 consecutive kept values (bit i of `indices`: the in-pair index of kept value i) as 16 bits, kept
// value i in bits 4i .. 4i + 3.
DFSS_HOST_DEVICE constexpr uint32_t tf32_nibbles_of_bits(uint32_t indices) {
  uint32_t x = indices & 0xFu;
  x = (x | (x << 6)) & 0x0303u;  // bits 0, 1 stay; bits 2, 3 move to 8, 9
  x = (x | (x << 3)) & 0x1111u;  // then bit i sits at bit 4i
  return 0x4444u | (x * 0xAu);
}

// The metadata register of quad lane `quad` (sparsity selector 0) for a 16-key step of the staged 1:2 spmm, from the
// 8 in-pair indices of the step's kept values of rows group (top) and group + 8 (bottom), kept value i in bit i:
// even quad lanes supply kept values 0..3, odd ones 4..7, the top row in bits 0..15 (lanes 2, 3 are not read with
// selector 0; they get the same as 0 and 1).
DFSS_HOST_DEVICE constexpr uint32_t tf32_sparse_metadata_register(uint32_t top, uint32_t bottom, int quad) {
  const int shift = (quad & 1) ? 4 : 0;
  return tf32_nibbles_of_bits(top >> shift) | (tf32_nibbles_of_bits(bottom >> shift) << 16);
}

}  // namespace dfss
