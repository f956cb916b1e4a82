/*
 * test_abi.c: checks libdfss through its C ABI, as any other program that links it would.
 *
 * Everywhere: version and ABI numbers, status strings, the last error message, descriptor defaults, compressed
 * row sizes, that invalid descriptors and arguments are refused with a message naming the field, and that
 * device functions answer DFSS_ERROR_NO_DEVICE where dfss_device_count finds no device.
 * Where a GPU exists: device queries, memory and streams, refusal of host pointers, and dense attention in
 * float32 and float16, fused and staged (grouped-query heads, causal, per-batch lengths, log-sum-exp), and its
 * backward against a naive double-precision computation, with every output poisoned first.
 *
 * Prints one line per failed check, 'skipped: ...' lines for what cannot run here, and closes with
 * 'N passed, N failed'. Exits non-zero when a check failed.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dfss.h"

static int passed_count = 0;
static int failed_count = 0;
static int skipped_count = 0;

static void check(int ok, const char *what, int line) {
  if (ok) {
    ++passed_count;
  } else {
    ++failed_count;
    printf("FAIL (line %d): %s\n", line, what);
  }
}

#define CHECK(condition) check((condition) != 0, #condition, __LINE__)

/* `got` must be `want`, and the last error message must contain `message_part` (NULL: any message, "" after
 * success). */
static void check_status(dfss_status got, dfss_status want, const char *message_part, const char *call, int line) {
  const char *message = dfss_last_error_message();
  int ok = got == want && message != NULL;
  if (ok && want == DFSS_SUCCESS) ok = message[0] == '\0';
  if (ok && want != DFSS_SUCCESS) ok = message[0] != '\0' && (message_part == NULL || strstr(message, message_part));
  if (ok) {
    ++passed_count;
    return;
  }
  ++failed_count;
  printf("FAIL (line %d): %s\n  expected %s with a message containing \"%s\"\n  got %s, message \"%s\"\n", line, call,
         dfss_status_string(want), message_part != NULL ? message_part : "", dfss_status_string(got),
         message != NULL ? message : "(NULL)");
}

#define CHECK_STATUS(call, want, message_part) check_status((call), (want), (message_part), #call, __LINE__)

static void skip(const char *what) {
  ++skipped_count;
  printf("skipped: %s\n", what);
}

/* ----- descriptors -------------------------------------------------------------------------------------- */

static dfss_attention_desc make_desc(dfss_dtype dtype, dfss_pattern pattern) {
  dfss_attention_desc desc;
  dfss_status status = dfss_attention_desc_init(&desc, dtype, pattern, 2, 4, 2, 8, 128, 64, 32);
  CHECK(status == DFSS_SUCCESS);
  return desc;
}

static void test_version_and_status_strings(void) {
  static const dfss_status statuses[] = {DFSS_SUCCESS,           DFSS_ERROR_INVALID_ARGUMENT, DFSS_ERROR_NO_DEVICE,
                                         DFSS_ERROR_UNSUPPORTED, DFSS_ERROR_OUT_OF_MEMORY,   DFSS_ERROR_CUDA,
                                         DFSS_ERROR_INTERNAL};
  static const char *const names[] = {"DFSS_SUCCESS",           "DFSS_ERROR_INVALID_ARGUMENT", "DFSS_ERROR_NO_DEVICE",
                                      "DFSS_ERROR_UNSUPPORTED", "DFSS_ERROR_OUT_OF_MEMORY",   "DFSS_ERROR_CUDA",
                                      "DFSS_ERROR_INTERNAL"};
  size_t i;
  CHECK(dfss_version() == DFSS_VERSION_MAJOR * 10000 + DFSS_VERSION_MINOR * 100 + DFSS_VERSION_PATCH);
  CHECK(dfss_abi_version() == DFSS_ABI_VERSION);
  for (i = 0; i < sizeof statuses / sizeof statuses[0]; ++i) {
    const char *text = dfss_status_string(statuses[i]);
    CHECK(text != NULL && strncmp(text, names[i], strlen(names[i])) == 0 && text[strlen(names[i])] == ':');
  }
  CHECK(dfss_status_string((dfss_status)99) != NULL);
  CHECK(strstr(dfss_status_string((dfss_status)99), "UNKNOWN") != NULL);
  CHECK(dfss_status_string((dfss_status)-1) != NULL);
}

static void test_last_error_message(void) {
  dfss_attention_desc desc;
  CHECK(dfss_last_error_message() != NULL);
  CHECK_STATUS(dfss_attention_desc_init(NULL, DFSS_DTYPE_FLOAT16, DFSS_PATTERN_2_4, 1, 1, 1, 1, 1, 1, 1),
               DFSS_ERROR_INVALID_ARGUMENT, "desc: expected");
  /* the message stays until the next call; querying it twice is no call that clears it */
  CHECK(strstr(dfss_last_error_message(), "desc") != NULL);
  CHECK(strstr(dfss_last_error_message(), "desc") != NULL);
  CHECK_STATUS(dfss_attention_desc_init(&desc, DFSS_DTYPE_FLOAT16, DFSS_PATTERN_2_4, 1, 1, 1, 1, 1, 1, 1), DFSS_SUCCESS,
               "");
  CHECK(strcmp(dfss_last_error_message(), "") == 0);
}

static void test_desc_init_defaults(void) {
  dfss_attention_desc desc;
  memset(&desc, 0x5A, sizeof desc);
  CHECK_STATUS(dfss_attention_desc_init(&desc, DFSS_DTYPE_BFLOAT16, DFSS_PATTERN_1_2, 2, 8, 2, 100, 300, 64, 48),
               DFSS_SUCCESS, "");
  CHECK(desc.struct_size == sizeof(dfss_attention_desc));
  CHECK(desc.dtype == DFSS_DTYPE_BFLOAT16 && desc.pattern == DFSS_PATTERN_1_2 && desc.causal == 0);
  CHECK(desc.batch == 2 && desc.heads_q == 8 && desc.heads_kv == 2 && desc.seq_q == 100 && desc.seq_k == 300);
  CHECK(desc.head_dim == 64 && desc.head_dim_v == 48);
  CHECK(desc.q_strides[0] == 8 * 100 * 64 && desc.q_strides[1] == 100 * 64 && desc.q_strides[2] == 64 &&
        desc.q_strides[3] == 1);
  CHECK(desc.k_strides[0] == 2 * 300 * 64 && desc.k_strides[1] == 300 * 64 && desc.k_strides[2] == 64 &&
        desc.k_strides[3] == 1);
  CHECK(desc.v_strides[0] == 2 * 300 * 48 && desc.v_strides[1] == 300 * 48 && desc.v_strides[2] == 48 &&
        desc.v_strides[3] == 1);
  CHECK(desc.out_strides[0] == 8 * 100 * 48 && desc.out_strides[1] == 100 * 48 && desc.out_strides[2] == 48 &&
        desc.out_strides[3] == 1);
  CHECK(desc.scale == (float)(1.0 / sqrt(64.0)));
  CHECK(desc.reserved0 == 0 && desc.seqlens_q == NULL && desc.seqlens_k == NULL && desc.stream == NULL);
}

static void check_row_size(dfss_pattern pattern, int64_t seq_k, int64_t want_values, int64_t want_words, int line) {
  dfss_attention_desc desc;
  int64_t values = -1;
  int64_t words = -1;
  dfss_attention_desc_init(&desc, DFSS_DTYPE_FLOAT16, pattern, 1, 1, 1, 1, seq_k, 16, 16);
  check_status(dfss_compressed_row_size(&desc, &values, &words), DFSS_SUCCESS, "", "dfss_compressed_row_size", line);
  if (values != want_values || words != want_words) {
    ++failed_count;
    printf("FAIL (line %d): pattern %d, Nk %lld: expected C = %lld, W = %lld, got C = %lld, W = %lld\n", line,
           (int)pattern, (long long)seq_k, (long long)want_values, (long long)want_words, (long long)values,
           (long long)words);
  } else {
    ++passed_count;
  }
}

static void test_compressed_row_size(void) {
  dfss_attention_desc desc = make_desc(DFSS_DTYPE_FLOAT16, DFSS_PATTERN_2_4);
  int64_t values = 0;
  int64_t words = 0;
  /* C = ceil(Nk / M) * N, W = ceil(C * b / 32) */
  check_row_size(DFSS_PATTERN_DENSE, 1000, 1000, 0, __LINE__);
  check_row_size(DFSS_PATTERN_2_4, 1, 2, 1, __LINE__);
  check_row_size(DFSS_PATTERN_2_4, 17, 10, 1, __LINE__);
  check_row_size(DFSS_PATTERN_2_4, 1000, 500, 32, __LINE__);
  check_row_size(DFSS_PATTERN_2_4, 4096, 2048, 128, __LINE__);
  check_row_size(DFSS_PATTERN_1_2, 3, 2, 1, __LINE__);
  check_row_size(DFSS_PATTERN_1_2, 1000, 500, 16, __LINE__);
  check_row_size(DFSS_PATTERN_1_2, 65, 33, 2, __LINE__);
  CHECK_STATUS(dfss_compressed_row_size(&desc, NULL, &words), DFSS_ERROR_INVALID_ARGUMENT, "values_per_row");
  CHECK_STATUS(dfss_compressed_row_size(&desc, &values, NULL), DFSS_ERROR_INVALID_ARGUMENT, "metadata_words_per_row");
}

/* ----- invalid descriptors: refused on the host, before any device is looked for -------------------------- */

/* dfss_attention_backward on made-up, aligned, distinct addresses with a large enough workspace size: it must
 * refuse `desc` with `want` and `message_part`. */
static void check_backward_refused(const dfss_attention_desc *desc, dfss_status want, const char *message_part,
                                   int line) {
  char *base = (char *)(uintptr_t)0x100000;
  check_status(dfss_attention_backward(desc, NULL, base, base + 0x10000, base + 0x20000, base + 0x30000,
                                       base + 0x40000, (const float *)(base + 0x50000), base + 0x60000,
                                       base + 0x70000, base + 0x80000, base + 0x90000, UINT64_MAX),
               want, message_part, "dfss_attention_backward", line);
}

/* dfss_attention_staged on made-up, aligned, distinct addresses with a large enough workspace size: it must
 * refuse `desc` with `want` and `message_part`. */
static void check_staged_refused(const dfss_attention_desc *desc, dfss_status want, const char *message_part,
                                 int line) {
  char *base = (char *)(uintptr_t)0x100000;
  check_status(dfss_attention_staged(desc, base, base + 0x10000, base + 0x20000, base + 0x30000,
                                     (float *)(base + 0x40000), base + 0x50000, UINT64_MAX),
               want, message_part, "dfss_attention_staged", line);
}

/* Runs every entry point that takes a descriptor; each must refuse `desc` with `want` and `message_part`. */
static void check_desc_refused(const dfss_attention_desc *desc, dfss_status want, const char *message_part, int line) {
  /* distinct, aligned, non-NULL addresses; validation rejects the descriptor before they are touched */
  void *q = (void *)(uintptr_t)0x10000;
  void *k = (void *)(uintptr_t)0x20000;
  void *v = (void *)(uintptr_t)0x30000;
  void *out = (void *)(uintptr_t)0x40000;
  uint32_t *metadata = (uint32_t *)(uintptr_t)0x50000;
  int64_t values_per_row = 0;
  int64_t words = 0;
  check_status(dfss_attention_forward(desc, q, k, v, out, NULL), want, message_part, "dfss_attention_forward", line);
  check_status(dfss_sddmm_prune(desc, q, k, out, metadata), want, message_part, "dfss_sddmm_prune", line);
  check_status(dfss_compressed_softmax(desc, q, out, NULL), want, message_part, "dfss_compressed_softmax", line);
  check_status(dfss_spmm(desc, q, metadata, v, out), want, message_part, "dfss_spmm", line);
  check_status(dfss_compressed_row_size(desc, &values_per_row, &words), want, message_part,
               "dfss_compressed_row_size", line);
  check_backward_refused(desc, want, message_part, line);
  check_staged_refused(desc, want, message_part, line);
  {
    uint64_t bytes = 0;
    check_status(dfss_attention_backward_workspace_size(desc, &bytes), want, message_part,
                 "dfss_attention_backward_workspace_size", line);
    check_status(dfss_attention_staged_workspace_size(desc, &bytes), want, message_part,
                 "dfss_attention_staged_workspace_size", line);
  }
}

/* Runs the entry points whose descriptor use includes a tensor's strides or the lengths. */
static void check_forward_refused(const dfss_attention_desc *desc, const char *message_part, int line) {
  void *p = (void *)(uintptr_t)0x10000;
  check_status(dfss_attention_forward(desc, p, p, p, p, NULL), DFSS_ERROR_INVALID_ARGUMENT, message_part,
               "dfss_attention_forward", line);
  check_backward_refused(desc, DFSS_ERROR_INVALID_ARGUMENT, message_part, line);
  check_staged_refused(desc, DFSS_ERROR_INVALID_ARGUMENT, message_part, line);
}

static void test_invalid_descriptors(void) {
  const dfss_attention_desc valid = make_desc(DFSS_DTYPE_FLOAT16, DFSS_PATTERN_2_4);
  dfss_attention_desc desc;
  int32_t seqlens[2] = {8, 128};

  check_desc_refused(NULL, DFSS_ERROR_INVALID_ARGUMENT, "desc: expected a pointer", __LINE__);

  desc = valid;
  desc.struct_size = 0;
  check_desc_refused(&desc, DFSS_ERROR_INVALID_ARGUMENT, "desc->struct_size: expected", __LINE__);
  desc = valid;
  desc.reserved0 = 1;
  check_desc_refused(&desc, DFSS_ERROR_INVALID_ARGUMENT, "desc->reserved0: expected 0, got 1", __LINE__);
  desc = valid;
  desc.dtype = 7;
  check_desc_refused(&desc, DFSS_ERROR_INVALID_ARGUMENT, "desc->dtype: expected", __LINE__);
  desc = valid;
  desc.pattern = 9;
  check_desc_refused(&desc, DFSS_ERROR_INVALID_ARGUMENT, "desc->pattern: expected", __LINE__);
  desc = valid;
  desc.dtype = DFSS_DTYPE_FLOAT32;
  check_desc_refused(&desc, DFSS_ERROR_UNSUPPORTED,
                     "desc->pattern: DFSS_PATTERN_2_4 is not available for float32 inputs (use DFSS_PATTERN_1_2 or "
                     "DFSS_PATTERN_DENSE)",
                     __LINE__);
  desc = valid;
  desc.causal = 2;
  check_desc_refused(&desc, DFSS_ERROR_INVALID_ARGUMENT, "desc->causal: expected 0 or 1, got 2", __LINE__);
  desc = valid;
  desc.batch = 0;
  check_desc_refused(&desc, DFSS_ERROR_INVALID_ARGUMENT, "desc->batch: expected 1 <= value", __LINE__);
  desc = valid;
  desc.seq_k = -1;
  check_desc_refused(&desc, DFSS_ERROR_INVALID_ARGUMENT, "desc->seq_k: expected 1 <= value", __LINE__);
  desc = valid;
  desc.head_dim = (int64_t)1 << 40;
  check_desc_refused(&desc, DFSS_ERROR_INVALID_ARGUMENT, "desc->head_dim: expected 1 <= value", __LINE__);
  desc = valid;
  desc.head_dim_v = 0;
  check_desc_refused(&desc, DFSS_ERROR_INVALID_ARGUMENT, "desc->head_dim_v: expected 1 <= value", __LINE__);
  desc = valid;
  desc.heads_q = 6;
  desc.heads_kv = 4;
  check_desc_refused(&desc, DFSS_ERROR_INVALID_ARGUMENT, "desc->heads_q: expected a multiple of desc->heads_kv (4), got 6",
                     __LINE__);
  desc = valid;
  desc.scale = (float)NAN;
  check_desc_refused(&desc, DFSS_ERROR_INVALID_ARGUMENT, "desc->scale: expected a finite number", __LINE__);
  desc = valid;
  desc.scale = (float)INFINITY;
  check_desc_refused(&desc, DFSS_ERROR_INVALID_ARGUMENT, "desc->scale: expected a finite number", __LINE__);
  {
    /* sizes each in range whose compressed values [B, Hq, Nq, C] exceed int64 bytes (softmax and row size
     * read no strides, so the size check is what refuses them) */
    void *p = (void *)(uintptr_t)0x10000;
    int64_t values = 0, words = 0;
    desc = valid;
    desc.batch = INT32_MAX;
    desc.heads_q = INT32_MAX;
    desc.heads_kv = 1;
    desc.seq_q = INT32_MAX;
    desc.seq_k = INT32_MAX;
    CHECK_STATUS(dfss_compressed_row_size(&desc, &values, &words), DFSS_ERROR_INVALID_ARGUMENT,
                 "desc: expected a problem whose compressed values");
    CHECK_STATUS(dfss_compressed_softmax(&desc, p, p, NULL), DFSS_ERROR_INVALID_ARGUMENT,
                 "desc: expected a problem whose compressed values");
    {
      /* compressed values that fit, but query rows whose backward workspace (a float each) would not */
      uint64_t bytes = 0;
      desc.heads_q = (int64_t)1 << 27; /* 2^58 rows of one key */
      desc.seq_q = 1;
      desc.seq_k = 1;
      desc.pattern = DFSS_PATTERN_DENSE;
      CHECK_STATUS(dfss_compressed_row_size(&desc, &values, &words), DFSS_SUCCESS, "");
      CHECK_STATUS(dfss_attention_backward_workspace_size(&desc, &bytes), DFSS_ERROR_INVALID_ARGUMENT,
                   "desc: expected a problem whose backward workspace fits in 2^64 - 1 bytes");
      /* eight keys a row: compressed values of 2^62 bytes fit int64, but not the staged workspace's bound */
      desc.seq_k = 8;
      CHECK_STATUS(dfss_compressed_row_size(&desc, &values, &words), DFSS_SUCCESS, "");
      CHECK_STATUS(dfss_attention_staged_workspace_size(&desc, &bytes), DFSS_ERROR_INVALID_ARGUMENT,
                   "desc: expected a problem whose staged workspace fits in 2^64 - 1 bytes");
    }
  }

  /* strides, checked by the entry points that read the tensor */
  desc = valid;
  desc.q_strides[3] = 2;
  check_forward_refused(&desc, "desc->q_strides[3]: expected 1 (the column must be contiguous), got 2", __LINE__);
  desc = valid;
  desc.k_strides[1] = -64;
  check_forward_refused(&desc, "desc->k_strides[1]: expected a value >= 0, got -64", __LINE__);
  desc = valid;
  desc.v_strides[0] = INT64_MAX / 2;
  check_forward_refused(&desc, "desc->v_strides: expected strides whose largest byte offset", __LINE__);
  desc = valid;
  desc.out_strides[2] = 0; /* every row of out at the same address */
  check_forward_refused(&desc, "desc->out_strides: expected strides that give every element", __LINE__);
  desc = valid;
  desc.out_strides[1] = 32; /* heads interleaved with rows: [B, N, H, D] would be 4 * 32 for rows, 32 for heads */
  check_forward_refused(&desc, "desc->out_strides", __LINE__);
  desc = valid; /* [B, N, H, D] output: rows step over all heads */
  desc.out_strides[1] = 32;
  desc.out_strides[2] = 4 * 32;
  CHECK_STATUS(dfss_compressed_row_size(&desc, &(int64_t){0}, &(int64_t){0}), DFSS_SUCCESS, "");

  /* per-batch lengths, host arrays read on the host */
  desc = valid;
  seqlens[1] = 200;
  desc.seqlens_k = seqlens;
  check_forward_refused(&desc, "desc->seqlens_k[1]: expected 0 <= value <= seq_k (128), got 200", __LINE__);
  desc = valid;
  seqlens[0] = -1;
  desc.seqlens_q = seqlens;
  check_forward_refused(&desc, "desc->seqlens_q[0]: expected 0 <= value <= seq_q (8), got -1", __LINE__);
}

static void test_invalid_pointers(void) {
  const dfss_attention_desc desc = make_desc(DFSS_DTYPE_FLOAT16, DFSS_PATTERN_2_4);
  const dfss_attention_desc dense = make_desc(DFSS_DTYPE_FLOAT16, DFSS_PATTERN_DENSE);
  void *p = (void *)(uintptr_t)0x10000;
  void *odd = (void *)(uintptr_t)0x10001;
  uint32_t *misaligned_words = (uint32_t *)(uintptr_t)0x10002;
  int device_count = 0;
  const dfss_status device_status = dfss_device_count(&device_count);
  const dfss_status valid_call_status = device_status == DFSS_SUCCESS ? DFSS_ERROR_INVALID_ARGUMENT : device_status;

  CHECK_STATUS(dfss_attention_forward(&desc, NULL, p, p, p, NULL), DFSS_ERROR_INVALID_ARGUMENT,
               "q: expected a device pointer, got NULL");
  CHECK_STATUS(dfss_attention_forward(&desc, p, NULL, p, p, NULL), DFSS_ERROR_INVALID_ARGUMENT, "k: expected");
  CHECK_STATUS(dfss_attention_forward(&desc, p, p, NULL, p, NULL), DFSS_ERROR_INVALID_ARGUMENT, "v: expected");
  CHECK_STATUS(dfss_attention_forward(&desc, p, p, p, NULL, NULL), DFSS_ERROR_INVALID_ARGUMENT, "out: expected");
  CHECK_STATUS(dfss_attention_forward(&desc, odd, p, p, p, NULL), DFSS_ERROR_INVALID_ARGUMENT,
               "q: expected an address that is a multiple of 2 bytes");
  CHECK_STATUS(dfss_attention_forward(&desc, p, p, p, p, (float *)odd), DFSS_ERROR_INVALID_ARGUMENT,
               "lse: expected an address that is a multiple of 4 bytes");
  CHECK_STATUS(dfss_sddmm_prune(&desc, p, p, p, NULL), DFSS_ERROR_INVALID_ARGUMENT,
               "metadata: expected a device pointer (it may be NULL only for DFSS_PATTERN_DENSE)");
  CHECK_STATUS(dfss_sddmm_prune(&desc, p, p, p, misaligned_words), DFSS_ERROR_INVALID_ARGUMENT,
               "metadata: expected an address that is a multiple of 4 bytes");
  CHECK_STATUS(dfss_sddmm_prune(&desc, p, p, NULL, (uint32_t *)p), DFSS_ERROR_INVALID_ARGUMENT, "values: expected");
  CHECK_STATUS(dfss_compressed_softmax(&desc, NULL, p, NULL), DFSS_ERROR_INVALID_ARGUMENT, "values_in: expected");
  CHECK_STATUS(dfss_compressed_softmax(&desc, p, NULL, NULL), DFSS_ERROR_INVALID_ARGUMENT, "values_out: expected");
  CHECK_STATUS(dfss_spmm(&desc, NULL, (uint32_t *)p, p, p), DFSS_ERROR_INVALID_ARGUMENT, "probs: expected");
  CHECK_STATUS(dfss_spmm(&desc, p, NULL, p, p), DFSS_ERROR_INVALID_ARGUMENT, "metadata: expected");

  /* Past the host checks: NO_DEVICE without a GPU; with one, the made-up addresses are not device memory. */
  CHECK_STATUS(dfss_spmm(&dense, p, NULL, p, p), valid_call_status, NULL);
  CHECK_STATUS(dfss_sddmm_prune(&dense, p, p, p, NULL), valid_call_status, NULL);
  {
    /* the softmax reads no tensor strides, so strides it does not use are not checked */
    dfss_attention_desc unused_strides = desc;
    unused_strides.q_strides[3] = 5;
    CHECK_STATUS(dfss_compressed_softmax(&unused_strides, p, p, NULL), valid_call_status, NULL);
  }
}

/* ----- backward arguments: refused on the host where no device is needed --------------------------------- */

/* A workspace size query (dfss_attention_backward_workspace_size, dfss_attention_staged_workspace_size) on desc:
 * host only, > 0, the same whatever the masks and strides, larger with more query rows and then at least
 * `row_bytes` a row. Returns the size for desc. */
static uint64_t check_workspace_size_query(dfss_status (*size_query)(const dfss_attention_desc *, uint64_t *),
                                           const char *name, const dfss_attention_desc *desc, uint64_t row_bytes,
                                           int line) {
  int32_t lengths[2] = {3, 100};
  uint64_t bytes = 0, other_bytes = 0;
  dfss_attention_desc other;
  check_status(size_query(desc, NULL), DFSS_ERROR_INVALID_ARGUMENT, "bytes: expected a pointer to a uint64_t, got NULL",
               name, line);
  check_status(size_query(desc, &bytes), DFSS_SUCCESS, "", name, line);
  check(bytes > 0, "the workspace size is > 0", line);
  other = *desc;
  other.causal = 1;
  other.seqlens_k = lengths;
  other.q_strides[3] = 7; /* strides are not read by the size query */
  check_status(size_query(&other, &other_bytes), DFSS_SUCCESS, "", name, line);
  check(other_bytes == bytes, "masks and strides leave the workspace size as it is", line);
  other = *desc;
  other.seq_q = 1000;
  check_status(size_query(&other, &other_bytes), DFSS_SUCCESS, "", name, line);
  check(other_bytes > bytes && other_bytes >= (uint64_t)(other.batch * other.heads_q * other.seq_q) * row_bytes,
        "the workspace size grows with the query rows", line);
  return bytes;
}

/* The strides of desc's tensors as a dfss_backward_strides (what NULL stands for). */
static dfss_backward_strides strides_of(const dfss_attention_desc *desc) {
  dfss_backward_strides strides;
  memcpy(strides.dout_strides, desc->out_strides, sizeof strides.dout_strides);
  memcpy(strides.dq_strides, desc->q_strides, sizeof strides.dq_strides);
  memcpy(strides.dk_strides, desc->k_strides, sizeof strides.dk_strides);
  memcpy(strides.dv_strides, desc->v_strides, sizeof strides.dv_strides);
  return strides;
}

static void test_backward_arguments(void) {
  const dfss_attention_desc desc = make_desc(DFSS_DTYPE_FLOAT16, DFSS_PATTERN_2_4);
  /* q, k, v, out, dout, lse, dq, dk, dv, workspace: distinct, aligned, made-up addresses */
  char *base = (char *)(uintptr_t)0x100000;
  void *t[10];
  const float *lse = (const float *)(base + 0x50000);
  uint64_t bytes;
  int device_count = 0;
  const dfss_status device_status = dfss_device_count(&device_count);
  const dfss_status valid_call_status = device_status == DFSS_SUCCESS ? DFSS_ERROR_INVALID_ARGUMENT : device_status;
  dfss_backward_strides strides;
  dfss_attention_desc other;
  int i;
  for (i = 0; i < 10; ++i) t[i] = base + 0x10000 * i;

#define BACKWARD(d, s, q, k, v, out, dout, lse_, dq, dk, dv, ws, ws_bytes) \
  dfss_attention_backward((d), (s), (q), (k), (v), (out), (dout), (lse_), (dq), (dk), (dv), (ws), (ws_bytes))

  /* the workspace size: a float per query row at least */
  bytes = check_workspace_size_query(dfss_attention_backward_workspace_size, "dfss_attention_backward_workspace_size",
                                     &desc, 4, __LINE__);

  /* every pointer is required and aligned to its element */
  CHECK_STATUS(BACKWARD(&desc, NULL, NULL, t[1], t[2], t[3], t[4], lse, t[6], t[7], t[8], t[9], bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "q: expected a device pointer, got NULL");
  CHECK_STATUS(BACKWARD(&desc, NULL, t[0], t[1], t[2], NULL, t[4], lse, t[6], t[7], t[8], t[9], bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "out: expected a device pointer, got NULL");
  CHECK_STATUS(BACKWARD(&desc, NULL, t[0], t[1], t[2], t[3], NULL, lse, t[6], t[7], t[8], t[9], bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "dout: expected a device pointer, got NULL");
  CHECK_STATUS(BACKWARD(&desc, NULL, t[0], t[1], t[2], t[3], t[4], NULL, t[6], t[7], t[8], t[9], bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "lse: expected a device pointer, got NULL");
  CHECK_STATUS(BACKWARD(&desc, NULL, t[0], t[1], t[2], t[3], t[4], lse, NULL, t[7], t[8], t[9], bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "dq: expected a device pointer, got NULL");
  CHECK_STATUS(BACKWARD(&desc, NULL, t[0], t[1], t[2], t[3], t[4], lse, t[6], NULL, t[8], t[9], bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "dk: expected a device pointer, got NULL");
  CHECK_STATUS(BACKWARD(&desc, NULL, t[0], t[1], t[2], t[3], t[4], lse, t[6], t[7], NULL, t[9], bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "dv: expected a device pointer, got NULL");
  CHECK_STATUS(BACKWARD(&desc, NULL, t[0], t[1], t[2], t[3], t[4], lse, t[6], t[7], t[8], NULL, bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "workspace: expected a device pointer, got NULL");
  CHECK_STATUS(BACKWARD(&desc, NULL, t[0], t[1], t[2], t[3], t[4], lse, base + 0x60001, t[7], t[8], t[9], bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "dq: expected an address that is a multiple of 2 bytes");
  CHECK_STATUS(BACKWARD(&desc, NULL, t[0], t[1], t[2], t[3], t[4], (const float *)(base + 0x50002), t[6], t[7],
                        t[8], t[9], bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "lse: expected an address that is a multiple of 4 bytes");
  CHECK_STATUS(BACKWARD(&desc, NULL, t[0], t[1], t[2], t[3], t[4], lse, t[6], t[7], t[8], base + 0x90008, bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "workspace: expected an address that is a multiple of 16 bytes");

  /* the workspace must hold what the size query said */
  CHECK_STATUS(BACKWARD(&desc, NULL, t[0], t[1], t[2], t[3], t[4], lse, t[6], t[7], t[8], t[9], bytes - 1),
               DFSS_ERROR_INVALID_ARGUMENT, "workspace_bytes: expected at least");
  CHECK_STATUS(BACKWARD(&desc, NULL, t[0], t[1], t[2], t[3], t[4], lse, t[6], t[7], t[8], t[9], 0),
               DFSS_ERROR_INVALID_ARGUMENT, "(dfss_attention_backward_workspace_size), got 0");

  /* the gradients' strides: from the struct, or (NULL) those of their counterparts, which must then suit a
   * written tensor */
  strides = strides_of(&desc);
  strides.dq_strides[3] = 2;
  CHECK_STATUS(BACKWARD(&desc, &strides, t[0], t[1], t[2], t[3], t[4], lse, t[6], t[7], t[8], t[9], bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "strides->dq_strides[3]: expected 1 (the column must be contiguous)");
  strides = strides_of(&desc);
  strides.dout_strides[0] = -1;
  CHECK_STATUS(BACKWARD(&desc, &strides, t[0], t[1], t[2], t[3], t[4], lse, t[6], t[7], t[8], t[9], bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "strides->dout_strides[0]: expected a value >= 0, got -1");
  strides = strides_of(&desc);
  strides.dk_strides[2] = 0;
  CHECK_STATUS(BACKWARD(&desc, &strides, t[0], t[1], t[2], t[3], t[4], lse, t[6], t[7], t[8], t[9], bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "strides->dk_strides: expected strides that give every element of dk");
  strides = strides_of(&desc);
  strides.dv_strides[0] = INT64_MAX / 2;
  CHECK_STATUS(BACKWARD(&desc, &strides, t[0], t[1], t[2], t[3], t[4], lse, t[6], t[7], t[8], t[9], bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "strides->dv_strides: expected strides whose largest byte offset");
  other = desc;
  other.k_strides[2] = 0; /* every key row of k at one address: fine to read, not for dk */
  CHECK_STATUS(BACKWARD(&other, NULL, t[0], t[1], t[2], t[3], t[4], lse, t[6], t[7], t[8], t[9], bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "desc->k_strides: expected strides that give every element of dk");
  CHECK_STATUS(dfss_attention_forward(&other, t[0], t[1], t[2], t[3], NULL), valid_call_status, NULL);

  /* past the host checks: NO_DEVICE without a GPU; with one, the made-up addresses are not device memory */
  strides = strides_of(&desc);
  strides.dq_strides[1] = 64;     /* dq as [B, N, H, D] */
  strides.dq_strides[2] = 4 * 64;
  CHECK_STATUS(BACKWARD(&desc, &strides, t[0], t[1], t[2], t[3], t[4], lse, t[6], t[7], t[8], t[9], bytes),
               valid_call_status, NULL);
  CHECK_STATUS(BACKWARD(&desc, NULL, t[0], t[1], t[2], t[3], t[4], lse, t[6], t[7], t[8], t[9], bytes),
               valid_call_status, NULL);
#undef BACKWARD
}

/* ----- staged attention arguments: refused on the host where no device is needed ------------------------- */

static void test_staged_arguments(void) {
  const dfss_attention_desc desc = make_desc(DFSS_DTYPE_FLOAT16, DFSS_PATTERN_2_4);
  /* q, k, v, out, lse, workspace: distinct, aligned, made-up addresses */
  char *base = (char *)(uintptr_t)0x100000;
  void *t[6];
  float *lse = (float *)(base + 0x40000);
  uint64_t bytes, dense_bytes = 0;
  int device_count = 0;
  const dfss_status device_status = dfss_device_count(&device_count);
  const dfss_status valid_call_status = device_status == DFSS_SUCCESS ? DFSS_ERROR_INVALID_ARGUMENT : device_status;
  dfss_attention_desc other;
  int i;
  for (i = 0; i < 6; ++i) t[i] = base + 0x10000 * i;

  /* the workspace size: per query row, C = 64 values of 2 bytes, W = 4 metadata words and a float at least */
  bytes = check_workspace_size_query(dfss_attention_staged_workspace_size, "dfss_attention_staged_workspace_size",
                                     &desc, 64 * 2 + 4 * 4 + 4, __LINE__);
  other = desc;
  other.pattern = DFSS_PATTERN_DENSE; /* every one of the 128 keys kept: a larger workspace */
  CHECK_STATUS(dfss_attention_staged_workspace_size(&other, &dense_bytes), DFSS_SUCCESS, "");
  CHECK(dense_bytes > bytes);

  /* q, k, v, out and the workspace are required, lse is not; each aligned to its element */
  CHECK_STATUS(dfss_attention_staged(&desc, NULL, t[1], t[2], t[3], lse, t[5], bytes), DFSS_ERROR_INVALID_ARGUMENT,
               "q: expected a device pointer, got NULL");
  CHECK_STATUS(dfss_attention_staged(&desc, t[0], NULL, t[2], t[3], lse, t[5], bytes), DFSS_ERROR_INVALID_ARGUMENT,
               "k: expected a device pointer, got NULL");
  CHECK_STATUS(dfss_attention_staged(&desc, t[0], t[1], NULL, t[3], lse, t[5], bytes), DFSS_ERROR_INVALID_ARGUMENT,
               "v: expected a device pointer, got NULL");
  CHECK_STATUS(dfss_attention_staged(&desc, t[0], t[1], t[2], NULL, lse, t[5], bytes), DFSS_ERROR_INVALID_ARGUMENT,
               "out: expected a device pointer, got NULL");
  CHECK_STATUS(dfss_attention_staged(&desc, t[0], t[1], t[2], t[3], lse, NULL, bytes), DFSS_ERROR_INVALID_ARGUMENT,
               "workspace: expected a device pointer, got NULL");
  CHECK_STATUS(dfss_attention_staged(&desc, base + 0x1, t[1], t[2], t[3], lse, t[5], bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "q: expected an address that is a multiple of 2 bytes");
  CHECK_STATUS(dfss_attention_staged(&desc, t[0], t[1], t[2], t[3], (float *)(base + 0x40002), t[5], bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "lse: expected an address that is a multiple of 4 bytes");
  CHECK_STATUS(dfss_attention_staged(&desc, t[0], t[1], t[2], t[3], lse, base + 0x50008, bytes),
               DFSS_ERROR_INVALID_ARGUMENT, "workspace: expected an address that is a multiple of 16 bytes");

  /* the workspace must hold what the size query said */
  CHECK_STATUS(dfss_attention_staged(&desc, t[0], t[1], t[2], t[3], lse, t[5], bytes - 1),
               DFSS_ERROR_INVALID_ARGUMENT, "workspace_bytes: expected at least");
  CHECK_STATUS(dfss_attention_staged(&desc, t[0], t[1], t[2], t[3], lse, t[5], 0), DFSS_ERROR_INVALID_ARGUMENT,
               "(dfss_attention_staged_workspace_size), got 0");

  /* past the host checks, with or without lse: NO_DEVICE without a GPU; with one, the made-up addresses are not
   * device memory */
  CHECK_STATUS(dfss_attention_staged(&desc, t[0], t[1], t[2], t[3], lse, t[5], bytes), valid_call_status, NULL);
  CHECK_STATUS(dfss_attention_staged(&desc, t[0], t[1], t[2], t[3], NULL, t[5], bytes), valid_call_status, NULL);
}

/* ----- devices ---------------------------------------------------------------------------------------------- */

static void test_no_device(void) {
  const dfss_attention_desc desc = make_desc(DFSS_DTYPE_FLOAT32, DFSS_PATTERN_1_2);
  const char *no_device = "no CUDA device";
  dfss_device_info info;
  int32_t device = -1;
  void *pointer = NULL;
  char host[16];
  dfss_stream stream = NULL;
  void *p = (void *)(uintptr_t)0x10000;

  CHECK_STATUS(dfss_device_get_info(0, &info), DFSS_ERROR_NO_DEVICE, no_device);
  CHECK_STATUS(dfss_device_set(0), DFSS_ERROR_NO_DEVICE, no_device);
  CHECK_STATUS(dfss_device_get(&device), DFSS_ERROR_NO_DEVICE, no_device);
  CHECK(device == -1);
  CHECK_STATUS(dfss_device_synchronize(), DFSS_ERROR_NO_DEVICE, no_device);
  CHECK_STATUS(dfss_malloc(&pointer, 256), DFSS_ERROR_NO_DEVICE, no_device);
  CHECK(pointer == NULL);
  CHECK_STATUS(dfss_free(p), DFSS_ERROR_NO_DEVICE, no_device);
  CHECK_STATUS(dfss_free(NULL), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_memcpy(p, host, sizeof host, DFSS_MEMCPY_HOST_TO_DEVICE, NULL), DFSS_ERROR_NO_DEVICE, no_device);
  CHECK_STATUS(dfss_memcpy(host, p, sizeof host, DFSS_MEMCPY_DEVICE_TO_HOST, NULL), DFSS_ERROR_NO_DEVICE, no_device);
  CHECK_STATUS(dfss_memcpy(host, p, 0, DFSS_MEMCPY_DEVICE_TO_HOST, NULL), DFSS_ERROR_NO_DEVICE, no_device);
  CHECK_STATUS(dfss_memset(p, 0, 16, NULL), DFSS_ERROR_NO_DEVICE, no_device);
  CHECK_STATUS(dfss_stream_create(&stream), DFSS_ERROR_NO_DEVICE, no_device);
  CHECK(stream == NULL);
  CHECK_STATUS(dfss_stream_destroy(p), DFSS_ERROR_NO_DEVICE, no_device);
  CHECK_STATUS(dfss_stream_synchronize(NULL), DFSS_ERROR_NO_DEVICE, no_device);
  CHECK_STATUS(dfss_attention_forward(&desc, p, p, p, p, NULL), DFSS_ERROR_NO_DEVICE, no_device);
  CHECK_STATUS(dfss_sddmm_prune(&desc, p, p, p, (uint32_t *)p), DFSS_ERROR_NO_DEVICE, no_device);
  CHECK_STATUS(dfss_compressed_softmax(&desc, p, p, (float *)p), DFSS_ERROR_NO_DEVICE, no_device);
  CHECK_STATUS(dfss_spmm(&desc, p, (uint32_t *)p, p, p), DFSS_ERROR_NO_DEVICE, no_device);
  {
    uint64_t bytes = 0;
    CHECK_STATUS(dfss_attention_backward_workspace_size(&desc, &bytes), DFSS_SUCCESS, ""); /* host only */
    CHECK_STATUS(dfss_attention_backward(&desc, NULL, p, p, p, p, p, (const float *)p, (char *)p + 0x10000,
                                         (char *)p + 0x20000, (char *)p + 0x30000, (char *)p + 0x40000, bytes),
                 DFSS_ERROR_NO_DEVICE, no_device);
    CHECK_STATUS(dfss_attention_staged_workspace_size(&desc, &bytes), DFSS_SUCCESS, ""); /* host only */
    CHECK_STATUS(dfss_attention_staged(&desc, p, p, p, p, (float *)p, (char *)p + 0x40000, bytes),
                 DFSS_ERROR_NO_DEVICE, no_device);
  }
}

/* Argument errors are reported as such with or without a device. */
static void test_memory_argument_errors(void) {
  void *pointer = NULL;
  char host[16];
  CHECK_STATUS(dfss_device_count(NULL), DFSS_ERROR_INVALID_ARGUMENT, "count: expected");
  CHECK_STATUS(dfss_device_get_info(0, NULL), DFSS_ERROR_INVALID_ARGUMENT, "info: expected");
  CHECK_STATUS(dfss_device_get(NULL), DFSS_ERROR_INVALID_ARGUMENT, "device: expected");
  CHECK_STATUS(dfss_malloc(NULL, 16), DFSS_ERROR_INVALID_ARGUMENT, "ptr: expected");
  CHECK_STATUS(dfss_malloc(&pointer, 0), DFSS_ERROR_INVALID_ARGUMENT, "bytes: expected a size > 0, got 0");
  CHECK_STATUS(dfss_memcpy(host, host, 16, (dfss_memcpy_kind)7, NULL), DFSS_ERROR_INVALID_ARGUMENT, "kind: expected");
  CHECK_STATUS(dfss_memcpy(NULL, host, 16, DFSS_MEMCPY_HOST_TO_DEVICE, NULL), DFSS_ERROR_INVALID_ARGUMENT,
               "dst: expected a pointer to 16 bytes, got NULL");
  CHECK_STATUS(dfss_memcpy(host, NULL, 16, DFSS_MEMCPY_DEVICE_TO_HOST, NULL), DFSS_ERROR_INVALID_ARGUMENT,
               "src: expected");
  CHECK_STATUS(dfss_memset(host, 300, 16, NULL), DFSS_ERROR_INVALID_ARGUMENT, "value: expected a byte value");
  CHECK_STATUS(dfss_memset(NULL, 0, 16, NULL), DFSS_ERROR_INVALID_ARGUMENT, "dst: expected");
  CHECK_STATUS(dfss_stream_create(NULL), DFSS_ERROR_INVALID_ARGUMENT, "stream: expected");
  CHECK_STATUS(dfss_stream_destroy(NULL), DFSS_ERROR_INVALID_ARGUMENT, "stream: expected");
}

/* ----- GPU: dense attention against a naive double-precision computation --------------------------------- */

static uint32_t random_state = 12345u;

static float random_uniform(void) { /* in [-1, 1) */
  random_state = random_state * 1664525u + 1013904223u;
  return (float)((random_state >> 8) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

/* float32 -> float16 bits, round to nearest even (finite inputs of moderate size, as generated here) */
static uint16_t float_to_half(float value) {
  uint32_t x;
  uint32_t sign, mantissa, half, remainder;
  int exponent;
  memcpy(&x, &value, sizeof x);
  sign = (x >> 16) & 0x8000u;
  exponent = (int)((x >> 23) & 0xFFu) - 127 + 15;
  mantissa = x & 0x7FFFFFu;
  if (exponent <= 0) { /* subnormal half or zero */
    int shift;
    if (exponent < -10) return (uint16_t)sign;
    mantissa |= 0x800000u;
    shift = 14 - exponent;
    half = mantissa >> shift;
    remainder = mantissa & ((1u << shift) - 1u);
    if (remainder > (1u << (shift - 1)) || (remainder == (1u << (shift - 1)) && (half & 1u))) ++half;
    return (uint16_t)(sign | half);
  }
  half = sign | ((uint32_t)exponent << 10) | (mantissa >> 13);
  remainder = mantissa & 0x1FFFu;
  if (remainder > 0x1000u || (remainder == 0x1000u && (half & 1u))) ++half;
  return (uint16_t)half;
}

static double half_to_double(uint16_t bits) {
  const int exponent = (bits >> 10) & 0x1F;
  const int mantissa = bits & 0x3FF;
  const double sign = (bits & 0x8000u) ? -1.0 : 1.0;
  if (exponent == 0) return sign * ldexp((double)mantissa, -24);
  if (exponent == 31) return mantissa ? NAN : sign * INFINITY;
  return sign * ldexp((double)(mantissa + 1024), exponent - 25);
}

typedef struct {
  dfss_dtype dtype;
  int64_t batch, heads_q, heads_kv, seq_q, seq_k, head_dim, head_dim_v;
  int causal;
  const int32_t *seqlens_q; /* NULL: all rows */
  const int32_t *seqlens_k;
} dense_case;

/* Probabilities of query row i of head h, batch b (dense, dfss.h steps 1-4 in double precision) into probs[Nk];
 * returns the row's log-sum-exp, -inf (and all p = 0) when every key is masked. q, k: packed [B, H, N, D]. */
static double naive_row_probabilities(const dense_case *c, const double *q, const double *k, int64_t b, int64_t h,
                                      int64_t i, double *probs) {
  const int64_t hk = h / (c->heads_q / c->heads_kv);
  const int64_t valid_q = c->seqlens_q ? c->seqlens_q[b] : c->seq_q;
  const int64_t valid_k = c->seqlens_k ? c->seqlens_k[b] : c->seq_k;
  const int64_t row = (b * c->heads_q + h) * c->seq_q + i;
  const double scale = (double)(float)(1.0 / sqrt((double)c->head_dim));
  double max = -INFINITY, sum = 0.0;
  int64_t j, d;
  for (j = 0; j < c->seq_k; ++j) {
    const int masked = i >= valid_q || j >= valid_k || (c->causal && j > i + (valid_k - valid_q));
    double dot = 0.0;
    for (d = 0; d < c->head_dim; ++d) {
      dot += q[row * c->head_dim + d] * k[((b * c->heads_kv + hk) * c->seq_k + j) * c->head_dim + d];
    }
    probs[j] = masked ? -INFINITY : scale * dot; /* the scores, until they become probabilities */
    if (probs[j] > max) max = probs[j];
  }
  if (max == -INFINITY) {
    for (j = 0; j < c->seq_k; ++j) probs[j] = 0.0;
    return -INFINITY;
  }
  for (j = 0; j < c->seq_k; ++j) sum += exp(probs[j] - max);
  for (j = 0; j < c->seq_k; ++j) probs[j] = exp(probs[j] - max) / sum;
  return max + log(sum);
}

/* Naive dense attention of dfss.h's semantics in double precision from the inputs as stored (rounded). */
static void naive_attention(const dense_case *c, const double *q, const double *k, const double *v, double *out,
                            double *lse) {
  const int64_t group = c->heads_q / c->heads_kv;
  double *probs = malloc((size_t)c->seq_k * sizeof *probs);
  int64_t b, h, i, j, d;
  for (b = 0; b < c->batch; ++b) {
    for (h = 0; h < c->heads_q; ++h) {
      const int64_t hk = h / group;
      for (i = 0; i < c->seq_q; ++i) {
        const int64_t row = (b * c->heads_q + h) * c->seq_q + i;
        lse[row] = naive_row_probabilities(c, q, k, b, h, i, probs);
        for (d = 0; d < c->head_dim_v; ++d) out[row * c->head_dim_v + d] = 0.0;
        for (j = 0; j < c->seq_k; ++j) {
          if (probs[j] == 0.0) continue;
          for (d = 0; d < c->head_dim_v; ++d) {
            out[row * c->head_dim_v + d] += probs[j] * v[((b * c->heads_kv + hk) * c->seq_k + j) * c->head_dim_v + d];
          }
        }
      }
    }
  }
  free(probs);
}

/* Gradients of sum(dout * out) for naive_attention (dfss.h, backward): dq, dk, dv packed [B, H, N, D]. */
static void naive_attention_backward(const dense_case *c, const double *q, const double *k, const double *v,
                                     const double *dout, double *dq, double *dk, double *dv) {
  const int64_t group = c->heads_q / c->heads_kv;
  const int64_t D = c->head_dim, Dv = c->head_dim_v;
  const double scale = (double)(float)(1.0 / sqrt((double)D));
  double *probs = malloc((size_t)c->seq_k * sizeof *probs);
  double *out_row = malloc((size_t)Dv * sizeof *out_row);
  int64_t b, h, i, j, d;
  memset(dq, 0, (size_t)(c->batch * c->heads_q * c->seq_q * D) * sizeof *dq);
  memset(dk, 0, (size_t)(c->batch * c->heads_kv * c->seq_k * D) * sizeof *dk);
  memset(dv, 0, (size_t)(c->batch * c->heads_kv * c->seq_k * Dv) * sizeof *dv);
  for (b = 0; b < c->batch; ++b) {
    for (h = 0; h < c->heads_q; ++h) {
      const int64_t hk = h / group;
      for (i = 0; i < c->seq_q; ++i) {
        const int64_t row = (b * c->heads_q + h) * c->seq_q + i;
        double row_dot = 0.0;
        if (naive_row_probabilities(c, q, k, b, h, i, probs) == -INFINITY) continue;
        for (d = 0; d < Dv; ++d) out_row[d] = 0.0;
        for (j = 0; j < c->seq_k; ++j) {
          for (d = 0; d < Dv; ++d) out_row[d] += probs[j] * v[((b * c->heads_kv + hk) * c->seq_k + j) * Dv + d];
        }
        for (d = 0; d < Dv; ++d) row_dot += dout[row * Dv + d] * out_row[d];
        for (j = 0; j < c->seq_k; ++j) {
          const int64_t key = (b * c->heads_kv + hk) * c->seq_k + j;
          double dp = 0.0, ds;
          if (probs[j] == 0.0) continue;
          for (d = 0; d < Dv; ++d) dp += dout[row * Dv + d] * v[key * Dv + d];
          ds = probs[j] * (dp - row_dot);
          for (d = 0; d < D; ++d) {
            dq[row * D + d] += scale * ds * k[key * D + d];
            dk[key * D + d] += scale * ds * q[row * D + d];
          }
          for (d = 0; d < Dv; ++d) dv[key * Dv + d] += probs[j] * dout[row * Dv + d];
        }
      }
    }
  }
  free(probs);
  free(out_row);
}

/* Random values rounded to the dtype: the device copy (bits) and the stored values as doubles. */
static void *make_input(dfss_dtype dtype, size_t count, double *stored) {
  size_t i;
  if (dtype == DFSS_DTYPE_FLOAT32) {
    float *values = malloc(count * sizeof *values);
    for (i = 0; i < count; ++i) {
      values[i] = random_uniform();
      stored[i] = values[i];
    }
    return values;
  } else {
    uint16_t *values = malloc(count * sizeof *values);
    for (i = 0; i < count; ++i) {
      values[i] = float_to_half(random_uniform());
      stored[i] = half_to_double(values[i]);
    }
    return values;
  }
}

static double output_value(dfss_dtype dtype, const void *host, size_t index) {
  if (dtype == DFSS_DTYPE_FLOAT32) return ((const float *)host)[index];
  return half_to_double(((const uint16_t *)host)[index]);
}

static void *device_copy_of(const void *host, size_t bytes) {
  void *device = NULL;
  if (dfss_malloc(&device, bytes) != DFSS_SUCCESS) return NULL;
  if (dfss_memcpy(device, host, bytes, DFSS_MEMCPY_HOST_TO_DEVICE, NULL) != DFSS_SUCCESS) {
    dfss_free(device);
    return NULL;
  }
  return device;
}

/* Dense attention of a case against naive_attention: dfss_attention_forward, or (staged) dfss_attention_staged with
 * a poisoned workspace. */
static void run_dense_case(const dense_case *c, const char *name, int staged, dfss_stream stream) {
  const size_t element = c->dtype == DFSS_DTYPE_FLOAT32 ? 4 : 2;
  const size_t q_count = (size_t)(c->batch * c->heads_q * c->seq_q * c->head_dim);
  const size_t k_count = (size_t)(c->batch * c->heads_kv * c->seq_k * c->head_dim);
  const size_t v_count = (size_t)(c->batch * c->heads_kv * c->seq_k * c->head_dim_v);
  const size_t out_count = (size_t)(c->batch * c->heads_q * c->seq_q * c->head_dim_v);
  const size_t rows = (size_t)(c->batch * c->heads_q * c->seq_q);
  const double tolerance = c->dtype == DFSS_DTYPE_FLOAT32 ? 2e-5 : 3e-3;
  /* staged float16: the compressed scores (of about 1 here) are rounded to float16 first, half an ulp is 2^-11 */
  const double lse_tolerance = c->dtype == DFSS_DTYPE_FLOAT32 ? 2e-5 : staged ? 1e-3 : 2e-4;
  double *q = malloc(q_count * sizeof *q), *k = malloc(k_count * sizeof *k), *v = malloc(v_count * sizeof *v);
  double *want = malloc(out_count * sizeof *want), *want_lse = malloc(rows * sizeof *want_lse);
  void *q_host = make_input(c->dtype, q_count, q);
  void *k_host = make_input(c->dtype, k_count, k);
  void *v_host = make_input(c->dtype, v_count, v);
  void *out_host = malloc(out_count * element);
  float *lse_host = malloc(rows * sizeof *lse_host);
  void *q_device = device_copy_of(q_host, q_count * element);
  void *k_device = device_copy_of(k_host, k_count * element);
  void *v_device = device_copy_of(v_host, v_count * element);
  void *out_device = NULL;
  void *lse_device = NULL;
  void *workspace = NULL;
  uint64_t workspace_bytes = 0;
  dfss_attention_desc desc;
  double worst = 0.0, worst_lse = 0.0;
  int finite = 1, lse_exact_infinities = 1;
  size_t i;

  CHECK(q_device != NULL && k_device != NULL && v_device != NULL);
  CHECK_STATUS(dfss_malloc(&out_device, out_count * element), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_malloc(&lse_device, rows * sizeof(float)), DFSS_SUCCESS, "");
  /* poison: all bits set is NaN in every dtype */
  CHECK_STATUS(dfss_memset(out_device, 0xFF, out_count * element, stream), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_memset(lse_device, 0xFF, rows * sizeof(float), stream), DFSS_SUCCESS, "");

  dfss_attention_desc_init(&desc, c->dtype, DFSS_PATTERN_DENSE, c->batch, c->heads_q, c->heads_kv, c->seq_q,
                           c->seq_k, c->head_dim, c->head_dim_v);
  desc.causal = c->causal;
  desc.seqlens_q = c->seqlens_q;
  desc.seqlens_k = c->seqlens_k;
  desc.stream = stream;
  if (staged) {
    CHECK_STATUS(dfss_attention_staged_workspace_size(&desc, &workspace_bytes), DFSS_SUCCESS, "");
    CHECK_STATUS(dfss_malloc(&workspace, workspace_bytes), DFSS_SUCCESS, "");
    CHECK_STATUS(dfss_memset(workspace, 0xFF, workspace_bytes, stream), DFSS_SUCCESS, "");
    CHECK_STATUS(dfss_attention_staged(&desc, q_device, k_device, v_device, out_device, lse_device, workspace,
                                       workspace_bytes),
                 DFSS_SUCCESS, "");
  } else {
    CHECK_STATUS(dfss_attention_forward(&desc, q_device, k_device, v_device, out_device, lse_device), DFSS_SUCCESS,
                 "");
  }
  CHECK_STATUS(dfss_memcpy(out_host, out_device, out_count * element, DFSS_MEMCPY_DEVICE_TO_HOST, stream),
               DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_memcpy(lse_host, lse_device, rows * sizeof(float), DFSS_MEMCPY_DEVICE_TO_HOST, stream),
               DFSS_SUCCESS, "");

  naive_attention(c, q, k, v, want, want_lse);
  for (i = 0; i < out_count; ++i) {
    const double got = output_value(c->dtype, out_host, i);
    if (!isfinite(got)) finite = 0;
    if (fabs(got - want[i]) > worst) worst = fabs(got - want[i]);
  }
  for (i = 0; i < rows; ++i) {
    if (isinf(want_lse[i])) {
      if (!(isinf(lse_host[i]) && lse_host[i] < 0)) lse_exact_infinities = 0;
    } else {
      double difference = fabs(lse_host[i] - want_lse[i]);
      if (isnan(difference)) difference = INFINITY;
      if (difference > worst_lse) worst_lse = difference;
    }
  }
  if (!finite || worst > tolerance || worst_lse > lse_tolerance || !lse_exact_infinities) {
    ++failed_count;
    printf("FAIL: dense attention %s%s: finite %d, max |out - naive| = %g (tolerance %g), max |lse - naive| = %g "
           "(tolerance %g), -inf lse where expected %d\n",
           name, staged ? " (staged)" : "", finite, worst, tolerance, worst_lse, lse_tolerance, lse_exact_infinities);
  } else {
    ++passed_count;
  }

  dfss_free(q_device);
  dfss_free(k_device);
  dfss_free(v_device);
  dfss_free(out_device);
  dfss_free(lse_device);
  dfss_free(workspace);
  free(q), free(k), free(v), free(want), free(want_lse);
  free(q_host), free(k_host), free(v_host), free(out_host), free(lse_host);
}

/* Largest |got - want| / (atol + rtol |want|) over n gradient elements (> 1: out of tolerance; NaN counts as
 * infinitely far). got is in the dtype; index maps element e of the packed [B, H, N, D] want to got's layout. */
static double worst_ratio(dfss_dtype dtype, const void *got, const double *want, size_t n, double atol, double rtol,
                          size_t (*index)(size_t element, const int64_t shape[4]), const int64_t shape[4]) {
  double worst = 0.0;
  size_t e;
  for (e = 0; e < n; ++e) {
    const double value = output_value(dtype, got, index(e, shape));
    double ratio = fabs(value - want[e]) / (atol + rtol * fabs(want[e]));
    if (isnan(ratio)) ratio = INFINITY;
    if (ratio > worst) worst = ratio;
  }
  return worst;
}

static size_t packed_index(size_t element, const int64_t shape[4]) {
  (void)shape;
  return element;
}

/* Element e of a packed [B, H, N, D] tensor in a [B, N, H, D] buffer. */
static size_t bnhd_index(size_t element, const int64_t shape[4]) {
  const size_t d = element % (size_t)shape[3];
  const size_t n = element / (size_t)shape[3] % (size_t)shape[2];
  const size_t h = element / (size_t)(shape[3] * shape[2]) % (size_t)shape[1];
  const size_t b = element / (size_t)(shape[3] * shape[2] * shape[1]);
  return ((b * (size_t)shape[2] + n) * (size_t)shape[1] + h) * (size_t)shape[3] + d;
}

/* The backward of a dense case against naive_attention_backward: forward on the GPU for out and lse, then the
 * backward with poisoned gradients. bnhd_gradients: dq, dk and dv in [B, N, H, D] buffers (through
 * dfss_backward_strides), else the strides of q, k and v (strides NULL). */
static void run_backward_case(const dense_case *c, const char *name, int bnhd_gradients, dfss_stream stream) {
  const size_t element = c->dtype == DFSS_DTYPE_FLOAT32 ? 4 : 2;
  const int64_t q_shape[4] = {c->batch, c->heads_q, c->seq_q, c->head_dim};
  const int64_t k_shape[4] = {c->batch, c->heads_kv, c->seq_k, c->head_dim};
  const int64_t v_shape[4] = {c->batch, c->heads_kv, c->seq_k, c->head_dim_v};
  const size_t q_count = (size_t)(c->batch * c->heads_q * c->seq_q * c->head_dim);
  const size_t k_count = (size_t)(c->batch * c->heads_kv * c->seq_k * c->head_dim);
  const size_t v_count = (size_t)(c->batch * c->heads_kv * c->seq_k * c->head_dim_v);
  const size_t out_count = (size_t)(c->batch * c->heads_q * c->seq_q * c->head_dim_v);
  const size_t rows = (size_t)(c->batch * c->heads_q * c->seq_q);
  const double atol = c->dtype == DFSS_DTYPE_FLOAT32 ? 1e-5 : 2e-3;
  const double rtol = c->dtype == DFSS_DTYPE_FLOAT32 ? 1e-4 : 4e-3;
  size_t (*index)(size_t, const int64_t[4]) = bnhd_gradients ? bnhd_index : packed_index;
  double *q = malloc(q_count * sizeof *q), *k = malloc(k_count * sizeof *k), *v = malloc(v_count * sizeof *v);
  double *dout = malloc(out_count * sizeof *dout);
  double *want_dq = malloc(q_count * sizeof *want_dq), *want_dk = malloc(k_count * sizeof *want_dk);
  double *want_dv = malloc(v_count * sizeof *want_dv);
  void *q_host = make_input(c->dtype, q_count, q);
  void *k_host = make_input(c->dtype, k_count, k);
  void *v_host = make_input(c->dtype, v_count, v);
  void *dout_host = make_input(c->dtype, out_count, dout);
  void *dq_host = malloc(q_count * element), *dk_host = malloc(k_count * element), *dv_host = malloc(v_count * element);
  void *q_device = device_copy_of(q_host, q_count * element);
  void *k_device = device_copy_of(k_host, k_count * element);
  void *v_device = device_copy_of(v_host, v_count * element);
  void *dout_device = device_copy_of(dout_host, out_count * element);
  void *out_device = NULL, *lse_device = NULL, *dq_device = NULL, *dk_device = NULL, *dv_device = NULL;
  void *workspace = NULL;
  uint64_t workspace_bytes = 0;
  dfss_attention_desc desc;
  dfss_backward_strides strides;
  double worst_dq, worst_dk, worst_dv;

  CHECK(q_device != NULL && k_device != NULL && v_device != NULL && dout_device != NULL);
  CHECK_STATUS(dfss_malloc(&out_device, out_count * element), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_malloc(&lse_device, rows * sizeof(float)), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_malloc(&dq_device, q_count * element), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_malloc(&dk_device, k_count * element), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_malloc(&dv_device, v_count * element), DFSS_SUCCESS, "");
  /* poison: all bits set is NaN in every dtype */
  CHECK_STATUS(dfss_memset(dq_device, 0xFF, q_count * element, stream), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_memset(dk_device, 0xFF, k_count * element, stream), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_memset(dv_device, 0xFF, v_count * element, stream), DFSS_SUCCESS, "");

  dfss_attention_desc_init(&desc, c->dtype, DFSS_PATTERN_DENSE, c->batch, c->heads_q, c->heads_kv, c->seq_q,
                           c->seq_k, c->head_dim, c->head_dim_v);
  desc.causal = c->causal;
  desc.seqlens_q = c->seqlens_q;
  desc.seqlens_k = c->seqlens_k;
  desc.stream = stream;
  CHECK_STATUS(dfss_attention_backward_workspace_size(&desc, &workspace_bytes), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_malloc(&workspace, workspace_bytes), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_memset(workspace, 0xFF, workspace_bytes, stream), DFSS_SUCCESS, "");
  strides = strides_of(&desc);
  if (bnhd_gradients) {
    strides.dq_strides[1] = c->head_dim;
    strides.dq_strides[2] = c->heads_q * c->head_dim;
    strides.dk_strides[1] = c->head_dim;
    strides.dk_strides[2] = c->heads_kv * c->head_dim;
    strides.dv_strides[1] = c->head_dim_v;
    strides.dv_strides[2] = c->heads_kv * c->head_dim_v;
  }
  CHECK_STATUS(dfss_attention_forward(&desc, q_device, k_device, v_device, out_device, lse_device), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_attention_backward(&desc, bnhd_gradients ? &strides : NULL, q_device, k_device, v_device,
                                       out_device, dout_device, lse_device, dq_device, dk_device, dv_device,
                                       workspace, workspace_bytes),
               DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_memcpy(dq_host, dq_device, q_count * element, DFSS_MEMCPY_DEVICE_TO_HOST, stream), DFSS_SUCCESS,
               "");
  CHECK_STATUS(dfss_memcpy(dk_host, dk_device, k_count * element, DFSS_MEMCPY_DEVICE_TO_HOST, stream), DFSS_SUCCESS,
               "");
  CHECK_STATUS(dfss_memcpy(dv_host, dv_device, v_count * element, DFSS_MEMCPY_DEVICE_TO_HOST, stream), DFSS_SUCCESS,
               "");

  naive_attention_backward(c, q, k, v, dout, want_dq, want_dk, want_dv);
  worst_dq = worst_ratio(c->dtype, dq_host, want_dq, q_count, atol, rtol, index, q_shape);
  worst_dk = worst_ratio(c->dtype, dk_host, want_dk, k_count, atol, rtol, index, k_shape);
  worst_dv = worst_ratio(c->dtype, dv_host, want_dv, v_count, atol, rtol, index, v_shape);
  if (!(worst_dq <= 1.0 && worst_dk <= 1.0 && worst_dv <= 1.0)) {
    ++failed_count;
    printf("FAIL: dense backward %s: largest error / tolerance: dq %g, dk %g, dv %g\n", name, worst_dq, worst_dk,
           worst_dv);
  } else {
    ++passed_count;
  }

  dfss_free(q_device), dfss_free(k_device), dfss_free(v_device), dfss_free(dout_device), dfss_free(out_device);
  dfss_free(lse_device), dfss_free(dq_device), dfss_free(dk_device), dfss_free(dv_device), dfss_free(workspace);
  free(q), free(k), free(v), free(dout), free(want_dq), free(want_dk), free(want_dv);
  free(q_host), free(k_host), free(v_host), free(dout_host), free(dq_host), free(dk_host), free(dv_host);
}

static void test_device(int32_t count) {
  dfss_device_info info;
  int32_t current = -1;
  void *device = NULL;
  unsigned char bytes[300], back[300];
  dfss_stream stream = NULL;
  size_t i;

  CHECK(count >= 1);
  CHECK_STATUS(dfss_device_get_info(0, &info), DFSS_SUCCESS, "");
  CHECK(info.name[0] != '\0' && memchr(info.name, '\0', sizeof info.name) != NULL);
  CHECK(info.compute_major >= 7 && info.multiprocessor_count >= 1);
  CHECK(info.sparse_tensor_cores == (info.compute_major >= 8));
  CHECK(info.total_memory_bytes >= info.free_memory_bytes && info.free_memory_bytes > 0);
  printf("device 0: %s, compute capability %d.%d\n", info.name, info.compute_major, info.compute_minor);
  CHECK_STATUS(dfss_device_get_info(count, &info), DFSS_ERROR_NO_DEVICE, "device: expected 0 <= device <");
  CHECK_STATUS(dfss_device_set(-1), DFSS_ERROR_NO_DEVICE, "device: expected");
  CHECK_STATUS(dfss_device_set(0), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_device_get(&current), DFSS_SUCCESS, "");
  CHECK(current == 0);

  /* memory round trip, memset, zero-byte copies */
  for (i = 0; i < sizeof bytes; ++i) bytes[i] = (unsigned char)(i * 7 + 1);
  CHECK_STATUS(dfss_malloc(&device, sizeof bytes), DFSS_SUCCESS, "");
  CHECK(device != NULL && ((uintptr_t)device % 256) == 0);
  CHECK_STATUS(dfss_stream_create(&stream), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_memcpy(device, bytes, sizeof bytes, DFSS_MEMCPY_HOST_TO_DEVICE, stream), DFSS_SUCCESS, "");
  memset(back, 0, sizeof back);
  CHECK_STATUS(dfss_memcpy(back, device, sizeof back, DFSS_MEMCPY_DEVICE_TO_HOST, stream), DFSS_SUCCESS, "");
  CHECK(memcmp(bytes, back, sizeof bytes) == 0);
  CHECK_STATUS(dfss_memset((char *)device + 100, 0xAB, 50, stream), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_memcpy(back, device, sizeof back, DFSS_MEMCPY_DEVICE_TO_HOST, stream), DFSS_SUCCESS, "");
  CHECK(back[99] == bytes[99] && back[100] == 0xAB && back[149] == 0xAB && back[150] == bytes[150]);
  CHECK_STATUS(dfss_memcpy(NULL, NULL, 0, DFSS_MEMCPY_DEVICE_TO_DEVICE, stream), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_memcpy(device, bytes, sizeof bytes, DFSS_MEMCPY_DEVICE_TO_HOST, stream),
               DFSS_ERROR_INVALID_ARGUMENT, "dst: expected host memory, got device memory");
  CHECK_STATUS(dfss_memcpy(bytes, back, sizeof bytes, DFSS_MEMCPY_HOST_TO_DEVICE, stream),
               DFSS_ERROR_INVALID_ARGUMENT, "dst: expected device memory");
  CHECK_STATUS(dfss_free(bytes), DFSS_ERROR_INVALID_ARGUMENT, "ptr: expected device memory");

  {
    /* host memory where device memory belongs, and device memory where the host lengths belong */
    dfss_attention_desc desc = make_desc(DFSS_DTYPE_FLOAT16, DFSS_PATTERN_2_4);
    uint16_t host_q[64];
    CHECK_STATUS(dfss_attention_forward(&desc, host_q, device, device, device, NULL), DFSS_ERROR_INVALID_ARGUMENT,
                 "q: expected device memory");
    desc.seqlens_k = (const int32_t *)device;
    CHECK_STATUS(dfss_attention_forward(&desc, device, device, device, device, NULL), DFSS_ERROR_INVALID_ARGUMENT,
                 "desc->seqlens_k: expected host memory");
  }
  CHECK_STATUS(dfss_free(device), DFSS_SUCCESS, "");

  {
    static const int32_t seqlens_q[2] = {5, 0}; /* batch entry 1: no valid query row */
    static const int32_t seqlens_k[2] = {29, 37};
    const dense_case fp32 = {DFSS_DTYPE_FLOAT32, 2, 4, 2, 7, 37, 24, 16, 0, NULL, NULL};
    const dense_case fp16 = {DFSS_DTYPE_FLOAT16, 2, 4, 2, 7, 37, 24, 16, 0, NULL, NULL};
    const dense_case fp32_causal = {DFSS_DTYPE_FLOAT32, 1, 2, 1, 17, 3, 8, 40, 1, NULL, NULL};
    const dense_case fp16_causal_lengths = {DFSS_DTYPE_FLOAT16, 2, 2, 2, 6, 37, 33, 5, 1, seqlens_q, seqlens_k};
    const dense_case fp32_long_rows = {DFSS_DTYPE_FLOAT32, 1, 1, 1, 3, 3000, 64, 300, 0, NULL, NULL};
    /* D = Dv = 64: the staged call's tensor-core kernels with the softmax folded in */
    const dense_case fp16_d64_causal = {DFSS_DTYPE_FLOAT16, 2, 4, 2, 70, 300, 64, 64, 1, NULL, NULL};
    int staged;
    for (staged = 0; staged <= 1; ++staged) {
      run_dense_case(&fp32, "float32", staged, stream);
      run_dense_case(&fp16, "float16", staged, stream);
      run_dense_case(&fp32_causal, "float32 causal, Nq > Nk, Dv > D", staged, stream);
      run_dense_case(&fp16_causal_lengths, "float16 causal with per-batch lengths", staged, NULL);
      run_dense_case(&fp32_long_rows, "float32, rows longer than a score tile, Dv > block", staged, stream);
      run_dense_case(&fp16_d64_causal, "float16 causal, D = Dv = 64", staged, stream);
    }
    run_backward_case(&fp32, "float32, grouped-query heads", 0, stream);
    run_backward_case(&fp16_causal_lengths, "float16 causal with per-batch lengths", 0, NULL);
    run_backward_case(&fp32_causal, "float32 causal, Nq > Nk, Dv > D, [B, N, H, D] gradients", 1, stream);
    run_backward_case(&fp32_long_rows, "float32, rows longer than a score tile, Dv > block", 1, stream);
  }
  CHECK_STATUS(dfss_stream_synchronize(stream), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_stream_destroy(stream), DFSS_SUCCESS, "");
  CHECK_STATUS(dfss_device_synchronize(), DFSS_SUCCESS, "");
}

int main(void) {
  int32_t count = -1;
  dfss_status status;

  test_version_and_status_strings();
  test_last_error_message();
  test_desc_init_defaults();
  test_compressed_row_size();
  test_invalid_descriptors();
  test_invalid_pointers();
  test_memory_argument_errors();
  test_backward_arguments();
  test_staged_arguments();

  status = dfss_device_count(&count);
  if (status == DFSS_SUCCESS) {
    CHECK(count >= 1);
    test_device(count);
  } else {
    check_status(status, DFSS_ERROR_NO_DEVICE, "no CUDA device", "dfss_device_count", __LINE__);
    CHECK(count == 0);
    printf("%s\n", dfss_last_error_message());
    test_no_device();
    skip("no CUDA device: device queries, memory and streams");
    skip("no CUDA device: dense attention, fused and staged, against the naive computation (float32, float16)");
    skip("no CUDA device: the dense backward against the naive computation (float32, float16)");
  }

  printf("%d passed, %d failed, %d skipped\n", passed_count, failed_count, skipped_count);
  return failed_count == 0 ? 0 : 1;
}
