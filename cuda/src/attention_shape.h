// An attention problem after validation: every field of the dfss_attention_desc checked and the compressed
// layout derived. Plain data, passed by value to the kernels.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dfss.h"
#include "host_device.h"
#include "layout.h"

namespace dfss {

// Element strides of a 4-d tensor for (batch, head, row, column); the column stride is 1.
struct Strides4 {
  int64_t batch, head, row, column;
};

// Whether `pointer` is a multiple of `bytes`.
inline bool aligned(const void *pointer, size_t bytes) { return reinterpret_cast<uintptr_t>(pointer) % bytes == 0; }

// Whether every row of a tensor with these strides starts a multiple of `elements` elements after its (aligned)
// base pointer: the batch, head and row strides are multiples of it.
inline bool rows_aligned(const Strides4 &strides, int64_t elements) {
  return strides.batch % elements == 0 && strides.head % elements == 0 && strides.row % elements == 0;
}

struct AttentionShape {
  dfss_dtype dtype;
  bool causal;
  int64_t batch, heads_q, heads_kv, seq_q, seq_k, head_dim, head_dim_v;
  Strides4 q, k, v, out;
  float scale;
  CompressedLayout layout;

  // Query rows of the problem: one per (b, h, i), ordered as the [B, Hq, Nq] lse and compressed outputs.
  DFSS_HOST_DEVICE int64_t rows() const { return batch * heads_q * seq_q; }
};

// Where query row `row` (0 .. rows() - 1) sits: batch entry, query head, the kv head it reads, row index.
struct RowCoordinates {
  int64_t batch, head_q, head_kv, i;
};

DFSS_HOST_DEVICE inline RowCoordinates row_coordinates(const AttentionShape &shape, int64_t row) {
  RowCoordinates at;
  at.i = row % shape.seq_q;
  at.head_q = row / shape.seq_q % shape.heads_q;
  at.batch = row / (shape.seq_q * shape.heads_q);
  at.head_kv = at.head_q / (shape.heads_q / shape.heads_kv);
  return at;
}

}  // namespace dfss
