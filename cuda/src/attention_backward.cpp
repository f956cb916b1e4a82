// The backward entry points of dfss.h: the workspace size, and dfss_attention_backward (validation, then the
// kernel that runs the call).
#include "attention_backward.h"
#include "status.h"
#include "validate.h"

using dfss::api_call;
using dfss::AttentionCall;
using dfss::AttentionShape;
using dfss::Presence;
using dfss::kElementAlignment;
using dfss::kWordAlignment;
using dfss::kWorkspaceAlignment;

namespace {

const dfss::WorkspaceNeed kWorkspace{dfss::attention_backward_workspace_bytes, "backward",
                                     "dfss_attention_backward_workspace_size"};

}  // namespace

extern "C" {

DFSS_API dfss_status dfss_attention_backward_workspace_size(const dfss_attention_desc *desc, uint64_t *bytes) {
  return api_call(kWorkspace.size_function, [&] { return dfss::report_workspace_size(desc, kWorkspace, bytes); });
}

DFSS_API dfss_status dfss_attention_backward(const dfss_attention_desc *desc, const dfss_backward_strides *strides,
                                             const void *q, const void *k, const void *v, const void *out,
                                             const void *dout, const float *lse, void *dq, void *dk, void *dv,
                                             void *workspace, uint64_t workspace_bytes) {
  return api_call("dfss_attention_backward", [&] {
    dfss::BackwardArguments arguments{q, k, v, out, dout, lse, dq, dk, dv, {}, workspace};
    const dfss::ShapeChecks backward_checks = [&](const AttentionShape &shape) {
      DFSS_RETURN_IF_ERROR(dfss::validate_backward_strides(desc, strides, shape, &arguments.strides));
      return dfss::check_workspace_bytes(shape, workspace_bytes, kWorkspace);
    };
    AttentionCall call;
    DFSS_RETURN_IF_ERROR(dfss::validate_attention_call(
        desc, dfss::kAttentionBackwardUses,
        {{"q", q, Presence::required, kElementAlignment},
         {"k", k, Presence::required, kElementAlignment},
         {"v", v, Presence::required, kElementAlignment},
         {"out", out, Presence::required, kElementAlignment},
         {"dout", dout, Presence::required, kElementAlignment},
         {"lse", lse, Presence::required, kWordAlignment},
         {"dq", dq, Presence::required, kElementAlignment},
         {"dk", dk, Presence::required, kElementAlignment},
         {"dv", dv, Presence::required, kElementAlignment},
         {"workspace", workspace, Presence::required, kWorkspaceAlignment}},
        &call, backward_checks));
    dfss_status status;
    if (dfss::attention_backward_tensor_core(call, arguments, &status)) return status;
    return dfss::attention_backward_reference(call, arguments);
  });
}

}  // extern "C"
