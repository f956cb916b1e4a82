// Staged step 3 on tensor cores (dfss_spmm): out = P V with P the compressed probabilities. 2:4 and 1:2 run on
// mma.sp::ordered_metadata m16n8k32: the compressed rows are the sparse A operand as they are (a 1:2 row is a 2:4
// row whose group of 4 keys keeps one of each pair), and the metadata of dfss.h becomes the mma.sp metadata
// register with a few integer operations (staged_fragments.h). Dense runs on mma.sync m16n8k16.
//
// A block takes 64 query rows of one (batch, query head) (4 warps of 16 rows) and all Dv columns, and walks the
// keys in chunks of 64: V rows through cp.async into shared memory (double-buffered, rows past the batch entry's Nk_b
// zero-filled: padding past it, which may hold anything, is never read), B fragments through ldmatrix.trans; A
// fragments from global memory in 16-byte runs that a quad transpose deals out (staged_io.cuh), metadata straight
// into registers.
//
// Scores = true is dfss_attention_staged's second kernel, the softmax folded in: the compressed rows hold the scores of
// sddmm_prune, and row_max each row's maximum (sddmm_prune's, with RowMax). Each A pair becomes p = exp(s - max) as it
// is dealt out, rounded to the dtype for the product and summed in float32 per row; out = O / sum and lse = max +
// log(sum) at the end, as the fused forward does (dfss.h step 5). Slots past a row's end read as -inf (p = 0).
//
// float32 1:2 runs on mma.sp::ordered_metadata m16n8k16 .tf32 in float32 accuracy (3xTF32, mma_tf32.cuh: three
// mma.sp per product on the tf32 split p = big + small, v = big + small), so the output keeps the float32 semantics of
// dfss.h: a 1:2 row is the sparse A operand as it is (slot c: the kept key of pair c), and the metadata stream (one
// bit per slot) becomes the tf32 metadata register (tf32_fragments.h). float32 dense runs the same kernel with two
// dense m16n8k8 .tf32 products (3xTF32) per 16 keys in place of the mma.sp. Its blocks walk the keys in chunks of 32
// (the float32 V tiles of 64 keys would pass the 48 KiB of static shared memory at Dv = 128), V's rows permuted in
// shared memory (tf32_sparse_v_key_of_row) so that the B fragments meet no bank conflict: the dense B elements of a
// lane (keys quad and quad + 4 of each 8) are those of the sparse product, in the same rows.
//
// Instantiated per (dtype, head dim) by spmm_tensor_core_<dtype>_d<D>.cu.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "attention_shape.h"
#include "dtype.cuh"
#include "fast_math.cuh"
#include "launch.h"
#include "layout.h"
#include "mask.h"
#include "mma.cuh"
#include "mma_tf32.cuh"
#include "staged_fragments.h"
#include "staged_io.cuh"
#include "staged_tensor_core.h"
#include "status.h"
#include "tf32_fragments.h"
#include "workspace.h"

namespace dfss {
namespace staged {

// The 2:4 metadata word of k32 step `step` (keys 32 step .. 32 step + 31) of a row, valid for mma.sp, from the
// row's metadata word that holds it (2:4: word `step`; 1:2: one word holds the 32 slots of 64 keys, so step s reads
// half s % 2 of word s / 2).
template <int Pattern>
__device__ __forceinline__ uint32_t step_metadata(uint32_t word, int64_t step) {
  if constexpr (Pattern == DFSS_PATTERN_2_4) {
    return fill_empty_groups(word);
  } else {
    return metadata_2_4_of_1_2(word >> (16 * (step % 2)));
  }
}

// step_metadata of a row in global memory: words past its end (or of a row that does not exist) read as 0.
template <int Pattern>
__device__ __forceinline__ uint32_t sparse_metadata_word(const uint32_t *metadata_row, int64_t step,
                                                         int64_t words_per_row) {
  const int64_t index = Pattern == DFSS_PATTERN_2_4 ? step : step / 2;
  const uint32_t word = metadata_row != nullptr && index < words_per_row ? metadata_row[index] : 0u;
  return step_metadata<Pattern>(word, step);
}

// The folded softmax on one fragment register of scores: p = exp(s - max) of its two scores (max_log2e = max log2(e),
// 0 for a row with no finite score), added to the row's sum, rounded to T.
template <typename T>
__device__ __forceinline__ uint32_t exponentials_of(uint32_t scores, float max_log2e, float &row_sum) {
  const float2 s = unpack_floats<T>(scores);
  const float lo = exp_below(s.x, max_log2e);
  const float hi = exp_below(s.y, max_log2e);
  row_sum += lo + hi;
  return pack_rounded<T>(lo, hi);
}

// Blocks per SM that ptxas keeps registers for (0: no bound). The sparse kernels up to Dv = 64 fit 96 registers
// without spills: 5 blocks of 4 warps an SM where the folded softmax's 123 registers left room for 4 (the kernel waits
// on its loads; more warps hide more of them). Dense ones spill under that bound, and keep their own count.
constexpr int spmm_min_blocks(int head_dim_v, int pattern) {
  return head_dim_v <= 64 && pattern != DFSS_PATTERN_DENSE ? 5 : 0;
}

// Elements of one V tile in shared memory (64 keys, rows padded as sddmm_prune's); a block holds two
// (double-buffered).
DFSS_HOST_DEVICE constexpr int spmm_tile_elements(int head_dim_v) { return kTileKeys * padded_stride(head_dim_v); }

// One block's work, the kernel's body. OnChip = true (staged_on_chip.cuh, with Scores, sparse) reads the compressed
// scores from `on_chip` and the lane's two rows' maxima from `on_chip_max` (sddmm_prune_block's) instead of probs,
// metadata and row_max. v_tiles: two tiles in shared memory.
template <typename T, int HeadDimV, int Pattern, bool Scores, bool OnChip>
__device__ __forceinline__ void spmm_block(const AttentionShape &shape, const T *probs, const uint32_t *metadata,
                                           const T *v, const int32_t *seqlens_k, T *out, const float *row_max,
                                           float *lse, T (*v_tiles)[spmm_tile_elements(HeadDimV)],
                                           const OnChipScores &on_chip, const float (&on_chip_max)[2]) {
  static_assert(HeadDimV % 16 == 0, "head dims of whole pairs of n8 tiles");
  constexpr bool kSparse = Pattern != DFSS_PATTERN_DENSE;
  static_assert(!OnChip || (Scores && kSparse), "on chip: the folded softmax of 2:4 and 1:2");
  constexpr int kStride = padded_stride(HeadDimV);
  constexpr int kPieces = HeadDimV / 8;  // 16-byte pieces of a V row, and n8 tiles of the output

  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int quad_lane = lane % 4;
  const CompressedLayout layout = shape.layout;
  const int64_t values_per_row = layout.values_per_row;

  const StagedBlockPlace place = staged_block_place(shape);
  const int64_t head_row = place.head_row, first_row = place.first_row;
  const int64_t batch = place.batch, head_q = place.head_q, head_kv = place.head_kv;
  const T *v_head = v + batch * shape.v.batch + head_kv * shape.v.head;
  const int64_t valid_k = valid_length(seqlens_k, batch, shape.seq_k);  // V is read up to Nk_b only

  // This lane's two rows: group and group + 8 of the warp's 16 (nullptr: past Nq, read as zeros).
  int64_t row[2];
  const T *probs_row[2];
  const uint32_t *metadata_row[2];
  // Scores: each row's maximum, times log2 e (0 for a row with no finite score), and its running sum of p.
  float max[2] = {-INFINITY, -INFINITY};
  float max_log2e[2] = {0.0f, 0.0f};
  float row_sum[2] = {0.0f, 0.0f};
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    row[r] = first_row + warp * 16 + lane / 4 + 8 * r;
    const int64_t input_row = head_row * shape.seq_q + row[r];
    const bool inside = row[r] < shape.seq_q;
    probs_row[r] = inside ? probs + input_row * values_per_row : nullptr;
    metadata_row[r] = inside && kSparse ? metadata + input_row * layout.words_per_row : nullptr;
    if constexpr (Scores) {
      max[r] = !inside ? -INFINITY : OnChip ? on_chip_max[r] : row_max[input_row];
      max_log2e[r] = max[r] == -INFINITY ? 0.0f : max[r] * kLog2e;
    }
  }
  // Scores: slots past a row's end are -inf, p = 0 (probabilities: 0).
  constexpr uint16_t kFillBits = !Scores ? 0 : std::is_same<T, __half>::value ? 0xFC00u : 0xFF80u;

  const auto load_value_chunk = [&](int64_t chunk, T *target) {
    for (int piece = static_cast<int>(threadIdx.x); piece < kTileKeys * kPieces; piece += kThreads) {
      const int p = piece / kPieces;
      const int column = piece % kPieces * 8;
      const int64_t key = chunk * kTileKeys + p;
      const bool outside = key >= valid_k;
      cp_async_16(&target[p * kStride + column], outside ? v_head : v_head + key * shape.v.row + column, outside);
    }
  };

  float acc[kPieces][4];
#pragma unroll
  for (int n = 0; n < kPieces; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[n][e] = 0.0f;
  }

  // Slots of a chunk of 64 keys: 32 (2:4 and 1:2, two k32 steps of 16) or 64 (dense, four k16 steps of 16).
  constexpr int kSteps = kSparse ? 2 : 4;
  const int64_t chunks = (shape.seq_k + kTileKeys - 1) / kTileKeys;
  load_value_chunk(0, v_tiles[0]);
  cp_async_commit();
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    if (chunk + 1 < chunks) load_value_chunk(chunk + 1, v_tiles[(chunk + 1) & 1]);
    cp_async_commit();

    // A fragments: slots 16 step + 2a (+1) and 16 step + 8 + 2a (+1) of rows group and group + 8, where step counts
    // the k32 (sparse) or k16 (dense) steps of the row. Each quad lane loads 16 contiguous bytes of a row (runs of
    // 8 slots: a warp's load covers whole 32-byte sectors, where 4-byte pairs covered half of each) and a quad
    // transpose deals them out: quad lane a loads run a (sparse) or runs 2a and 2a + 1 (dense, blocks 0 and 1), and
    // after the transpose holds pair a of every run of its block, the pairs its fragments take. Loaded before
    // waiting for V so that the loads overlap; dealt after.
    // (Loading them one chunk ahead instead cost 32 registers at Dv = 64 and ran 3-5 % slower on the H200.)
    constexpr int kBlocks = kSparse ? 1 : 2;
    const int64_t chunk_slot = chunk * kSteps * 16;
    uint32_t runs[2][kBlocks][4];
    uint32_t sparse_metadata[kSteps];
    if constexpr (!OnChip) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
#pragma unroll
        for (int block = 0; block < kBlocks; ++block) {
          const int offset = kSparse ? 8 * quad_lane : 16 * quad_lane + 8 * block;
          load_packed_run(probs_row[r], chunk_slot + offset, values_per_row, runs[r][block], kFillBits);
        }
      }
      if constexpr (kSparse) {
#pragma unroll
        for (int s = 0; s < kSteps; ++s) {
          const int64_t step = chunk * kSteps + s;
          sparse_metadata[s] = sparse_metadata_register(
              sparse_metadata_word<Pattern>(metadata_row[0], step, layout.words_per_row),
              sparse_metadata_word<Pattern>(metadata_row[1], step, layout.words_per_row), quad_lane);
        }
      }
    } else {
      // The pairs as sddmm_prune_block packed them (already in the transposed order), and the metadata words of
      // the quad's rows: quad lane 2r + w wrote word w of row r (1:2: word 0 holds both steps).
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const uint4 pairs = on_chip.pairs(chunk, r);
        runs[r][0][0] = pairs.x, runs[r][0][1] = pairs.y, runs[r][0][2] = pairs.z, runs[r][0][3] = pairs.w;
      }
      const int quad_base = static_cast<int>(threadIdx.x) - quad_lane;
#pragma unroll
      for (int s = 0; s < kSteps; ++s) {
        const int word = Pattern == DFSS_PATTERN_2_4 ? s : 0;
        const int64_t step = chunk * kSteps + s;
        sparse_metadata[s] = sparse_metadata_register(
            step_metadata<Pattern>(on_chip.word(chunk, quad_base + word), step),
            step_metadata<Pattern>(on_chip.word(chunk, quad_base + 2 + word), step), quad_lane);
      }
    }

    cp_async_wait<1>();
    __syncthreads();
    // Run word j after the transpose: sparse, slots 8j + 2a (+1): step j / 2, fragment half j % 2; dense block b,
    // slots 16j + 8b + 2a (+1): step j, half b.
    uint32_t a[kSteps][4];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
#pragma unroll
      for (int block = 0; block < kBlocks; ++block) {
        if constexpr (!OnChip) transpose_quad(runs[r][block], quad_lane);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          uint32_t word = runs[r][block][j];
          if constexpr (Scores) word = exponentials_of<T>(word, max_log2e[r], row_sum[r]);
          if constexpr (kSparse) {
            a[j / 2][2 * (j % 2) + r] = word;
          } else {
            a[j][2 * block + r] = word;
          }
        }
      }
    }
    const T *values = v_tiles[chunk & 1];
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      if constexpr (kSparse) {
        // B of a k32 step: matrices of keys 32s + (0-7 | 8-15 | 16-23 | 24-31), transposed, for each n8 tile.
#pragma unroll
        for (int n = 0; n < kPieces; ++n) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, &values[(32 * s + lane) * kStride + 8 * n]);
          mma_sp_m16n8k32<T>(acc[n], a[s], b, sparse_metadata[s]);
        }
      } else {
        // B of a k16 step for n8 tiles 2n and 2n + 1: matrices (keys 0-7 | 8-15) x (columns 0-7 | 8-15), transposed.
#pragma unroll
        for (int n = 0; n < kPieces / 2; ++n) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, &values[(16 * s + (lane & 7) + (lane & 8)) * kStride + 16 * n + (lane >> 4) * 8]);
          const uint32_t b_even[2] = {b[0], b[1]};
          const uint32_t b_odd[2] = {b[2], b[3]};
          mma_m16n8k16<T>(acc[2 * n], a[s], b_even);
          mma_m16n8k16<T>(acc[2 * n + 1], a[s], b_odd);
        }
      }
    }
    __syncthreads();  // the next iteration loads into the buffer just read
  }

  T *out_head = out + batch * shape.out.batch + head_q * shape.out.head;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    // Scores: out = O / sum, lse = max + log(sum); zeros and -inf for a row with no finite score (sum 0).
    float inverse = 1.0f;
    if constexpr (Scores) {
      row_sum[r] = quad_sum(row_sum[r]);
      inverse = row_sum[r] > 0.0f ? 1.0f / row_sum[r] : 0.0f;
    }
    if (row[r] >= shape.seq_q) continue;
    T *out_row = out_head + row[r] * shape.out.row;
#pragma unroll
    for (int n = 0; n < kPieces; ++n) {
      const float pair[2] = {acc[n][2 * r] * inverse, acc[n][2 * r + 1] * inverse};
      store_run<T, 2>(out_row, 8 * n + 2 * quad_lane, HeadDimV, pair);
    }
    if (Scores && lse != nullptr && quad_lane == 0) {
      lse[head_row * shape.seq_q + row[r]] =
          row_sum[r] > 0.0f ? max[r] + logf(row_sum[r]) : -INFINITY;
    }
  }
}

template <typename T, int HeadDimV, int Pattern, bool Scores>
__global__ void __launch_bounds__(kThreads, spmm_min_blocks(HeadDimV, Pattern))
    spmm_tensor_core_kernel(AttentionShape shape, const T *probs, const uint32_t *metadata, const T *v,
                            const int32_t *seqlens_k, T *out, const float *row_max, float *lse) {
#if DFSS_MMA_AVAILABLE
  __shared__ alignas(16) T v_tiles[2][spmm_tile_elements(HeadDimV)];
  const float unused_max[2] = {0.0f, 0.0f};
  spmm_block<T, HeadDimV, Pattern, Scores, false>(shape, probs, metadata, v, seqlens_k, out, row_max, lse, v_tiles,
                                                  OnChipScores{nullptr}, unused_max);
#else
  (void)shape, (void)probs, (void)metadata, (void)v, (void)out, (void)row_max, (void)lse;
#endif
}

// Keys of one chunk of the float32 kernel: 2 steps of 16.
constexpr int kTf32ChunkKeys = 32;

// Element `slot` of a compressed float32 row of `limit` elements; 0 past its end or for a row that does not exist.
__device__ __forceinline__ float load_slot(const float *row, int64_t slot, int64_t limit) {
  return row != nullptr && slot < limit ? row[slot] : 0.0f;
}

// The 8 metadata bits (one per slot) of 16-key step `step` of a 1:2 row: bits 8 step .. 8 step + 7 of its stream.
// Bits past the stream's end read as 0, which is valid tf32 metadata (index 0; those slots hold 0).
__device__ __forceinline__ uint32_t step_metadata_bits(const uint32_t *metadata_row, int64_t step,
                                                       int64_t words_per_row) {
  const int64_t word = step / 4;
  if (metadata_row == nullptr || word >= words_per_row) return 0u;
  return (metadata_row[word] >> (8 * (step % 4))) & 0xFFu;
}

// float32: out = P V with P the compressed 1:2 probabilities on sparse tf32 tensor cores, or the dense probabilities
// on dense ones (3xTF32 both).
template <int HeadDimV, int Pattern>
__global__ void __launch_bounds__(kThreads)
    spmm_tf32_kernel(AttentionShape shape, const float *probs, const uint32_t *metadata, const float *v,
                     const int32_t *seqlens_k, float *out) {
#if DFSS_MMA_AVAILABLE
  static_assert(Pattern == DFSS_PATTERN_DENSE || Pattern == DFSS_PATTERN_1_2, "float32 runs dense and 1:2");
  constexpr bool kSparse = Pattern == DFSS_PATTERN_1_2;
  static_assert(HeadDimV % 8 == 0, "head dims of whole n8 tiles");
  static_assert(kTf32ChunkKeys % 16 == 0, "chunks of whole 16-key steps");
  constexpr int kStride = tf32_tile_stride(HeadDimV);
  constexpr int kPieces = HeadDimV / 4;  // 16-byte pieces of a V row
  constexpr int kOutBlocks = HeadDimV / 8;
  constexpr int kSteps = kTf32ChunkKeys / 16;
  __shared__ alignas(16) float v_tiles[2][kTf32ChunkKeys * kStride];

  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int group = lane / 4;
  const int quad = lane % 4;
  const CompressedLayout layout = shape.layout;
  const int64_t values_per_row = layout.values_per_row;

  const StagedBlockPlace place = staged_block_place(shape);
  const int64_t head_row = place.head_row, first_row = place.first_row;
  const int64_t batch = place.batch, head_q = place.head_q, head_kv = place.head_kv;
  const float *v_head = v + batch * shape.v.batch + head_kv * shape.v.head;
  const int64_t valid_k = valid_length(seqlens_k, batch, shape.seq_k);  // V is read up to Nk_b only

  // This lane's two rows: group and group + 8 of the warp's 16 (nullptr: past Nq, read as zeros).
  int64_t row[2];
  const float *probs_row[2];
  const uint32_t *metadata_row[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    row[r] = first_row + warp * 16 + group + 8 * r;
    const int64_t input_row = head_row * shape.seq_q + row[r];
    const bool inside = row[r] < shape.seq_q;
    probs_row[r] = inside ? probs + input_row * values_per_row : nullptr;
    metadata_row[r] = inside && kSparse ? metadata + input_row * layout.words_per_row : nullptr;
  }

  // Tile row p of a chunk holds key tf32_sparse_v_key_of_row(p) of it; keys past Nk_b are zero-filled.
  const auto load_value_chunk = [&](int64_t chunk, float *target) {
    for (int piece = static_cast<int>(threadIdx.x); piece < kTf32ChunkKeys * kPieces; piece += kThreads) {
      const int p = piece / kPieces;
      const int column = piece % kPieces * 4;
      const int64_t key = chunk * kTf32ChunkKeys + tf32_sparse_v_key_of_row(p);
      const bool outside = key >= valid_k;
      cp_async_16(&target[p * kStride + column], outside ? v_head : v_head + key * shape.v.row + column, outside);
    }
  };

  float acc[kOutBlocks][4];
#pragma unroll
  for (int n = 0; n < kOutBlocks; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;

  const int64_t chunks = (shape.seq_k + kTf32ChunkKeys - 1) / kTf32ChunkKeys;
  load_value_chunk(0, v_tiles[0]);
  cp_async_commit();
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    if (chunk + 1 < chunks) load_value_chunk(chunk + 1, v_tiles[(chunk + 1) & 1]);
    cp_async_commit();

    // A of 16-key step `step`, issued before waiting for V so that the loads overlap. 1:2: its 8 slots, slots quad and
    // quad + 4 of rows group and group + 8; dense: half h (keys 8h .. 8h + 7) in a_values[s][4h ..], keys quad and
    // quad + 4 of each row likewise.
    constexpr int kStepValues = kSparse ? 4 : 8;
    float a_values[kSteps][kStepValues];
    uint32_t sparse_metadata[kSteps];
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      const int64_t step = chunk * kSteps + s;
#pragma unroll
      for (int h = 0; h < kStepValues / 4; ++h) {
        const int64_t slot = (kSparse ? 8 : 16) * step + 8 * h + quad;
        a_values[s][4 * h] = load_slot(probs_row[0], slot, values_per_row);
        a_values[s][4 * h + 1] = load_slot(probs_row[1], slot, values_per_row);
        a_values[s][4 * h + 2] = load_slot(probs_row[0], slot + 4, values_per_row);
        a_values[s][4 * h + 3] = load_slot(probs_row[1], slot + 4, values_per_row);
      }
      sparse_metadata[s] = kSparse ? tf32_sparse_metadata_register(
                                         step_metadata_bits(metadata_row[0], step, layout.words_per_row),
                                         step_metadata_bits(metadata_row[1], step, layout.words_per_row), quad)
                                   : 0u;
    }

    cp_async_wait<1>();
    __syncthreads();
    const float *values = v_tiles[chunk & 1];
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      SplitTf32 a[kStepValues];
      split_tf32(a_values[s], a);
      const float *v_block = values + 16 * s * kStride + group;
#pragma unroll
      for (int n = 0; n < kOutBlocks; ++n) {
        // B: keys 16 s + quad + 4i of output column 8n + group, at the tile rows tf32_sparse_v_row gives.
        float b_values[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) b_values[i] = v_block[tf32_sparse_v_row(i, quad) * kStride + 8 * n];
        SplitTf32 b[4];
        split_tf32(b_values, b);
        if constexpr (kSparse) {
          mma_sp_m16n8k16_3xtf32<0>(acc[n], a, b, sparse_metadata[s]);
        } else {
          // Keys 8h + quad and 8h + quad + 4 of the step: B elements 2h and 2h + 1.
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const SplitTf32 a_half[4] = {a[4 * h], a[4 * h + 1], a[4 * h + 2], a[4 * h + 3]};
            const SplitTf32 b_half[2] = {b[2 * h], b[2 * h + 1]};
            mma_m16n8k8_3xtf32(acc[n], a_half, b_half);
          }
        }
      }
    }
    __syncthreads();  // the next iteration loads into the buffer just read
  }

  float *out_head = out + batch * shape.out.batch + head_q * shape.out.head;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (row[r] >= shape.seq_q) continue;
    float *out_row = out_head + row[r] * shape.out.row;
#pragma unroll
    for (int n = 0; n < kOutBlocks; ++n) {
      float *target = out_row + 8 * n + 2 * quad;
      if (reinterpret_cast<uintptr_t>(target) % sizeof(float2) == 0) {
        *reinterpret_cast<float2 *>(target) = make_float2(acc[n][2 * r], acc[n][2 * r + 1]);
      } else {
        target[0] = acc[n][2 * r];
        target[1] = acc[n][2 * r + 1];
      }
    }
  }
#else
  (void)shape, (void)probs, (void)metadata, (void)v, (void)out;
#endif
}

}  // namespace staged

template <dfss_dtype Dtype, int HeadDimV>
dfss_status launch_spmm_tensor_core(const AttentionCall &call, const void *probs, const uint32_t *metadata,
                                    const void *v, void *out, const float *row_max, float *lse) {
  const unsigned blocks = static_cast<unsigned>(staged_grid_blocks(call.shape));
  StreamWorkspace workspace(call.stream);
  const int32_t *seqlens_q = nullptr;  // not needed
  const int32_t *seqlens_k = nullptr;
  DFSS_RETURN_IF_ERROR(workspace.allocate_lengths({}, call.seqlens_k, &seqlens_q, &seqlens_k));
  if constexpr (Dtype == DFSS_DTYPE_FLOAT32) {
    // float32: patterns dense and 1:2 (staged_tensor_core.cpp declines 2:4), probabilities only.
    if (call.shape.layout.m == 4 || row_max != nullptr) return DFSS_ERROR_INTERNAL;
    const auto kernel = call.shape.layout.m == 2 ? staged::spmm_tf32_kernel<HeadDimV, DFSS_PATTERN_1_2>
                                                 : staged::spmm_tf32_kernel<HeadDimV, DFSS_PATTERN_DENSE>;
    clear_stale_cuda_error();
    kernel<<<blocks, staged::kThreads, 0, call.stream>>>(call.shape, static_cast<const float *>(probs), metadata,
                                                         static_cast<const float *>(v), seqlens_k,
                                                         static_cast<float *>(out));
    return check_launch("spmm_tf32_kernel");
  } else {
    using T = typename staged::ElementOf<Dtype>::type;
    const bool scores = row_max != nullptr;
    const auto kernel = [&] {
      switch (call.shape.layout.m) {
        case 2:
          return scores ? staged::spmm_tensor_core_kernel<T, HeadDimV, DFSS_PATTERN_1_2, true>
                        : staged::spmm_tensor_core_kernel<T, HeadDimV, DFSS_PATTERN_1_2, false>;
        case 4:
          return scores ? staged::spmm_tensor_core_kernel<T, HeadDimV, DFSS_PATTERN_2_4, true>
                        : staged::spmm_tensor_core_kernel<T, HeadDimV, DFSS_PATTERN_2_4, false>;
        default:
          return scores ? staged::spmm_tensor_core_kernel<T, HeadDimV, DFSS_PATTERN_DENSE, true>
                        : staged::spmm_tensor_core_kernel<T, HeadDimV, DFSS_PATTERN_DENSE, false>;
      }
    }();
    clear_stale_cuda_error();
    kernel<<<blocks, staged::kThreads, 0, call.stream>>>(call.shape, static_cast<const T *>(probs), metadata,
                                                         static_cast<const T *>(v), seqlens_k, static_cast<T *>(out),
                                                         row_max, lse);
    return check_launch("spmm_tensor_core_kernel");
  }
}

}  // namespace dfss
