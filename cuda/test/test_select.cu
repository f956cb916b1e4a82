// test_select.cu: the branch-free selection networks of select.cuh (select_2_of_4, select_1_of_2_pairs, and their
// NaN-free forms on the groups without NaN), which the tensor-core kernels run, against select_n_of_m, THE rule of
// dfss.h step 3, on every group of 4 scores drawn from a set of special values (ties, -0 and +0, +-inf, NaN): the
// same kept keys, the kept values in key order, a metadata nibble naming them, and the group's largest non-NaN score;
// and the readers of a choice (values at the kept keys, masks of the kept keys) on the same groups.
// Host code: it runs where no GPU exists. Prints one line per failed group and closes with 'N passed, N failed';
// exits non-zero when a check failed.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>

#include "select.cuh"

namespace {

int passed_count = 0;
int failed_count = 0;

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Equal as group maxima: the same value (fmaxf may return either zero for -0 vs +0), or both NaN.
bool same_maximum(float a, float b) { return a == b || (std::isnan(a) && std::isnan(b)); }

void report(bool ok, const char *network, const float *x, const char *what) {
  if (ok) {
    ++passed_count;
    return;
  }
  ++failed_count;
  std::printf("FAIL %s(%g, %g, %g, %g): %s\n", network, x[0], x[1], x[2], x[3], what);
}

// The keys a choice names through its nibble (first in bits 0..1, second in bits 2..3), as a 4-bit mask.
unsigned kept_by_nibble(const dfss::GroupChoice &choice) {
  return (1u << (choice.nibble & 3u)) | (1u << ((choice.nibble >> 2) & 3u));
}

// value_bits: the kept values must be the keys' scores bit for bit (else equal as numbers: -0 may stand for +0).
void check_choice(const char *network, const float *x, const dfss::GroupChoice &choice, unsigned want_kept,
                  bool value_bits = true) {
  const unsigned first = choice.nibble & 3u;
  const unsigned second = (choice.nibble >> 2) & 3u;
  report(choice.nibble <= 0xFu && first < second, network, x, "nibble: two ascending indices");
  report(kept_by_nibble(choice) == want_kept, network, x, "kept keys differ from select_n_of_m");
  const bool same_values = value_bits ? same_bits(choice.first, x[first]) && same_bits(choice.second, x[second])
                                      : choice.first == x[first] && choice.second == x[second];
  report(same_values, network, x, "kept values are not those of the nibble's keys");
  const float maximum = std::fmax(std::fmax(x[0], x[1]), std::fmax(x[2], x[3]));
  report(same_maximum(choice.group_max, maximum), network, x, "group_max is not the largest non-NaN score");
}

// The readers of a choice (select.cuh): at_first_kept / at_second_kept give the value at the nibble's keys, and
// kept_halves of the same group's decisions masks exactly the kept keys.
template <int Pattern>
void check_readers(const char *network, const float *x, const dfss::GroupChoice &choice,
                   const dfss::PairDecisions &decisions, unsigned want_kept) {
  const float tags[4] = {10.0f, 11.0f, 12.0f, 13.0f};  // stand-ins for any per-key quantity
  report(dfss::at_first_kept<Pattern>(choice.nibble, tags[0], tags[1], tags[2]) == tags[choice.nibble & 3u], network,
         x, "at_first_kept is not the value at the first kept key");
  report(dfss::at_second_kept<Pattern>(choice.nibble, tags[1], tags[2], tags[3]) == tags[(choice.nibble >> 2) & 3u],
         network, x, "at_second_kept is not the value at the second kept key");
  const dfss::KeptHalves halves = dfss::kept_halves(decisions);
  const uint32_t halves_of[4] = {halves.keys01 & 0xFFFFu, halves.keys01 >> 16, halves.keys23 & 0xFFFFu,
                                 halves.keys23 >> 16};
  bool masks_kept = true;
  for (unsigned key = 0; key < 4; ++key) {
    masks_kept = masks_kept && halves_of[key] == ((want_kept >> key) & 1u ? 0xFFFFu : 0u);
  }
  report(masks_kept, network, x, "kept_halves does not mask exactly the kept keys");
}

}  // namespace

int main() {
  const float inf = std::numeric_limits<float>::infinity();
  const float values[] = {std::numeric_limits<float>::quiet_NaN(), -inf, -2.0f, -1.0f, -0.0f, 0.0f,
                          1.0f, 1.5f, inf};
  const int count = static_cast<int>(sizeof values / sizeof values[0]);
  for (int a = 0; a < count; ++a) {
    for (int b = 0; b < count; ++b) {
      for (int c = 0; c < count; ++c) {
        for (int d = 0; d < count; ++d) {
          const float x[4] = {values[a], values[b], values[c], values[d]};
          const unsigned two_of_four = dfss::select_n_of_m(x, 2, 4);
          const unsigned pairs = dfss::select_n_of_m(x, 1, 2) | (dfss::select_n_of_m(x + 2, 1, 2) << 2);
          check_choice("select_2_of_4", x, dfss::select_2_of_4(x[0], x[1], x[2], x[3]), two_of_four);
          check_choice("select_1_of_2_pairs", x, dfss::select_1_of_2_pairs(x[0], x[1], x[2], x[3]), pairs);
          check_readers<DFSS_PATTERN_2_4>("decide_2_of_4", x, dfss::select_2_of_4(x[0], x[1], x[2], x[3]),
                        dfss::decide_group<DFSS_PATTERN_2_4>(x[0], x[1], x[2], x[3]), two_of_four);
          check_readers<DFSS_PATTERN_1_2>("decide_1_of_2_pairs", x, dfss::select_1_of_2_pairs(x[0], x[1], x[2], x[3]),
                        dfss::decide_group<DFSS_PATTERN_1_2>(x[0], x[1], x[2], x[3]), pairs);
          // The NaN-free forms, on every group without NaN (values[0] is the only NaN), given the pairs' maxima.
          if (a > 0 && b > 0 && c > 0 && d > 0) {
            const float max01 = std::fmax(x[0], x[1]), max23 = std::fmax(x[2], x[3]);
            check_choice("select_2_of_4_nan_free", x,
                         dfss::select_2_of_4_nan_free(x[0], x[1], x[2], x[3], max01, max23), two_of_four, false);
            check_choice("select_1_of_2_pairs_nan_free", x,
                         dfss::select_1_of_2_pairs_nan_free(x[0], x[1], x[2], x[3], max01, max23), pairs, false);
          }
        }
      }
    }
  }
  // The rule itself on the cases dfss.h names: NaN below -inf, the lower key on a tie, -0 ties +0.
  const float nan_and_inf[4] = {values[0], -inf, -inf, values[0]};
  report(dfss::select_n_of_m(nan_and_inf, 2, 4) == 0x6u, "select_n_of_m", nan_and_inf, "NaN must rank below -inf");
  const float zeros[4] = {0.0f, -0.0f, -0.0f, 0.0f};
  report(dfss::select_n_of_m(zeros, 2, 4) == 0x3u, "select_n_of_m", zeros, "ties (+-0) must keep the lower keys");

  std::printf("%d passed, %d failed\n", passed_count, failed_count);
  return failed_count == 0 ? 0 : 1;
}
