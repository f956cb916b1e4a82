// Staged step 1 on tensor cores (dfss_sddmm_prune): S = scale Q K^T with mma.sync m16n8k16 (fp32 accumulation),
// the masks, and in the product's epilogue the N:M selection, the compression and the metadata, straight from the
// accumulator registers to the compressed rows. No score matrix is ever stored.
//
// A block takes 64 query rows of one (batch, query head) (4 warps of 16 rows, Q fragments in registers) and walks
// the keys in tiles of 64 (cp.async, double-buffered). Rows of each key tile enter shared memory permuted
// (key_permutation.h: tile_key_of_row) so that every lane's accumulators hold 4 consecutive keys of each of its two
// rows per 16 keys: a whole 2:4 group, two 1:2 groups, selected in registers without shuffles by the branch-free
// networks of select.cuh (with select_n_of_m's ranking loop the 2:4 kernel ran 3.7x the instructions of the dense
// one). Key tiles past every key the block's rows may see (causal, per-batch lengths) skip the product but are still
// written (-inf, metadata of the first N of each group), so every element of the outputs is written.
//
// float32 (dense and 1:2; dfss.h has no float32 2:4) runs the same kernel with the product on tf32 tensor cores in
// float32 accuracy (3xTF32, mma_tf32.cuh: mma.sync m16n8k8 .tf32 three times per product on the split x = big +
// small), so the scores keep the float32 semantics of dfss.h and small-integer inputs still give exact scores. Its
// accumulators have the m16n8k16 layout, so the same key permutation and epilogue serve it; Q stays in a third tile
// (split on its way into registers at each step) instead of living in registers.
//
// RowMax = true (16-bit only) is dfss_attention_staged's first kernel: it also writes each row's maximum kept score
// to row_max [B, Hq, Nq] (-inf for a row with none finite), for spmm to take the softmax on load.
//
// Instantiated per (dtype, head dim) by sddmm_prune_tensor_core_<dtype>_d<D>.cu.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "attention_shape.h"
#include "dtype.cuh"
#include "fast_math.cuh"
#include "key_permutation.h"
#include "launch.h"
#include "layout.h"
#include "mask.h"
#include "mma.cuh"
#include "mma_tf32.cuh"
#include "select.cuh"
#include "staged_fragments.h"
#include "staged_io.cuh"
#include "staged_tensor_core.h"
#include "status.h"
#include "tf32_fragments.h"
#include "workspace.h"

namespace dfss {
namespace staged {

// 16-bit: 4 blocks per SM (128 registers) up to D = 64, where ptxas needs no spill for it: the kernel waits on
// latency. float32: no bound (its tiles take twice the shared memory, which limits the blocks per SM anyway).
constexpr int sddmm_min_blocks(int head_dim, size_t element_bytes) {
  return element_bytes == 2 && head_dim <= 64 ? 4 : 1;
}

// Shared memory of one block: two key tiles (double-buffered; the 16-bit kernel first loads Q into the second one,
// the float32 kernel keeps Q in a third), rows padded by 16 bytes so that fragment reads meet no bank conflict.
template <typename T>
DFSS_HOST_DEVICE constexpr int sddmm_tile_stride(int head_dim) {
  return sizeof(T) == 4 ? tf32_tile_stride(head_dim) : padded_stride(head_dim);
}
template <typename T>
DFSS_HOST_DEVICE constexpr size_t sddmm_shared_bytes(int head_dim) {
  return static_cast<size_t>(sizeof(T) == 4 ? 3 : 2) * kTileKeys * sddmm_tile_stride<T>(head_dim) * sizeof(T);
}
// Every device of compute capability 8.x and 9.0 grants a block 99 KiB of shared memory (sm_86 and sm_89 no more).
static_assert(sddmm_shared_bytes<float>(128) <= 99 * 1024, "float32 tiles of D = 128 within every sm_80+ device's limit");

// The bits of metadata word w of a key tile (2:4: two words of 8 groups, 4 bits each; 1:2: one word of 32 groups,
// 1 bit each) that belong to the tile's first `groups` groups.
template <int Pattern>
__device__ __forceinline__ uint32_t valid_group_bits(int groups, int w) {
  constexpr int kGroupsPerWord = Pattern == DFSS_PATTERN_2_4 ? 8 : 32;
  constexpr int kBitsPerGroup = 32 / kGroupsPerWord;
  const int in_word = groups - kGroupsPerWord * w;
  if (in_word >= kGroupsPerWord) return 0xFFFFFFFFu;
  return in_word <= 0 ? 0u : (1u << (kBitsPerGroup * in_word)) - 1u;
}

// One block's work, the kernel's body. OnChip = true (staged_on_chip.cuh: 16-bit, 2:4 and 1:2, with RowMax) keeps the
// compressed rows in `on_chip` and the lane's two rows' maxima in `on_chip_max` instead of writing values, metadata
// and row_max. `shared_bytes`: sddmm_shared_bytes<T>(HeadDim) of shared memory.
template <typename T, int HeadDim, int Pattern, bool RowMax, bool OnChip>
__device__ __forceinline__ void sddmm_prune_block(const AttentionShape &shape, const T *q, const T *k,
                                                  const int32_t *seqlens_q, const int32_t *seqlens_k, T *values,
                                                  uint32_t *metadata, float *row_max, unsigned char *shared_bytes,
                                                  const OnChipScores &on_chip, float (&on_chip_max)[2]) {
  static_assert(HeadDim % 16 == 0, "head dims of whole k16 steps");
  constexpr bool kFloat32 = sizeof(T) == 4;
  static_assert(!(RowMax && kFloat32), "the folded softmax is 16-bit only");
  static_assert(!OnChip || (RowMax && Pattern != DFSS_PATTERN_DENSE), "on chip: the folded softmax of 2:4 and 1:2");
  constexpr int kStride = sddmm_tile_stride<T>(HeadDim);
  constexpr int kPiece = 16 / sizeof(T);       // elements of a 16-byte piece
  constexpr int kPieces = HeadDim / kPiece;    // 16-byte pieces of a row
  constexpr int kSteps = HeadDim / 16;         // k16 steps of the 16-bit product
  constexpr int kTileElements = kTileKeys * kStride;
  // Key tiles, double-buffered: tiles[0], tiles[1]; the block's Q rows (kTileRows == kTileKeys) first in tiles[1]
  // (16-bit: they move to registers), or in tiles[2] for good (float32).
  static_assert(kTileRows == kTileKeys, "the Q tile has the size of a key tile");
  T(*tiles)[kTileElements] = reinterpret_cast<T(*)[kTileElements]>(shared_bytes);
  T *const q_tile = kFloat32 ? tiles[2] : tiles[1];

  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int quad_lane = lane % 4;
  const CompressedLayout layout = shape.layout;

  const StagedBlockPlace place = staged_block_place(shape);
  const int64_t head_row = place.head_row, first_row = place.first_row;
  const int64_t batch = place.batch, head_q = place.head_q, head_kv = place.head_kv;
  const int64_t valid_q = valid_length(seqlens_q, batch, shape.seq_q);
  const int64_t valid_k = valid_length(seqlens_k, batch, shape.seq_k);
  const T *q_head = q + batch * shape.q.batch + head_q * shape.q.head;
  const T *k_head = k + batch * shape.k.batch + head_kv * shape.k.head;

  // Every row sees a prefix of the keys (mask.h), the longest for the block's last valid row: key tiles from
  // block_key_end on are fully masked for the whole block.
  const int64_t row_limit = shape.seq_q < valid_q ? shape.seq_q : valid_q;
  const int64_t last_row = (first_row + kTileRows < row_limit ? first_row + kTileRows : row_limit) - 1;
  const int64_t block_key_end = last_row >= first_row ? allowed_key_end(last_row, valid_q, valid_k, shape.causal) : 0;
  const int64_t key_tiles = (layout.groups * layout.m + kTileKeys - 1) / kTileKeys;
  const int64_t product_tiles = (block_key_end + kTileKeys - 1) / kTileKeys;
  const int64_t loaded_key_end = block_key_end < shape.seq_k ? block_key_end : shape.seq_k;

  // This lane's two rows: group and group + 8 of the warp's 16.
  // Slots a lane writes per 16 keys of a row (one run), and slots of a row per key tile.
  constexpr int kRun = Pattern == DFSS_PATTERN_DENSE ? 4 : 2;
  constexpr int kTileSlots = kTileKeys / 4 * kRun;
  constexpr int kTileGroups = Pattern == DFSS_PATTERN_2_4 ? kTileKeys / 4 : kTileKeys / 2;  // N:M groups of a tile
  bool row_inside[2];
  bool row_vectors[2];  // the row is written, and its runs (at multiples of kRun) start on vector boundaries
  int64_t key_end[2];
  T *values_row[2];
  uint32_t *metadata_row[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t i = first_row + warp * 16 + lane / 4 + 8 * r;
    const int64_t output_row = head_row * shape.seq_q + i;
    row_inside[r] = i < shape.seq_q;
    key_end[r] = row_inside[r] ? allowed_key_end(i, valid_q, valid_k, shape.causal) : 0;
    values_row[r] = values + output_row * layout.values_per_row;
    row_vectors[r] = row_inside[r] && reinterpret_cast<uintptr_t>(values_row[r]) % (kRun * sizeof(T)) == 0;
    metadata_row[r] = Pattern == DFSS_PATTERN_DENSE ? nullptr : metadata + output_row * layout.words_per_row;
  }

  // Q rows past Nq_b (padding, which may hold anything), and keys the block never sees, are zeros in shared memory
  // (nothing is read).
  static_assert(kTileKeys * kPieces % kThreads == 0, "whole passes of the block over a tile");
  constexpr int kPasses = kTileKeys * kPieces / kThreads;  // a fixed, unrolled trip count
#pragma unroll
  for (int pass = 0; pass < kPasses; ++pass) {
    const int piece = pass * kThreads + static_cast<int>(threadIdx.x);
    const int p = piece / kPieces;
    const int column = piece % kPieces * kPiece;
    const int64_t i = first_row + p;
    const bool outside = i >= row_limit;
    cp_async_16(&q_tile[p * kStride + column], outside ? q_head : q_head + i * shape.q.row + column, outside);
  }
  const auto load_key_tile = [&](int64_t tile, T *target) {
#pragma unroll
    for (int pass = 0; pass < kPasses; ++pass) {
      const int piece = pass * kThreads + static_cast<int>(threadIdx.x);
      const int p = piece / kPieces;
      const int column = piece % kPieces * kPiece;
      const int64_t key = tile * kTileKeys + tile_key_of_row(p);
      const bool outside = key >= loaded_key_end;
      cp_async_16(&target[p * kStride + column], outside ? k_head : k_head + key * shape.k.row + column, outside);
    }
  };
  if (product_tiles > 0) load_key_tile(0, tiles[0]);
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();

  // 16-bit: A fragments of the warp's 16 rows: matrices (rows 0-7 | 8-15) x (columns 0-7 | 8-15) of each k16 step.
  uint32_t q_fragments[kFloat32 ? 1 : kSteps][4];
  if constexpr (!kFloat32) {
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      ldmatrix_x4(q_fragments[s], &q_tile[(warp * 16 + (lane & 7) + (lane & 8)) * kStride + s * 16 + (lane >> 4) * 8]);
    }
    __syncthreads();  // tiles[1] takes key tiles from here on
  }

  const float scale = shape.scale;
  // Metadata words of the tiles since the last flush, 4 a lane (see the end of the key loop).
  uint32_t pending_words[4] = {0u, 0u, 0u, 0u};
  // RowMax: the largest kept score of each row among this lane's slots.
  float lane_max[2] = {-INFINITY, -INFINITY};
  for (int64_t tile = 0; tile < key_tiles; ++tile) {
    float acc[8][4];
#pragma unroll
    for (int t = 0; t < 8; ++t) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[t][e] = 0.0f;
    }
    if (tile < product_tiles) {
      if (tile + 1 < product_tiles) load_key_tile(tile + 1, tiles[(tile + 1) & 1]);
      cp_async_commit();
      cp_async_wait<1>();
      __syncthreads();
      const T *keys = tiles[tile & 1];
      if constexpr (kFloat32) {
        // acc[t]: tile rows 8t .. 8t + 7, as the 16-bit n-tiles below.
        product_3xtf32_nt<HeadDim, kStride>(acc, &q_tile[(warp * 16 + lane / 4) * kStride + quad_lane],
                                            &keys[lane / 4 * kStride + quad_lane]);
      } else {
#pragma unroll
        for (int s = 0; s < kSteps; ++s) {
          // B fragments of n-tiles 2n and 2n + 1: matrices (keys 0-7 | 8-15 of the pair) x (columns 0-7 | 8-15).
#pragma unroll
          for (int n = 0; n < 4; ++n) {
            uint32_t b[4];
            ldmatrix_x4(b, &keys[(16 * n + (lane >> 4) * 8 + (lane & 7)) * kStride + s * 16 + (lane & 8)]);
            const uint32_t b_even[2] = {b[0], b[1]};
            const uint32_t b_odd[2] = {b[2], b[3]};
            mma_m16n8k16<T>(acc[2 * n], q_fragments[s], b_even);
            mma_m16n8k16<T>(acc[2 * n + 1], q_fragments[s], b_odd);
          }
        }
      }
      __syncthreads();  // the next iteration loads into the buffer just read
    }

    // Epilogue: scale, masks, selection, compressed values and this lane's bits of the metadata words.
    const int64_t key0 = tile * kTileKeys;
    // Keys of the tile that row r sees, counted from key0 (0 .. kTileKeys): one 32-bit compare per score, and none
    // on the tiles every row of this lane sees whole (all tiles but the last ones of a row).
    int key_limit[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) key_limit[r] = allowed_keys_in_tile(key_end[r], key0, kTileKeys);
    const bool masked = key_limit[0] < kTileKeys || key_limit[1] < kTileKeys;
    // Score c (key 16u + 4 quad_lane + c of the tile) of row r: its accumulator.
    const auto score = [&](int r, int u, int c) -> float & {
      return acc[2 * u + accumulator_tile_of(c)][2 * r + accumulator_column_of(c)];
    };
    // Scores in place: scale, and -inf at the keys a row does not see, behind a branch that only the tiles holding
    // a row's last keys take (as selects on every tile, the masks were ~96 of the epilogue's ~500 PTX instructions).
#pragma unroll
    for (int t = 0; t < 8; ++t) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[t][e] *= scale;
    }
    if (masked) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
#pragma unroll
        for (int u = 0; u < 4; ++u) {
#pragma unroll
          for (int c = 0; c < 4; ++c) {
            if (16 * u + 4 * quad_lane + c >= key_limit[r]) score(r, u, c) = -INFINITY;
          }
        }
      }
    }
    // The tile's slots of each row: on all tiles but a row's last the runs lie whole inside the row and are stored
    // without checks, at 32-bit offsets; kept groups (metadata) likewise, counted from the tile's first one.
    const int64_t tile_slot = tile * kTileSlots;
    const bool tile_whole = tile_slot + kTileSlots <= layout.values_per_row;
    const int64_t groups_left = layout.groups - tile * kTileGroups;
    const int tile_groups = static_cast<int>(groups_left < 0 ? 0 : (groups_left > kTileKeys ? kTileKeys : groups_left));
    uint32_t words[2][2] = {{0u, 0u}, {0u, 0u}};  // [row][metadata word of the tile]
    // 16-bit 2:4 and 1:2: each kept pair packed into a word ([row][u]: slots 2 (4u + quad_lane), + 1), stored after
    // a quad transpose as 16 contiguous bytes a lane: a warp's store fills whole 32-byte sectors, where pairs of 4
    // bytes filled half of each (whole sectors made the staged pipeline 5-12 % faster at N >= 1024 on the H200).
    uint32_t packed[2][4];
    const auto store = [&](int r, int u, const float (&run)[kRun]) {
      const int offset = kRun * (4 * u + quad_lane);
      if (tile_whole && row_vectors[r]) {
        store_whole_run<T, kRun>(values_row[r] + tile_slot + offset, run);
      } else if (row_inside[r]) {
        store_run<T, kRun>(values_row[r], tile_slot + offset, layout.values_per_row, run);
      }
    };
    const auto keep_pair = [&](int r, int u, const float (&pair)[kRun]) {
      if constexpr (kFloat32) {
        store(r, u, pair);
      } else {
        packed[r][u] = pack_rounded<T>(pair[0], pair[1]);
      }
    };
    // Sparse patterns: the lane's largest score of each row with max.NaN, and a warp vote per tile. Unless some score
    // of the warp is NaN, the choice runs the NaN-free networks (select.cuh: one compare where NaN ranking takes two,
    // the pairs' maxima as their winners), as the fused forward does; the row maxima are then the tile's. The pairs'
    // maxima are taken again in that branch: kept across the vote they cost 16 registers (spills on sm_80).
    float tile_row_max[2] = {-INFINITY, -INFINITY};
    bool tile_has_nan = false;
    if constexpr (Pattern != DFSS_PATTERN_DENSE) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          const float group_max = max_or_nan(max_or_nan(score(r, u, 0), score(r, u, 1)),
                                             max_or_nan(score(r, u, 2), score(r, u, 3)));
          tile_row_max[r] = max_or_nan(tile_row_max[r], group_max);
        }
      }
      const bool lane_has_nan = (tile_row_max[0] != tile_row_max[0]) | (tile_row_max[1] != tile_row_max[1]);
      tile_has_nan = __any_sync(0xffffffffu, lane_has_nan);
    }
    const auto choose_and_pack = [&](auto may_hold_nan) {
      constexpr bool kNanFree = !decltype(may_hold_nan)::value;
#pragma unroll
      for (int r = 0; r < 2; ++r) {
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          float scores[4];
#pragma unroll
          for (int c = 0; c < 4; ++c) scores[c] = score(r, u, c);
          if constexpr (Pattern == DFSS_PATTERN_DENSE) {
            if constexpr (RowMax) {
              lane_max[r] = fmaxf(lane_max[r], fmaxf(fmaxf(scores[0], scores[1]), fmaxf(scores[2], scores[3])));
            }
            store(r, u, scores);
          } else {
            const GroupChoice choice =
                kNanFree ? select_group_nan_free<Pattern>(scores[0], scores[1], scores[2], scores[3],
                                                          fmaxf(scores[0], scores[1]), fmaxf(scores[2], scores[3]))
                         : select_group<Pattern>(scores[0], scores[1], scores[2], scores[3]);
            // A group's largest score is always kept: the row's maximum is that of its groups (NaN ignored).
            if constexpr (RowMax && !kNanFree) lane_max[r] = fmaxf(lane_max[r], choice.group_max);
            if constexpr (Pattern == DFSS_PATTERN_1_2) {
              // Groups (key 16u + 4a, +1) and (+2, +3) of the tile: its groups 8u + 2a and + 1, bits 8u + 2a (+1) of
              // the tile's word. The networks name the kept index of pair h in bit 2h of the nibble.
              const uint32_t bits = (choice.nibble & 1u) | ((choice.nibble >> 1) & 2u);
              words[r][0] |= bits << (8 * u + 2 * quad_lane);
            } else {
              // Group 4u + a of the tile: nibble 4u + a (mod 8) of word u / 2 of the tile.
              words[r][u >> 1] |= choice.nibble << (4 * (4 * (u & 1) + quad_lane));
            }
            const float kept[2] = {choice.first, choice.second};
            keep_pair(r, u, kept);
          }
        }
        if constexpr (RowMax && kNanFree && Pattern != DFSS_PATTERN_DENSE) {
          lane_max[r] = fmaxf(lane_max[r], tile_row_max[r]);
        }
        if constexpr (Pattern != DFSS_PATTERN_DENSE && !kFloat32) {
          if constexpr (OnChip) {
            on_chip.pairs(tile, r) = make_uint4(packed[r][0], packed[r][1], packed[r][2], packed[r][3]);
          } else {
            // Quad lane a then holds words 4a .. 4a + 3 of the row's tile: slots 8a .. 8a + 7.
            transpose_quad(packed[r], quad_lane);
            if (row_inside[r]) {
              store_packed_run<T>(values_row[r], tile_slot + 8 * quad_lane, layout.values_per_row, packed[r]);
            }
          }
        }
      }
    };
    if (tile_has_nan) {
      choose_and_pack(std::true_type{});
    } else {
      choose_and_pack(std::false_type{});
    }
    // Groups past the row's end (only in its last tile) hold metadata bits 0: cleared here once, not checked per group.
    if constexpr (Pattern != DFSS_PATTERN_DENSE) {
      if (tile_groups < kTileGroups) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
#pragma unroll
          for (int w = 0; w < 2; ++w) words[r][w] &= valid_group_bits<Pattern>(tile_groups, w);
        }
      }
    }

    if constexpr (Pattern != DFSS_PATTERN_DENSE) {
      // 2:4: two words per row and tile (32 keys each); 1:2: one (64 keys). A word's bits come from the 4 lanes of a
      // quad: OR them together first. The words wait in registers until a row has 32 bytes of them (4 tiles of 2:4,
      // 8 of 1:2), stored by quad lanes 0, 1 (row group) and 2, 3 (row group + 8), 16 bytes each: lane a keeps
      // words 4 (a % 2) .. + 3 of the flush.
      constexpr int kWordsPerTile = Pattern == DFSS_PATTERN_2_4 ? 2 : 1;
      constexpr int kFlushTiles = 8 / kWordsPerTile;
#pragma unroll
      for (int r = 0; r < 2; ++r) {
#pragma unroll
        for (int w = 0; w < kWordsPerTile; ++w) {
          words[r][w] |= __shfl_xor_sync(0xffffffffu, words[r][w], 1);
          words[r][w] |= __shfl_xor_sync(0xffffffffu, words[r][w], 2);
        }
      }
      const int r = quad_lane >> 1;
      if constexpr (OnChip) {
        // Quad lane a keeps word a % 2 of row r (1:2: word 1 is 0, never read).
        on_chip.word(tile, static_cast<int>(threadIdx.x)) =
            (quad_lane & 1) == 0 ? (r == 0 ? words[0][0] : words[1][0]) : (r == 0 ? words[0][1] : words[1][1]);
      } else {
        const int tile_in_flush = static_cast<int>(tile % kFlushTiles);
        const int first_word = kWordsPerTile * tile_in_flush - 4 * (quad_lane & 1);  // of this tile in the lane's four
#pragma unroll
        for (int w = 0; w < kWordsPerTile; ++w) {
#pragma unroll
          for (int b = 0; b < 4; ++b) {
            if (first_word + w == b) pending_words[b] = r == 0 ? words[0][w] : words[1][w];
          }
        }
        if (tile_in_flush == kFlushTiles - 1 || tile + 1 == key_tiles) {
          if (r == 0 ? row_inside[0] : row_inside[1]) {
            const int64_t first_index = (tile - tile_in_flush) * kWordsPerTile + 4 * (quad_lane & 1);
            store_words(r == 0 ? metadata_row[0] : metadata_row[1], first_index, layout.words_per_row, pending_words);
          }
        }
      }
    }
  }
  if constexpr (RowMax) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const float max = quad_max(lane_max[r]);
      const int64_t i = first_row + warp * 16 + lane / 4 + 8 * r;
      if constexpr (OnChip) {
        on_chip_max[r] = max;
      } else if (quad_lane == 0 && row_inside[r]) {
        row_max[head_row * shape.seq_q + i] = max;
      }
    }
  }
}

template <typename T, int HeadDim, int Pattern, bool RowMax>
__global__ void __launch_bounds__(kThreads, sddmm_min_blocks(HeadDim, sizeof(T)))
    sddmm_prune_tensor_core_kernel(AttentionShape shape, const T *q, const T *k, const int32_t *seqlens_q,
                                   const int32_t *seqlens_k, T *values, uint32_t *metadata, float *row_max) {
#if DFSS_MMA_AVAILABLE
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  float unused_max[2];
  sddmm_prune_block<T, HeadDim, Pattern, RowMax, false>(shape, q, k, seqlens_q, seqlens_k, values, metadata, row_max,
                                                        shared_bytes, OnChipScores{nullptr}, unused_max);
#else
  (void)shape, (void)q, (void)k, (void)seqlens_q, (void)seqlens_k, (void)values, (void)metadata, (void)row_max;
#endif
}

}  // namespace staged

template <dfss_dtype Dtype, int HeadDim>
dfss_status launch_sddmm_prune_tensor_core(const AttentionCall &call, const void *q, const void *k, void *values,
                                           uint32_t *metadata, float *row_max) {
  using T = typename staged::ElementOf<Dtype>::type;
  StreamWorkspace workspace(call.stream);
  const int32_t *seqlens_q = nullptr;
  const int32_t *seqlens_k = nullptr;
  DFSS_RETURN_IF_ERROR(workspace.allocate_lengths(call.seqlens_q, call.seqlens_k, &seqlens_q, &seqlens_k));

  auto kernel = staged::sddmm_prune_tensor_core_kernel<T, HeadDim, DFSS_PATTERN_DENSE, false>;
  if (call.shape.layout.m == 2) kernel = staged::sddmm_prune_tensor_core_kernel<T, HeadDim, DFSS_PATTERN_1_2, false>;
  if constexpr (Dtype == DFSS_DTYPE_FLOAT32) {
    // No float32 2:4 and no float32 row maxima (staged_tensor_core.cpp declines both).
    if (call.shape.layout.m == 4 || row_max != nullptr) return DFSS_ERROR_INTERNAL;
  } else {
    const bool with_max = row_max != nullptr;
    switch (call.shape.layout.m) {
      case 2:
        if (with_max) kernel = staged::sddmm_prune_tensor_core_kernel<T, HeadDim, DFSS_PATTERN_1_2, true>;
        break;
      case 4:
        kernel = with_max ? staged::sddmm_prune_tensor_core_kernel<T, HeadDim, DFSS_PATTERN_2_4, true>
                          : staged::sddmm_prune_tensor_core_kernel<T, HeadDim, DFSS_PATTERN_2_4, false>;
        break;
      default:
        if (with_max) kernel = staged::sddmm_prune_tensor_core_kernel<T, HeadDim, DFSS_PATTERN_DENSE, true>;
    }
  }
  constexpr size_t shared_bytes = staged::sddmm_shared_bytes<T>(HeadDim);
  DFSS_RETURN_IF_ERROR(allow_shared_memory(reinterpret_cast<const void *>(kernel), shared_bytes));
  clear_stale_cuda_error();
  kernel<<<static_cast<unsigned>(staged_grid_blocks(call.shape)), staged::kThreads, shared_bytes, call.stream>>>(
      call.shape, static_cast<const T *>(q), static_cast<const T *>(k), seqlens_q, seqlens_k, static_cast<T *>(values),
      metadata, row_max);
  return check_launch("sddmm_prune_tensor_core_kernel");
}

}  // namespace dfss
