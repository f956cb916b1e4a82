// The staged entry points of dfss.h in one call: dfss_attention_staged_workspace_size and dfss_attention_staged
// (validation, then the folded tensor-core pipeline, or the three staged steps in the workspace).
#include "attention_staged.h"

#include "reference_kernels.h"
#include "status.h"
#include "tensor_core_kernels.h"
#include "workspace.h"

using dfss::api_call;
using dfss::AttentionCall;
using dfss::AttentionShape;
using dfss::Presence;
using dfss::kElementAlignment;
using dfss::kWordAlignment;
using dfss::kWorkspaceAlignment;

namespace dfss {

namespace {

struct StagedCounts {
  uint64_t value_bytes, metadata_words, rows;
};

StagedCounts staged_counts(const AttentionShape &shape) {
  // validate_attention_desc checked that the values and the metadata are addressable in int64 bytes.
  const uint64_t rows = static_cast<uint64_t>(shape.rows());
  const uint64_t element_bytes = shape.dtype == DFSS_DTYPE_FLOAT32 ? 4 : 2;
  return {rows * static_cast<uint64_t>(shape.layout.values_per_row) * element_bytes,
          rows * static_cast<uint64_t>(shape.layout.words_per_row), rows};
}

}  // namespace

uint64_t staged_workspace_bytes(const AttentionShape &shape) {
  const StagedCounts counts = staged_counts(shape);
  // Each part is below 2^63 bytes; their sum could still pass 2^64.
  constexpr uint64_t kMaxPart = uint64_t{1} << 61;
  if (counts.value_bytes > kMaxPart || counts.metadata_words > kMaxPart / 4 || counts.rows > kMaxPart / 4) {
    return UINT64_MAX;
  }
  return StreamWorkspace::bytes_for<unsigned char>(counts.value_bytes) +
         StreamWorkspace::bytes_for<uint32_t>(counts.metadata_words) + StreamWorkspace::bytes_for<float>(counts.rows);
}

StagedWorkspace carve_staged_workspace(const AttentionShape &shape, void *memory) {
  const StagedCounts counts = staged_counts(shape);
  StreamWorkspace workspace(nullptr, memory);
  StagedWorkspace parts;
  parts.values = workspace.carve<unsigned char>(counts.value_bytes);
  parts.metadata = workspace.carve<uint32_t>(counts.metadata_words);
  parts.row_max = workspace.carve<float>(counts.rows);
  if (counts.metadata_words == 0) parts.metadata = nullptr;
  return parts;
}

}  // namespace dfss

namespace {

const dfss::WorkspaceNeed kWorkspace{dfss::staged_workspace_bytes, "staged", "dfss_attention_staged_workspace_size"};

// The three staged steps, each on its tensor-core kernel where that takes it, else on the reference one; the
// softmax in place.
dfss_status run_three_steps(const AttentionCall &call, const void *q, const void *k, const void *v, void *out,
                            float *lse, const dfss::StagedWorkspace &parts) {
  dfss_status status;
  if (!dfss::sddmm_prune_tensor_core(call, q, k, parts.values, parts.metadata, &status)) {
    status = dfss::sddmm_prune_reference(call, q, k, parts.values, parts.metadata);
  }
  DFSS_RETURN_IF_ERROR(status);
  if (!dfss::compressed_softmax_tensor_core(call, parts.values, parts.values, lse, &status)) {
    status = dfss::compressed_softmax_reference(call, parts.values, parts.values, lse);
  }
  DFSS_RETURN_IF_ERROR(status);
  if (!dfss::spmm_tensor_core(call, parts.values, parts.metadata, v, out, &status)) {
    status = dfss::spmm_reference(call, parts.values, parts.metadata, v, out);
  }
  return status;
}

}  // namespace

extern "C" {

DFSS_API dfss_status dfss_attention_staged_workspace_size(const dfss_attention_desc *desc, uint64_t *bytes) {
  return api_call(kWorkspace.size_function, [&] { return dfss::report_workspace_size(desc, kWorkspace, bytes); });
}

DFSS_API dfss_status dfss_attention_staged(const dfss_attention_desc *desc, const void *q, const void *k,
                                           const void *v, void *out, float *lse, void *workspace,
                                           uint64_t workspace_bytes) {
  return api_call("dfss_attention_staged", [&] {
    const dfss::ShapeChecks workspace_check = [&](const AttentionShape &shape) {
      return dfss::check_workspace_bytes(shape, workspace_bytes, kWorkspace);
    };
    AttentionCall call;
    DFSS_RETURN_IF_ERROR(dfss::validate_attention_call(desc, dfss::kAttentionStagedUses,
                                                       {{"q", q, Presence::required, kElementAlignment},
                                                        {"k", k, Presence::required, kElementAlignment},
                                                        {"v", v, Presence::required, kElementAlignment},
                                                        {"out", out, Presence::required, kElementAlignment},
                                                        {"lse", lse, Presence::optional, kWordAlignment},
                                                        {"workspace", workspace, Presence::required,
                                                         kWorkspaceAlignment}},
                                                       &call, workspace_check));
    const dfss::StagedWorkspace parts = dfss::carve_staged_workspace(call.shape, workspace);
    dfss_status status;
    if (dfss::attention_staged_tensor_core(call, q, k, v, out, lse, parts, &status)) return status;
    return run_three_steps(call, q, k, v, out, lse, parts);
  });
}

}  // extern "C"
