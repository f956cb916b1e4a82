// Tensor maps through the runtime's driver entry point, so that the library links the CUDA runtime only.
#include "tensor_map.h"

#include <cuda_runtime_api.h>
#include <cudaTypedefs.h>

#include <cstdint>

#include "launch.h"

namespace dfss {
namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static const PFN_cuTensorMapEncodeTiled_v12000 function = [] {
    void *entry = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &entry, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      clear_stale_cuda_error();
      return static_cast<PFN_cuTensorMapEncodeTiled_v12000>(nullptr);
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(entry);
  }();
  return function;
}

constexpr cuuint32_t kPanelColumns = 64;  // one 128-byte swizzle row of 16-bit elements
constexpr cuuint32_t kTileRows = 64;

// A map of Rank dims (innermost first) over 16-bit elements; strides in elements for dims 1 .. Rank - 1.
template <int Rank>
bool encode(CUtensorMap *map, dfss_dtype dtype, const void *base, const cuuint64_t (&dims)[Rank],
            const int64_t (&strides)[Rank - 1], const cuuint32_t (&box)[Rank]) {
  const PFN_cuTensorMapEncodeTiled_v12000 function = encode_tiled();
  if (function == nullptr) return false;
  cuuint64_t stride_bytes[Rank - 1];
  for (int i = 0; i < Rank - 1; ++i) {
    if (strides[i] <= 0) return false;
    stride_bytes[i] = static_cast<cuuint64_t>(strides[i]) * 2;
    if (stride_bytes[i] % 16 != 0 || stride_bytes[i] >= (cuuint64_t{1} << 40)) return false;
  }
  for (int i = 0; i < Rank; ++i) {
    if (dims[i] == 0 || dims[i] > (cuuint64_t{1} << 32)) return false;
  }
  cuuint32_t element_strides[Rank];
  for (int i = 0; i < Rank; ++i) element_strides[i] = 1;
  const CUtensorMapDataType type =
      dtype == DFSS_DTYPE_FLOAT16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  return function(map, type, Rank, const_cast<void *>(base), dims, stride_bytes, box, element_strides,
                  CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                  CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// dims (column, row, head, batch): rows of a head as 64 x 64 boxes. A stride of a dimension of size 1 is never
// stepped over: any valid value stands in for it.
bool encode_rows(CUtensorMap *map, dfss_dtype dtype, const void *base, int64_t columns, int64_t rows, int64_t heads,
                 int64_t batch, const Strides4 &strides) {
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(columns), static_cast<cuuint64_t>(rows),
                              static_cast<cuuint64_t>(heads), static_cast<cuuint64_t>(batch)};
  const int64_t element_strides[3] = {rows > 1 ? strides.row : 8, heads > 1 ? strides.head : 8,
                                      batch > 1 ? strides.batch : 8};
  const cuuint32_t box[4] = {kPanelColumns, kTileRows, 1, 1};
  return encode<4>(map, dtype, base, dims, element_strides, box);
}

}  // namespace

bool attention_tensor_maps(const AttentionShape &shape, const void *q, const void *k, const void *v, CUtensorMap *q_map,
                           CUtensorMap *k_map, CUtensorMap *v_map) {
  if (shape.dtype != DFSS_DTYPE_FLOAT16 && shape.dtype != DFSS_DTYPE_BFLOAT16) return false;
  if (!encode_rows(q_map, shape.dtype, q, shape.head_dim, shape.seq_q, shape.heads_q, shape.batch, shape.q)) {
    return false;
  }
  if (!encode_rows(v_map, shape.dtype, v, shape.head_dim_v, shape.seq_k, shape.heads_kv, shape.batch, shape.v)) {
    return false;
  }
  if (is_dense(shape.layout)) {
    return encode_rows(k_map, shape.dtype, k, shape.head_dim, shape.seq_k, shape.heads_kv, shape.batch, shape.k);
  }
  if (shape.seq_k % 4 != 0) return false;
  const cuuint64_t dims[5] = {static_cast<cuuint64_t>(shape.head_dim), 4, static_cast<cuuint64_t>(shape.seq_k / 4),
                              static_cast<cuuint64_t>(shape.heads_kv), static_cast<cuuint64_t>(shape.batch)};
  const int64_t strides[4] = {shape.k.row, 4 * shape.k.row, shape.heads_kv > 1 ? shape.k.head : 8,
                              shape.batch > 1 ? shape.k.batch : 8};
  const cuuint32_t box[5] = {kPanelColumns, 2, 4, 1, 1};
  return encode<5>(k_map, shape.dtype, k, dims, strides, box);
}

}  // namespace dfss
