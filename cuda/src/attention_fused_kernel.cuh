// The fused forward on tensor cores (dfss_attention_forward, sm_80 and later), FlashAttention-2 style: a block of
// 4 warps owns 64 query rows (16 per warp, Q kept in registers) and walks the keys in steps of 64:
//   1. S = Q K^T with mma.sync m16n8k16 (fp16 / bf16 in, fp32 accumulators), K and V tiles brought into shared
//      memory with cp.async (V's load overlaps QK^T and the softmax, the next K's load overlaps P.V; the Hopper
//      engine's pipelined order has its own, attention_fused_wgmma.cuh);
//   2. scale, then the masks of dfss.h (key lengths, causal bottom-right, rows past Nq_b) on the steps that need
//      them; steps past the last key any row of the block sees are skipped;
//   3. sparse patterns: the N:M choice in registers, before any exponential. K's rows are permuted on their way
//      into shared memory (attention_fused_fragments.cuh) so that each thread's accumulators hold whole groups of
//      4 consecutive keys; the kept values are already the compressed A operand of P.V and the metadata is built
//      with integer operations and three shuffles per step. A step whose scores hold no NaN (a warp vote on the
//      step maxima) takes the NaN-free networks of select.cuh;
//   4. online softmax over the kept scores (exp2 with the log2(e) folded into one fma, float32 running max / sum;
//      the running max is raised, and O rescaled, only when a step's exceeds it by more than kMaxSlack). The
//      maxima come from all scores (a group's largest is kept), so the rescale is decided before the choice;
//   5. P.V with mma.sp::ordered_metadata m16n8k32 (2:4, and 1:2 as a stricter 2:4) on the kept exp values rounded
//      to the input dtype (unnormalized: divided by the row sum at the end), V in natural key order as B; the
//      dense pattern runs the same code with mma.sync m16n8k16, so the two are compared on equal code;
//   6. out = O / sum in the input dtype, lse = max + log(sum) (natural log), zeros and -inf for a row with no
//      finite score.
// Steps 1-3 are score_products, scale_and_mask and choose_kept (attention_fused_step.cuh), which the fused backward
// runs too (as score_step), so that both passes make the same N:M choice. Steps 1 and 5 and the tile layout belong
// to an engine (WarpMmaEngine here; on sm_90a WarpgroupMmaEngine, attention_fused_wgmma.cuh, with the same scores).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "attention_fused_fragments.cuh"
#include "attention_fused_launch.cuh"
#include "attention_fused_step.cuh"
#include "mask.h"
#include "mma.cuh"
#include "select.cuh"

namespace dfss {
namespace fused {

// combine over values[0 .. N) (N a power of two) as a balanced tree: log2(N) dependent operations where a running
// total chains N.
template <int N, typename Combine>
__device__ __forceinline__ float tree_reduce(const float (&values)[N], Combine &&combine) {
  static_assert(N > 0 && (N & (N - 1)) == 0, "a power of two");
  if constexpr (N == 1) {
    return values[0];
  } else {
    float halves[N / 2];
#pragma unroll
    for (int i = 0; i < N / 2; ++i) halves[i] = combine(values[2 * i], values[2 * i + 1]);
    return tree_reduce(halves, combine);
  }
}

// The larger of a and b: fmaxf (NaN ignored) or, KeepNaN, max_or_nan.
template <bool KeepNaN>
__device__ __forceinline__ float larger(float a, float b) {
  return KeepNaN ? max_or_nan(a, b) : fmaxf(a, b);
}

// pair_max[r][j] = larger<KeepNaN> of the thread's scores s[j][2r] and s[j][2r + 1] of row r (the NaN-free 2:4 and
// 1:2 networks take these as the pairs' winners).
template <bool KeepNaN>
__device__ __forceinline__ void pair_maxima(const float (&s)[kScoreBlocks][4], float (&pair_max)[2][kScoreBlocks]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
#pragma unroll
    for (int j = 0; j < kScoreBlocks; ++j) pair_max[r][j] = larger<KeepNaN>(s[j][2 * r], s[j][2 * r + 1]);
  }
}

// step_max[r] = the largest of the thread's scores of row r, from their pair_maxima<KeepNaN> (-inf when no score is
// above -inf; KeepNaN: NaN when one is NaN).
template <bool KeepNaN>
__device__ __forceinline__ void thread_step_maxima(const float (&s)[kScoreBlocks][4], float (&step_max)[2],
                                                   float (&pair_max)[2][kScoreBlocks]) {
  pair_maxima<KeepNaN>(s, pair_max);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    step_max[r] = tree_reduce(pair_max[r], larger<KeepNaN>);
  }
}

// A row's running maximum is raised only when a step's exceeds it by more than this (natural-log units): until then
// the exponentials are taken against the old maximum, at most e^5.5 ~ 245 (fine for the float32 sums and for the
// 16-bit P), and O is not rescaled. On most steps after the first no row of the warp qualifies and the rescale of
// O (D / 2 multiplies a thread) is skipped, as FlashAttention-4 does. out = O / sum and lse = max + log(sum) hold for
// any base.
constexpr float kMaxSlack = 5.5f;

// Step 4 of both fused forwards (16-bit and float32): the rows' running maxima from the step's (see kMaxSlack) and
// the row sums rescaled to them; when some row of the warp raised its maximum (the return value, warp-uniform),
// rescale(correction) is called with O's rescale factors: it rescales O at once, or keeps them for when the P.V that
// accumulates into O has finished. scaled_base[r] = max * log2(e), with max = 0 while a row has no finite score
// (exp2(-inf) = 0, no NaN).
template <typename Rescale>
__device__ __forceinline__ bool raise_running_max(float (&row_max)[2], float (&row_sum)[2], const float (&step_max)[2],
                                                  float (&scaled_base)[2], Rescale &&rescale) {
  float new_max[2];
  bool raise = false;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    new_max[r] = fmaxf(row_max[r], quad_max(step_max[r]));
    raise |= new_max[r] - row_max[r] > kMaxSlack;  // also a first finite score (+inf); -inf - -inf is NaN: false
  }
  const bool raised = __any_sync(0xffffffffu, raise);
  if (raised) {
    float correction[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const float base = new_max[r] == -INFINITY ? 0.0f : new_max[r];
      // Exactly 1 while the maximum stays (a rounding of max * log2(e) here would compound over the steps).
      correction[r] = exp2_approx((row_max[r] - base) * kLog2e);
      row_max[r] = new_max[r];
      row_sum[r] *= correction[r];
    }
    rescale(correction);
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) scaled_base[r] = (row_max[r] == -INFINITY ? 0.0f : row_max[r]) * kLog2e;
  return raised;
}

// O (rows group and group + 8 of the warp) times the factors of raise_running_max.
template <int OutBlocks>
__device__ __forceinline__ void rescale_output(float (&o)[OutBlocks][4], const float (&correction)[2]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
#pragma unroll
    for (int n = 0; n < OutBlocks; ++n) {
      o[n][2 * r] *= correction[r];
      o[n][2 * r + 1] *= correction[r];
    }
  }
}

// Both of the above at once, where no P.V is in flight.
template <int OutBlocks>
__device__ __forceinline__ void update_running_max(float (&o)[OutBlocks][4], float (&row_max)[2], float (&row_sum)[2],
                                                   const float (&step_max)[2], float (&scaled_base)[2]) {
  raise_running_max(row_max, row_sum, step_max, scaled_base,
                    [&](const float(&correction)[2]) { rescale_output(o, correction); });
}

// Step 6 of both fused forwards: out = O / sum (pairs of elements stored together, rounded to T) and lse = max +
// log(sum) for the thread's two rows; zeros and -inf for a row with no finite score (max -inf, sum 0), selected, so
// that a NaN its products met (0 * NaN of a key it masks) does not reach out.
template <typename T, int OutBlocks>
__device__ __forceinline__ void store_output_rows(const FusedAttentionParams &params, const QueryTilePlace &place,
                                                  const float (&o)[OutBlocks][4], const float (&row_max)[2],
                                                  const float (&row_sum)[2], int quad) {
  const AttentionShape &shape = params.shape;
  T *out = static_cast<T *>(params.out) + place.batch * shape.out.batch + place.head_q * shape.out.head;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float sum = quad_sum(row_sum[r]);
    if (place.rows[r] >= shape.seq_q) continue;
    const bool sees_some = sum > 0.0f;
    const float inverse = sees_some ? 1.0f / sum : 0.0f;
    T *out_row = out + place.rows[r] * shape.out.row;
#pragma unroll
    for (int n = 0; n < OutBlocks; ++n) {
      const float lo = sees_some ? o[n][2 * r] * inverse : 0.0f;
      const float hi = sees_some ? o[n][2 * r + 1] * inverse : 0.0f;
      if constexpr (sizeof(T) == 4) {
        *reinterpret_cast<float2 *>(out_row + 8 * n + 2 * quad) = make_float2(lo, hi);
      } else {
        *reinterpret_cast<uint32_t *>(out_row + 8 * n + 2 * quad) = pack_rounded<T>(lo, hi);
      }
    }
    if (params.lse != nullptr && quad == 0) {
      params.lse[(place.batch * shape.heads_q + place.head_q) * shape.seq_q + place.rows[r]] =
          row_max[r] == -INFINITY ? -INFINITY : row_max[r] + logf(sum);
    }
  }
}

// What the softmax of a key step reads and updates for the thread's two rows (references to the block's own
// variables): O, the running maxima and sums, the keys each row sees (key_end, mask.h), the end of the keys that every
// row of the warp sees (steps ending at or before it need no mask), the lane's part of its keys (lane_key =
// key_of_score(0, 0, quad)) and the lane.
template <int OutBlocks>
struct StepRows {
  float (&o)[OutBlocks][4];
  float (&row_max)[2];
  float (&row_sum)[2];
  const int64_t (&key_end)[2];
  int64_t warp_key_end;
  int lane_key;
  int lane;
};

// A step's kept exponentials (unnormalized P) as P.V's A operand: a[i][2h + r] holds row r of the keys of half h of
// block i (sparse: the compressed kept pair of a group), rounded to T, a pair a register. softmax_step writes `a` at
// once, or, deferred, the pairs' float values in `pairs` for pack_operand to round later.
template <int Pattern>
struct StepOperand {
  static constexpr int kBlocks = Pattern != DFSS_PATTERN_DENSE ? 2 : 4;
  uint32_t a[kBlocks][4];
  float pairs[kBlocks][4][2];
};

template <typename T, int Pattern>
__device__ __forceinline__ void pack_operand(StepOperand<Pattern> &operand) {
#pragma unroll
  for (int i = 0; i < StepOperand<Pattern>::kBlocks; ++i) {
#pragma unroll
    for (int e = 0; e < 4; ++e) operand.a[i][e] = pack_rounded<T>(operand.pairs[i][e][0], operand.pairs[i][e][1]);
  }
}

// Steps 2-4 of the warp's key step at step_key, once scored.s holds S = Q K^T: scale and masks (attention_fused_step.cuh),
// the step's row maxima, the running maxima raised, the N:M choice (sparse patterns) and the kept exponentials as
// `operand` with its `metadata`. InOrder (no P.V in flight): O is rescaled here and the operand rounded at once;
// otherwise O's factors are left in `correction` and the operand's values in its pairs, for the caller to apply
// (rescale_output, pack_operand) once the P.V that accumulates into O and reads the operand registers has finished.
// Returns whether some row of the warp raised its maximum. KeepsPairMaxima: the engine's (see WarpMmaEngine).
template <typename T, int Pattern, bool KeepsPairMaxima, bool InOrder, int OutBlocks>
__device__ __forceinline__ bool softmax_step(const StepRows<OutBlocks> &rows, ScoredStep &scored, int64_t step_key,
                                             float scale, float (&correction)[2], StepOperand<Pattern> &operand,
                                             uint32_t &metadata) {
  constexpr bool kSparse = Pattern != DFSS_PATTERN_DENSE;
  // 2. The step's row maxima: over all scores, which is the maximum over the kept ones too (a group's largest score
  // is always kept). Sparse patterns take them with max.NaN first: unless some score of the warp is NaN (a
  // warp-uniform vote), the choice runs the NaN-free networks (one compare where NaN ranking takes two, the pairs'
  // maxima as their winners; select.cuh).
  scale_and_mask<Pattern>(scored.s, scale, step_key + kTileKeys > rows.warp_key_end, rows.key_end, step_key,
                          rows.lane_key);
  float step_max[2];
  float pair_max[2][kScoreBlocks];
  thread_step_maxima<kSparse>(scored.s, step_max, pair_max);
  bool step_has_nan = false;
  if constexpr (kSparse) {
    step_has_nan = __any_sync(0xffffffffu, (step_max[0] != step_max[0]) | (step_max[1] != step_max[1]));
    if (step_has_nan) thread_step_maxima<false>(scored.s, step_max, pair_max);
  }

  // 4. Online softmax: new running maxima, before the choice, so that the choice and the exponentials after it make
  // one stretch of code.
  float scaled_base[2];
  const bool raised =
      raise_running_max(rows.row_max, rows.row_sum, step_max, scaled_base, [&](const float(&factors)[2]) {
        if constexpr (InOrder) {
          rescale_output(rows.o, factors);
        } else {
          correction[0] = factors[0];
          correction[1] = factors[1];
        }
      });
  float(&row_sum)[2] = rows.row_sum;

  if constexpr (kSparse) {
    // 3. The N:M choice (as choose_kept_scores in the fused backward), then the kept exponentials: one stretch of
    // code in each branch of the vote.
    const auto choose_and_exponentiate = [&](auto may_hold_nan) {
      if constexpr (decltype(may_hold_nan)::value) {
        choose_kept<Pattern>(scored, rows.lane);
      } else if constexpr (KeepsPairMaxima) {
        choose_kept_nan_free<Pattern>(scored, pair_max, rows.lane);
      } else {
        float fresh_pair_max[2][kScoreBlocks];
        pair_maxima<false>(scored.s, fresh_pair_max);
        choose_kept_nan_free<Pattern>(scored, fresh_pair_max, rows.lane);
      }
      metadata = scored.metadata;
#pragma unroll
      for (int c = 0; c < 2; ++c) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            const GroupChoice &choice = scored.choice[c][h][r];
            float(&pair)[2] = operand.pairs[c][2 * h + r];
            pair[0] = exp2_approx(fmaf(choice.first, kLog2e, -scaled_base[r]));
            pair[1] = exp2_approx(fmaf(choice.second, kLog2e, -scaled_base[r]));
            row_sum[r] += pair[0] + pair[1];
            if (InOrder) operand.a[c][2 * h + r] = pack_rounded<T>(pair[0], pair[1]);
          }
        }
      }
    };
    if (step_has_nan) {
      choose_and_exponentiate(std::true_type{});
    } else {
      choose_and_exponentiate(std::false_type{});
    }
  } else {
    metadata = 0;
    const auto &s = scored.s;
#pragma unroll
    for (int j = 0; j < kScoreBlocks; ++j) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float(&pair)[2] = operand.pairs[j / 2][2 * (j % 2) + r];
        pair[0] = exp2_approx(fmaf(s[j][2 * r], kLog2e, -scaled_base[r]));
        pair[1] = exp2_approx(fmaf(s[j][2 * r + 1], kLog2e, -scaled_base[r]));
        row_sum[r] += pair[0] + pair[1];
        if (InOrder) operand.a[j / 2][2 * (j % 2) + r] = pack_rounded<T>(pair[0], pair[1]);
      }
    }
  }
  return raised;
}

// The warp-level tensor-core engine of the fused forward (sm_80 and later): the layout of its tiles, and steps 1 and
// 5 of a key step. Each warp keeps its Q fragments in registers; S = Q K^T with mma.sync m16n8k16 on ldmatrix
// fragments; P.V with mma.sp::ordered_metadata m16n8k32 (sparse) or mma.sync m16n8k16 (dense).
template <typename T, int D, int Pattern>
struct WarpMmaEngine {
  static constexpr bool kSparse = Pattern != DFSS_PATTERN_DENSE;
  static constexpr int kStride = tile_stride(D);
  static constexpr int kTileElements = kTileKeys * kStride;
  static constexpr int kKSteps = D / 16;    // k-steps of QK^T
  static constexpr int kOutBlocks = D / 8;  // 8-column blocks of the output
  using Layout = PaddedTile<D>;

  uint32_t q_fragment[kKSteps][4];

  // The block's tiles (Q, K, V) in its dynamic shared memory.
  __device__ __forceinline__ static T *tiles(unsigned char *shared_bytes) {
    return reinterpret_cast<T *>(shared_bytes);
  }

  // The step's pair maxima are taken again for the N:M choice rather than kept through the online softmax: kept,
  // they spilled at D = 128 (176 bytes a thread, sm_80).
  static constexpr bool kKeepsPairMaxima = false;
  // The key steps in attention_fused_block's order (see WarpgroupMmaEngine::kPipelined).
  static constexpr bool kPipelined = false;

  // Waits for this thread's tile copies, then for every thread of the block: the tiles are ready to read.
  __device__ __forceinline__ static void tiles_arrived() {
    cp_async_wait<0>();
    __syncthreads();
  }

  // Once the block's Q tile has arrived: the warp's Q fragments.
  __device__ __forceinline__ void prepare(const T *q_tile, int warp, int lane) {
#pragma unroll
    for (int s = 0; s < kKSteps; ++s) {
      ldmatrix_x4(q_fragment[s], q_tile + q_fragment_row(warp * 16, lane) * kStride + q_fragment_unit(s, lane) * 8);
    }
  }

  // 1. S = Q K^T (score_products, the arithmetic the fused backward repeats).
  __device__ __forceinline__ void scores(float (&s)[kScoreBlocks][4], const T *, const T *k_tile, int lane) const {
    score_products<T, D>(
        s,
        [&](int p, uint32_t(&a_even)[4], uint32_t(&a_odd)[4]) {
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            a_even[i] = q_fragment[2 * p][i];
            a_odd[i] = q_fragment[2 * p + 1][i];
          }
        },
        k_tile, lane);
  }

  // 5. O += P V.
  __device__ __forceinline__ static void accumulate_values(float (&o)[kOutBlocks][4],
                                                           const uint32_t (&a)[kSparse ? 2 : 4][4], uint32_t metadata,
                                                           const T *v_tile, int lane) {
    if constexpr (kSparse) {
#pragma unroll
      for (int n = 0; n < kOutBlocks; ++n) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, v_tile + v_sparse_fragment_row(0, lane) * kStride + v_sparse_fragment_unit(n) * 8);
        mma_sp_m16n8k32<T, 0>(o[n], a[0], b, metadata);
        ldmatrix_x4_trans(b, v_tile + v_sparse_fragment_row(1, lane) * kStride + v_sparse_fragment_unit(n) * 8);
        mma_sp_m16n8k32<T, 1>(o[n], a[1], b, metadata);
      }
    } else {
#pragma unroll
      for (int ks = 0; ks < 4; ++ks) {
#pragma unroll
        for (int n = 0; n < kOutBlocks / 2; ++n) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, v_tile + v_dense_fragment_row(ks, lane) * kStride + v_dense_fragment_unit(n, lane) * 8);
          const uint32_t b_first[2] = {b[0], b[1]};
          const uint32_t b_second[2] = {b[2], b[3]};
          mma_m16n8k16<T>(o[2 * n], a[ks], b_first);
          mma_m16n8k16<T>(o[2 * n + 1], a[ks], b_second);
        }
      }
    }
  }
};

// One block's work item: query tile `work % query_tiles` (counted from the end, so that the longest causal tiles
// start first) of head (work / query_tiles) % Hq of batch entry work / (query_tiles Hq). Engine: the tile layout and
// steps 1 and 5 (WarpMmaEngine above, WarpgroupMmaEngine in attention_fused_wgmma.cuh); the key steps run in order
// here, or in the engine's pipelined order (kPipelined), both through softmax_step for steps 2-4.
template <typename T, int D, int Pattern, typename Engine>
__device__ __forceinline__ void attention_fused_block(const FusedAttentionParams &params, int64_t work, T *smem) {
  constexpr int kTileElements = Engine::kTileElements;
  constexpr int kOutBlocks = D / 8;  // 8-column blocks of the output
  using Layout = typename Engine::Layout;
  static_assert(kBlockRows == kTileKeys, "the Q tile and the K / V tiles share the tile size");

  const AttentionShape &shape = params.shape;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int group = lane / 4;
  const int quad = lane % 4;
  const QueryTilePlace place =
      place_query_tile(shape, params.seqlens_q, params.seqlens_k, params.query_tiles, work, warp, group);
  const int64_t batch = place.batch, head_q = place.head_q, head_kv = place.head_kv, first_row = place.first_row;
  const int64_t(&key_end)[2] = place.key_end;
  const int64_t key_steps = place.key_steps;

  const T *q = static_cast<const T *>(params.q) + batch * shape.q.batch + head_q * shape.q.head;
  const T *k = static_cast<const T *>(params.k) + batch * shape.k.batch + head_kv * shape.k.head;
  const T *v = static_cast<const T *>(params.v) + batch * shape.v.batch + head_kv * shape.v.head;

  float o[kOutBlocks][4];
#pragma unroll
  for (int n = 0; n < kOutBlocks; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.0f, 0.0f};  // this thread's part; the quad's parts are added at the end

  if constexpr (Engine::kPipelined) {
    if (key_steps > 0) {
      const StepRows<kOutBlocks> rows{o,   row_max, row_sum, key_end, warp_seen_key_end(key_end),
                                      key_of_score<Pattern>(0, 0, quad), lane};
      Engine::pipelined_key_steps(params, place, q, k, v, rows, smem);
    }
  } else if (key_steps > 0) {
    // Tiles: Q, V, K (one K tile: the next step's K is copied while P.V runs, the shared memory of 3 blocks a SM on
    // sm_80 at D = 128).
    T *q_tile = smem;
    T *v_tile = smem + kTileElements;
    T *k_tile = smem + 2 * kTileElements;
    load_tile<T, D>(q_tile, q, shape.q.row, first_row, place.valid_q, NaturalRow{}, Layout{});
    load_tile<T, D>(k_tile, k, shape.k.row, 0, place.valid_k, KeyRow<Pattern>{}, Layout{});
    cp_async_commit();
    Engine::tiles_arrived();

    Engine engine;
    engine.prepare(q_tile, warp, lane);
    // key_of_score(j, e, quad) = key_of_score(j, e, 0) + lane_key: the lane's part of its keys.
    const int lane_key = key_of_score<Pattern>(0, 0, quad);
    const StepRows<kOutBlocks> rows{o, row_max, row_sum, key_end, warp_seen_key_end(key_end), lane_key, lane};

    for (int64_t step = 0; step < key_steps; ++step) {
      const int64_t step_key = step * kTileKeys;
      // K(step) is in shared memory; V(step) arrives while QK^T and the softmax run.
      load_tile<T, D>(v_tile, v, shape.v.row, step_key, place.valid_k, NaturalRow{}, Layout{});
      cp_async_commit();

      // 1-4. S = Q K^T, then softmax_step.
      ScoredStep scored;
      engine.scores(scored.s, q_tile, k_tile, lane);
      StepOperand<Pattern> p;
      uint32_t metadata;
      float correction[2];
      softmax_step<T, Pattern, Engine::kKeepsPairMaxima, true>(rows, scored, step_key, shape.scale, correction, p,
                                                                metadata);

      // V(step) has arrived for every thread, and no warp reads K(step) any more: bring K(step + 1).
      Engine::tiles_arrived();
      if (step + 1 < key_steps) {
        load_tile<T, D>(k_tile, k, shape.k.row, step_key + kTileKeys, place.valid_k, KeyRow<Pattern>{}, Layout{});
      }
      cp_async_commit();

      // 5. O += P V.
      Engine::accumulate_values(o, p.a, metadata, v_tile, lane);

      // K(step + 1) has arrived, and no warp reads V(step) any more.
      Engine::tiles_arrived();
    }
  }

  // 6. Out and lse.
  store_output_rows<T>(params, place, o, row_max, row_sum, quad);
}

// Blocks per SM that the register budget aims at. The kernel is bound by latency (2 warps per scheduler at 238-246
// registers for D = 128); ptxas fits 3 blocks (168 registers) at D = 128 and 4 (128) at D = 64 with a few dozen
// bytes of spills outside the key loop. Measured on the H200 (bench/NOTES.md, v2): faster for D = 64 and for the
// sparse patterns at D = 128, 2 % slower for dense at D = 128, which keeps its 2 blocks. D = 96 keeps its 2 blocks
// (244-248 registers, no spills; at 168 registers ptxas spills 90-160 bytes, not measured).
constexpr int fused_min_blocks(int head_dim, int pattern) {
  if (head_dim == 64) return 4;
  if (head_dim >= 128 && pattern != DFSS_PATTERN_DENSE) return 3;
  return 1;
}

// A fused forward kernel's body: the block takes work items blockIdx.x, + gridDim.x, ... (grids are capped).
template <typename T, int D, int Pattern, typename Engine>
__device__ __forceinline__ void run_fused_blocks(const FusedAttentionParams &params, unsigned char *shared_bytes) {
  T *smem = Engine::tiles(shared_bytes);
  for (int64_t work = blockIdx.x; work < params.work_items; work += gridDim.x) {
    attention_fused_block<T, D, Pattern, Engine>(params, work, smem);
    __syncthreads();  // the next work item rewrites the tiles
  }
}

template <typename T, int D, int Pattern>
__global__ void __launch_bounds__(kThreads, fused_min_blocks(D, Pattern))
    attention_fused_kernel(FusedAttentionParams params) {
  // Tensor-core code exists for sm_80 and later only; the dispatch never launches this kernel on older devices.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  run_fused_blocks<T, D, Pattern, WarpMmaEngine<T, D, Pattern>>(params, shared_bytes);
#else
  (void)params;
#endif
}

template <typename T, int D>
FusedKernels fused_attention_kernels() {
  return FusedKernels{attention_fused_kernel<T, D, DFSS_PATTERN_DENSE>, attention_fused_kernel<T, D, DFSS_PATTERN_1_2>,
                      attention_fused_kernel<T, D, DFSS_PATTERN_2_4>};
}

}  // namespace fused
}  // namespace dfss
