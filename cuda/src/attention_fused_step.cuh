// What the fused tensor-core forward (attention_fused_kernel.cuh) and the fused backward
// (attention_backward_fused_kernel.cuh) share: the tile loads, and steps 1-3 of one key step of a warp (its 16 query
// rows against 64 keys): S = Q K^T on tensor cores, scale and masks, the N:M choice. Both passes run these very
// functions, with the same fragments and the same mma sequence per score element, so the backward's scores are the
// forward's bits and its choice is the forward's choice. (On sm_90a the forward's S comes from wgmma instead,
// attention_fused_wgmma.cuh; its bits are the same, which the GPU tests check with near ties.)
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "attention_fused_fragments.cuh"
#include "attention_shape.h"
#include "dtype.cuh"
#include "fast_math.cuh"
#include "mask.h"
#include "mma.cuh"
#include "select.cuh"

namespace dfss {
namespace fused {

// Calls move(p, unit) for the 16-byte units of a tile of 64 rows of D 16-bit elements that this thread moves: unit
// `unit` (elements 8 unit .. 8 unit + 7) of tile row p. Where the D / 8 units of a row divide the block's threads,
// each thread keeps its unit and moves down the rows; D = 96 (12 units) spreads a row over two passes.
template <int D, typename Move>
__device__ __forceinline__ void for_each_tile_unit(Move &&move) {
  constexpr int kUnits = D / 8;
  static_assert(kTileKeys * kUnits % kThreads == 0, "whole passes of the block over a tile");
#pragma unroll
  for (int pass = 0; pass < kTileKeys * kUnits / kThreads; ++pass) {
    const int piece = pass * kThreads + static_cast<int>(threadIdx.x);
    move(piece / kUnits, piece % kUnits);
  }
}

// Where 16-byte unit `unit` of tile row p sits in a tile: rows of tile_stride(D) elements, read by ldmatrix (the
// warp-level kernels).
template <int D>
struct PaddedTile {
  template <typename T>
  __device__ __forceinline__ T *operator()(T *tile, int p, int unit) const {
    return tile + p * tile_stride(D) + unit * 8;
  }
};

// The row orders of a tile: tile row p receives source row first + row_of(p).
struct NaturalRow {
  DFSS_HOST_DEVICE constexpr int operator()(int p) const { return p; }
};
template <int Pattern>
struct KeyRow {
  DFSS_HOST_DEVICE constexpr int operator()(int p) const { return key_of_row<Pattern>(p); }
};

// Whole tiles are copied by each thread from one source pointer plus constant row offsets when the block's threads
// cover whole rows per pass (kRowsPerPass rows, a power of two: thread t moves unit t % (D / 8) of rows t / (D / 8)
// + pass kRowsPerPass) and the row order splits over those bits: row_of(p0 + pass kRowsPerPass) = row_of(p0) +
// row_of(pass kRowsPerPass) for p0 < kRowsPerPass. Both orders above do (the key permutation reorders bits within
// 16-row blocks, and kRowsPerPass is 8 or more). Other head dims (D = 96) keep the per-copy row arithmetic.
template <int D>
DFSS_HOST_DEVICE constexpr int rows_per_pass() {
  return kThreads % (D / 8) == 0 ? kThreads / (D / 8) : 0;
}
template <int D, typename RowOf>
DFSS_HOST_DEVICE constexpr bool copies_by_row_offsets() {
  constexpr int kRows = rows_per_pass<D>();
  bool additive = kRows > 0 && (kRows & (kRows - 1)) == 0;
  for (int p0 = 0; additive && p0 < kRows; ++p0) {
    for (int first = 0; additive && first < kTileKeys; first += kRows) {
      additive = RowOf{}(p0 + first) == RowOf{}(p0) + RowOf{}(first);
    }
  }
  return additive;
}

// Copies 64 rows of D elements into a shared-memory tile laid out by `layout`: tile row p receives source row
// first + row_of(p) (row_of permutes 0..63); rows at or past `limit` (the batch entry's valid length: Nq_b or Nk_b)
// are zero-filled, never read.
// All threads call it. A tile that ends before `limit` (all but a tensor's last) skips the per-row bounds tests, and
// its copies are one add each (copies_by_row_offsets), where the per-row 64-bit arithmetic took about ten
// instructions (the SASS, bench/NOTES.md v4b and v5).
template <typename T, int D, typename RowOf, typename Layout = PaddedTile<D>>
__device__ __forceinline__ void load_tile(T *tile, const T *source, int64_t row_stride, int64_t first, int64_t limit,
                                          RowOf row_of, Layout layout = Layout{}) {
  const bool whole = first + kTileKeys <= limit;
  // Tile row p, unit `unit`, from source row `row` of a tile that may reach the valid length: a zero-filled copy reads
  // nothing, but its address stays a valid one (row 0 of the head).
  const auto copy_checked = [&](int p, int unit, int64_t row) {
    const bool outside = row >= limit;
    cp_async_16(layout(tile, p, unit), source + (outside ? 0 : row) * row_stride + unit * 8, outside);
  };
  if constexpr (copies_by_row_offsets<D, RowOf>()) {
    constexpr int kRows = rows_per_pass<D>();
    const int unit = static_cast<int>(threadIdx.x) % (D / 8);
    const int p0 = static_cast<int>(threadIdx.x) / (D / 8);
    const int64_t thread_first = first + row_of(p0);
    if (whole) {
      const T *from = source + thread_first * row_stride + unit * 8;
#pragma unroll
      for (int pass = 0; pass < kTileKeys / kRows; ++pass) {
        cp_async_16(layout(tile, p0 + pass * kRows, unit), from + row_of(pass * kRows) * row_stride, false);
      }
    } else {
#pragma unroll
      for (int pass = 0; pass < kTileKeys / kRows; ++pass) {
        copy_checked(p0 + pass * kRows, unit, thread_first + row_of(pass * kRows));
      }
    }
  } else {
    if (whole) {
      const T *rows = source + first * row_stride;
      for_each_tile_unit<D>([&](int p, int unit) {
        cp_async_16(layout(tile, p, unit), rows + row_of(p) * row_stride + unit * 8, false);
      });
      return;
    }
    for_each_tile_unit<D>([&](int p, int unit) { copy_checked(p, unit, first + row_of(p)); });
  }
}

// The end of the keys that every row of the warp sees (the smaller key_end of each thread's rows): steps that end at
// or before it need no mask.
// (A template, so that only the kernels' own architectures, sm_80 and later, compile __reduce_min_sync.)
template <typename Index>
__device__ __forceinline__ Index warp_seen_key_end(const Index (&key_end)[2]) {
  return __reduce_min_sync(0xffffffffu, static_cast<unsigned>(key_end[0] < key_end[1] ? key_end[0] : key_end[1]));
}

// Where a fused block's work item lies: query block `work % blocks` of block_rows rows, counted from the end (so that
// the longest causal blocks start first), of head (work / blocks) % Hq of batch entry work / (blocks Hq); the
// kBlockRows-row tile at tile_offset rows into the block (a warpgroup's); the batch entry's valid lengths (Nq_b,
// Nk_b: tiles are loaded up to them, so that what lies past them, padding that may hold anything, is never read);
// the thread's two rows (accumulator rows group and group + 8 of its warp in that tile), the keys each sees (mask.h),
// and the key steps of the tile and of the block: those up to the keys of its last valid row (key_end grows with the
// row).
struct QueryTilePlace {
  int64_t batch, head_q, head_kv, first_row;
  int64_t valid_q, valid_k;
  int64_t rows[2], key_end[2];
  int64_t key_steps, block_key_steps;
};

__device__ __forceinline__ QueryTilePlace place_query_rows(const AttentionShape &shape, const int32_t *seqlens_q,
                                                           const int32_t *seqlens_k, int64_t blocks,
                                                           int64_t block_rows, int64_t work, int64_t tile_offset,
                                                           int warp, int group) {
  QueryTilePlace place;
  const int64_t block_index = blocks - 1 - work % blocks;
  const int64_t head_entry = work / blocks;
  place.head_q = head_entry % shape.heads_q;
  place.batch = head_entry / shape.heads_q;
  place.head_kv = place.head_q / (shape.heads_q / shape.heads_kv);
  place.valid_q = valid_length(seqlens_q, place.batch, shape.seq_q);
  place.valid_k = valid_length(seqlens_k, place.batch, shape.seq_k);
  const int64_t valid_q = place.valid_q, valid_k = place.valid_k;
  const int64_t block_first_row = block_index * block_rows;
  place.first_row = block_first_row + tile_offset;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    place.rows[r] = place.first_row + warp * 16 + group + 8 * r;
    place.key_end[r] = allowed_key_end(place.rows[r], valid_q, valid_k, shape.causal);
  }
  const auto key_steps_of_rows = [&](int64_t first_row, int64_t rows) -> int64_t {
    if (first_row >= valid_q) return 0;
    const int64_t last_row = (first_row + rows < valid_q ? first_row + rows : valid_q) - 1;
    return (allowed_key_end(last_row, valid_q, valid_k, shape.causal) + kTileKeys - 1) / kTileKeys;
  };
  place.key_steps = key_steps_of_rows(place.first_row, kBlockRows);
  place.block_key_steps = key_steps_of_rows(block_first_row, block_rows);
  return place;
}

// The place of a block of one kBlockRows-row tile (query_tiles of them a head).
__device__ __forceinline__ QueryTilePlace place_query_tile(const AttentionShape &shape, const int32_t *seqlens_q,
                                                           const int32_t *seqlens_k, int64_t query_tiles,
                                                           int64_t work, int warp, int group) {
  return place_query_rows(shape, seqlens_q, seqlens_k, query_tiles, kBlockRows, work, 0, warp, group);
}

// Step 2 of a key step: s[j][2r + e] (row r, key step_key + key_of_score<KeyOrder>(j, e, quad)) times the scale, and
// -inf for keys row r does not see (key_end[r], mask.h); `masked` false skips the masks (no row of the warp sees
// only part of the step). lane_key = key_of_score<KeyOrder>(0, 0, quad).
template <int KeyOrder>
__device__ __forceinline__ void scale_and_mask(float (&s)[kScoreBlocks][4], float scale, bool masked,
                                               const int64_t (&key_end)[2], int64_t step_key, int lane_key) {
#pragma unroll
  for (int j = 0; j < kScoreBlocks; ++j) {
#pragma unroll
    for (int i = 0; i < 4; ++i) s[j][i] *= scale;
  }
  if (masked) {
    // A branch, not a select per score: the compiler otherwise applies the masks (a compare and a select per score)
    // on every step, where only the steps at a row's last keys need them (the SASS, bench/NOTES.md v5).
    asm volatile("" ::: "memory");
    int key_limit[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) key_limit[r] = allowed_keys_in_tile(key_end[r], step_key, kTileKeys) - lane_key;
#pragma unroll
    for (int j = 0; j < kScoreBlocks; ++j) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          if (key_of_score<KeyOrder>(j, e, 0) >= key_limit[r]) s[j][2 * r + e] = -INFINITY;
        }
      }
    }
  }
}

// One key step of a warp after steps 1-3. s[j][2r + e]: row r (the thread's rows group and group + 8), key
// key_of_score<Pattern>(j, e, quad) of the step: scaled, -inf where masked. Sparse patterns also have choice[c][h][r]
// (the kept values of quad lane `quad`'s group in keys 32c + 16h .. + 15, row r: the compressed A operand of an
// mma.sp over the step's keys, with its nibble) and the metadata register of those mma.sp; s is then dead.
struct ScoredStep {
  float s[kScoreBlocks][4];
  GroupChoice choice[2][2][2];
  uint32_t metadata;
};

// Step 1 of a key step on warp-level tensor cores: s[j] = the warp's 16 query rows times the 8 keys of score block j
// (tile rows 8j .. 8j + 7 of k_tile, rows permuted by key_of_row<Pattern>, tile_stride(D)). q_fragments(p, a_even,
// a_odd) gives the Q fragments (A operand of QK^T) of k-steps 2p and 2p + 1 (columns 32p .. 32p + 31) of the warp's
// rows. Every score element is the same chain of mma: zero, then k-steps 0, 1, ..., D / 16 - 1 in order.
template <typename T, int D, typename QFragments>
__device__ __forceinline__ void score_products(float (&s)[kScoreBlocks][4], QFragments &&q_fragments, const T *k_tile,
                                               int lane) {
  static_assert(D % 32 == 0, "K fragments are loaded 32 columns at a time");
  constexpr int kStride = tile_stride(D);
#pragma unroll
  for (int j = 0; j < kScoreBlocks; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
  for (int p = 0; p < D / 32; ++p) {
    uint32_t a_even[4], a_odd[4];
    q_fragments(p, a_even, a_odd);
#pragma unroll
    for (int j = 0; j < kScoreBlocks; ++j) {
      uint32_t b[4];
      ldmatrix_x4(b, k_tile + k_fragment_row(j, lane) * kStride + k_fragment_unit(p, lane) * 8);
      const uint32_t b_even[2] = {b[0], b[1]};
      const uint32_t b_odd[2] = {b[2], b[3]};
      mma_m16n8k16<T>(s[j], a_even, b_even);
      mma_m16n8k16<T>(s[j], a_odd, b_odd);
    }
  }
}

// step.choice[c][h][r] = network(u, r) for the group of 4 keys of 16-key block u = 2c + h (score blocks 2u: keys +0,
// +1, and 2u + 1: keys +2, +3) in row r, then the step's metadata register from their nibbles (gather_metadata).
template <typename Network>
__device__ __forceinline__ void choose_groups(ScoredStep &step, int lane, Network &&network) {
  const int quad = lane % 4;
  uint32_t shares[2][2];
#pragma unroll
  for (int c = 0; c < 2; ++c) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int r = 0; r < 2; ++r) step.choice[c][h][r] = network(2 * c + h, r);
      shares[c][h] = metadata_share(step.choice[c][h][0].nibble, step.choice[c][h][1].nibble, quad);
    }
  }
  step.metadata = gather_metadata(shares, quad,
                                  [](uint32_t value, int mask) { return __shfl_xor_sync(0xffffffffu, value, mask); });
}

// Step 3 of a key step, after step.s holds the scaled and masked scores: the N:M choice (sparse patterns) and its
// metadata register.
template <int Pattern>
__device__ __forceinline__ void choose_kept(ScoredStep &step, int lane) {
  if constexpr (Pattern != DFSS_PATTERN_DENSE) {
    const auto &s = step.s;
    choose_groups(step, lane, [&](int u, int r) {
      return select_group<Pattern>(s[2 * u][2 * r], s[2 * u][2 * r + 1], s[2 * u + 1][2 * r], s[2 * u + 1][2 * r + 1]);
    });
  } else {
    step.metadata = 0;
  }
}

// choose_kept for a step whose scores hold no NaN, given pair_max[r][j] = fmaxf(s[j][2r], s[j][2r + 1]): the NaN-free
// networks of select.cuh, which keep the same keys.
template <int Pattern>
__device__ __forceinline__ void choose_kept_nan_free(ScoredStep &step, const float (&pair_max)[2][kScoreBlocks],
                                                     int lane) {
  static_assert(Pattern != DFSS_PATTERN_DENSE, "sparse patterns only");
  const auto &s = step.s;
  choose_groups(step, lane, [&](int u, int r) {
    return select_group_nan_free<Pattern>(s[2 * u][2 * r], s[2 * u][2 * r + 1], s[2 * u + 1][2 * r],
                                          s[2 * u + 1][2 * r + 1], pair_max[r][2 * u], pair_max[r][2 * u + 1]);
  });
}

// Steps 2-3 of a key step, after step.s holds the products: scale and masks, then the N:M choice (sparse patterns).
// key_end[r]: the keys row r sees (mask.h), step_key the step's first key; `masked`: some row of the warp sees only
// part of the step (otherwise the masks are skipped, since they would change nothing).
// lane_key = key_of_score<Pattern>(0, 0, quad).
template <int Pattern>
__device__ __forceinline__ void choose_kept_scores(ScoredStep &step, float scale, bool masked,
                                                   const int64_t (&key_end)[2], int64_t step_key, int lane_key,
                                                   int lane) {
  scale_and_mask<Pattern>(step.s, scale, masked, key_end, step_key, lane_key);
  choose_kept<Pattern>(step, lane);
}

// Steps 1-3 of one key step for the warp's 16 query rows against the 64 keys of k_tile: score_products, then
// choose_kept_scores (see both).
template <typename T, int D, int Pattern, typename QFragments>
__device__ __forceinline__ void score_step(ScoredStep &step, QFragments &&q_fragments, const T *k_tile, float scale,
                                           bool masked, const int64_t (&key_end)[2], int64_t step_key, int lane_key,
                                           int lane) {
  score_products<T, D>(step.s, q_fragments, k_tile, lane);
  choose_kept_scores<Pattern>(step, scale, masked, key_end, step_key, lane_key, lane);
}

}  // namespace fused
}  // namespace dfss
