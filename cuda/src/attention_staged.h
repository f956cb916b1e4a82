// The staged pipeline in one call (dfss_attention_staged): its workspace, carved into the compressed values, their
// metadata and a float32 per row, and the tensor-core kernels that run it with the softmax folded into sddmm_prune
// (each row's maximum) and spmm (exp, sum and division on load). A call they decline runs the three staged steps.
#pragma once

#include <cstdint>

#include "attention_shape.h"
#include "dfss.h"
#include "validate.h"

namespace dfss {

// The workspace's parts: values [B, Hq, Nq, C] in the dtype, metadata [B, Hq, Nq, W] (nullptr for dense), row_max
// [B, Hq, Nq] float32.
struct StagedWorkspace {
  void *values;
  uint32_t *metadata;
  float *row_max;
};

// Bytes of the workspace for `shape`; UINT64_MAX where that would not fit in 64 bits.
uint64_t staged_workspace_bytes(const AttentionShape &shape);

// The parts of a workspace of staged_workspace_bytes(shape) bytes at `memory`.
StagedWorkspace carve_staged_workspace(const AttentionShape &shape, void *memory);

// The folded pipeline on tensor cores (staged_tensor_core.cpp): true when it took the call, with the launch status
// in *status; false (and *status untouched) when the call is outside what it implements.
bool attention_staged_tensor_core(const AttentionCall &call, const void *q, const void *k, const void *v, void *out,
                                  float *lse, const StagedWorkspace &workspace, dfss_status *status);

}  // namespace dfss
