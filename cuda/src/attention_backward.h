// The backward of fused attention (dfss_attention_backward): its arguments after validation and the kernels that
// compute it. As for the forward (tensor_core_kernels.h), the entry point offers each call to the tensor-core
// backward first and runs the reference backward when it declines.
#pragma once

#include <algorithm>
#include <cstdint>

#include "attention_shape.h"
#include "dfss.h"
#include "validate.h"

namespace dfss {

// Device pointers of one validated backward call, the gradients' layouts, and the caller's workspace (at least
// attention_backward_workspace_bytes(shape) bytes, 16-byte aligned).
struct BackwardArguments {
  const void *q, *k, *v, *out, *dout;
  const float *lse;
  void *dq, *dk, *dv;
  BackwardStrides strides;
  void *workspace;
};

// The reference backward (any sm_75+ GPU, every dtype, pattern and head dim): the forward's row code
// (sddmm_prune_row, scaled_score, select_n_of_m) recomputes each score and the N:M choice, P comes from lse.
// Deterministic: every sum runs in an order fixed by the problem. The workspace sizes are UINT64_MAX where a
// size would not fit in 64 bits.
uint64_t attention_backward_reference_workspace_bytes(const AttentionShape &shape);
dfss_status attention_backward_reference(const AttentionCall &call, const BackwardArguments &arguments);

// The fused tensor-core backward (sm_80 and later). It must take exactly the calls whose forward ran on the
// tensor-core forward (attention_forward_tensor_core), recomputing the scores with that kernel's arithmetic, so
// that both passes make the same N:M choice; the reference backward recomputes them as the reference forward
// does. Returns true when it took the call, with the launch status in *status; false (and *status untouched)
// otherwise. Its workspace need is the most it can use for any call of `shape` (0 while it takes none).
uint64_t attention_backward_tensor_core_workspace_bytes(const AttentionShape &shape);
bool attention_backward_tensor_core(const AttentionCall &call, const BackwardArguments &arguments,
                                    dfss_status *status);

// What dfss_attention_backward_workspace_size reports: enough for whichever backward takes the call.
inline uint64_t attention_backward_workspace_bytes(const AttentionShape &shape) {
  return std::max(attention_backward_reference_workspace_bytes(shape),
                  attention_backward_tensor_core_workspace_bytes(shape));
}

}  // namespace dfss
