// The reference GPU kernels: simple, checkable against dfss.h line by line, correct on any sm_75+ GPU. Each
// takes a validated call and device pointers, enqueues its work on call.stream, and returns the launch status.
#pragma once

#include <cstdint>

#include "dfss.h"
#include "validate.h"

namespace dfss {

dfss_status attention_forward_reference(const AttentionCall &call, const void *q, const void *k, const void *v,
                                        void *out, float *lse);

dfss_status sddmm_prune_reference(const AttentionCall &call, const void *q, const void *k, void *values,
                                  uint32_t *metadata);

dfss_status compressed_softmax_reference(const AttentionCall &call, const void *values_in, void *values_out,
                                         float *lse);

dfss_status spmm_reference(const AttentionCall &call, const void *probs, const uint32_t *metadata, const void *v,
                           void *out);

}  // namespace dfss
