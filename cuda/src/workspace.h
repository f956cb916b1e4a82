// Device memory that one library call needs for its own use (per-batch lengths, per-row scratch), allocated
// and released in the order of the call's stream, so nothing waits for it; or carved from a workspace that
// the caller passed in.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "dfss.h"

namespace dfss {

class StreamWorkspace {
 public:
  static constexpr size_t kAlignment = 256;

  // Bytes that carve<T>(count) takes from the workspace.
  template <typename T>
  static size_t bytes_for(size_t count) {
    return (count * sizeof(T) + kAlignment - 1) / kAlignment * kAlignment;
  }

  explicit StreamWorkspace(cudaStream_t stream) : stream_(stream) {}
  // Carves the caller's device memory `memory` (validated to hold every carve) instead of allocating: allocate
  // is not called, and the destructor frees nothing.
  StreamWorkspace(cudaStream_t stream, void *memory)
      : stream_(stream), base_(static_cast<char *>(memory)), owned_(false) {}
  ~StreamWorkspace();
  StreamWorkspace(const StreamWorkspace &) = delete;
  StreamWorkspace &operator=(const StreamWorkspace &) = delete;

  // Reserves `bytes` (the sum of bytes_for of every carve); called once.
  dfss_status allocate(size_t bytes);

  // The next `count` elements of the workspace, at a multiple of kAlignment bytes from its start.
  template <typename T>
  T *carve(size_t count) {
    T *part = reinterpret_cast<T *>(base_ + used_);
    used_ += bytes_for<T>(count);
    return part;
  }

  // Bytes that upload_lengths carves: room for each length vector given (none for an empty one).
  static size_t lengths_bytes(const std::vector<int32_t> &seqlens_q, const std::vector<int32_t> &seqlens_k) {
    return bytes_for<int32_t>(seqlens_q.size()) + bytes_for<int32_t>(seqlens_k.size());
  }

  // Device copies of a call's per-batch lengths, queries' then keys' (nullptr where not given).
  dfss_status upload_lengths(const std::vector<int32_t> &seqlens_q, const std::vector<int32_t> &seqlens_k,
                             const int32_t **device_q, const int32_t **device_k) {
    const dfss_status status = upload(seqlens_q, device_q);
    return status != DFSS_SUCCESS ? status : upload(seqlens_k, device_k);
  }

  // allocate, then upload_lengths: for a call that needs the lengths and nothing else.
  dfss_status allocate_lengths(const std::vector<int32_t> &seqlens_q, const std::vector<int32_t> &seqlens_k,
                               const int32_t **device_q, const int32_t **device_k) {
    const dfss_status status = allocate(lengths_bytes(seqlens_q, seqlens_k));
    return status != DFSS_SUCCESS ? status : upload_lengths(seqlens_q, seqlens_k, device_q, device_k);
  }

 private:
  // A device copy of `values` (nullptr when empty), carved from the workspace.
  dfss_status upload(const std::vector<int32_t> &values, const int32_t **device_copy);

  cudaStream_t stream_;
  char *base_ = nullptr;
  size_t used_ = 0;
  bool stream_ordered_ = false;  // cudaMallocAsync (else cudaMalloc)
  bool owned_ = true;            // false: the caller's memory
};

}  // namespace dfss
