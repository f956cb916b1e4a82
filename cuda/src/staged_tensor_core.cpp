// The staged entry points' fast kernels (tensor_core_kernels.h): which calls they take, and the dispatch to the
// instantiation of the call's dtype and head dim. A call they decline runs on the reference kernels.
//
// sddmm_prune and spmm take float16 / bfloat16 calls of every pattern on devices of compute capability 8.0 and
// later, with a head dim of kStagedHeadDims and 16-byte aligned rows of q and k (v); under the same conditions they
// take float32 calls of pattern dense and 1:2 on tf32 tensor cores in float32 accuracy (3xTF32,
// sddmm_prune_tensor_core.cuh, spmm_tensor_core.cuh; spmm 1:2 on the sparse ones).
// compressed_softmax takes every call on every device (it uses no tensor cores). dfss_attention_staged's folded
// pipeline takes the float16 / bfloat16 calls that both sddmm_prune and spmm take: in one kernel (staged_on_chip.cuh)
// for 2:4 and 1:2 rows short enough (takes_staged_on_chip) with D = Dv, else in the two.
#include <cuda_runtime_api.h>

#include <atomic>
#include <climits>
#include <cstdint>

#include "attention_staged.h"
#include "staged_fragments.h"
#include "staged_tensor_core.h"
#include "tensor_core_kernels.h"

namespace dfss {
namespace {

struct DeviceFacts {
  int compute_major;
  int multiprocessors;
  int shared_bytes_per_multiprocessor;  // 100 KiB on sm_86 and sm_89, 164 on sm_80, 228 on sm_90
  int reserved_shared_bytes_per_block;   // what the system takes of it for each resident block (1 KiB)
};

// The current device's DeviceFacts, read once per device. false when they cannot be read: the call is then declined,
// and the reference kernel reports the error.
bool current_device_facts(DeviceFacts *facts) {
  constexpr int kCachedDevices = 64;
  static std::atomic<int> cached_major[kCachedDevices];  // 0 until read
  static std::atomic<int> cached_multiprocessors[kCachedDevices];
  static std::atomic<int> cached_shared_bytes[kCachedDevices];
  static std::atomic<int> cached_reserved_bytes[kCachedDevices];
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  const bool cacheable = device >= 0 && device < kCachedDevices;
  if (cacheable && cached_major[device].load(std::memory_order_acquire) != 0) {
    facts->compute_major = cached_major[device].load(std::memory_order_acquire);
    facts->multiprocessors = cached_multiprocessors[device].load(std::memory_order_acquire);
    facts->shared_bytes_per_multiprocessor = cached_shared_bytes[device].load(std::memory_order_acquire);
    facts->reserved_shared_bytes_per_block = cached_reserved_bytes[device].load(std::memory_order_acquire);
    return true;
  }
  int major = 0;
  int multiprocessors = 0;
  int shared_bytes = 0;
  int reserved_bytes = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&shared_bytes, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&reserved_bytes, cudaDevAttrReservedSharedMemoryPerBlock, device) != cudaSuccess ||
      major <= 0) {
    return false;
  }
  if (cacheable) {
    cached_multiprocessors[device].store(multiprocessors, std::memory_order_release);
    cached_shared_bytes[device].store(shared_bytes, std::memory_order_release);
    cached_reserved_bytes[device].store(reserved_bytes, std::memory_order_release);
    cached_major[device].store(major, std::memory_order_release);  // published last: it marks the entry as read
  }
  facts->compute_major = major;
  facts->multiprocessors = multiprocessors;
  facts->shared_bytes_per_multiprocessor = shared_bytes;
  facts->reserved_shared_bytes_per_block = reserved_bytes;
  return true;
}

bool has_tensor_core_kernels() {
  DeviceFacts facts;
  return current_device_facts(&facts) && facts.compute_major >= 8;
}

bool is_16_bit(dfss_dtype dtype) { return dtype == DFSS_DTYPE_FLOAT16 || dtype == DFSS_DTYPE_BFLOAT16; }

bool has_instantiation(int64_t head_dim) {
  for (const int instantiated : kStagedHeadDims) {
    if (head_dim == instantiated) return true;
  }
  return false;
}

// cp.async moves rows in 16-byte pieces: the base pointer and every stride but the column's (8 elements of 16 bits,
// 4 of float32).
bool rows_of_16_bytes(const void *pointer, const Strides4 &strides, dfss_dtype dtype) {
  return aligned(pointer, 16) && rows_aligned(strides, dtype == DFSS_DTYPE_FLOAT32 ? 4 : 8);
}

// Calls launch<Dtype, HeadDim>() for the call's dtype and a head dim of kStagedHeadDims (float32 only where the
// launcher has float32 instantiations: Launch::kFloat32).
template <template <dfss_dtype, int> class Launch, typename... Args>
dfss_status dispatch_instantiation(dfss_dtype dtype, int64_t head_dim, Args &&...args) {
  if constexpr (Launch<DFSS_DTYPE_FLOAT32, 16>::kFloat32) {
    if (dtype == DFSS_DTYPE_FLOAT32) {
      switch (head_dim) {
        case 16: return Launch<DFSS_DTYPE_FLOAT32, 16>::run(args...);
        case 32: return Launch<DFSS_DTYPE_FLOAT32, 32>::run(args...);
        case 64: return Launch<DFSS_DTYPE_FLOAT32, 64>::run(args...);
        case 96: return Launch<DFSS_DTYPE_FLOAT32, 96>::run(args...);
        case 128: return Launch<DFSS_DTYPE_FLOAT32, 128>::run(args...);
        default: return DFSS_ERROR_INTERNAL;  // has_instantiation was checked before
      }
    }
  }
  const bool half = dtype == DFSS_DTYPE_FLOAT16;
  switch (head_dim) {
    case 16: return half ? Launch<DFSS_DTYPE_FLOAT16, 16>::run(args...) : Launch<DFSS_DTYPE_BFLOAT16, 16>::run(args...);
    case 32: return half ? Launch<DFSS_DTYPE_FLOAT16, 32>::run(args...) : Launch<DFSS_DTYPE_BFLOAT16, 32>::run(args...);
    case 64: return half ? Launch<DFSS_DTYPE_FLOAT16, 64>::run(args...) : Launch<DFSS_DTYPE_BFLOAT16, 64>::run(args...);
    case 96: return half ? Launch<DFSS_DTYPE_FLOAT16, 96>::run(args...) : Launch<DFSS_DTYPE_BFLOAT16, 96>::run(args...);
    case 128:
      return half ? Launch<DFSS_DTYPE_FLOAT16, 128>::run(args...) : Launch<DFSS_DTYPE_BFLOAT16, 128>::run(args...);
    default: return DFSS_ERROR_INTERNAL;  // has_instantiation was checked before
  }
}

template <dfss_dtype Dtype, int HeadDim>
struct SddmmPruneLaunch {
  static constexpr bool kFloat32 = true;  // patterns dense and 1:2
  static dfss_status run(const AttentionCall &call, const void *q, const void *k, void *values, uint32_t *metadata,
                         float *row_max) {
    return launch_sddmm_prune_tensor_core<Dtype, HeadDim>(call, q, k, values, metadata, row_max);
  }
};

template <dfss_dtype Dtype, int HeadDim>
struct StagedOnChipLaunch {
  static constexpr bool kFloat32 = false;
  static dfss_status run(const AttentionCall &call, const void *q, const void *k, const void *v, void *out,
                         float *lse) {
    return launch_staged_on_chip<Dtype, HeadDim>(call, q, k, v, out, lse);
  }
};

template <dfss_dtype Dtype, int HeadDimV>
struct SpmmLaunch {
  static constexpr bool kFloat32 = true;  // patterns dense and 1:2
  static dfss_status run(const AttentionCall &call, const void *probs, const uint32_t *metadata, const void *v,
                         void *out, const float *row_max, float *lse) {
    return launch_spmm_tensor_core<Dtype, HeadDimV>(call, probs, metadata, v, out, row_max, lse);
  }
};

}  // namespace

int64_t staged_grid_blocks(const AttentionShape &shape) {
  const int64_t row_tiles = (shape.seq_q + staged::kTileRows - 1) / staged::kTileRows;
  return row_tiles * shape.batch * shape.heads_q;
}

int64_t staged_key_tiles(const AttentionShape &shape) {
  return (shape.layout.groups * shape.layout.m + staged::kTileKeys - 1) / staged::kTileKeys;
}

namespace {

// What sddmm_prune and spmm both need: the dtype and pattern, an instantiation of the head dim they multiply over
// (D, Dv), a grid within INT_MAX blocks, and a device with tensor cores.
bool takes_staged_kernel(const AttentionShape &shape, int64_t head_dim) {
  const bool float32_dense_or_1_2 = shape.dtype == DFSS_DTYPE_FLOAT32 && shape.layout.m != 4;
  if ((!is_16_bit(shape.dtype) && !float32_dense_or_1_2) || !has_instantiation(head_dim)) return false;
  return staged_grid_blocks(shape) <= INT_MAX && has_tensor_core_kernels();
}

bool takes_sddmm_prune(const AttentionCall &call, const void *q, const void *k) {
  const AttentionShape &shape = call.shape;
  return rows_of_16_bytes(q, shape.q, shape.dtype) && rows_of_16_bytes(k, shape.k, shape.dtype) &&
         takes_staged_kernel(shape, shape.head_dim);
}

bool takes_spmm(const AttentionCall &call, const void *v) {
  const AttentionShape &shape = call.shape;
  return rows_of_16_bytes(v, shape.v, shape.dtype) && takes_staged_kernel(shape, shape.head_dim_v);
}

}  // namespace

bool sddmm_prune_tensor_core(const AttentionCall &call, const void *q, const void *k, void *values,
                             uint32_t *metadata, dfss_status *status) {
  if (!takes_sddmm_prune(call, q, k)) return false;
  *status = dispatch_instantiation<SddmmPruneLaunch>(call.shape.dtype, call.shape.head_dim, call, q, k, values,
                                                     metadata, static_cast<float *>(nullptr));
  return true;
}

bool compressed_softmax_tensor_core(const AttentionCall &call, const void *values_in, void *values_out, float *lse,
                                    dfss_status *status) {
  DeviceFacts facts;
  if (!current_device_facts(&facts)) return false;
  *status = launch_compressed_softmax_fast(call, values_in, values_out, lse, facts.multiprocessors);
  return true;
}

bool spmm_tensor_core(const AttentionCall &call, const void *probs, const uint32_t *metadata, const void *v,
                      void *out, dfss_status *status) {
  if (!takes_spmm(call, v)) return false;
  *status = dispatch_instantiation<SpmmLaunch>(call.shape.dtype, call.shape.head_dim_v, call, probs, metadata, v, out,
                                               static_cast<const float *>(nullptr), static_cast<float *>(nullptr));
  return true;
}

namespace {

// The on-chip kernel's blocks an SM, at the least, for a call to run there: its shared memory grows with the keys
// (4.5 KiB a key tile), and measured on the H200 (bench/NOTES.md v14) it beat the two kernels wherever two of its
// blocks fit an SM (D = 64 and 128 up to N = 1024) and lost to them wherever one did (N = 2048).
constexpr int kOnChipMinBlocks = 2;

size_t on_chip_shared_bytes(int64_t head_dim, int64_t key_tiles) {
  switch (head_dim) {
    case 16: return staged_on_chip_shared_bytes<DFSS_DTYPE_BFLOAT16, 16>(key_tiles);
    case 32: return staged_on_chip_shared_bytes<DFSS_DTYPE_BFLOAT16, 32>(key_tiles);
    case 64: return staged_on_chip_shared_bytes<DFSS_DTYPE_BFLOAT16, 64>(key_tiles);
    case 96: return staged_on_chip_shared_bytes<DFSS_DTYPE_BFLOAT16, 96>(key_tiles);
    default: return staged_on_chip_shared_bytes<DFSS_DTYPE_BFLOAT16, 128>(key_tiles);  // has_instantiation checked
  }
}

// A folded call (16-bit, which both kernels take) that the on-chip kernel takes: 2:4 or 1:2, D = Dv, and rows short
// enough that kOnChipMinBlocks of its blocks fit an SM's shared memory.
bool takes_staged_on_chip(const AttentionShape &shape) {
  DeviceFacts facts;
  if (shape.layout.m == 1 || shape.head_dim != shape.head_dim_v || !current_device_facts(&facts)) return false;
  const int64_t key_tiles = staged_key_tiles(shape);
  constexpr int64_t kFarTooMany = int64_t{1} << 20;  // keeps the byte count far from overflow
  if (key_tiles > kFarTooMany) return false;
  const size_t block_bytes = on_chip_shared_bytes(shape.head_dim, key_tiles) +
                             static_cast<size_t>(facts.reserved_shared_bytes_per_block);
  return kOnChipMinBlocks * block_bytes <= static_cast<size_t>(facts.shared_bytes_per_multiprocessor);
}

}  // namespace

bool attention_staged_tensor_core(const AttentionCall &call, const void *q, const void *k, const void *v, void *out,
                                  float *lse, const StagedWorkspace &workspace, dfss_status *status) {
  if (!is_16_bit(call.shape.dtype) || !takes_sddmm_prune(call, q, k) || !takes_spmm(call, v)) return false;
  if (takes_staged_on_chip(call.shape)) {
    *status = dispatch_instantiation<StagedOnChipLaunch>(call.shape.dtype, call.shape.head_dim, call, q, k, v, out, lse);
    return true;
  }
  *status = dispatch_instantiation<SddmmPruneLaunch>(call.shape.dtype, call.shape.head_dim, call, q, k,
                                                     workspace.values, workspace.metadata, workspace.row_max);
  if (*status != DFSS_SUCCESS) return true;
  *status = dispatch_instantiation<SpmmLaunch>(call.shape.dtype, call.shape.head_dim_v, call,
                                               static_cast<const void *>(workspace.values), workspace.metadata, v, out,
                                               static_cast<const float *>(workspace.row_max), lse);
  return true;
}

}  // namespace dfss
