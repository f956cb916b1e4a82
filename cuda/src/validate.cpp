// Validation of dfss_attention_desc and of the pointers of the attention entry points (see validate.h).
#include "validate.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "device.h"
#include "memory_kind.h"
#include "status.h"

namespace dfss {
namespace {

// Sizes and lengths are int32 wherever the ABI hands them over per batch entry, so every dimension is kept in
// the same range.
constexpr int64_t kMaxDimension = INT32_MAX;

using ll = long long;  // for printf

int64_t element_bytes(dfss_dtype dtype) { return dtype == DFSS_DTYPE_FLOAT32 ? 4 : 2; }

bool multiply(int64_t a, int64_t b, int64_t *product) { return !__builtin_mul_overflow(a, b, product); }
bool add(int64_t a, int64_t b, int64_t *sum) { return !__builtin_add_overflow(a, b, sum); }

dfss_status check_dimension(const char *field, int64_t value) {
  if (value < 1 || value > kMaxDimension) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT, "desc->%s: expected 1 <= value <= %lld, got %lld", field,
                static_cast<ll>(kMaxDimension), static_cast<ll>(value));
  }
  return DFSS_SUCCESS;
}

// A 4-d tensor of the descriptor: its name, the descriptor field of its strides, and its sizes.
struct TensorOfDesc {
  const char *name;           // "q"
  const char *strides_field;  // "desc->q_strides"
  const char *shape_text;     // "[B, Hq, Nq, D]"
  int64_t sizes[4];
  const int64_t *strides;
  bool written;  // an output: no two of its elements may share an address
};

// Sufficient condition for distinct addresses: ordered by stride, each dimension steps over everything the
// dimensions inside it reach. Every [B,H,N,D] or [B,N,H,D] layout meets it.
bool elements_are_distinct(const TensorOfDesc &tensor) {
  int order[4] = {0, 1, 2, 3};
  std::sort(order, order + 4, [&](int a, int b) { return tensor.strides[a] < tensor.strides[b]; });
  int64_t reach = 1;  // one past the largest offset reached by the dimensions visited so far
  for (int d : order) {
    if (tensor.sizes[d] == 1) continue;
    if (tensor.strides[d] < reach) return false;
    reach += tensor.strides[d] * (tensor.sizes[d] - 1);  // cannot overflow: the span was checked first
  }
  return true;
}

dfss_status check_strides(const TensorOfDesc &tensor, dfss_dtype dtype, Strides4 *strides) {
  const int64_t *s = tensor.strides;
  if (s[3] != 1) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT, "%s[3]: expected 1 (the column must be contiguous), got %lld",
                tensor.strides_field, static_cast<ll>(s[3]));
  }
  for (int d = 0; d < 3; ++d) {
    if (s[d] < 0) {
      return fail(DFSS_ERROR_INVALID_ARGUMENT, "%s[%d]: expected a value >= 0, got %lld", tensor.strides_field,
                  d, static_cast<ll>(s[d]));
    }
  }
  // The largest element offset, and its end in bytes, must fit int64 for the kernels' address arithmetic.
  int64_t span = 1;
  bool fits = true;
  for (int d = 0; d < 4 && fits; ++d) {
    int64_t step = 0;
    fits = multiply(tensor.sizes[d] - 1, s[d], &step) && add(span, step, &span);
  }
  int64_t span_bytes = 0;
  if (!fits || !multiply(span, element_bytes(dtype), &span_bytes)) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT,
                "%s: expected strides whose largest byte offset of %s %s fits in int64, got [%lld, %lld, %lld, "
                "%lld]",
                tensor.strides_field, tensor.name, tensor.shape_text, static_cast<ll>(s[0]), static_cast<ll>(s[1]),
                static_cast<ll>(s[2]), static_cast<ll>(s[3]));
  }
  if (tensor.written && !elements_are_distinct(tensor)) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT,
                "%s: expected strides that give every element of %s %s = [%lld, %lld, %lld, %lld] its own "
                "address, got [%lld, %lld, %lld, %lld]",
                tensor.strides_field, tensor.name, tensor.shape_text, static_cast<ll>(tensor.sizes[0]),
                static_cast<ll>(tensor.sizes[1]), static_cast<ll>(tensor.sizes[2]), static_cast<ll>(tensor.sizes[3]),
                static_cast<ll>(s[0]), static_cast<ll>(s[1]), static_cast<ll>(s[2]), static_cast<ll>(s[3]));
  }
  *strides = Strides4{s[0], s[1], s[2], s[3]};
  return DFSS_SUCCESS;
}

// The rows B * Hq * Nq, the compressed values [B, Hq, Nq, C] and metadata [B, Hq, Nq, W] must be addressable
// in bytes with int64 (the kernels index rows and slots with it).
dfss_status check_compressed_size(const AttentionShape &shape) {
  int64_t rows = 0;
  int64_t values_bytes = 0;
  int64_t metadata_bytes = 0;
  const bool fits = multiply(shape.batch, shape.heads_q, &rows) && multiply(rows, shape.seq_q, &rows) &&
                    multiply(rows, shape.layout.values_per_row, &values_bytes) &&
                    multiply(values_bytes, element_bytes(shape.dtype), &values_bytes) &&
                    multiply(rows, shape.layout.words_per_row, &metadata_bytes) &&
                    multiply(metadata_bytes, 4, &metadata_bytes);
  if (!fits) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT,
                "desc: expected a problem whose compressed values [B, Hq, Nq, C] = [%lld, %lld, %lld, %lld] fit in "
                "2^63 - 1 bytes",
                static_cast<ll>(shape.batch), static_cast<ll>(shape.heads_q), static_cast<ll>(shape.seq_q),
                static_cast<ll>(shape.layout.values_per_row));
  }
  return DFSS_SUCCESS;
}

// Copies a per-batch length array after checking 0 <= value <= limit for each entry.
dfss_status copy_lengths(const char *field, const int32_t *lengths, int64_t batch, const char *limit_field,
                         int64_t limit, std::vector<int32_t> *copy) {
  copy->clear();
  if (lengths == nullptr) return DFSS_SUCCESS;
  copy->assign(lengths, lengths + batch);
  for (int64_t b = 0; b < batch; ++b) {
    const int32_t value = (*copy)[b];
    if (value < 0 || value > limit) {
      return fail(DFSS_ERROR_INVALID_ARGUMENT, "desc->%s[%lld]: expected 0 <= value <= %s (%lld), got %d", field,
                  static_cast<ll>(b), limit_field, static_cast<ll>(limit), value);
    }
  }
  return DFSS_SUCCESS;
}

dfss_status check_pointer_presence(const DevicePointerArgument &argument, const AttentionShape &shape) {
  if (argument.pointer == nullptr) {
    if (argument.presence == Presence::optional) return DFSS_SUCCESS;
    if (argument.presence == Presence::required_unless_dense) {
      return fail(DFSS_ERROR_INVALID_ARGUMENT,
                  "%s: expected a device pointer (it may be NULL only for DFSS_PATTERN_DENSE), got NULL",
                  argument.name);
    }
    return fail(DFSS_ERROR_INVALID_ARGUMENT, "%s: expected a device pointer, got NULL", argument.name);
  }
  const int64_t alignment = argument.alignment != 0 ? static_cast<int64_t>(argument.alignment)
                                                    : element_bytes(shape.dtype);
  if (reinterpret_cast<uintptr_t>(argument.pointer) % static_cast<uintptr_t>(alignment) != 0) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT, "%s: expected an address that is a multiple of %lld bytes, got %p",
                argument.name, static_cast<ll>(alignment), argument.pointer);
  }
  return DFSS_SUCCESS;
}

// Metadata is not read or written for dense problems, so its pointer is not looked at there.
bool is_ignored(const DevicePointerArgument &argument, const AttentionShape &shape) {
  return argument.presence == Presence::required_unless_dense && is_dense(shape.layout);
}

}  // namespace

dfss_status validate_attention_desc(const dfss_attention_desc *desc, EntryPointUses uses, AttentionShape *shape) {
  if (desc == nullptr) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT, "desc: expected a pointer to a dfss_attention_desc, got NULL");
  }
  if (desc->struct_size != sizeof(dfss_attention_desc)) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT,
                "desc->struct_size: expected %zu (sizeof(dfss_attention_desc); fill the descriptor with "
                "dfss_attention_desc_init), got %u",
                sizeof(dfss_attention_desc), desc->struct_size);
  }
  if (desc->reserved0 != 0) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT, "desc->reserved0: expected 0, got %d", desc->reserved0);
  }
  if (desc->dtype != DFSS_DTYPE_FLOAT16 && desc->dtype != DFSS_DTYPE_BFLOAT16 && desc->dtype != DFSS_DTYPE_FLOAT32) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT,
                "desc->dtype: expected DFSS_DTYPE_FLOAT16 (0), DFSS_DTYPE_BFLOAT16 (1) or DFSS_DTYPE_FLOAT32 (2), got "
                "%d",
                desc->dtype);
  }
  if (desc->pattern != DFSS_PATTERN_DENSE && desc->pattern != DFSS_PATTERN_1_2 && desc->pattern != DFSS_PATTERN_2_4) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT,
                "desc->pattern: expected DFSS_PATTERN_DENSE (0), DFSS_PATTERN_1_2 (1) or DFSS_PATTERN_2_4 (2), got "
                "%d",
                desc->pattern);
  }
  if (desc->pattern == DFSS_PATTERN_2_4 && desc->dtype == DFSS_DTYPE_FLOAT32) {
    return fail(DFSS_ERROR_UNSUPPORTED,
                "desc->pattern: DFSS_PATTERN_2_4 is not available for float32 inputs (use DFSS_PATTERN_1_2 or "
                "DFSS_PATTERN_DENSE)");
  }
  if (desc->causal != 0 && desc->causal != 1) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT, "desc->causal: expected 0 or 1, got %d", desc->causal);
  }
  DFSS_RETURN_IF_ERROR(check_dimension("batch", desc->batch));
  DFSS_RETURN_IF_ERROR(check_dimension("heads_q", desc->heads_q));
  DFSS_RETURN_IF_ERROR(check_dimension("heads_kv", desc->heads_kv));
  DFSS_RETURN_IF_ERROR(check_dimension("seq_q", desc->seq_q));
  DFSS_RETURN_IF_ERROR(check_dimension("seq_k", desc->seq_k));
  DFSS_RETURN_IF_ERROR(check_dimension("head_dim", desc->head_dim));
  DFSS_RETURN_IF_ERROR(check_dimension("head_dim_v", desc->head_dim_v));
  if (desc->heads_q % desc->heads_kv != 0) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT, "desc->heads_q: expected a multiple of desc->heads_kv (%lld), got %lld",
                static_cast<ll>(desc->heads_kv), static_cast<ll>(desc->heads_q));
  }
  if (!std::isfinite(desc->scale)) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT, "desc->scale: expected a finite number, got %g",
                static_cast<double>(desc->scale));
  }

  AttentionShape result{};
  result.dtype = static_cast<dfss_dtype>(desc->dtype);
  result.causal = desc->causal == 1;
  result.batch = desc->batch;
  result.heads_q = desc->heads_q;
  result.heads_kv = desc->heads_kv;
  result.seq_q = desc->seq_q;
  result.seq_k = desc->seq_k;
  result.head_dim = desc->head_dim;
  result.head_dim_v = desc->head_dim_v;
  result.scale = desc->scale;
  result.layout = compressed_layout(desc->pattern, desc->seq_k);

  const int64_t B = desc->batch, Hq = desc->heads_q, Hk = desc->heads_kv;
  const int64_t Nq = desc->seq_q, Nk = desc->seq_k, D = desc->head_dim, Dv = desc->head_dim_v;
  if (uses.q) {
    const TensorOfDesc q{"q", "desc->q_strides", "[B, Hq, Nq, D]", {B, Hq, Nq, D}, desc->q_strides, false};
    DFSS_RETURN_IF_ERROR(check_strides(q, result.dtype, &result.q));
  }
  if (uses.k) {
    const TensorOfDesc k{"k", "desc->k_strides", "[B, Hk, Nk, D]", {B, Hk, Nk, D}, desc->k_strides, false};
    DFSS_RETURN_IF_ERROR(check_strides(k, result.dtype, &result.k));
  }
  if (uses.v) {
    const TensorOfDesc v{"v", "desc->v_strides", "[B, Hk, Nk, Dv]", {B, Hk, Nk, Dv}, desc->v_strides, false};
    DFSS_RETURN_IF_ERROR(check_strides(v, result.dtype, &result.v));
  }
  if (uses.out) {
    const TensorOfDesc out{"out", "desc->out_strides", "[B, Hq, Nq, Dv]", {B, Hq, Nq, Dv}, desc->out_strides, true};
    DFSS_RETURN_IF_ERROR(check_strides(out, result.dtype, &result.out));
  }
  DFSS_RETURN_IF_ERROR(check_compressed_size(result));
  *shape = result;
  return DFSS_SUCCESS;
}

dfss_status validate_backward_strides(const dfss_attention_desc *desc, const dfss_backward_strides *strides,
                                     const AttentionShape &shape, BackwardStrides *result) {
  const int64_t B = shape.batch, Hq = shape.heads_q, Hk = shape.heads_kv;
  const int64_t Nq = shape.seq_q, Nk = shape.seq_k, D = shape.head_dim, Dv = shape.head_dim_v;
  // Without a strides struct each gradient takes the strides of its counterpart in the descriptor; those were
  // checked as read tensors, so the gradients' own condition (distinct addresses) is checked here again.
  const bool given = strides != nullptr;
  const TensorOfDesc tensors[4] = {
      {"dout", given ? "strides->dout_strides" : "desc->out_strides", "[B, Hq, Nq, Dv]", {B, Hq, Nq, Dv},
       given ? strides->dout_strides : desc->out_strides, false},
      {"dq", given ? "strides->dq_strides" : "desc->q_strides", "[B, Hq, Nq, D]", {B, Hq, Nq, D},
       given ? strides->dq_strides : desc->q_strides, true},
      {"dk", given ? "strides->dk_strides" : "desc->k_strides", "[B, Hk, Nk, D]", {B, Hk, Nk, D},
       given ? strides->dk_strides : desc->k_strides, true},
      {"dv", given ? "strides->dv_strides" : "desc->v_strides", "[B, Hk, Nk, Dv]", {B, Hk, Nk, Dv},
       given ? strides->dv_strides : desc->v_strides, true},
  };
  BackwardStrides checked{};
  Strides4 *targets[4] = {&checked.dout, &checked.dq, &checked.dk, &checked.dv};
  for (int t = 0; t < 4; ++t) DFSS_RETURN_IF_ERROR(check_strides(tensors[t], shape.dtype, targets[t]));
  *result = checked;
  return DFSS_SUCCESS;
}

dfss_status workspace_bytes_of(const AttentionShape &shape, const WorkspaceNeed &need, uint64_t *bytes) {
  *bytes = need.bytes_of(shape);
  if (*bytes == UINT64_MAX) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT,
                "desc: expected a problem whose %s workspace fits in 2^64 - 1 bytes (B * Hq * Nq = %lld rows)",
                need.kind, static_cast<ll>(shape.rows()));
  }
  return DFSS_SUCCESS;
}

dfss_status report_workspace_size(const dfss_attention_desc *desc, const WorkspaceNeed &need, uint64_t *bytes) {
  AttentionShape shape;
  DFSS_RETURN_IF_ERROR(validate_attention_desc(desc, kWorkspaceSizeUses, &shape));
  if (bytes == nullptr) return fail(DFSS_ERROR_INVALID_ARGUMENT, "bytes: expected a pointer to a uint64_t, got NULL");
  uint64_t needed = 0;
  DFSS_RETURN_IF_ERROR(workspace_bytes_of(shape, need, &needed));
  *bytes = needed;
  return DFSS_SUCCESS;
}

dfss_status check_workspace_bytes(const AttentionShape &shape, uint64_t workspace_bytes, const WorkspaceNeed &need) {
  uint64_t needed = 0;
  DFSS_RETURN_IF_ERROR(workspace_bytes_of(shape, need, &needed));
  if (workspace_bytes < needed) {
    return fail(DFSS_ERROR_INVALID_ARGUMENT, "workspace_bytes: expected at least %llu (%s), got %llu",
                static_cast<unsigned long long>(needed), need.size_function,
                static_cast<unsigned long long>(workspace_bytes));
  }
  return DFSS_SUCCESS;
}

dfss_status validate_attention_call(const dfss_attention_desc *desc, EntryPointUses uses,
                                    std::initializer_list<DevicePointerArgument> pointers, AttentionCall *call,
                                    const ShapeChecks &shape_checks) {
  AttentionShape shape;
  DFSS_RETURN_IF_ERROR(validate_attention_desc(desc, uses, &shape));
  if (shape_checks) DFSS_RETURN_IF_ERROR(shape_checks(shape));
  for (const DevicePointerArgument &argument : pointers) {
    if (!is_ignored(argument, shape)) DFSS_RETURN_IF_ERROR(check_pointer_presence(argument, shape));
  }

  // The lengths are host arrays, read here on the host. Where a device exists, a device pointer passed by
  // mistake is refused before it is read; where none exists, every pointer is host memory.
  const dfss_status device = require_device();
  std::vector<int32_t> seqlens_q, seqlens_k;
  if (uses.seqlens) {
    if (device == DFSS_SUCCESS) {
      if (desc->seqlens_q != nullptr) DFSS_RETURN_IF_ERROR(check_host_memory("desc->seqlens_q", desc->seqlens_q));
      if (desc->seqlens_k != nullptr) DFSS_RETURN_IF_ERROR(check_host_memory("desc->seqlens_k", desc->seqlens_k));
    }
    DFSS_RETURN_IF_ERROR(copy_lengths("seqlens_q", desc->seqlens_q, shape.batch, "seq_q", shape.seq_q, &seqlens_q));
    DFSS_RETURN_IF_ERROR(copy_lengths("seqlens_k", desc->seqlens_k, shape.batch, "seq_k", shape.seq_k, &seqlens_k));
  }
  if (device != DFSS_SUCCESS) return device;

  for (const DevicePointerArgument &argument : pointers) {
    if (argument.pointer != nullptr && !is_ignored(argument, shape)) {
      DFSS_RETURN_IF_ERROR(check_device_memory(argument.name, argument.pointer));
    }
  }
  call->shape = shape;
  call->seqlens_q = std::move(seqlens_q);
  call->seqlens_k = std::move(seqlens_k);
  call->stream = static_cast<cudaStream_t>(desc->stream);
  return DFSS_SUCCESS;
}

}  // namespace dfss
