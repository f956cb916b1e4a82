// The Hopper fused forward, warp-specialized (FlashAttention-3's structure; sm_90a): a block of 1 + C warpgroups
// (C = warp_specialized_consumers(D): 3 at D = 128, 4 at D = 64) owns C query tiles of 64 rows that share each K and
// V tile; one block a SM.
//   - Warpgroup 0, the producer, gives most of its registers to the others (setmaxnreg) and one of its threads copies
//     the tiles with TMA (tensor maps built by the host, tensor_map.h): each consumer's Q tile, then K(j) and V(j)
//     into a ring of kStages tiles each. A copy completes on a "full" barrier of its tile; the next copy into that
//     tile waits on its "empty" barrier, on which every consumer thread arrives once its wgmma read the tile.
//   - Warpgroups 1 .. C, the consumers, run the key steps of WarpgroupMmaEngine (pipelined_key_steps, the
//     same arithmetic and bits as the engine's own blocks) on their 64 rows, waiting on the barriers instead of
//     copying: no copy instructions and no block-wide barrier in their loop, and more registers for S, O and P
//     (spills: dense none, sparse 16 bytes at D = 128 and 52 at D = 64, where the consumers have 112 registers).
// K's rows are permuted by the map itself for the sparse patterns (tensor_map.h), so the tiles are the engine's.
// TMA zero-fills only past the tensor, so the V tile that holds a batch entry's key length Nk_b < Nk brings the
// padding past it: the consumers overwrite those rows with zeros before its P V (clear_padding). K's padding needs
// nothing: the masks replace its scores.
// The block's key steps are those of its last valid row; a consumer whose rows see fewer keys (causal, or rows past
// the sequence) runs the extra steps fully masked (their P is zero: the same output), so that every consumer reads
// every tile.
#pragma once

#include <cuda.h>

#include <cstdint>

#include "attention_fused_wgmma.cuh"
#include "tma.cuh"

namespace dfss {
namespace fused {

// The first row of the last of key_steps tiles that lies past a batch entry's key length valid_k (Nk_b), where
// padding follows it (valid_k < seq_k) inside that tile; 0 where none does.
__device__ __forceinline__ int last_padding_of(int64_t valid_k, int64_t seq_k, int64_t key_steps) {
  const bool inside_last = (key_steps - 1) * kTileKeys < valid_k && valid_k < key_steps * kTileKeys;
  return valid_k < seq_k && inside_last ? static_cast<int>(valid_k % kTileKeys) : 0;
}

template <typename T, int D, int Pattern, int Consumers>
struct WarpSpecializedBlock {
  using Engine = WarpgroupMmaEngine<T, D, Pattern>;
  static constexpr int kStages = warp_specialized_stages(D);
  static constexpr int kTileElements = Engine::kTileElements;
  static constexpr int kOutBlocks = D / 8;
  static constexpr int kPanels = D / 64;
  static constexpr uint32_t kTileBytes = kTileKeys * D * sizeof(T);
  // The producer keeps few registers; the consumers share the rest of the block's (one block a SM: the launch gives
  // each thread the register file's share, in steps of 8, and setmaxnreg moves registers within that pool).
  static constexpr int kThreads = (Consumers + 1) * 128;
  static constexpr int kLaunchRegisters = 65536 / kThreads / 8 * 8;
  static constexpr int kProducerRegisters = Consumers == 2 ? 40 : 24;
  static constexpr int kConsumerRegisters =
      (kThreads * kLaunchRegisters - 128 * kProducerRegisters) / (Consumers * 128) / 8 * 8;
  static_assert(kConsumerRegisters >= kLaunchRegisters && kConsumerRegisters <= 256, "setmaxnreg's range");
  static_assert(Consumers + 2 * kStages ==
                    (fused_warp_specialized_shared_bytes(D, sizeof(T)) - kTileAlignment) / kTileBytes,
                "the launch's shared memory: Q tiles and kStages K and V tiles");

  // Shared memory: Q tiles (one a consumer), then the K ring, then the V ring; the barriers.
  struct Barriers {
    uint64_t q_full[Consumers], q_empty[Consumers];
    uint64_t k_full[kStages], k_empty[kStages];
    uint64_t v_full[kStages], v_empty[kStages];
  };

  // Load number n (counted over the block's work items) uses ring tile n % kStages in its (n / kStages)-th round.
  __device__ __forceinline__ static int stage_of(int64_t load) { return static_cast<int>(load % kStages); }
  __device__ __forceinline__ static uint32_t parity_of(int64_t load) {
    return static_cast<uint32_t>((load / kStages) & 1);
  }

  // The consumer's side of pipelined_key_steps: the tiles the producer brings, waited for and given back.
  struct ProducedTiles {
    const T *q;
    T *k_ring, *v_ring;
    Barriers &barriers;
    uint64_t *q_full, *q_empty;
    uint32_t q_parity;
    int64_t first_load;  // the load number of this work item's K(0) and V(0)
    int64_t key_steps;
    int last_padding;  // the first row of the last step's V tile past Nk_b < Nk (padding to clear), or 0: none

    __device__ __forceinline__ const T *q_tile() const { return q; }
    __device__ __forceinline__ const T *k_tile(int64_t step) const {
      return k_ring + stage_of(first_load + step) * kTileElements;
    }
    __device__ __forceinline__ const T *v_tile(int64_t step) const {
      return v_ring + stage_of(first_load + step) * kTileElements;
    }
    __device__ __forceinline__ void wait_keys(int64_t step) const {
      mbarrier_wait(&barriers.k_full[stage_of(first_load + step)], parity_of(first_load + step));
    }
    __device__ __forceinline__ void wait_values(int64_t step) const {
      mbarrier_wait(&barriers.v_full[stage_of(first_load + step)], parity_of(first_load + step));
    }

    __device__ __forceinline__ void first_scores_ready() const {
      mbarrier_wait(q_full, q_parity);
      wait_keys(0);
    }
    // The last S read Q too: the producer may bring the next work item's.
    __device__ __forceinline__ void scores_read(int64_t step) const {
      mbarrier_arrive(&barriers.k_empty[stage_of(first_load + step)]);
      if (step + 1 == key_steps) mbarrier_arrive(q_empty);
    }
    __device__ __forceinline__ void step_ready(int64_t step) const {
      wait_keys(step + 1);
      wait_values(step);
    }
    // Only the last step's tile can hold padding (the steps end with the keys of the block's last valid row).
    __device__ __forceinline__ void last_values_ready(int64_t step) const {
      wait_values(step);
      if (last_padding != 0) clear_padding(v_ring + stage_of(first_load + step) * kTileElements, last_padding);
    }
    __device__ __forceinline__ void values_read(int64_t step) const {
      mbarrier_arrive(&barriers.v_empty[stage_of(first_load + step)]);
    }
  };

  // Zeros over rows first_padding .. 63 of a V tile that TMA filled, every consumer thread taking a share (a row's 16-
  // byte units stay inside its 128 bytes of each 64-column panel under the 128-byte swizzle); then the fence makes
  // them visible to wgmma (the async proxy), and the consumers' barrier to every consumer. Every consumer runs every
  // step of the block (ProducedTiles), so all of them meet there.
  __device__ __forceinline__ static void clear_padding(T *tile, int first_padding) {
    constexpr int kRowUnits = D / 8;
    const uint32_t tile_address = shared_address(tile);  // 32-bit shared addresses: fewer registers next to O's
    const int units = (kTileKeys - first_padding) * kRowUnits;
    for (int unit = static_cast<int>(threadIdx.x) - 128; unit < units; unit += Consumers * 128) {
      const int row = first_padding + unit / kRowUnits;
      const int panel = unit % kRowUnits / 8;
      const uint32_t address = tile_address + ((panel * kTileKeys + row) * 64 + unit % 8 * 8) * sizeof(T);
      asm volatile("st.shared.v4.u32 [%0], {%1, %1, %1, %1};\n" ::"r"(address), "r"(0u) : "memory");
    }
    fence_proxy_async_shared();
    named_barrier_sync(1, Consumers * 128);
  }

  // The producer thread's copies of one work item (the block's q_round-th with key steps): the consumers' Q tiles,
  // then K(j) and V(j) for every key step, each into its tile once the consumers have given it back.
  __device__ __forceinline__ static void produce(const WarpSpecializedParams &params, const QueryTilePlace &place,
                                                 T *q_tiles, T *k_ring, T *v_ring, Barriers &barriers,
                                                 int64_t key_steps, int64_t first_load, uint32_t q_round) {
    const int head_q = static_cast<int>(place.head_q), head_kv = static_cast<int>(place.head_kv);
    const int batch = static_cast<int>(place.batch);
    for (int c = 0; c < Consumers; ++c) {
      mbarrier_wait(&barriers.q_empty[c], (q_round & 1u) ^ 1u);
      mbarrier_arrive_expect_bytes(&barriers.q_full[c], kTileBytes);
      const int first_row = static_cast<int>(place.first_row) + c * kBlockRows;
      for (int panel = 0; panel < kPanels; ++panel) {
        tma_load_4d(q_tiles + c * kTileElements + panel * (kTileKeys * 64), &params.q_map, &barriers.q_full[c],
                    panel * 64, first_row, head_q, batch);
      }
    }
    for (int64_t step = 0; step < key_steps; ++step) {
      const int64_t load = first_load + step;
      const int stage = stage_of(load);
      const uint32_t free_parity = parity_of(load) ^ 1u;  // the round before: the tile's previous contents read
      const int first_key = static_cast<int>(step * kTileKeys);
      mbarrier_wait(&barriers.k_empty[stage], free_parity);
      mbarrier_arrive_expect_bytes(&barriers.k_full[stage], kTileBytes);
      T *k_tile = k_ring + stage * kTileElements;
      for (int panel = 0; panel < kPanels; ++panel) {
        T *k_panel = k_tile + panel * (kTileKeys * 64);
        if constexpr (Pattern == DFSS_PATTERN_DENSE) {
          tma_load_4d(k_panel, &params.k_map, &barriers.k_full[stage], panel * 64, first_key, head_kv, batch);
        } else {
          // The rows in key_permutation.h's order, 8 a copy.
#pragma unroll
          for (int box = 0; box < kTmaKeyBoxes; ++box) {
            tma_load_5d(k_panel + tma_key_box_row(box) * 64, &params.k_map, &barriers.k_full[stage], panel * 64,
                        tma_key_box_low(box), first_key / 4 + tma_key_box_high(box), head_kv, batch);
          }
        }
      }
      mbarrier_wait(&barriers.v_empty[stage], free_parity);
      mbarrier_arrive_expect_bytes(&barriers.v_full[stage], kTileBytes);
      T *v_tile = v_ring + stage * kTileElements;
      for (int panel = 0; panel < kPanels; ++panel) {
        tma_load_4d(v_tile + panel * (kTileKeys * 64), &params.v_map, &barriers.v_full[stage], panel * 64, first_key,
                    head_kv, batch);
      }
    }
  }
};

template <typename T, int D, int Pattern>
__global__ void __launch_bounds__(warp_specialized_threads(D), 1)
    attention_fused_warp_specialized_kernel(const __grid_constant__ WarpSpecializedParams params) {
#if DFSS_WGMMA_AVAILABLE
  constexpr int kConsumers = warp_specialized_consumers(D);
  using Block = WarpSpecializedBlock<T, D, Pattern, kConsumers>;
  using Engine = typename Block::Engine;
  constexpr int kTileElements = Block::kTileElements;
  constexpr int kOutBlocks = Block::kOutBlocks;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  __shared__ typename Block::Barriers barriers;
  T *q_tiles = Engine::tiles(shared_bytes);
  T *k_ring = q_tiles + kConsumers * kTileElements;
  T *v_ring = k_ring + Block::kStages * kTileElements;

  if (threadIdx.x == 0) {
    for (int c = 0; c < kConsumers; ++c) {
      mbarrier_init(&barriers.q_full[c], 1);
      mbarrier_init(&barriers.q_empty[c], 128);
    }
    for (int s = 0; s < Block::kStages; ++s) {
      mbarrier_init(&barriers.k_full[s], 1);
      mbarrier_init(&barriers.v_full[s], 1);
      mbarrier_init(&barriers.k_empty[s], kConsumers * 128);
      mbarrier_init(&barriers.v_empty[s], kConsumers * 128);
    }
    mbarrier_init_fence();
  }
  __syncthreads();

  const FusedAttentionParams &fused = params.fused;
  const AttentionShape &shape = fused.shape;
  const int warpgroup = static_cast<int>(threadIdx.x) / 128;
  const int warp = static_cast<int>(threadIdx.x) / 32 % 4;  // in its warpgroup
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int group = lane / 4, quad = lane % 4;
  const int64_t block_rows = kConsumers * kBlockRows;
  // The producer thread and the consumers count the loads and the Q rounds (work items with key steps) alike, so
  // that they agree on stages and parities. No barrier of the block follows: the producer runs ahead, as far as the
  // barriers of the tiles let it (into the next work item, once a consumer's last S has read its Q).
  int64_t loads = 0;
  uint32_t q_rounds = 0;

  if (warpgroup == 0) {
    release_registers<Block::kProducerRegisters>();
    if (threadIdx.x != 0) return;
    for (int64_t work = blockIdx.x; work < fused.work_items; work += gridDim.x) {
      const QueryTilePlace place = place_query_rows(shape, fused.seqlens_q, fused.seqlens_k, fused.query_tiles,
                                                    block_rows, work, 0, 0, 0);
      const int64_t key_steps = place.block_key_steps;
      if (key_steps == 0) continue;
      Block::produce(params, place, q_tiles, k_ring, v_ring, barriers, key_steps, loads, q_rounds);
      loads += key_steps;
      ++q_rounds;
    }
  } else {
    claim_registers<Block::kConsumerRegisters>();
    const int consumer = warpgroup - 1;
    for (int64_t work = blockIdx.x; work < fused.work_items; work += gridDim.x) {
      const QueryTilePlace place = place_query_rows(shape, fused.seqlens_q, fused.seqlens_k, fused.query_tiles,
                                                    block_rows, work, consumer * kBlockRows, warp, group);
      float o[kOutBlocks][4];
#pragma unroll
      for (int n = 0; n < kOutBlocks; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
      float row_max[2] = {-INFINITY, -INFINITY};
      float row_sum[2] = {0.0f, 0.0f};
      const int64_t key_steps = place.block_key_steps;
      if (key_steps > 0) {
        typename Block::ProducedTiles tiles{q_tiles + consumer * kTileElements,
                                            k_ring,
                                            v_ring,
                                            barriers,
                                            &barriers.q_full[consumer],
                                            &barriers.q_empty[consumer],
                                            q_rounds & 1u,
                                            loads,
                                            key_steps,
                                            last_padding_of(place.valid_k, shape.seq_k, key_steps)};
        // Every consumer runs the block's steps (its rows' later keys masked): a second path that only gives the
        // unread tiles back made ptxas spill 70-130 bytes a thread in the key steps.
        const StepRows<kOutBlocks> rows{o,   row_max, row_sum, place.key_end, warp_seen_key_end(place.key_end),
                                        key_of_score<Pattern>(0, 0, quad), lane};
        Engine::pipelined_key_steps(tiles, key_steps, shape.scale, rows);
        ++q_rounds;
      }
      store_output_rows<T>(fused, place, o, row_max, row_sum, quad);
      loads += key_steps;
    }
  }
#else
  (void)params;
  __trap();
#endif
}

template <typename T, int D>
WarpSpecializedKernels fused_attention_warp_specialized_kernels() {
  return WarpSpecializedKernels{attention_fused_warp_specialized_kernel<T, D, DFSS_PATTERN_DENSE>,
                                attention_fused_warp_specialized_kernel<T, D, DFSS_PATTERN_1_2>,
                                attention_fused_warp_specialized_kernel<T, D, DFSS_PATTERN_2_4>};
}

}  // namespace fused
}  // namespace dfss
