// Element access and block placement of the staged fast kernels: the element type of a dtype, where a block
// works, 16-bit patterns of rounded values, and loads and stores of short runs of a row whose alignment is only
// known at run time (compressed rows of C values start wherever C puts them).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "attention_shape.h"
#include "dfss.h"
#include "dtype.cuh"
#include "mma.cuh"
#include "staged_fragments.h"

namespace dfss {
namespace staged {

// Where a staged kernel's block works (staged_grid_blocks: one block per 64 query rows of each (batch, query head)):
// rows first_row .. first_row + 63 of query head head_q of batch entry `batch`, head_row = batch * Hq + head_q (the
// [B, Hq] index of the compressed rows), and the kv head they read.
struct StagedBlockPlace {
  int64_t head_row, first_row, batch, head_q, head_kv;
};

__device__ __forceinline__ StagedBlockPlace staged_block_place(const AttentionShape &shape) {
  const int64_t row_tiles = (shape.seq_q + kTileRows - 1) / kTileRows;
  StagedBlockPlace place;
  place.head_row = blockIdx.x / row_tiles;
  place.first_row = blockIdx.x % row_tiles * kTileRows;
  place.batch = place.head_row / shape.heads_q;
  place.head_q = place.head_row % shape.heads_q;
  place.head_kv = place.head_q / (shape.heads_q / shape.heads_kv);
  return place;
}

template <dfss_dtype Dtype>
struct ElementOf;
template <>
struct ElementOf<DFSS_DTYPE_FLOAT16> {
  using type = __half;
};
template <>
struct ElementOf<DFSS_DTYPE_BFLOAT16> {
  using type = __nv_bfloat16;
};
template <>
struct ElementOf<DFSS_DTYPE_FLOAT32> {
  using type = float;
};

__device__ __forceinline__ uint16_t bits_of(__half x) { return __half_as_ushort(x); }
__device__ __forceinline__ uint16_t bits_of(__nv_bfloat16 x) { return __bfloat16_as_ushort(x); }

template <typename T>
__device__ __forceinline__ T element_of_bits(uint16_t bits);
template <>
__device__ __forceinline__ __half element_of_bits<__half>(uint16_t bits) {
  return __ushort_as_half(bits);
}
template <>
__device__ __forceinline__ __nv_bfloat16 element_of_bits<__nv_bfloat16>(uint16_t bits) {
  return __ushort_as_bfloat16(bits);
}

// The bits of x rounded to T (to nearest even).
template <typename T>
__device__ __forceinline__ uint16_t rounded_bits(float x) {
  return bits_of(from_float<T>(x));
}

// Writes values[0 .. Count-1] (rounded to T) to target[0 .. Count-1] in one vector store: the caller knows the run
// is whole and target aligned to Count elements.
template <typename T, int Count>
__device__ __forceinline__ void store_whole_run(T *target, const float (&values)[Count]) {
  static_assert(Count == 2 || Count == 4, "runs of 2 or 4 elements");
  if constexpr (sizeof(T) == 4) {
    if constexpr (Count == 2) {
      *reinterpret_cast<float2 *>(target) = make_float2(values[0], values[1]);
    } else {
      *reinterpret_cast<float4 *>(target) = make_float4(values[0], values[1], values[2], values[3]);
    }
  } else if constexpr (Count == 2) {
    *reinterpret_cast<uint32_t *>(target) = pack_bits(rounded_bits<T>(values[0]), rounded_bits<T>(values[1]));
  } else {
    const uint32_t low = pack_bits(rounded_bits<T>(values[0]), rounded_bits<T>(values[1]));
    const uint32_t high = pack_bits(rounded_bits<T>(values[2]), rounded_bits<T>(values[3]));
    *reinterpret_cast<uint2 *>(target) = make_uint2(low, high);
  }
}

// Writes values[0 .. Count-1] (rounded to T) to row[slot ..], leaving out slots at or past `limit`: one vector
// store where the run is whole and aligned, else one store per element.
template <typename T, int Count>
__device__ __forceinline__ void store_run(T *row, int64_t slot, int64_t limit, const float (&values)[Count]) {
  T *target = row + slot;
  if (slot + Count <= limit && reinterpret_cast<uintptr_t>(target) % (Count * sizeof(T)) == 0) {
    store_whole_run<T, Count>(target, values);
  } else {
    for (int c = 0; c < Count; ++c) {
      if (slot + c < limit) target[c] = from_float<T>(values[c]);
    }
  }
}

// One butterfly stage between lanes q and q ^ Mask: a lane with `first` set gives words A0, A1 and takes the
// partner's words in their place, the partner (first clear) does the same with B0, B1.
template <int Mask, int A0, int A1, int B0, int B1>
__device__ __forceinline__ void exchange_words(uint32_t (&words)[4], bool first) {
  const uint32_t x = __shfl_xor_sync(0xffffffffu, first ? words[A0] : words[B0], Mask);
  const uint32_t y = __shfl_xor_sync(0xffffffffu, first ? words[A1] : words[B1], Mask);
  if (first) {
    words[A0] = x, words[A1] = y;
  } else {
    words[B0] = x, words[B1] = y;
  }
}

// Transposes the 4 x 4 words held by the 4 lanes of a quad: lane q holds row q (words[0 .. 3]) before and column q
// after (words[j] = what lane j held in words[q]). Four shuffles: the off-diagonal 2 x 2 blocks swap between lanes
// q and q ^ 2, then each 2 x 2 block transposes between lanes q and q ^ 1. Every lane of the warp must call it.
__device__ __forceinline__ void transpose_quad(uint32_t (&words)[4], int quad_lane) {
  exchange_words<2, 0, 1, 2, 3>(words, (quad_lane & 2) != 0);
  exchange_words<1, 0, 2, 1, 3>(words, (quad_lane & 1) != 0);
}

// Elements slot .. slot + 7 of a row of `limit` 16-bit elements as 4 words (low element first); elements past the
// end, and every element of a row that does not exist (row == nullptr), read as the bits `fill` (0: the value 0).
// One 16-byte load where the run is whole and aligned.
template <typename T>
__device__ __forceinline__ void load_packed_run(const T *row, int64_t slot, int64_t limit, uint32_t (&words)[4],
                                                uint16_t fill = 0) {
  static_assert(sizeof(T) == 2, "16-bit elements");
  if (row == nullptr) {
    words[0] = words[1] = words[2] = words[3] = pack_bits(fill, fill);
    return;
  }
  const T *source = row + slot;
  if (slot + 8 <= limit && reinterpret_cast<uintptr_t>(source) % 16 == 0) {
    const uint4 raw = *reinterpret_cast<const uint4 *>(source);
    words[0] = raw.x, words[1] = raw.y, words[2] = raw.z, words[3] = raw.w;
    return;
  }
  for (int w = 0; w < 4; ++w) {
    const uint16_t low = slot + 2 * w < limit ? bits_of(source[2 * w]) : fill;
    const uint16_t high = slot + 2 * w + 1 < limit ? bits_of(source[2 * w + 1]) : fill;
    words[w] = pack_bits(low, high);
  }
}

// Writes 8 16-bit elements (4 words, low element of each first) to row[slot ..], leaving out slots at or past
// `limit`: one 16-byte store where the run is whole and aligned, else one store per element.
template <typename T>
__device__ __forceinline__ void store_packed_run(T *row, int64_t slot, int64_t limit, const uint32_t (&words)[4]) {
  static_assert(sizeof(T) == 2, "16-bit elements");
  T *target = row + slot;
  if (slot + 8 <= limit && reinterpret_cast<uintptr_t>(target) % 16 == 0) {
    *reinterpret_cast<uint4 *>(target) = make_uint4(words[0], words[1], words[2], words[3]);
  } else {
    for (int e = 0; e < 8; ++e) {
      if (slot + e < limit) target[e] = element_of_bits<T>(static_cast<uint16_t>(words[e / 2] >> (16 * (e % 2))));
    }
  }
}

// Words index .. index + 3 of a row of `limit` words: one 16-byte store where they are whole and aligned, else one
// store per word inside the row.
__device__ __forceinline__ void store_words(uint32_t *row, int64_t index, int64_t limit, const uint32_t (&words)[4]) {
  uint32_t *target = row + index;
  if (index + 4 <= limit && reinterpret_cast<uintptr_t>(target) % 16 == 0) {
    *reinterpret_cast<uint4 *>(target) = make_uint4(words[0], words[1], words[2], words[3]);
  } else {
    for (int w = 0; w < 4; ++w) {
      if (index + w < limit) target[w] = words[w];
    }
  }
}

// A block's compressed scores kept in shared memory between the two phases of dfss_attention_staged's on-chip
// kernel (staged_on_chip.cuh), each lane reading back only what the quad of its rows wrote: per key tile, every
// lane's kept pairs of its two rows as sddmm_prune's epilogue packs them (16 bytes a row, before the quad transpose,
// which is already the word order of spmm's A fragments), and one metadata word a lane (quad lane a: word a % 2 of
// the tile of row group + 8 (a / 2)). 16-byte accesses at consecutive lanes: no bank conflict.
struct OnChipScores {
  static constexpr int kTileBytes = kThreads * (2 * 16 + 4);
  unsigned char *base;

  __device__ __forceinline__ uint4 &pairs(int64_t tile, int row_of_lane) const {
    return reinterpret_cast<uint4 *>(base + tile * kTileBytes)[row_of_lane * kThreads + threadIdx.x];
  }
  // The metadata word that thread `thread` of the block wrote for the tile.
  __device__ __forceinline__ uint32_t &word(int64_t tile, int thread) const {
    return reinterpret_cast<uint32_t *>(base + tile * kTileBytes + 2 * 16 * kThreads)[thread];
  }
};

}  // namespace staged
}  // namespace dfss
