// The attention entry points of dfss.h: descriptor defaults, validation, then the kernel that runs the call.
#include <cmath>
#include <cstring>

#include "reference_kernels.h"
#include "tensor_core_kernels.h"
#include "status.h"
#include "validate.h"

using dfss::api_call;
using dfss::AttentionCall;
using dfss::fail;
using dfss::Presence;
using dfss::kElementAlignment;
using dfss::kWordAlignment;

namespace {

// Products of unchecked sizes wrap instead of overflowing (undefined in C++); the entry points reject such sizes.
int64_t wrapping_product(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}

// Strides of a packed [batch, heads, rows, columns] tensor.
void packed_strides(int64_t heads, int64_t rows, int64_t columns, int64_t strides[4]) {
  strides[3] = 1;
  strides[2] = columns;
  strides[1] = wrapping_product(rows, columns);
  strides[0] = wrapping_product(heads, strides[1]);
}

}  // namespace

extern "C" {

DFSS_API dfss_status dfss_attention_desc_init(dfss_attention_desc *desc, dfss_dtype dtype, dfss_pattern pattern,
                                              int64_t batch, int64_t heads_q, int64_t heads_kv, int64_t seq_q,
                                              int64_t seq_k, int64_t head_dim, int64_t head_dim_v) {
  return api_call("dfss_attention_desc_init", [&] {
    if (desc == nullptr) {
      return fail(DFSS_ERROR_INVALID_ARGUMENT, "desc: expected a pointer to a dfss_attention_desc, got NULL");
    }
    dfss_attention_desc result;
    std::memset(&result, 0, sizeof result);  // causal 0, reserved0 0, no lengths, default stream
    result.struct_size = sizeof(dfss_attention_desc);
    result.dtype = dtype;
    result.pattern = pattern;
    result.batch = batch;
    result.heads_q = heads_q;
    result.heads_kv = heads_kv;
    result.seq_q = seq_q;
    result.seq_k = seq_k;
    result.head_dim = head_dim;
    result.head_dim_v = head_dim_v;
    packed_strides(heads_q, seq_q, head_dim, result.q_strides);
    packed_strides(heads_kv, seq_k, head_dim, result.k_strides);
    packed_strides(heads_kv, seq_k, head_dim_v, result.v_strides);
    packed_strides(heads_q, seq_q, head_dim_v, result.out_strides);
    // Rounded once from double, as every language computes 1 / sqrt(D) in double.
    result.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
    *desc = result;
    return DFSS_SUCCESS;
  });
}

DFSS_API dfss_status dfss_attention_forward(const dfss_attention_desc *desc, const void *q, const void *k,
                                            const void *v, void *out, float *lse) {
  return api_call("dfss_attention_forward", [&] {
    AttentionCall call;
    DFSS_RETURN_IF_ERROR(dfss::validate_attention_call(desc, dfss::kAttentionForwardUses,
                                                       {{"q", q, Presence::required, kElementAlignment},
                                                        {"k", k, Presence::required, kElementAlignment},
                                                        {"v", v, Presence::required, kElementAlignment},
                                                        {"out", out, Presence::required, kElementAlignment},
                                                        {"lse", lse, Presence::optional, kWordAlignment}},
                                                       &call));
    dfss_status status;
    if (dfss::attention_forward_tensor_core(call, q, k, v, out, lse, &status)) return status;
    return dfss::attention_forward_reference(call, q, k, v, out, lse);
  });
}

DFSS_API dfss_status dfss_compressed_row_size(const dfss_attention_desc *desc, int64_t *values_per_row,
                                              int64_t *metadata_words_per_row) {
  return api_call("dfss_compressed_row_size", [&] {
    dfss::AttentionShape shape;
    DFSS_RETURN_IF_ERROR(dfss::validate_attention_desc(desc, dfss::kCompressedRowSizeUses, &shape));
    if (values_per_row == nullptr) {
      return fail(DFSS_ERROR_INVALID_ARGUMENT, "values_per_row: expected a pointer to an int64_t, got NULL");
    }
    if (metadata_words_per_row == nullptr) {
      return fail(DFSS_ERROR_INVALID_ARGUMENT, "metadata_words_per_row: expected a pointer to an int64_t, got NULL");
    }
    *values_per_row = shape.layout.values_per_row;
    *metadata_words_per_row = shape.layout.words_per_row;
    return DFSS_SUCCESS;
  });
}

DFSS_API dfss_status dfss_sddmm_prune(const dfss_attention_desc *desc, const void *q, const void *k, void *values,
                                      uint32_t *metadata) {
  return api_call("dfss_sddmm_prune", [&] {
    AttentionCall call;
    DFSS_RETURN_IF_ERROR(dfss::validate_attention_call(
        desc, dfss::kSddmmPruneUses,
        {{"q", q, Presence::required, kElementAlignment},
         {"k", k, Presence::required, kElementAlignment},
         {"values", values, Presence::required, kElementAlignment},
         {"metadata", metadata, Presence::required_unless_dense, kWordAlignment}},
        &call));
    dfss_status status;
    if (dfss::sddmm_prune_tensor_core(call, q, k, values, metadata, &status)) return status;
    return dfss::sddmm_prune_reference(call, q, k, values, metadata);
  });
}

DFSS_API dfss_status dfss_compressed_softmax(const dfss_attention_desc *desc, const void *values_in, void *values_out,
                                             float *lse) {
  return api_call("dfss_compressed_softmax", [&] {
    AttentionCall call;
    DFSS_RETURN_IF_ERROR(dfss::validate_attention_call(desc, dfss::kCompressedSoftmaxUses,
                                                       {{"values_in", values_in, Presence::required, kElementAlignment},
                                                        {"values_out", values_out, Presence::required, kElementAlignment},
                                                        {"lse", lse, Presence::optional, kWordAlignment}},
                                                       &call));
    dfss_status status;
    if (dfss::compressed_softmax_tensor_core(call, values_in, values_out, lse, &status)) return status;
    return dfss::compressed_softmax_reference(call, values_in, values_out, lse);
  });
}

DFSS_API dfss_status dfss_spmm(const dfss_attention_desc *desc, const void *probs, const uint32_t *metadata,
                               const void *v, void *out) {
  return api_call("dfss_spmm", [&] {
    AttentionCall call;
    DFSS_RETURN_IF_ERROR(dfss::validate_attention_call(
        desc, dfss::kSpmmUses,
        {{"probs", probs, Presence::required, kElementAlignment},
         {"metadata", metadata, Presence::required_unless_dense, kWordAlignment},
         {"v", v, Presence::required, kElementAlignment},
         {"out", out, Presence::required, kElementAlignment}},
        &call));
    dfss_status status;
    if (dfss::spmm_tensor_core(call, probs, metadata, v, out, &status)) return status;
    return dfss::spmm_reference(call, probs, metadata, v, out);
  });
}

}  // extern "C"
