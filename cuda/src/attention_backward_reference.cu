// The reference backward of fused attention (dfss_attention_backward), in three kernels on the call's stream:
//   1. row_dot:  D_i = dout_i . out_i for every query row (one warp per row)                 -> workspace;
//   2. dq:       per query row, by one block: the forward's sddmm_prune_row gives the row's kept scores and
//                metadata (scratch row in the workspace); each kept slot becomes
//                ds = p (dout_i . v_key - D_i), p = exp(s - lse_i); dq_i = scale * sum ds k_key;
//   3. dk, dv:   per N:M group of keys of a kv head (dense: per key), by one block: for every query row that
//                reads the head (its query heads in order, rows in order) the group's scores are recomputed with
//                the forward's arithmetic and its N:M choice made again (scaled_score, select_n_of_m); a kept key
//                gives p and ds as in 2, and dk_j = scale * sum ds q_i, dv_j = sum round(p) dout_i.
// Each output element is summed by one thread (or one block's fixed tree) in an order fixed by the problem, so
// the results do not depend on the launch configuration and repeat bit for bit. Kernels 2 and 3 compute p and ds
// with the same expressions from the same inputs, so they agree on every coefficient.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "attention_backward.h"
#include "launch.h"
#include "mask.h"
#include "sddmm_prune_row.cuh"
#include "select.cuh"
#include "spmm_row.cuh"
#include "status.h"
#include "workspace.h"

namespace dfss {
namespace {

// Upper bound of the dq kernel's scratch rows in the workspace, and of their number (more than the blocks any
// GPU runs at once); fewer blocks run, each looping over more rows, when rows are long.
constexpr int64_t kScratchBudgetBytes = int64_t{256} << 20;
constexpr int64_t kMaxScratchRows = 2048;

// Query rows whose coefficients of one key the dk/dv kernel stages in shared memory at a time.
constexpr int kKeyTileRows = 256;

constexpr int kWarpSize = 32;

// Scratch rows of the dq kernel: each holds one row's compressed scores (C floats) and metadata (W words).
int64_t scratch_rows(const AttentionShape &shape) {
  const int64_t row_bytes = (shape.layout.values_per_row + shape.layout.words_per_row) * 4;
  return std::min({shape.rows(), kMaxScratchRows, std::max<int64_t>(1, kScratchBudgetBytes / row_bytes)});
}

// Elements of each part of the workspace, carved in this order: per-batch lengths (room for both, used or not),
// D per query row, the scratch rows' values and metadata.
struct WorkspaceCounts {
  size_t lengths_q, lengths_k, row_dot, scratch_values, scratch_metadata;
};

WorkspaceCounts workspace_counts(const AttentionShape &shape) {
  const size_t scratch = static_cast<size_t>(scratch_rows(shape));
  return WorkspaceCounts{static_cast<size_t>(shape.batch), static_cast<size_t>(shape.batch),
                         static_cast<size_t>(shape.rows()), scratch * static_cast<size_t>(shape.layout.values_per_row),
                         scratch * static_cast<size_t>(shape.layout.words_per_row)};
}

// Row (batch, head, row) of a strided [B, H, N, X] tensor (T may be const).
template <typename T>
__device__ T *row_of(T *tensor, const Strides4 &strides, int64_t batch, int64_t head, int64_t row) {
  return tensor + batch * strides.batch + head * strides.head + row * strides.row;
}

// Whether kept score s of a row with log-sum-exp lse has a probability: masked scores (-inf) and rows with no
// finite score (lse -inf) have p = 0 and give no gradient.
__device__ inline bool has_probability(float s, float lse) { return isfinite(s) && isfinite(lse); }

// Kernel 1: D_i = sum_d dout_id out_id, one warp per query row.
template <typename In>
__global__ void __launch_bounds__(kReferenceThreads)
    row_dot_kernel(AttentionShape shape, Strides4 dout_strides, const In *out, const In *dout, float *row_dot) {
  const int warps = static_cast<int>(blockDim.x) / kWarpSize;
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * warps + warp; row < shape.rows();
       row += static_cast<int64_t>(gridDim.x) * warps) {
    const RowCoordinates at = row_coordinates(shape, row);
    const In *out_row = row_of(out, shape.out, at.batch, at.head_q, at.i);
    const In *dout_row = row_of(dout, dout_strides, at.batch, at.head_q, at.i);
    const float dot = warp_dot(dout_row, out_row, shape.head_dim_v);
    if (threadIdx.x % kWarpSize == 0) row_dot[row] = dot;
  }
}

// Kernel 2: dq, one block per query row at a time, through a scratch row of the workspace.
template <typename In>
__global__ void __launch_bounds__(kReferenceThreads)
    dq_kernel(AttentionShape shape, BackwardStrides strides, const In *q, const In *k, const In *v, const In *dout,
              const float *lse, const float *row_dot, const int32_t *seqlens_q, const int32_t *seqlens_k, In *dq,
              float *scratch_values, uint32_t *scratch_metadata) {
  __shared__ float tile_scores[kScoreTileKeys];
  __shared__ float partials[kReferenceThreads];
  const CompressedLayout &layout = shape.layout;
  float *slots = scratch_values + blockIdx.x * layout.values_per_row;  // kept scores, then their ds
  uint32_t *metadata = scratch_metadata + blockIdx.x * layout.words_per_row;
  const int warps = static_cast<int>(blockDim.x) / kWarpSize;
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;

  for (int64_t row = blockIdx.x; row < shape.rows(); row += gridDim.x) {
    // Steps 1-3 exactly as the forward runs them: the same scores, the same choice.
    sddmm_prune_row<In, float>(shape, q, k, seqlens_q, seqlens_k, row, slots, metadata, tile_scores);
    __syncthreads();

    const RowCoordinates at = row_coordinates(shape, row);
    const In *dout_row = row_of(dout, strides.dout, at.batch, at.head_q, at.i);
    const In *v_head = v + at.batch * shape.v.batch + at.head_kv * shape.v.head;
    const float row_lse = lse[row];
    for (int64_t c = warp; c < layout.values_per_row; c += warps) {
      const float s = slots[c];
      float ds = 0.0f;
      if (has_probability(s, row_lse)) {  // a finite score names a key < Nk
        const int64_t key = key_of_slot(layout, metadata, c);
        const float p = expf(s - row_lse);
        const float dp = warp_dot(dout_row, v_head + key * shape.v.row, shape.head_dim_v);
        ds = p * (dp - row_dot[row]);
      }
      __syncwarp();  // every lane has read slots[c]
      if (threadIdx.x % kWarpSize == 0) slots[c] = ds;
    }
    __syncthreads();

    const In *k_head = k + at.batch * shape.k.batch + at.head_kv * shape.k.head;
    compressed_row_product(layout, shape.seq_k, slots, metadata, k_head, shape.k.row, shape.head_dim, shape.scale,
                           row_of(dq, strides.dq, at.batch, at.head_q, at.i), partials);
    __syncthreads();  // the scratch row is rewritten for the block's next row
  }
}

// The coefficients of one key in one query row: p (rounded to the input dtype, as P v used it) and ds; both 0
// where the key is masked or pruned, or the row has nothing finite.
struct KeyCoefficients {
  float p, ds;
};

// The coefficients of the keys group_start .. group_start + m - 1 (one N:M group; dense: one key, m = 1) in one
// query row, into coefficients[0 .. m). Called by a whole warp (every lane gets the result). The scores are
// recomputed exactly as sddmm_prune_row computes them (keys at or past key_end, which include those past Nk, are
// -inf), and the group's choice is made by the same select_n_of_m.
template <typename In>
__device__ void group_coefficients(const AttentionShape &shape, const In *q_row, const In *k_head, const In *v_head,
                                   const In *dout_row, float row_lse, float row_dot, int64_t group_start,
                                   int64_t key_end, KeyCoefficients *coefficients) {
  const CompressedLayout &layout = shape.layout;
  float scores[kMaxGroupSize];
  for (int p = 0; p < layout.m; ++p) {
    const int64_t key = group_start + p;
    scores[p] = key < key_end ? scaled_score(shape, q_row, k_head + key * shape.k.row) : -INFINITY;
  }
  const unsigned kept = is_dense(layout) ? 1u : select_n_of_m(scores, layout.n, layout.m);
  for (int p = 0; p < layout.m; ++p) {
    coefficients[p] = KeyCoefficients{0.0f, 0.0f};
    if ((kept >> p & 1u) == 0 || !has_probability(scores[p], row_lse)) continue;
    const float probability = expf(scores[p] - row_lse);
    const float dp = warp_dot(dout_row, v_head + (group_start + p) * shape.v.row, shape.head_dim_v);
    coefficients[p] = KeyCoefficients{round_to<In>(probability), probability * (dp - row_dot)};
  }
}

// Kernel 3: dk and dv, one block per key group (batch entry, kv head, the m keys of one N:M group; dense: one key)
// at a time, so that each group's scores and choice are computed once per query row. The query rows that read
// the kv head are taken in tiles: the warps compute the tile's coefficients into shared memory, then each thread
// adds the tile's rows, in order, into the dk column and the dv column it owns of each key of the group.
template <typename In>
__global__ void __launch_bounds__(kReferenceThreads)
    dk_dv_kernel(AttentionShape shape, BackwardStrides strides, const In *q, const In *k, const In *v, const In *dout,
                 const float *lse, const float *row_dot, const int32_t *seqlens_q, const int32_t *seqlens_k, In *dk,
                 In *dv) {
  __shared__ KeyCoefficients tile[kKeyTileRows][kMaxGroupSize];
  const CompressedLayout &layout = shape.layout;
  const int m = layout.m;
  const int warps = static_cast<int>(blockDim.x) / kWarpSize;
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  const int64_t heads_per_kv = shape.heads_q / shape.heads_kv;
  const int64_t group_rows = heads_per_kv * shape.seq_q;  // ordered (query head, row)
  const int64_t key_groups = shape.batch * shape.heads_kv * layout.groups;
  const int64_t width = shape.head_dim > shape.head_dim_v ? shape.head_dim : shape.head_dim_v;

  for (int64_t key_group = blockIdx.x; key_group < key_groups; key_group += gridDim.x) {
    const int64_t group_start = key_group % layout.groups * m;
    const int64_t head_kv = key_group / layout.groups % shape.heads_kv;
    const int64_t b = key_group / (layout.groups * shape.heads_kv);
    const int64_t valid_q = valid_length(seqlens_q, b, shape.seq_q);
    const int64_t valid_k = valid_length(seqlens_k, b, shape.seq_k);
    const In *k_head = k + b * shape.k.batch + head_kv * shape.k.head;
    const In *v_head = v + b * shape.v.batch + head_kv * shape.v.head;

    for (int64_t first_column = 0; first_column < width; first_column += blockDim.x) {
      const int64_t d = first_column + threadIdx.x;
      float dk_sum[kMaxGroupSize] = {};
      float dv_sum[kMaxGroupSize] = {};
      for (int64_t tile_start = 0; tile_start < group_rows; tile_start += kKeyTileRows) {
        const int64_t rows_left = group_rows - tile_start;
        const int tile_rows = static_cast<int>(rows_left < kKeyTileRows ? rows_left : kKeyTileRows);
        for (int t = warp; t < tile_rows; t += warps) {
          const int64_t head_q = head_kv * heads_per_kv + (tile_start + t) / shape.seq_q;
          const int64_t i = (tile_start + t) % shape.seq_q;
          const int64_t row = (b * shape.heads_q + head_q) * shape.seq_q + i;
          KeyCoefficients coefficients[kMaxGroupSize];
          group_coefficients<In>(shape, row_of(q, shape.q, b, head_q, i), k_head, v_head,
                                 row_of(dout, strides.dout, b, head_q, i), lse[row], row_dot[row], group_start,
                                 allowed_key_end(i, valid_q, valid_k, shape.causal), coefficients);
          if (threadIdx.x % kWarpSize == 0) {
            for (int p = 0; p < m; ++p) tile[t][p] = coefficients[p];
          }
        }
        __syncthreads();
        for (int t = 0; t < tile_rows; ++t) {
          const int64_t head_q = head_kv * heads_per_kv + (tile_start + t) / shape.seq_q;
          const int64_t i = (tile_start + t) % shape.seq_q;
          const float q_d = d < shape.head_dim ? to_float(row_of(q, shape.q, b, head_q, i)[d]) : 0.0f;
          const float dout_d = d < shape.head_dim_v ? to_float(row_of(dout, strides.dout, b, head_q, i)[d]) : 0.0f;
#pragma unroll
          for (int p = 0; p < kMaxGroupSize; ++p) {
            if (p >= m) break;
            if (tile[t][p].ds != 0.0f) dk_sum[p] = fmaf(tile[t][p].ds, q_d, dk_sum[p]);
            if (tile[t][p].p != 0.0f) dv_sum[p] = fmaf(tile[t][p].p, dout_d, dv_sum[p]);
          }
        }
        __syncthreads();  // the tile's coefficients are rewritten next
      }
#pragma unroll
      for (int p = 0; p < kMaxGroupSize; ++p) {
        const int64_t j = group_start + p;
        if (p >= m || j >= shape.seq_k) break;
        if (d < shape.head_dim) row_of(dk, strides.dk, b, head_kv, j)[d] = from_float<In>(shape.scale * dk_sum[p]);
        if (d < shape.head_dim_v) row_of(dv, strides.dv, b, head_kv, j)[d] = from_float<In>(dv_sum[p]);
      }
    }
  }
}

}  // namespace

uint64_t attention_backward_reference_workspace_bytes(const AttentionShape &shape) {
  const WorkspaceCounts counts = workspace_counts(shape);
  // Past 2^56 elements in a part (more than any memory holds) the sum could wrap: report no size at all.
  constexpr size_t kMaxCount = size_t{1} << 56;
  if (counts.row_dot > kMaxCount || counts.scratch_values > kMaxCount || counts.scratch_metadata > kMaxCount) {
    return UINT64_MAX;
  }
  return StreamWorkspace::bytes_for<int32_t>(counts.lengths_q) + StreamWorkspace::bytes_for<int32_t>(counts.lengths_k) +
         StreamWorkspace::bytes_for<float>(counts.row_dot) + StreamWorkspace::bytes_for<float>(counts.scratch_values) +
         StreamWorkspace::bytes_for<uint32_t>(counts.scratch_metadata);
}

dfss_status attention_backward_reference(const AttentionCall &call, const BackwardArguments &arguments) {
  return dispatch_dtype(call.shape.dtype, [&](auto tag) {
    using In = typename decltype(tag)::type;
    const AttentionShape &shape = call.shape;
    const WorkspaceCounts counts = workspace_counts(shape);
    // The carves follow workspace_counts; the lengths take their room only when given.
    StreamWorkspace workspace(call.stream, arguments.workspace);
    const int32_t *seqlens_q = nullptr;
    const int32_t *seqlens_k = nullptr;
    DFSS_RETURN_IF_ERROR(workspace.upload_lengths(call.seqlens_q, call.seqlens_k, &seqlens_q, &seqlens_k));
    float *row_dot = workspace.carve<float>(counts.row_dot);
    float *scratch_values = workspace.carve<float>(counts.scratch_values);
    uint32_t *scratch_metadata = workspace.carve<uint32_t>(counts.scratch_metadata);

    const auto *q = static_cast<const In *>(arguments.q);
    const auto *k = static_cast<const In *>(arguments.k);
    const auto *v = static_cast<const In *>(arguments.v);
    const auto *out = static_cast<const In *>(arguments.out);
    const auto *dout = static_cast<const In *>(arguments.dout);
    const BackwardStrides &strides = arguments.strides;
    const int warps = kReferenceThreads / kWarpSize;

    int grid = 0;
    const auto row_dot_launch = row_dot_kernel<In>;
    DFSS_RETURN_IF_ERROR(row_loop_grid(reinterpret_cast<const void *>(row_dot_launch),
                                       (shape.rows() + warps - 1) / warps, &grid));
    clear_stale_cuda_error();
    row_dot_launch<<<grid, kReferenceThreads, 0, call.stream>>>(shape, strides.dout, out, dout, row_dot);
    DFSS_RETURN_IF_ERROR(check_launch("row_dot_kernel"));

    const auto dq_launch = dq_kernel<In>;
    DFSS_RETURN_IF_ERROR(row_loop_grid(reinterpret_cast<const void *>(dq_launch), shape.rows(), &grid));
    grid = static_cast<int>(std::min<int64_t>(grid, scratch_rows(shape)));
    clear_stale_cuda_error();
    dq_launch<<<grid, kReferenceThreads, 0, call.stream>>>(shape, strides, q, k, v, dout, arguments.lse, row_dot,
                                                           seqlens_q, seqlens_k, static_cast<In *>(arguments.dq),
                                                           scratch_values, scratch_metadata);
    DFSS_RETURN_IF_ERROR(check_launch("dq_kernel"));

    const auto dk_dv_launch = dk_dv_kernel<In>;
    DFSS_RETURN_IF_ERROR(row_loop_grid(reinterpret_cast<const void *>(dk_dv_launch),
                                       shape.batch * shape.heads_kv * shape.layout.groups, &grid));
    clear_stale_cuda_error();
    dk_dv_launch<<<grid, kReferenceThreads, 0, call.stream>>>(shape, strides, q, k, v, dout, arguments.lse, row_dot,
                                                              seqlens_q, seqlens_k, static_cast<In *>(arguments.dk),
                                                              static_cast<In *>(arguments.dv));
    return check_launch("dk_dv_kernel");
  });
}

}  // namespace dfss
