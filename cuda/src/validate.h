// The one place that checks a dfss_attention_desc and the pointers of an attention entry point. Every failure
// is DFSS_ERROR_INVALID_ARGUMENT (or DFSS_ERROR_UNSUPPORTED / DFSS_ERROR_NO_DEVICE) with a message naming the
// field or argument and the expected value.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <vector>

#include "attention_shape.h"
#include "dfss.h"

namespace dfss {

// What an entry point reads from the descriptor besides the sizes: whose strides, and the per-batch lengths.
struct EntryPointUses {
  bool q, k, v, out;
  bool seqlens;
};

inline constexpr EntryPointUses kAttentionForwardUses{true, true, true, true, true};
inline constexpr EntryPointUses kCompressedRowSizeUses{false, false, false, false, false};
inline constexpr EntryPointUses kSddmmPruneUses{true, true, false, false, true};
inline constexpr EntryPointUses kCompressedSoftmaxUses{false, false, false, false, false};
inline constexpr EntryPointUses kSpmmUses{false, false, true, true, true};
inline constexpr EntryPointUses kAttentionBackwardUses{true, true, true, true, true};
inline constexpr EntryPointUses kAttentionStagedUses{true, true, true, true, true};
inline constexpr EntryPointUses kWorkspaceSizeUses{false, false, false, false, false};

// When a pointer argument may be NULL.
enum class Presence { required, optional, required_unless_dense };

// A device pointer argument: its name in messages, its value, when it may be NULL, and its alignment in bytes
// (0: one element of desc->dtype).
struct DevicePointerArgument {
  const char *name;
  const void *pointer;
  Presence presence;
  size_t alignment;
};

// The alignments the entry points ask of their pointer arguments.
inline constexpr size_t kElementAlignment = 0;     // one element of desc->dtype
inline constexpr size_t kWordAlignment = 4;        // float32 lse, uint32 metadata
inline constexpr size_t kWorkspaceAlignment = 16;  // the widest access of the kernels into a workspace

// A validated call: the shape, copies of the per-batch lengths (empty: all rows / keys valid) and the stream.
struct AttentionCall {
  AttentionShape shape;
  std::vector<int32_t> seqlens_q, seqlens_k;
  cudaStream_t stream;
};

// The layouts of the backward's gradient tensors (dfss_backward_strides), after validation.
struct BackwardStrides {
  Strides4 dout, dq, dk, dv;
};

// An entry point's own checks of its other arguments against the validated shape, on the host only.
using ShapeChecks = std::function<dfss_status(const AttentionShape &)>;

// Checks the descriptor fields an entry point uses, on the host only (no device needed).
dfss_status validate_attention_desc(const dfss_attention_desc *desc, EntryPointUses uses, AttentionShape *shape);

// Checks the strides of dout, dq, dk and dv (strides NULL: those of out, q, k and v in the descriptor): column
// stride 1, int64-addressable, and distinct addresses for the written gradients. Host only.
dfss_status validate_backward_strides(const dfss_attention_desc *desc, const dfss_backward_strides *strides,
                                      const AttentionShape &shape, BackwardStrides *result);

// The workspace of an entry point: its size for a validated shape (UINT64_MAX where it would not fit in 64 bits),
// what kind of workspace it is in messages ("backward", "staged"), and the function that tells a caller the size.
struct WorkspaceNeed {
  uint64_t (*bytes_of)(const AttentionShape &shape);
  const char *kind;
  const char *size_function;
};

// *bytes = need.bytes_of(shape), refused (naming desc) where that does not fit in 64 bits.
dfss_status workspace_bytes_of(const AttentionShape &shape, const WorkspaceNeed &need, uint64_t *bytes);

// The body of a workspace-size entry point: validates desc, then reports the size in *bytes (checked for NULL).
dfss_status report_workspace_size(const dfss_attention_desc *desc, const WorkspaceNeed &need, uint64_t *bytes);

// workspace_bytes >= the size of need for shape; the message names need.size_function, which tells the caller the
// size.
dfss_status check_workspace_bytes(const AttentionShape &shape, uint64_t workspace_bytes, const WorkspaceNeed &need);

// Checks everything an attention entry point is given, in this order, so that a bad call fails the same way on
// machines with and without a GPU wherever the check needs no device:
//   1. the descriptor fields (validate_attention_desc), then shape_checks (if any) on the validated shape;
//   2. the pointers: present where required, aligned to their element;
//   3. the per-batch lengths (host arrays; with a device, first checked to be host memory);
//   4. a device exists (else DFSS_ERROR_NO_DEVICE);
//   5. the pointers are device memory of the current device.
dfss_status validate_attention_call(const dfss_attention_desc *desc, EntryPointUses uses,
                                    std::initializer_list<DevicePointerArgument> pointers, AttentionCall *call,
                                    const ShapeChecks &shape_checks = nullptr);

}  // namespace dfss
