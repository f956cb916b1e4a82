/*
 * The C side of the call-overhead benchmark (bench/call-overhead.bench.ts): the host time of one
 * dfss_attention_forward call made from C, on a problem so small that the call's own cost dominates.
 *
 *   gcc -std=c99 -O2 -Icuda/include bench/c/call_overhead.c -Lbuild/cuda/lib -ldfss \
 *       -Wl,-rpath,build/cuda/lib -o /tmp/dfss_call_overhead
 *   /tmp/dfss_call_overhead [--calls 200] [--loops 20] [--seq 128] [--dim 64] [--pattern dense|1:2|2:4]
 *
 * Each loop times `calls` back-to-back calls on the default stream without synchronizing (the host cost of
 * validating and enqueueing; a loop is short enough that the GPU's queue never fills), then synchronizes
 * outside the timed part. Prints the median over the loops as `per_call_us=<microseconds>`, or a line
 * starting with `skipped:` (exit 0) where there is no GPU.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dfss.h"

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void check(dfss_status status, const char *what) {
  if (status == DFSS_SUCCESS) return;
  fprintf(stderr, "call_overhead: %s failed: %s\n", what, dfss_last_error_message());
  exit(1);
}

static long positive_option(const char *name, const char *value) {
  char *end = NULL;
  long parsed = value ? strtol(value, &end, 10) : 0;
  if (value == NULL || *end != '\0' || parsed < 1) {
    fprintf(stderr, "call_overhead: %s: expected an integer >= 1, got %s\n", name, value ? value : "nothing");
    exit(2);
  }
  return parsed;
}

int main(int argc, char **argv) {
  long calls = 200, loops = 20, seq = 128, dim = 64;
  dfss_pattern pattern = DFSS_PATTERN_2_4;
  const char *pattern_name = "2:4";
  for (int i = 1; i < argc; i += 2) {
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--calls") == 0) calls = positive_option("--calls", value);
    else if (strcmp(argv[i], "--loops") == 0) loops = positive_option("--loops", value);
    else if (strcmp(argv[i], "--seq") == 0) seq = positive_option("--seq", value);
    else if (strcmp(argv[i], "--dim") == 0) dim = positive_option("--dim", value);
    else if (strcmp(argv[i], "--pattern") == 0 && value != NULL) {
      pattern_name = value;
      if (strcmp(value, "dense") == 0) pattern = DFSS_PATTERN_DENSE;
      else if (strcmp(value, "1:2") == 0) pattern = DFSS_PATTERN_1_2;
      else if (strcmp(value, "2:4") == 0) pattern = DFSS_PATTERN_2_4;
      else {
        fprintf(stderr, "call_overhead: --pattern: expected dense, 1:2 or 2:4, got %s\n", value);
        return 2;
      }
    } else {
      fprintf(stderr, "call_overhead: unknown option %s (options: --calls --loops --seq --dim --pattern)\n", argv[i]);
      return 2;
    }
  }

  int32_t devices = 0;
  if (dfss_device_count(&devices) != DFSS_SUCCESS || devices == 0) {
    printf("skipped: %s\n", devices == 0 && dfss_last_error_message()[0] ? dfss_last_error_message() : "no CUDA device");
    return 0;
  }

  const uint64_t bytes = (uint64_t)seq * (uint64_t)dim * 2; /* B = H = 1, float16 */
  void *q = NULL, *k = NULL, *v = NULL, *out = NULL;
  void **buffers[] = {&q, &k, &v, &out};
  for (int i = 0; i < 4; ++i) {
    check(dfss_malloc(buffers[i], bytes), "dfss_malloc");
    check(dfss_memset(*buffers[i], 0, bytes, NULL), "dfss_memset");
  }
  dfss_attention_desc desc;
  check(dfss_attention_desc_init(&desc, DFSS_DTYPE_FLOAT16, pattern, 1, 1, 1, seq, seq, dim, dim), "dfss_attention_desc_init");

  double *per_call = malloc(sizeof(double) * (size_t)loops);
  for (long loop = -1; loop < loops; ++loop) { /* loop -1 warms up */
    const double start = now_us();
    for (long c = 0; c < calls; ++c) check(dfss_attention_forward(&desc, q, k, v, out, NULL), "dfss_attention_forward");
    const double elapsed = now_us() - start;
    check(dfss_device_synchronize(), "dfss_device_synchronize");
    if (loop >= 0) per_call[loop] = elapsed / (double)calls;
  }
  qsort(per_call, (size_t)loops, sizeof(double), compare_doubles);
  const double median = loops % 2 ? per_call[loops / 2] : (per_call[loops / 2 - 1] + per_call[loops / 2]) / 2;
  printf("C dfss_attention_forward, %s float16 B=1 H=1 N=%ld D=%ld, median of %ld loops of %ld calls: per_call_us=%.3f\n",
         pattern_name, seq, dim, loops, calls, median);
  free(per_call);
  for (int i = 0; i < 4; ++i) dfss_free(*buffers[i]);
  return 0;
}
