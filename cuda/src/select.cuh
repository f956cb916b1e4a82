// THE N:M selection of the device code (dfss.h, step 3): which n of the m scores of one group survive. Every
// kernel that prunes calls select_n_of_m; the TypeScript twin is src/select.ts, with the same order:
//   - highest first; -inf ranks below every finite value and NaN below -inf;
//   - on equal ranks the lower index wins;
//   - masked keys and positions past the end of the row are -inf and still take part, so exactly n are kept.
#pragma once

namespace dfss {

// Largest group of the patterns of dfss.h (2:4).
constexpr int kMaxGroupSize = 4;

// true when score a ranks strictly above score b (NaN lowest).
__device__ inline bool ranks_above(float a, float b) { return a > b || (isnan(b) && !isnan(a)); }

// Bit p of the result is set when position p (0 .. m-1) of `scores` is kept. A position is kept when fewer than
// n positions outrank it: a lower position by ranking at least as high, a higher one by ranking strictly above.
__device__ inline unsigned select_n_of_m(const float *scores, int n, int m) {
  unsigned kept = 0;
  for (int p = 0; p < m; ++p) {
    int outranked_by = 0;
    for (int other = 0; other < m; ++other) {
      if (other < p && !ranks_above(scores[p], scores[other])) ++outranked_by;
      if (other > p && ranks_above(scores[other], scores[p])) ++outranked_by;
    }
    if (outranked_by < n) kept |= 1u << p;
  }
  return kept;
}

}  // namespace dfss
