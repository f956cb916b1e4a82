// Placeholder until the fused tensor-core backward lands: declines every call (the reference backward runs it).
#include "attention_backward.h"

namespace dfss {

uint64_t attention_backward_tensor_core_workspace_bytes(const AttentionShape &) { return 0; }

bool attention_backward_tensor_core(const AttentionCall &, const BackwardArguments &, dfss_status *) { return false; }

}  // namespace dfss
