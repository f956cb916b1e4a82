/* dfss from C: float16 attention with the 2:4 pattern on the GPU. In a checkout, after `make`:
 *   cc -std=c11 -Icuda/include examples/c/attention.c -Lbuild/cuda/lib -ldfss -Wl,-rpath,build/cuda/lib -o attention
 *   ./attention
 * Exit status 3 where there is no GPU (DFSS_ERROR_NO_DEVICE), 1 on any other failure. _Float16 needs GCC 12 or
 * Clang 15 on x86-64 or AArch64; any 16-bit IEEE half type works the same. */
#include <stdio.h>
#include <stdlib.h>

#include "dfss.h"

#define CHECK(call)                                                                             \
  do {                                                                                          \
    dfss_status status_ = (call);                                                               \
    if (status_ != DFSS_SUCCESS) {                                                              \
      fprintf(stderr, "%s failed: %s\n", #call, dfss_last_error_message());                     \
      return status_ == DFSS_ERROR_NO_DEVICE ? 3 : 1;                                           \
    }                                                                                           \
  } while (0)

enum { B = 1, H = 4, N = 256, D = 64, COUNT = B * H * N * D };

int main(void) {
  static _Float16 host[3][COUNT], result[COUNT];
  /* Multiples of 1/8 in [-1, 1] (exact in float16); the other examples use the same inputs. */
  for (int t = 0; t < 3; t++)
    for (int i = 0; i < COUNT; i++) host[t][i] = (_Float16)((double)((i * 37 + t + 1) % 17 - 8) / 8);

  unsigned version = dfss_version();
  printf("libdfss %u.%u.%u\n", version / 10000, version / 100 % 100, version % 100);

  /* Device memory for q, k, v and out; the inputs copied in. */
  void *device[4] = {NULL, NULL, NULL, NULL};
  for (int t = 0; t < 4; t++) CHECK(dfss_malloc(&device[t], sizeof result));
  for (int t = 0; t < 3; t++) CHECK(dfss_memcpy(device[t], host[t], sizeof result, DFSS_MEMCPY_HOST_TO_DEVICE, NULL));

  /* One descriptor: dtype, pattern and sizes [B, H, N, D] (packed strides by default), then the options. */
  dfss_attention_desc desc;
  CHECK(dfss_attention_desc_init(&desc, DFSS_DTYPE_FLOAT16, DFSS_PATTERN_2_4, B, H, H, N, N, D, D));
  desc.causal = 1;
  CHECK(dfss_attention_forward(&desc, device[0], device[1], device[2], device[3], NULL));

  /* The copy back returns once the result is on the host. */
  CHECK(dfss_memcpy(result, device[3], sizeof result, DFSS_MEMCPY_DEVICE_TO_HOST, NULL));
  for (int t = 0; t < 4; t++) dfss_free(device[t]);

  const _Float16 *row = result + (N - 1) * D;
  printf("out [%d, %d, %d, %d], out[0, 0, %d, :4] = %.4f %.4f %.4f %.4f\n", B, H, N, D, N - 1, (double)row[0],
         (double)row[1], (double)row[2], (double)row[3]);
  double sum = 0;
  for (int i = 0; i < COUNT; i++) sum += result[i] < 0 ? -(double)result[i] : (double)result[i];
  printf("mean |out| %.6f\n", sum / COUNT);
  return EXIT_SUCCESS;
}
