// The tensor-core kernels (sm_80 and later): each entry point first offers the call to its tensor-core kernel,
// which takes it when it implements the call's dtype, pattern and shape on the current device, and otherwise
// declines so that the reference kernel (reference_kernels.h) runs it. Every call is answered either way.
#pragma once

#include <cstdint>

#include "dfss.h"
#include "validate.h"

namespace dfss {

// Each returns true when it took the call, with the launch status in *status; false (and *status untouched) when
// the call is outside what it implements.
bool attention_forward_tensor_core(const AttentionCall &call, const void *q, const void *k, const void *v, void *out,
                                   float *lse, dfss_status *status);

bool sddmm_prune_tensor_core(const AttentionCall &call, const void *q, const void *k, void *values,
                             uint32_t *metadata, dfss_status *status);

bool compressed_softmax_tensor_core(const AttentionCall &call, const void *values_in, void *values_out, float *lse,
                                    dfss_status *status);

bool spmm_tensor_core(const AttentionCall &call, const void *probs, const uint32_t *metadata, const void *v,
                      void *out, dfss_status *status);

}  // namespace dfss
