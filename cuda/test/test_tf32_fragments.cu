// test_tf32_fragments.cu: the index arithmetic of the float32 tensor-core kernels (tf32_fragments.h) on the host. For
// the 1:2 P.V of the fused forward (kept scores chosen in the m16n8k8 accumulators by select_1_of_2_pairs, metadata
// shares as the kernel builds them) and of the staged spmm (compressed rows and the metadata stream of dfss.h), it
// rebuilds the dense A of every mma.sp m16n8k16 .tf32 from each lane's registers and metadata as the PTX ISA lays
// them out, and compares it with the 1:2-pruned matrix (ties common: small integer scores); it also checks that the
// V tile rows give every lane the B elements of the PTX layout. Host code: it runs where no GPU exists.
// Prints the first failed checks and closes with 'passed' or 'FAILED'; exits non-zero when a check failed.
#include <cstdint>
#include <cstdio>
#include <random>

#include "tf32_fragments.h"
#include "attention_fused_fragments.cuh"
#include "select.cuh"
using namespace dfss;
int failures = 0;
#define CHECK(c) do { if (!(c)) { if (failures++ < 10) std::printf("FAIL line %d: %s\n", __LINE__, #c); } } while (0)
// PTX: with selector s, lane 2s holds kept values 0..3 and 2s+1 kept 4..7 of row group (bits 0..15) and group+8 (16..31).
int column_of(uint32_t meta_even, uint32_t meta_odd, int row_half, int kept) {
  const uint32_t word = kept < 4 ? meta_even : meta_odd;
  const uint32_t nibble = (word >> (16 * row_half + 4 * (kept % 4))) & 0xF;
  if (nibble == 0x4) return 2 * kept;
  if (nibble == 0xE) return 2 * kept + 1;
  return -1;
}
int main() {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> small(-3, 3);
  // V rows: a permutation of each 16, and b_i of lane quad is key q + 4i.
  for (int u = 0; u < 4; ++u) {
    int seen[16] = {0};
    for (int p = 0; p < 16; ++p) seen[tf32_sparse_v_key_of_row(16 * u + p) - 16 * u]++;
    for (int k = 0; k < 16; ++k) CHECK(seen[k] == 1);
  }
  for (int q = 0; q < 4; ++q)
    for (int i = 0; i < 4; ++i) CHECK(tf32_sparse_v_key_of_row(tf32_sparse_v_row(i, q)) == q + 4 * i);
  for (uint32_t bits = 0; bits < 16; ++bits)
    for (int i = 0; i < 4; ++i) CHECK(((tf32_nibbles_of_bits(bits) >> (4 * i)) & 0xF) == tf32_nibble((bits >> i) & 1));
  for (int trial = 0; trial < 2000; ++trial) {
    // Fused: S[16][64] (ties common), natural key order; lane (g, q) holds s[j][2r + e] = S[g + 8r][8j + 2q + e].
    float S[16][64];
    for (auto &row : S) for (float &x : row) x = float(small(rng));
    float kept[32][4][2][2];
    uint32_t shares[32][4][2];
    for (int lane = 0; lane < 32; ++lane) {
      const int g = lane / 4, q = lane % 4;
      for (int u = 0; u < 4; ++u) {
        uint32_t nib[2][2];
        for (int r = 0; r < 2; ++r) {
          const float *x = S[g + 8 * r];
          const GroupChoice c = select_1_of_2_pairs(x[16 * u + 2 * q], x[16 * u + 2 * q + 1], x[16 * u + 8 + 2 * q],
                                                    x[16 * u + 8 + 2 * q + 1]);
          kept[lane][u][r][0] = c.first; kept[lane][u][r][1] = c.second;
          nib[0][r] = tf32_nibble(c.nibble & 1u); nib[1][r] = tf32_nibble((c.nibble >> 2) & 1u);
        }
        for (int h = 0; h < 2; ++h) shares[lane][u][h] = fused::metadata_share(nib[h][0], nib[h][1], q);
      }
    }
    for (int u = 0; u < 4; ++u) {
      float A[16][16] = {};
      for (int g = 0; g < 8; ++g) {
        // gather_metadata: quad lane 2s + h receives the OR of the quad's shares of (u, h).
        uint32_t meta[2] = {0, 0};
        for (int q = 0; q < 4; ++q) for (int h = 0; h < 2; ++h) meta[h] |= shares[4 * g + q][u][h];
        for (int q = 0; q < 4; ++q) {
          const int lane = 4 * g + q;
          const float a[4] = {kept[lane][u][0][0], kept[lane][u][1][0], kept[lane][u][0][1], kept[lane][u][1][1]};
          // a0 = (g, kept q), a1 = (g + 8, kept q), a2 = (g, kept q + 4), a3 = (g + 8, kept q + 4).
          for (int reg = 0; reg < 4; ++reg) {
            const int row_half = reg % 2, kept_index = q + 4 * (reg / 2);
            const int column = column_of(meta[0], meta[1], row_half, kept_index);
            CHECK(column >= 0);
            if (column >= 0) A[g + 8 * row_half][column] = a[reg];
          }
        }
      }
      for (int r = 0; r < 16; ++r)
        for (int pair = 0; pair < 8; ++pair) {
          const float x0 = S[r][16 * u + 2 * pair], x1 = S[r][16 * u + 2 * pair + 1];
          const bool second = x1 > x0;  // the lower key wins ties
          CHECK(A[r][2 * pair + second] == (second ? x1 : x0));
          CHECK(A[r][2 * pair + !second] == 0.0f);
        }
    }
    // Staged: compressed 1:2 rows (slot c = kept of pair c, bit c of the stream = its index); 16-key step `step`.
    const int Nk = 64, C = 32;
    float values[16][C]; uint32_t words[16][1];
    for (int r = 0; r < 16; ++r) {
      words[r][0] = 0;
      for (int c = 0; c < C; ++c) {
        const bool second = S[r][2 * c + 1] > S[r][2 * c];
        values[r][c] = second ? S[r][2 * c + 1] : S[r][2 * c];
        words[r][0] |= uint32_t(second) << c;
      }
    }
    for (int step = 0; step < Nk / 16; ++step) {
      float A[16][16] = {};
      for (int g = 0; g < 8; ++g) {
        uint32_t reg_of[4];
        for (int q = 0; q < 4; ++q) {
          const uint32_t top = (words[g][step / 4] >> (8 * (step % 4))) & 0xFF;
          const uint32_t bottom = (words[g + 8][step / 4] >> (8 * (step % 4))) & 0xFF;
          reg_of[q] = tf32_sparse_metadata_register(top, bottom, q);
        }
        for (int q = 0; q < 4; ++q)
          for (int reg = 0; reg < 4; ++reg) {
            const int row_half = reg % 2, kept_index = q + 4 * (reg / 2);
            const float value = values[g + 8 * row_half][8 * step + kept_index];
            const int column = column_of(reg_of[0], reg_of[1], row_half, kept_index);  // selector 0: lanes 0, 1
            CHECK(column >= 0);
            if (column >= 0) A[g + 8 * row_half][column] = value;
          }
      }
      for (int r = 0; r < 16; ++r)
        for (int pair = 0; pair < 8; ++pair) {
          const float x0 = S[r][16 * step + 2 * pair], x1 = S[r][16 * step + 2 * pair + 1];
          const bool second = x1 > x0;
          CHECK(A[r][2 * pair + second] == (second ? x1 : x0));
        }
    }
  }
  std::printf("%s (%d failures)\n", failures ? "FAILED" : "passed", failures);
  return failures != 0;
}
