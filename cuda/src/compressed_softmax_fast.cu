// Staged step 2, vectorized (dfss_compressed_softmax): softmax over each compressed row of C values, every dtype.
//
// p = exp(s - max) / sum rounded to the dtype, the expression of the reference kernel (compressed_softmax_row.cuh)
// evaluated as the fused forward does: exp(x) as ex2.approx of x log2(e) (one fma and one MUFU op; expf costs about
// ten instructions) and the division as a product with 1 / sum. Each float32 p then differs from the reference's by
// a few ulp; with expf and a division per element the kernel was bound by its instruction issue at a third of the
// memory bandwidth. The middle of a row is read and written in 16-byte vectors; the unaligned head and the tail
// element by element. values_out may be values_in: each element is read and then written by one thread.
//
// Rows of up to 16 * kResidentVectors vectors (C = 512 16-bit values: 2:4 rows of 1024 keys) are read once: 8 or
// 16 threads a row (short rows fill the warp's lanes) keep their share in registers from the read to the write.
// Longer rows take a warp (or, when there are too few rows to fill the GPU, a block) that reads each value twice: a
// first pass keeps a running (max, sum of exp(s - max)) per thread, combined across the threads of the row, the
// second writes. (32 threads a row of up to 1024 values in registers measured 9-13 % slower than that on the H200.)
#include <cmath>
#include <cstdint>

#include "dtype.cuh"
#include "fast_math.cuh"
#include "launch.h"
#include "staged_io.cuh"
#include "staged_tensor_core.h"
#include "status.h"

namespace dfss {
namespace {

using staged::bits_of;
using staged::element_of_bits;

constexpr int kSoftmaxThreads = 256;

// Running softmax statistics of a set of values: their max, and the sum of exp(s - max) over them. `invalid`
// records a NaN value, which makes the whole row NaN as in the reference kernel (whose sum becomes NaN).
struct RunningSum {
  float max;
  float sum;
  bool invalid;
};

__device__ __forceinline__ RunningSum empty_sum() { return RunningSum{-INFINITY, 0.0f, false}; }

__device__ __forceinline__ RunningSum combine(const RunningSum &a, const RunningSum &b) {
  const float max = fmaxf(a.max, b.max);
  if (max == -INFINITY) return RunningSum{max, 0.0f, a.invalid || b.invalid};
  // exp(-inf - max) = 0 for a side with no finite value yet.
  const float max_log2e = max * kLog2e;
  return RunningSum{max, a.sum * exp_below(a.max, max_log2e) + b.sum * exp_below(b.max, max_log2e),
                    a.invalid || b.invalid};
}

// Adds Count values to the running statistics.
template <int Count>
__device__ __forceinline__ void accumulate(RunningSum &running, const float (&values)[Count]) {
  float max = running.max;
  bool invalid = running.invalid;
  for (int c = 0; c < Count; ++c) {
    max = fmaxf(max, values[c]);
    invalid = invalid || isnan(values[c]);
  }
  running.invalid = invalid;
  if (max == -INFINITY) return;
  const float max_log2e = max * kLog2e;
  float sum = running.sum * exp_below(running.max, max_log2e);
  for (int c = 0; c < Count; ++c) sum += exp_below(values[c], max_log2e);
  running.max = max;
  running.sum = sum;
}

// 16-byte vectors of T, kept as four 32-bit words (registers, never local memory).
template <typename T>
struct Vector {
  static constexpr int kCount = 16 / sizeof(T);
  uint32_t words[4];

  __device__ __forceinline__ void load(const T *source) {
    const uint4 raw = *reinterpret_cast<const uint4 *>(source);
    words[0] = raw.x, words[1] = raw.y, words[2] = raw.z, words[3] = raw.w;
  }
  __device__ __forceinline__ void store(T *target) const {
    __stwb(reinterpret_cast<uint4 *>(target), make_uint4(words[0], words[1], words[2], words[3]));
  }
  __device__ __forceinline__ float get(int e) const {
    if constexpr (sizeof(T) == 4) {
      return __uint_as_float(words[e]);
    } else {
      return to_float(element_of_bits<T>(static_cast<uint16_t>(words[e / 2] >> (16 * (e % 2)))));
    }
  }
  __device__ __forceinline__ void set(int e, float value) {
    if constexpr (sizeof(T) == 4) {
      words[e] = __float_as_uint(value);
    } else {
      const uint32_t bits = bits_of(from_float<T>(value));
      const int shift = 16 * (e % 2);
      words[e / 2] = (words[e / 2] & ~(0xFFFFu << shift)) | (bits << shift);
    }
  }
};

// How a row splits into an element-by-element head, 16-byte vectors, and an element-by-element tail. Vectors are
// used only where values_in and values_out share their alignment.
struct RowSplit {
  int64_t head;     // elements before the first vector
  int64_t vectors;  // whole vectors after the head
  int64_t tail;     // first element after the vectors
};

template <typename T>
__device__ __forceinline__ RowSplit split_row(const T *in, const T *out, int64_t count) {
  constexpr int kCount = Vector<T>::kCount;
  const uintptr_t in_address = reinterpret_cast<uintptr_t>(in);
  const uintptr_t out_address = reinterpret_cast<uintptr_t>(out);
  RowSplit split{count, 0, count};
  if ((in_address ^ out_address) % 16 != 0) return split;
  const int64_t head = static_cast<int64_t>((16 - in_address % 16) % 16 / sizeof(T));
  if (head >= count) return split;
  split.head = head;
  split.vectors = (count - head) / kCount;
  split.tail = head + split.vectors * kCount;
  return split;
}

// Combines the running sums of the `Threads` threads of a row (a warp, or the whole block through `scratch`).
template <int Threads>
__device__ __forceinline__ RunningSum combine_row(RunningSum running, RunningSum *scratch) {
  for (int offset = 16; offset > 0; offset /= 2) {
    RunningSum other;
    other.max = __shfl_xor_sync(0xffffffffu, running.max, offset);
    other.sum = __shfl_xor_sync(0xffffffffu, running.sum, offset);
    other.invalid = __shfl_xor_sync(0xffffffffu, running.invalid ? 1 : 0, offset) != 0;
    running = combine(running, other);
  }
  if constexpr (Threads > 32) {
    const int warp = static_cast<int>(threadIdx.x) / 32;
    __syncthreads();  // scratch may still be read for the previous row
    if (threadIdx.x % 32 == 0) scratch[warp] = running;
    __syncthreads();
    running = scratch[0];
    for (int w = 1; w < Threads / 32; ++w) running = combine(running, scratch[w]);
  }
  return running;
}

// Softmax of rows of C values, `Threads` threads per row (32: a warp; kSoftmaxThreads: the block).
// No __launch_bounds__: with it ptxas aims at a register count low enough to spill.
template <typename T, int Threads>
__global__ void compressed_softmax_fast_kernel(const T *values_in, T *values_out, float *lse, int64_t rows,
                                               int64_t count) {
  constexpr int kCount = Vector<T>::kCount;
  __shared__ RunningSum scratch[kSoftmaxThreads / 32];
  const int rank = static_cast<int>(threadIdx.x) % Threads;  // thread of the row
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * kSoftmaxThreads + threadIdx.x) / Threads;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kSoftmaxThreads / Threads;

  for (int64_t row = first; row < rows; row += step) {
    const T *in = values_in + row * count;
    T *out = values_out + row * count;
    const RowSplit split = split_row(in, out, count);

    RunningSum running = empty_sum();
    for (int64_t c = rank; c < split.head; c += Threads) {
      const float value[1] = {to_float(in[c])};
      accumulate(running, value);
    }
    for (int64_t v = rank; v < split.vectors; v += Threads) {
      Vector<T> vector;
      vector.load(in + split.head + v * kCount);
      float value[kCount];
#pragma unroll
      for (int e = 0; e < kCount; ++e) value[e] = vector.get(e);
      accumulate(running, value);
    }
    for (int64_t c = split.tail + rank; c < count; c += Threads) {
      const float value[1] = {to_float(in[c])};
      accumulate(running, value);
    }
    const RunningSum total = combine_row<Threads>(running, scratch);
    const float max = total.max;
    const float sum = total.invalid ? NAN : total.sum;

    // p = exp(s - max) / sum, or 0 for every slot of a row with no finite value (never NaN).
    const float max_log2e = max * kLog2e;
    const float inverse_sum = 1.0f / sum;
    const auto probability = [&](float s) { return max == -INFINITY ? 0.0f : exp_below(s, max_log2e) * inverse_sum; };
    for (int64_t c = rank; c < split.head; c += Threads) out[c] = from_float<T>(probability(to_float(in[c])));
    for (int64_t v = rank; v < split.vectors; v += Threads) {
      Vector<T> vector;
      vector.load(in + split.head + v * kCount);
#pragma unroll
      for (int e = 0; e < kCount; ++e) vector.set(e, probability(vector.get(e)));
      vector.store(out + split.head + v * kCount);
    }
    for (int64_t c = split.tail + rank; c < count; c += Threads) out[c] = from_float<T>(probability(to_float(in[c])));
    if (lse != nullptr && rank == 0) lse[row] = max == -INFINITY ? -INFINITY : max + logf(sum);
  }
}

// Vectors a thread of the resident kernel keeps in registers.
constexpr int kResidentVectors = 4;

// The max over the `Threads` lanes of a row's group (aligned groups of a warp: xor offsets below Threads stay in it).
template <int Threads>
__device__ __forceinline__ float group_max(float value) {
  for (int offset = Threads / 2; offset > 0; offset /= 2) {
    value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  }
  return value;
}
template <int Threads>
__device__ __forceinline__ float group_sum(float value) {
  for (int offset = Threads / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

// Softmax of rows of at most Threads * kResidentVectors vectors, `Threads` (8 or 16) threads per row, each
// keeping its vectors in registers between the one read and the write (the exponentials are taken twice, for the
// sum and for p: keeping them too took 97-125 registers, and spilled under a bound of 64). A warp takes
// 32 / Threads consecutive rows; its lanes all run the shuffles (lanes past the last row with an empty row).
template <typename T, int Threads>
__global__ void __launch_bounds__(kSoftmaxThreads)
    compressed_softmax_resident_kernel(const T *values_in, T *values_out, float *lse, int64_t rows, int64_t count) {
  static_assert(Threads == 8 || Threads == 16, "several rows a warp");
  constexpr int kCount = Vector<T>::kCount;
  constexpr int kRowsPerWarp = 32 / Threads;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int rank = lane % Threads;  // thread of the row
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * kSoftmaxThreads + threadIdx.x) / 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kSoftmaxThreads / 32;

  for (int64_t first_row = warp * kRowsPerWarp; first_row < rows; first_row += warps * kRowsPerWarp) {
    const int64_t row = first_row + lane / Threads;
    const bool inside = row < rows;
    const int64_t length = inside ? count : 0;
    const T *in = values_in + (inside ? row : 0) * count;
    T *out = values_out + (inside ? row : 0) * count;
    const RowSplit split = split_row(in, out, length);

    Vector<T> vectors[kResidentVectors];
    float max = -INFINITY;
    bool invalid = false;
    const auto see = [&](float s) {
      max = fmaxf(max, s);
      invalid = invalid || isnan(s);
    };
#pragma unroll
    for (int i = 0; i < kResidentVectors; ++i) {
      if (rank + Threads * i < split.vectors) {
        vectors[i].load(in + split.head + (rank + Threads * i) * kCount);
#pragma unroll
        for (int e = 0; e < kCount; ++e) see(vectors[i].get(e));
      }
    }
    for (int64_t c = rank; c < split.head; c += Threads) see(to_float(in[c]));
    for (int64_t c = split.tail + rank; c < length; c += Threads) see(to_float(in[c]));
    max = group_max<Threads>(max);
    invalid = group_max<Threads>(invalid ? 1.0f : 0.0f) != 0.0f;

    // p = exp(s - max) / sum, or 0 for every slot of a row with no finite value (never NaN); a NaN makes every p
    // of its row NaN, as the reference's sum does.
    const bool empty = max == -INFINITY;
    const float max_log2e = max * kLog2e;
    const auto exponential = [&](float s) { return empty ? 0.0f : exp_below(s, max_log2e); };
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < kResidentVectors; ++i) {
      if (rank + Threads * i < split.vectors) {
#pragma unroll
        for (int e = 0; e < kCount; ++e) sum += exponential(vectors[i].get(e));
      }
    }
    for (int64_t c = rank; c < split.head; c += Threads) sum += exponential(to_float(in[c]));
    for (int64_t c = split.tail + rank; c < length; c += Threads) sum += exponential(to_float(in[c]));
    sum = group_sum<Threads>(sum);
    const float inverse_sum = 1.0f / (invalid ? NAN : sum);
    const auto probability = [&](float s) { return empty ? 0.0f : exp_below(s, max_log2e) * inverse_sum; };

#pragma unroll
    for (int i = 0; i < kResidentVectors; ++i) {
      if (rank + Threads * i < split.vectors) {
#pragma unroll
        for (int e = 0; e < kCount; ++e) vectors[i].set(e, probability(vectors[i].get(e)));
        vectors[i].store(out + split.head + (rank + Threads * i) * kCount);
      }
    }
    for (int64_t c = rank; c < split.head; c += Threads) out[c] = from_float<T>(probability(to_float(in[c])));
    for (int64_t c = split.tail + rank; c < length; c += Threads) out[c] = from_float<T>(probability(to_float(in[c])));
    if (inside && lse != nullptr && rank == 0) lse[row] = empty ? -INFINITY : max + logf(invalid ? NAN : sum);
  }
}

// Launches `kernel` (rows_per_block rows a block) on as many blocks as fit the GPU at once, or as the rows need.
template <typename T>
dfss_status launch_rows(void (*kernel)(const T *, T *, float *, int64_t, int64_t), int64_t rows_per_block,
                        const AttentionCall &call, const void *values_in, void *values_out, float *lse,
                        int multiprocessors) {
  int blocks_per_multiprocessor = 0;
  DFSS_RETURN_IF_ERROR(check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_multiprocessor, kernel,
                                                                                kSoftmaxThreads, 0),
                                  "cudaOccupancyMaxActiveBlocksPerMultiprocessor"));
  const int64_t rows = call.shape.rows();
  const int64_t needed = (rows + rows_per_block - 1) / rows_per_block;
  const int64_t resident =
      static_cast<int64_t>(multiprocessors) * (blocks_per_multiprocessor > 0 ? blocks_per_multiprocessor : 1);
  const int64_t blocks = needed < resident ? needed : resident;
  clear_stale_cuda_error();
  kernel<<<static_cast<unsigned>(blocks), kSoftmaxThreads, 0, call.stream>>>(
      static_cast<const T *>(values_in), static_cast<T *>(values_out), lse, rows, call.shape.layout.values_per_row);
  return check_launch("compressed_softmax_fast_kernel");
}

}  // namespace

dfss_status launch_compressed_softmax_fast(const AttentionCall &call, const void *values_in, void *values_out,
                                           float *lse, int multiprocessors) {
  // A warp per row needs enough rows to fill the GPU (about 64 warps per multiprocessor); with fewer, long rows
  // are better split over a whole block.
  const bool few_rows = call.shape.rows() < static_cast<int64_t>(multiprocessors) * 64;
  const bool long_rows = call.shape.layout.values_per_row > 1024;
  return dispatch_dtype(call.shape.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t vectors = call.shape.layout.values_per_row / Vector<T>::kCount;  // at most, for any alignment
    if (few_rows && long_rows) {
      return launch_rows<T>(compressed_softmax_fast_kernel<T, kSoftmaxThreads>, 1, call, values_in, values_out, lse,
                            multiprocessors);
    }
    if (vectors <= 8 * kResidentVectors) {
      return launch_rows<T>(compressed_softmax_resident_kernel<T, 8>, kSoftmaxThreads / 8, call, values_in, values_out,
                            lse, multiprocessors);
    }
    if (vectors <= 16 * kResidentVectors) {
      return launch_rows<T>(compressed_softmax_resident_kernel<T, 16>, kSoftmaxThreads / 16, call, values_in,
                            values_out, lse, multiprocessors);
    }
    return launch_rows<T>(compressed_softmax_fast_kernel<T, 32>, kSoftmaxThreads / 32, call, values_in, values_out,
                          lse, multiprocessors);
  });
}

}  // namespace dfss
