// The compressed layout of dfss.h: values per row (C), metadata words per row (W), and where the in-group
// index of each kept slot lives in a row's metadata bit stream. Host and device use the same functions.
#pragma once

#include <cstdint>

#include "dfss.h"
#include "host_device.h"

namespace dfss {

struct CompressedLayout {
  int n;                   // kept per group (dense: 1)
  int m;                   // group size (dense: 1)
  int index_bits;          // b = ceil(log2(m)) (dense: 0, no metadata)
  int64_t groups;          // G = ceil(Nk / m)
  int64_t values_per_row;  // C = G * n
  int64_t words_per_row;   // W = ceil(C * b / 32)
};

// Patterns of dfss.h. Their index widths (1 and 2 bits) divide 32, so no index straddles two metadata words.
DFSS_HOST_DEVICE inline CompressedLayout compressed_layout(int pattern, int64_t seq_k) {
  CompressedLayout layout{1, 1, 0, 0, 0, 0};
  if (pattern == DFSS_PATTERN_1_2) layout = CompressedLayout{1, 2, 1, 0, 0, 0};
  if (pattern == DFSS_PATTERN_2_4) layout = CompressedLayout{2, 4, 2, 0, 0, 0};
  layout.groups = (seq_k + layout.m - 1) / layout.m;
  layout.values_per_row = layout.groups * layout.n;
  layout.words_per_row = (layout.values_per_row * layout.index_bits + 31) / 32;
  return layout;
}

DFSS_HOST_DEVICE inline bool is_dense(const CompressedLayout &layout) { return layout.index_bits == 0; }

// Kept slots of one metadata word (32 / b) and the groups they belong to (32 / (n * b)).
DFSS_HOST_DEVICE inline int slots_per_word(const CompressedLayout &layout) { return 32 / layout.index_bits; }
DFSS_HOST_DEVICE inline int groups_per_word(const CompressedLayout &layout) {
  return slots_per_word(layout) / layout.n;
}

// Bit position of slot c's in-group index inside its word (the word being c * b / 32).
DFSS_HOST_DEVICE inline int index_shift(const CompressedLayout &layout, int64_t slot) {
  return static_cast<int>((slot * layout.index_bits) % 32);
}

// The key whose value sits in slot `slot` of a row, decoded from the row's metadata (dense: the slot itself).
DFSS_HOST_DEVICE inline int64_t key_of_slot(const CompressedLayout &layout, const uint32_t *metadata_row,
                                            int64_t slot) {
  if (is_dense(layout)) return slot;
  const uint32_t word = metadata_row[slot * layout.index_bits / 32];
  const uint32_t index = (word >> index_shift(layout, slot)) & ((1u << layout.index_bits) - 1u);
  return slot / layout.n * layout.m + index;
}

}  // namespace dfss
