// Index arithmetic of the fused tensor-core forward (attention_fused_kernel.cuh):
// where each key and each 16-byte unit of a tile sits in shared memory, which shared-memory row each lane hands to
// ldmatrix, which logical key each accumulator element holds, and how the 2:4 metadata of a thread's groups (chosen
// by select_group, select.cuh) meets in the mma.sp metadata registers. Plain code without device intrinsics, so that
// a CPU model of the fragments can run it.
//
// Fragment facts used (PTX ISA, "Matrix fragments for mma.m16n8k16" and "... for sparse mma.m16n8k32"; see also
// mma.cuh), with group = lane / 4 and quad = lane % 4:
//   - an m16n8 accumulator gives lane (group, quad) columns 2 quad, 2 quad + 1 of rows group and group + 8;
//   - the compressed A of mma.sp m16n8k32 has the dense A layout: lane (group, quad) holds the two kept values of
//     column groups quad (columns 4 quad .. 4 quad + 3) and 4 + quad (columns 16 + 4 quad ..) of both rows;
//   - its metadata: per row 4 bits per column group (first kept index in the low 2 bits); with sparsity selector
//     s, quad lane 2s holds groups 0..3 and quad lane 2s + 1 groups 4..7, row group in bits 0..15 and row
//     group + 8 in bits 16..31, 4 bits per group in ascending order.
#pragma once

#include <cstdint>

#include "dfss.h"
#include "host_device.h"
#include "key_permutation.h"

namespace dfss {
namespace fused {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kBlockRows = kWarps * 16;  // query rows of a block, 16 per warp (one m16 row block)
constexpr int kTileKeys = 64;            // keys of one step of the key loop
constexpr int kScoreBlocks = kTileKeys / 8;  // m16n8 score accumulators of a warp per step

// Shared-memory row stride (elements) of a [rows, D] 16-bit tile. The 16 bytes of padding put the 8 consecutive rows
// that one ldmatrix 8x8 matrix reads on 8 different 16-byte bank groups (the stride is an odd number of 16-byte
// units for D = 32, 64, 96, 128), and keep every row 16-byte aligned for cp.async.
DFSS_HOST_DEVICE constexpr int tile_stride(int head_dim) { return head_dim + 8; }

// Row p of a sparse kernel's K tile in shared memory holds key tile_key_of_row(p) of the tile (key_permutation.h:
// quad lane a's accumulator columns are one whole 2:4 group, the layout of the compressed A of P.V's mma.sp); V and
// the dense kernel's K keep natural order.
template <int Pattern>
DFSS_HOST_DEVICE constexpr int key_of_row(int p) {
  return Pattern == DFSS_PATTERN_DENSE ? p : tile_key_of_row(p);
}

// The key (within the tile) of score element e (0, 1) of score block j (0..7) of quad lane `quad`, for either row
// of the thread: the inverse of key_of_row on accumulator column 8j + 2 quad + e.
template <int Pattern>
DFSS_HOST_DEVICE constexpr int key_of_score(int j, int e, int quad) {
  return key_of_row<Pattern>(8 * j + 2 * quad + e);
}

// ldmatrix row addresses: the row (of the tile in shared memory) and the 16-byte unit (8 columns) that lane `lane`
// hands to ldmatrix .x4 for each fragment the kernel loads. Matrix i of an .x4 takes the rows of lanes 8i .. 8i + 7.
//
// Q as the A operand of QK^T, k-step s (columns 16s .. 16s + 15) of the warp's 16 rows starting at `first_row`:
// matrices (rows 0-7, cols 0-7), (rows 8-15, cols 0-7), (rows 0-7, cols 8-15), (rows 8-15, cols 8-15) = a0..a3.
DFSS_HOST_DEVICE constexpr int q_fragment_row(int first_row, int lane) { return first_row + (lane & 15); }
DFSS_HOST_DEVICE constexpr int q_fragment_unit(int s, int lane) { return 2 * s + (lane >> 4); }

// K as the B operand of QK^T, score block j (tile rows 8j .. 8j + 7), k-steps 2p and 2p + 1 (columns 32p .. 32p + 31):
// matrices = units 4p .. 4p + 3 = b0, b1 of k-step 2p, then b0, b1 of k-step 2p + 1.
DFSS_HOST_DEVICE constexpr int k_fragment_row(int j, int lane) { return 8 * j + (lane & 7); }
DFSS_HOST_DEVICE constexpr int k_fragment_unit(int p, int lane) { return 4 * p + (lane >> 3); }

// V (transposed) as the B operand of a dense P.V k-step s (keys 16s .. 16s + 15), output column blocks 2n and 2n + 1:
// matrices (keys 0-7, block 2n), (keys 8-15, block 2n), (keys 0-7, block 2n + 1), (keys 8-15, block 2n + 1).
DFSS_HOST_DEVICE constexpr int v_dense_fragment_row(int s, int lane) { return 16 * s + (lane & 15); }
DFSS_HOST_DEVICE constexpr int v_dense_fragment_unit(int n, int lane) { return 2 * n + (lane >> 4); }

// V (transposed) as the B operand of the sparse P.V mma.sp of keys 32c .. 32c + 31, output column block n:
// matrices = keys 32c + 8i .. 32c + 8i + 7 for i = 0..3 = b0..b3.
DFSS_HOST_DEVICE constexpr int v_sparse_fragment_row(int c, int lane) { return 32 * c + lane; }
DFSS_HOST_DEVICE constexpr int v_sparse_fragment_unit(int n) { return n; }

// ----- metadata registers -------------------------------------------------------------------------------------
// A step of 64 keys runs two mma.sp per output column block: keys 0..31 with sparsity selector 0 and keys 32..63
// with selector 1, both reading the same register, which quad lane 2c + h fills for keys 32c + 16h .. + 15 (c the
// mma.sp, h its half). Each quad lane owns one group (4 bits) of every (c, h, row); the 4 groups of a (c, h) meet in
// quad lane 2c + h in three shuffles (see gather_metadata).

// Quad lane `quad`'s share of the word of one (c, h): its groups' nibbles of row group and row group + 8, at the
// places the word has for group `quad`.
DFSS_HOST_DEVICE constexpr uint32_t metadata_share(uint32_t nibble_top, uint32_t nibble_bottom, int quad) {
  return (nibble_top | (nibble_bottom << 16)) << (4 * quad);
}

// The metadata register of quad lane `quad` from every quad lane's shares[c][h]: quad lane 2c + h receives the OR of
// the four shares[c][h]. `xor_shuffle(value, mask)` returns `value` of lane ^ mask (all lanes call it together).
// Round 1 (mask 2) sends the half (c) that the partner owns, round 2 (mask 1) the row half (h) it owns.
template <typename XorShuffle>
DFSS_HOST_DEVICE inline uint32_t gather_metadata(const uint32_t (&shares)[2][2], int quad, XorShuffle &&xor_shuffle) {
  const int mine_c = quad >> 1;
  const uint32_t keep0 = mine_c ? shares[1][0] : shares[0][0];
  const uint32_t keep1 = mine_c ? shares[1][1] : shares[0][1];
  const uint32_t send0 = mine_c ? shares[0][0] : shares[1][0];
  const uint32_t send1 = mine_c ? shares[0][1] : shares[1][1];
  const uint32_t half0 = keep0 | xor_shuffle(send0, 2);
  const uint32_t half1 = keep1 | xor_shuffle(send1, 2);
  const bool mine_h = (quad & 1) != 0;
  const uint32_t keep = mine_h ? half1 : half0;
  const uint32_t send = mine_h ? half0 : half1;
  return keep | xor_shuffle(send, 1);
}

}  // namespace fused
}  // namespace dfss
