/*
 * dfss.h: the C ABI of libdfss, Dynamic N:M Fine-grained Structured Sparse attention on CUDA GPUs.
 *
 * This header is the one contract between the library and every language that calls it. It is plain C99,
 * needs no CUDA header, and every type in it has a fixed size.
 *
 * ---------------------------------------------------------------------------------------------------------
 * Semantics (every entry point, every backend)
 * ---------------------------------------------------------------------------------------------------------
 * Shapes: q [B, Hq, Nq, D], k [B, Hk, Nk, D], v [B, Hk, Nk, Dv], out [B, Hq, Nq, Dv], Hq % Hk == 0; query
 * head h reads kv head h / (Hq / Hk). Each tensor is addressed through four element strides (batch, head,
 * row, column); the column stride must be 1, so [B,H,N,D] and [B,N,H,D] buffers both work without copies.
 *
 * For each batch b, query head h and query row i:
 *   1. s_j = scale * (q_i . k_j) for every key j, accumulated in float32.
 *   2. Masks set s_j = -inf: keys j >= Nk_b (per-batch key length), and with causal masking every key with
 *      j > i + (Nk_b - Nq_b) (bottom-right aligned). Rows i >= Nq_b (per-batch query length) are fully
 *      masked.
 *   3. Pruning N:M: keys are split into groups [gM, gM+M) starting at key 0; positions past Nk count as
 *      -inf. In each group the N largest scores are kept; on equal scores the lower key index wins
 *      (-inf scores are ranked like any other value, so a group always keeps exactly N slots). The others
 *      become -inf. DFSS_PATTERN_DENSE skips this step.
 *   4. p_j = exp(s_j - max) / sum_l exp(s_l - max) over the kept, finite entries.
 *   5. out_i = sum_j p_j v_j, with p rounded to the input dtype before the product (as the tensor cores
 *      see it), accumulated in float32, written in the input dtype.
 *   6. A row with no finite score gives out_i = 0 (never NaN) and lse_i = -inf.
 *   7. lse_i = log(sum_l exp(s_l)) over the kept finite scores (natural log, float32), on request.
 *
 * Padding: rows of q (and of dout, in the backward) at or past Nq_b, and rows of k and v at or past Nk_b, are
 * never read; they may hold anything, NaN included, and every result is as if they held zeros. Inside the valid
 * rows, a non-finite value of q, k, v or dout makes the results that depend on it non-finite, as the steps above
 * give them; on the GPU, a result that does not depend on it may turn non-finite too where a tensor-core product
 * multiplies it by a weight of 0 (a key masked for a row, or pruned, in the same 64-key tile: 0 * NaN is NaN), as
 * in other tensor-core attention kernels. The CPU backend never reads masked or pruned entries.
 *
 * Patterns: DFSS_PATTERN_2_4 and DFSS_PATTERN_1_2 for float16 and bfloat16; DFSS_PATTERN_1_2 for float32
 * (the tensor cores' tf32 sparse mode, run in float32 accuracy: each float32 product is split as 3xTF32, so the
 * steps above hold as written); DFSS_PATTERN_DENSE for every dtype.
 *
 * ---------------------------------------------------------------------------------------------------------
 * Compressed layout (the staged operations)
 * ---------------------------------------------------------------------------------------------------------
 * With pattern N:M and G = ceil(Nk / M) groups per row, a compressed row holds C = G * N kept values (dense:
 * C = Nk, no metadata). Kept values of group g occupy slots [gN, gN + N) in ascending key order.
 *   values:   [B, Hq, Nq, C], contiguous, in the input dtype (float16, bfloat16 or float32). A slot whose
 *             key was masked, or lies past Nk, holds -inf after sddmm_prune (0 after softmax).
 *   metadata: [B, Hq, Nq, W] uint32 words, contiguous, W = ceil(C * b / 32), b = ceil(log2(M)) bits per
 *             kept value (M = 2: 1 bit, M = 4: 2 bits). The in-group index (0 .. M-1) of kept slot c of a
 *             row is stored in bits [c*b, c*b + b) of the row's bit stream, where bit t of the stream is
 *             bit (t % 32) of word t / 32 (least significant bit first). Unused trailing bits are 0.
 *             For 2:4 this is exactly the sparse tensor cores' metadata: 4 bits per group of 4 keys,
 *             index of the first kept key in the low 2 bits, of the second in the high 2 bits.
 *   lse:      [B, Hq, Nq] float32, contiguous (every entry point that takes one).
 *
 * ---------------------------------------------------------------------------------------------------------
 * Conventions
 * ---------------------------------------------------------------------------------------------------------
 * Every function returns a dfss_status. On failure, dfss_last_error_message() returns a message of the
 * calling thread that names the bad argument and what was expected; it stays valid until the thread's next
 * call into the library. Outputs are written only on success. Nothing the caller passes in is modified
 * except the documented outputs. Device pointers are CUDA device memory of the current device (from
 * dfss_malloc or any CUDA allocator). All work is ordered on the descriptor's (or the call's) stream; NULL
 * means the legacy default stream. Copies that touch host memory return once the host memory may be reused.
 *
 * The library links the CUDA runtime statically: it loads on machines without a GPU or a driver, and every
 * device function there returns DFSS_ERROR_NO_DEVICE.
 */
#ifndef DFSS_H
#define DFSS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define DFSS_API __declspec(dllexport)
#else
#define DFSS_API __attribute__((visibility("default")))
#endif

/* Version of this header. The ABI version changes whenever a struct layout or a signature changes. */
#define DFSS_VERSION_MAJOR 0
#define DFSS_VERSION_MINOR 3
#define DFSS_VERSION_PATCH 0
#define DFSS_ABI_VERSION 2

typedef enum dfss_status {
  DFSS_SUCCESS = 0,
  DFSS_ERROR_INVALID_ARGUMENT = 1, /* an argument is out of its documented range; the message names it */
  DFSS_ERROR_NO_DEVICE = 2,        /* no CUDA driver, no GPU, or a device index that does not exist */
  DFSS_ERROR_UNSUPPORTED = 3,      /* a valid combination this build or this GPU does not implement */
  DFSS_ERROR_OUT_OF_MEMORY = 4,    /* device memory exhausted */
  DFSS_ERROR_CUDA = 5,             /* any other CUDA runtime error; the message carries CUDA's text */
  DFSS_ERROR_INTERNAL = 6          /* a bug in the library */
} dfss_status;

typedef enum dfss_dtype {
  DFSS_DTYPE_FLOAT16 = 0,
  DFSS_DTYPE_BFLOAT16 = 1,
  DFSS_DTYPE_FLOAT32 = 2
} dfss_dtype;

typedef enum dfss_pattern {
  DFSS_PATTERN_DENSE = 0,
  DFSS_PATTERN_1_2 = 1,
  DFSS_PATTERN_2_4 = 2
} dfss_pattern;

typedef enum dfss_memcpy_kind {
  DFSS_MEMCPY_HOST_TO_DEVICE = 0,
  DFSS_MEMCPY_DEVICE_TO_HOST = 1,
  DFSS_MEMCPY_DEVICE_TO_DEVICE = 2
} dfss_memcpy_kind;

/* An opaque CUDA stream (a cudaStream_t). NULL is the legacy default stream. */
typedef void *dfss_stream;

/* ----- errors and version ----------------------------------------------------------------------------- */

/* A static, human-readable name of a status ("DFSS_ERROR_NO_DEVICE: ..."); never NULL. */
DFSS_API const char *dfss_status_string(dfss_status status);

/* The detailed message of the calling thread's last failed call, or "" after a success; never NULL. */
DFSS_API const char *dfss_last_error_message(void);

/* DFSS_VERSION_MAJOR * 10000 + DFSS_VERSION_MINOR * 100 + DFSS_VERSION_PATCH of the built library. */
DFSS_API int32_t dfss_version(void);

/* DFSS_ABI_VERSION of the built library; a caller compares it with the header it was written against. */
DFSS_API int32_t dfss_abi_version(void);

/* ----- devices ---------------------------------------------------------------------------------------- */

typedef struct dfss_device_info {
  char name[256];               /* NUL-terminated */
  int32_t compute_major;        /* compute capability */
  int32_t compute_minor;
  int32_t multiprocessor_count;
  int32_t sparse_tensor_cores;  /* 1 when mma.sp exists (compute capability 8.0 and later) */
  uint64_t total_memory_bytes;
  uint64_t free_memory_bytes;   /* at the time of the call */
} dfss_device_info;

/* Number of CUDA devices; returns DFSS_ERROR_NO_DEVICE (and *count = 0) where there is none. */
DFSS_API dfss_status dfss_device_count(int32_t *count);

DFSS_API dfss_status dfss_device_get_info(int32_t device, dfss_device_info *info);

/* Selects the current device of the calling thread. */
DFSS_API dfss_status dfss_device_set(int32_t device);
DFSS_API dfss_status dfss_device_get(int32_t *device);

DFSS_API dfss_status dfss_device_synchronize(void);

/* ----- memory and streams ----------------------------------------------------------------------------- */

/* Device allocation of `bytes` (> 0) bytes, 256-byte aligned. */
DFSS_API dfss_status dfss_malloc(void **ptr, uint64_t bytes);

/* Frees memory from dfss_malloc; NULL is allowed and does nothing. */
DFSS_API dfss_status dfss_free(void *ptr);

/* Copies `bytes` bytes on `stream`. Host-to-device and device-to-host copies return once the host buffer
 * may be reused (device-to-host: once the data is there); device-to-device copies are asynchronous. */
DFSS_API dfss_status dfss_memcpy(void *dst, const void *src, uint64_t bytes, dfss_memcpy_kind kind,
                                 dfss_stream stream);

/* Sets `bytes` bytes of device memory to the byte `value` on `stream` (asynchronous). */
DFSS_API dfss_status dfss_memset(void *dst, int32_t value, uint64_t bytes, dfss_stream stream);

DFSS_API dfss_status dfss_stream_create(dfss_stream *stream);
DFSS_API dfss_status dfss_stream_destroy(dfss_stream stream);
DFSS_API dfss_status dfss_stream_synchronize(dfss_stream stream);

/* ----- attention -------------------------------------------------------------------------------------- */

/* One descriptor for every attention entry point. Fill it with dfss_attention_desc_init, then change what
 * differs from the defaults. */
typedef struct dfss_attention_desc {
  uint32_t struct_size;    /* sizeof(dfss_attention_desc), set by dfss_attention_desc_init */
  int32_t dtype;           /* dfss_dtype of q, k, v, out and the compressed values */
  int32_t pattern;         /* dfss_pattern */
  int32_t causal;          /* 0 or 1: bottom-right aligned causal mask */
  int64_t batch;           /* B >= 1 */
  int64_t heads_q;         /* Hq >= 1 */
  int64_t heads_kv;        /* Hk >= 1, Hq % Hk == 0 */
  int64_t seq_q;           /* Nq >= 1 */
  int64_t seq_k;           /* Nk >= 1 */
  int64_t head_dim;        /* D >= 1 (q and k) */
  int64_t head_dim_v;      /* Dv >= 1 (v and out) */
  int64_t q_strides[4];    /* element strides of q for (batch, head, row, column); column stride == 1 */
  int64_t k_strides[4];
  int64_t v_strides[4];
  int64_t out_strides[4];
  float scale;             /* finite; dfss_attention_desc_init sets 1 / sqrt(head_dim) */
  int32_t reserved0;       /* must be 0 */
  const int32_t *seqlens_q; /* host array [B] of valid query lengths (0 <= Nq_b <= Nq), or NULL: all Nq */
  const int32_t *seqlens_k; /* host array [B] of valid key lengths (0 <= Nk_b <= Nk), or NULL: all Nk */
  dfss_stream stream;      /* stream of the work; NULL: the default stream */
} dfss_attention_desc;

/* Fills *desc for contiguous [B, H, N, D] tensors: strides of packed layouts, scale 1/sqrt(head_dim), no
 * mask, no lengths, default stream. Checks nothing but the pointer; the entry points check the rest. */
DFSS_API dfss_status dfss_attention_desc_init(dfss_attention_desc *desc, dfss_dtype dtype, dfss_pattern pattern,
                                              int64_t batch, int64_t heads_q, int64_t heads_kv, int64_t seq_q,
                                              int64_t seq_k, int64_t head_dim, int64_t head_dim_v);

/* Fused forward attention: out = DFSS-attention(q, k, v) (semantics above). lse may be NULL. */
DFSS_API dfss_status dfss_attention_forward(const dfss_attention_desc *desc, const void *q, const void *k,
                                            const void *v, void *out, float *lse);

/* Sizes of the compressed layout for desc: values per row (C) and metadata words per row (W, 0 for dense). */
DFSS_API dfss_status dfss_compressed_row_size(const dfss_attention_desc *desc, int64_t *values_per_row,
                                              int64_t *metadata_words_per_row);

/* Staged step 1 (SDDMM with pruning): compressed scaled, masked, pruned scores of q k^T and their metadata.
 * values: [B, Hq, Nq, C] in the input dtype; metadata: [B, Hq, Nq, W] uint32 (NULL only for dense). Uses
 * desc's q and k strides; v's are ignored. */
DFSS_API dfss_status dfss_sddmm_prune(const dfss_attention_desc *desc, const void *q, const void *k,
                                      void *values, uint32_t *metadata);

/* Staged step 2: softmax over each compressed row (steps 4 and 6), probabilities rounded to the dtype.
 * values_out may equal values_in (in place). lse may be NULL. */
DFSS_API dfss_status dfss_compressed_softmax(const dfss_attention_desc *desc, const void *values_in,
                                             void *values_out, float *lse);

/* Staged step 3 (SpMM): out = P v, with P the compressed probabilities and their metadata (NULL only for
 * dense). Uses desc's v and out strides; v is read at keys below Nk_b only (slots past it add nothing). */
DFSS_API dfss_status dfss_spmm(const dfss_attention_desc *desc, const void *probs, const uint32_t *metadata,
                               const void *v, void *out);

/* ----- the staged pipeline in one call -------------------------------------------------------------------
 * The three staged steps with the softmax folded into its neighbours: sddmm_prune's epilogue also keeps each
 * row's maximum, and spmm takes p = exp(s - max) as it loads the compressed scores, rounds it to the dtype for
 * the product, sums it, and divides by the sum at the end (step 5's flash-style rounding). The compressed scores
 * cross memory twice instead of four times. 2:4 and 1:2 rows short enough that two blocks of the one kernel fit a
 * multiprocessor's shared memory (D = Dv; at D = 64: N <= 1344 on compute capability 9.0, 896 on 8.0, 384 on 8.6
 * and 8.9) run both steps in that kernel, which keeps the compressed scores in shared memory, with the same
 * arithmetic and the same results: they do not cross memory at all, and the workspace goes unused.
 * Outputs are dfss_attention_forward's (out, and lse when not NULL), with the staged steps' one difference: the
 * kept scores are rounded to the dtype, as dfss_sddmm_prune stores them, before steps 4-7 (the N:M choice is
 * made on the float32 scores, as everywhere). float32 calls (no tensor-core softmax fold) and calls the
 * tensor-core kernels do not take run the three steps as dfss_sddmm_prune, dfss_compressed_softmax and dfss_spmm
 * do, in the workspace.
 */

/* Bytes of device workspace that dfss_attention_staged needs for desc (always > 0): the compressed values and
 * metadata, and a float32 per row. It depends only on the descriptor's sizes, dtype and pattern. Needs no device. */
DFSS_API dfss_status dfss_attention_staged_workspace_size(const dfss_attention_desc *desc, uint64_t *bytes);

/* Staged forward attention: out = DFSS-attention(q, k, v), lse may be NULL. workspace: device memory of
 * workspace_bytes >= dfss_attention_staged_workspace_size(desc) bytes, 16-byte aligned, used only during the
 * call's work on desc->stream; it must not overlap any input or output. */
DFSS_API dfss_status dfss_attention_staged(const dfss_attention_desc *desc, const void *q, const void *k,
                                           const void *v, void *out, float *lse, void *workspace,
                                           uint64_t workspace_bytes);

/* ----- backward ------------------------------------------------------------------------------------------
 * Gradients of the fused forward attention for training. The N:M selection is a constant of the forward pass:
 * gradients flow to the kept scores only, exactly as automatic differentiation of steps 1-7 above with the
 * selection held fixed. The backward recomputes each row's scores with the forward's arithmetic (step 1 above),
 * so it makes the forward's choice, and takes P from the forward's log-sum-exp. For each row i, with the
 * kept, finite scores s_ij (other keys have p_ij = 0 and receive no gradient):
 *   p_ij  = exp(s_ij - lse_i)
 *   D_i   = sum_d dout_id * out_id                      (the forward's out, as stored)
 *   dp_ij = sum_d dout_id * v_jd
 *   ds_ij = p_ij * (dp_ij - D_i)
 *   dq_i  = scale * sum_j ds_ij k_j
 *   dk_j  = scale * sum_i ds_ij q_i                     (over the rows of every query head of the kv head)
 *   dv_j  = sum_i p_ij dout_i                           (p rounded to the input dtype, as the forward used it)
 * With grouped-query attention, dk and dv of kv head g sum over the query heads that read it. Masks and
 * per-batch lengths are those of the forward (the same descriptor): rows with no finite score (lse_i = -inf)
 * give dq_i = 0 and add nothing; keys that no row keeps (masked, past Nk_b, pruned everywhere) get dk = dv = 0.
 * Every element of dq, dk and dv is written. Sums are float32, in an order fixed by the problem alone: the
 * same inputs give the same bits on every run (no atomics). Outputs are in the input dtype. (Kernels on tensor
 * cores may also round ds to the input dtype before its products with k and q, as they see it.)
 */

/* Element strides (batch, head, row, column; column stride 1) of the backward's gradient tensors. Pass NULL to
 * dfss_attention_backward to give each the strides of its counterpart in the descriptor: dout those of out, dq
 * of q, dk of k, dv of v. */
typedef struct dfss_backward_strides {
  int64_t dout_strides[4]; /* dout [B, Hq, Nq, Dv], the gradient of out */
  int64_t dq_strides[4];   /* dq   [B, Hq, Nq, D] */
  int64_t dk_strides[4];   /* dk   [B, Hk, Nk, D] */
  int64_t dv_strides[4];   /* dv   [B, Hk, Nk, Dv] */
} dfss_backward_strides;

/* Bytes of device workspace that dfss_attention_backward needs for desc (always > 0). It depends only on the
 * descriptor's sizes, dtype and pattern (not on the device, the strides or the lengths). Needs no device. */
DFSS_API dfss_status dfss_attention_backward_workspace_size(const dfss_attention_desc *desc, uint64_t *bytes);

/* Backward of dfss_attention_forward (semantics above) for the same desc, q, k, v, and the forward's out and
 * lse (both required). dout is the gradient of out; dq, dk and dv receive the gradients of q, k and v.
 * strides: the layouts of dout, dq, dk and dv, or NULL (see dfss_backward_strides). workspace: device memory of
 * workspace_bytes >= dfss_attention_backward_workspace_size(desc) bytes, 16-byte aligned, used only during the
 * call's work on desc->stream (it may be reused by later work on that stream). dq, dk, dv and the workspace must
 * not overlap one another or any input. */
DFSS_API dfss_status dfss_attention_backward(const dfss_attention_desc *desc, const dfss_backward_strides *strides,
                                             const void *q, const void *k, const void *v, const void *out,
                                             const void *dout, const float *lse, void *dq, void *dk, void *dv,
                                             void *workspace, uint64_t workspace_bytes);

#ifdef __cplusplus
}
#endif

#endif /* DFSS_H */
