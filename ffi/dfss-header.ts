// cuda/include/dfss.h transcribed for koffi: its macros, enums, typedefs, structs and prototypes.
// test/ffi-header.test.ts parses the header and fails when anything here differs from it, so the bindings
// cannot drift from the C ABI. Prototypes are the header's text; `_Out_` marks the pointer arguments that a
// call fills in (koffi then copies the result back into the array or object passed), which the comparison
// ignores.

export const DFSS_VERSION_MAJOR = 0;
export const DFSS_VERSION_MINOR = 3;
export const DFSS_VERSION_PATCH = 0;
export const DFSS_ABI_VERSION = 2;

export const DFSS_ENUMS = {
  dfss_status: {
    DFSS_SUCCESS: 0,
    DFSS_ERROR_INVALID_ARGUMENT: 1,
    DFSS_ERROR_NO_DEVICE: 2,
    DFSS_ERROR_UNSUPPORTED: 3,
    DFSS_ERROR_OUT_OF_MEMORY: 4,
    DFSS_ERROR_CUDA: 5,
    DFSS_ERROR_INTERNAL: 6,
  },
  dfss_dtype: {
    DFSS_DTYPE_FLOAT16: 0,
    DFSS_DTYPE_BFLOAT16: 1,
    DFSS_DTYPE_FLOAT32: 2,
  },
  dfss_pattern: {
    DFSS_PATTERN_DENSE: 0,
    DFSS_PATTERN_1_2: 1,
    DFSS_PATTERN_2_4: 2,
  },
  dfss_memcpy_kind: {
    DFSS_MEMCPY_HOST_TO_DEVICE: 0,
    DFSS_MEMCPY_DEVICE_TO_HOST: 1,
    DFSS_MEMCPY_DEVICE_TO_DEVICE: 2,
  },
} as const;

/** typedef name -> the C type it names. */
export const DFSS_TYPEDEFS = {
  dfss_stream: 'void *',
} as const;

/** Each struct's fields in declaration order, as [C type, name]; arrays as `type[length]`. */
export const DFSS_STRUCTS = {
  dfss_device_info: [
    ['char[256]', 'name'],
    ['int32_t', 'compute_major'],
    ['int32_t', 'compute_minor'],
    ['int32_t', 'multiprocessor_count'],
    ['int32_t', 'sparse_tensor_cores'],
    ['uint64_t', 'total_memory_bytes'],
    ['uint64_t', 'free_memory_bytes'],
  ],
  dfss_attention_desc: [
    ['uint32_t', 'struct_size'],
    ['int32_t', 'dtype'],
    ['int32_t', 'pattern'],
    ['int32_t', 'causal'],
    ['int64_t', 'batch'],
    ['int64_t', 'heads_q'],
    ['int64_t', 'heads_kv'],
    ['int64_t', 'seq_q'],
    ['int64_t', 'seq_k'],
    ['int64_t', 'head_dim'],
    ['int64_t', 'head_dim_v'],
    ['int64_t[4]', 'q_strides'],
    ['int64_t[4]', 'k_strides'],
    ['int64_t[4]', 'v_strides'],
    ['int64_t[4]', 'out_strides'],
    ['float', 'scale'],
    ['int32_t', 'reserved0'],
    ['const int32_t *', 'seqlens_q'],
    ['const int32_t *', 'seqlens_k'],
    ['dfss_stream', 'stream'],
  ],
  dfss_backward_strides: [
    ['int64_t[4]', 'dout_strides'],
    ['int64_t[4]', 'dq_strides'],
    ['int64_t[4]', 'dk_strides'],
    ['int64_t[4]', 'dv_strides'],
  ],
} as const satisfies Record<string, ReadonlyArray<readonly [string, string]>>;

/** Every DFSS_API function by name, in header order. */
export const DFSS_PROTOTYPES = {
  dfss_status_string: 'const char *dfss_status_string(dfss_status status)',
  dfss_last_error_message: 'const char *dfss_last_error_message(void)',
  dfss_version: 'int32_t dfss_version(void)',
  dfss_abi_version: 'int32_t dfss_abi_version(void)',
  dfss_device_count: 'dfss_status dfss_device_count(_Out_ int32_t *count)',
  dfss_device_get_info: 'dfss_status dfss_device_get_info(int32_t device, _Out_ dfss_device_info *info)',
  dfss_device_set: 'dfss_status dfss_device_set(int32_t device)',
  dfss_device_get: 'dfss_status dfss_device_get(_Out_ int32_t *device)',
  dfss_device_synchronize: 'dfss_status dfss_device_synchronize(void)',
  dfss_malloc: 'dfss_status dfss_malloc(_Out_ void **ptr, uint64_t bytes)',
  dfss_free: 'dfss_status dfss_free(void *ptr)',
  dfss_memcpy:
    'dfss_status dfss_memcpy(void *dst, const void *src, uint64_t bytes, dfss_memcpy_kind kind, ' +
    'dfss_stream stream)',
  dfss_memset: 'dfss_status dfss_memset(void *dst, int32_t value, uint64_t bytes, dfss_stream stream)',
  dfss_stream_create: 'dfss_status dfss_stream_create(_Out_ dfss_stream *stream)',
  dfss_stream_destroy: 'dfss_status dfss_stream_destroy(dfss_stream stream)',
  dfss_stream_synchronize: 'dfss_status dfss_stream_synchronize(dfss_stream stream)',
  dfss_attention_desc_init:
    'dfss_status dfss_attention_desc_init(_Out_ dfss_attention_desc *desc, dfss_dtype dtype, ' +
    'dfss_pattern pattern, int64_t batch, int64_t heads_q, int64_t heads_kv, int64_t seq_q, ' +
    'int64_t seq_k, int64_t head_dim, int64_t head_dim_v)',
  dfss_attention_forward:
    'dfss_status dfss_attention_forward(const dfss_attention_desc *desc, const void *q, const void *k, ' +
    'const void *v, void *out, float *lse)',
  dfss_compressed_row_size:
    'dfss_status dfss_compressed_row_size(const dfss_attention_desc *desc, ' +
    '_Out_ int64_t *values_per_row, _Out_ int64_t *metadata_words_per_row)',
  dfss_sddmm_prune:
    'dfss_status dfss_sddmm_prune(const dfss_attention_desc *desc, const void *q, const void *k, ' +
    'void *values, uint32_t *metadata)',
  dfss_compressed_softmax:
    'dfss_status dfss_compressed_softmax(const dfss_attention_desc *desc, const void *values_in, ' +
    'void *values_out, float *lse)',
  dfss_spmm:
    'dfss_status dfss_spmm(const dfss_attention_desc *desc, const void *probs, const uint32_t *metadata, ' +
    'const void *v, void *out)',
  dfss_attention_staged_workspace_size:
    'dfss_status dfss_attention_staged_workspace_size(const dfss_attention_desc *desc, _Out_ uint64_t *bytes)',
  dfss_attention_staged:
    'dfss_status dfss_attention_staged(const dfss_attention_desc *desc, const void *q, const void *k, ' +
    'const void *v, void *out, float *lse, void *workspace, uint64_t workspace_bytes)',
  dfss_attention_backward_workspace_size:
    'dfss_status dfss_attention_backward_workspace_size(const dfss_attention_desc *desc, _Out_ uint64_t *bytes)',
  dfss_attention_backward:
    'dfss_status dfss_attention_backward(const dfss_attention_desc *desc, const dfss_backward_strides *strides, ' +
    'const void *q, const void *k, const void *v, const void *out, const void *dout, const float *lse, ' +
    'void *dq, void *dk, void *dv, void *workspace, uint64_t workspace_bytes)',
} as const;
