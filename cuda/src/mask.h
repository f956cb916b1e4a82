// The masking rule of dfss.h (step 2), in one place. Every mask of dfss.h leaves a prefix of the keys: a row
// sees keys [0, allowed_key_end) and every later key is -inf.
#pragma once

#include <cstdint>

#include "host_device.h"

namespace dfss {

// Nq_b or Nk_b of batch entry `batch`: lengths[batch] of a call's per-batch lengths (a device copy in kernels), or
// the padded length `full` where the call gave none (nullptr).
DFSS_HOST_DEVICE inline int64_t valid_length(const int32_t *lengths, int64_t batch, int64_t full) {
  return lengths != nullptr ? lengths[batch] : full;
}

// Query row i of a batch entry with valid lengths valid_q (Nq_b) and valid_k (Nk_b):
//   - rows i >= Nq_b are fully masked;
//   - keys j >= Nk_b are masked;
//   - causal: keys j > i + (Nk_b - Nq_b) are masked (bottom-right aligned).
DFSS_HOST_DEVICE inline int64_t allowed_key_end(int64_t i, int64_t valid_q, int64_t valid_k, bool causal) {
  if (i >= valid_q) return 0;
  if (!causal) return valid_k;
  const int64_t causal_end = i + (valid_k - valid_q) + 1;  // first masked key
  return causal_end < 0 ? 0 : (causal_end < valid_k ? causal_end : valid_k);
}

// How many of the tile_keys keys from first_key on a row with allowed_key_end = key_end sees (0 .. tile_keys).
DFSS_HOST_DEVICE inline int allowed_keys_in_tile(int64_t key_end, int64_t first_key, int tile_keys) {
  const int64_t remaining = key_end - first_key;
  return static_cast<int>(remaining < 0 ? 0 : (remaining > tile_keys ? tile_keys : remaining));
}

}  // namespace dfss
