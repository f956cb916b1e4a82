// THE N:M selection of the device code (dfss.h, step 3): which n of the m scores of one group survive. Every
// kernel that prunes calls select_n_of_m or one of its branch-free forms below; the TypeScript twin is
// src/select.ts, with the same order:
//   - highest first; -inf ranks below every finite value and NaN below -inf;
//   - on equal ranks the lower index wins;
//   - masked keys and positions past the end of the row are -inf and still take part, so exactly n are kept.
#pragma once

#include <cmath>
#include <cstdint>

#include "dfss.h"
#include "host_device.h"

namespace dfss {

// Largest group of the patterns of dfss.h (2:4).
constexpr int kMaxGroupSize = 4;

// true when score a ranks strictly above score b (NaN lowest): a > b, or b is NaN and a is not. Written as
// "not (a <= b), and a is a number" (the same truth table: a <= b is false exactly when a > b or either is NaN),
// which compiles to two predicate-setting compares and no branch, where the short-circuit form branched.
DFSS_HOST_DEVICE inline bool ranks_above(float a, float b) { return !(a <= b) & (a == a); }

// Bit p of the result is set when position p (0 .. m-1) of `scores` is kept. A position is kept when fewer than
// n positions outrank it: a lower position by ranking at least as high, a higher one by ranking strictly above.
DFSS_HOST_DEVICE inline unsigned select_n_of_m(const float *scores, int n, int m) {
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

// ----- the same rule as branch-free networks on one thread's registers ----------------------------------------
// The fused forward's fast forms of select_n_of_m for a group of 4 consecutive keys: select_2_of_4 keeps what
// select_n_of_m(scores, 2, 4) keeps, and select_1_of_2_pairs what select_n_of_m does with n:m = 1:2 on each pair,
// bit for bit (same ranks_above, same tie rule: the lower key wins); cuda/test/test_select.cu checks them against it
// on every group of 4 drawn from a set of special values (ties, +-0, +-inf, NaN), on the host.

// The kept values of one group of 4 keys (or of two pairs, for 1:2), in ascending key order, with the group's
// 4-bit metadata (index of `first` in bits 0..1, of `second` in bits 2..3) and the largest score of the group
// (fmaxf over its non-NaN scores; NaN only when all four are NaN, which the fmaxf of the row maximum ignores).
struct GroupChoice {
  float first, second;
  uint32_t nibble;
  float group_max;
};

// The nibble of the pairs' winners (winner01, 2 + winner23) = 0b10ab: a select of two constants and a bit, where
// building it bit by bit took twice the integer instructions.
DFSS_HOST_DEVICE inline uint32_t pair_winners_nibble(bool one_beats_zero, bool three_beats_two) {
  return (three_beats_two ? 0xCu : 0x8u) + static_cast<uint32_t>(one_beats_zero);
}

// A 2:4 network's choice from its decisions: keys (0, 1) when keep01, (2, 3) when keep23, else the pairs' winners
// (winner01 of keys 0, 1 and winner23 of keys 2, 3; one_beats_zero and three_beats_two name them); the nibble of
// (0, 1) is 0b0100, of (2, 3) 0b1110.
DFSS_HOST_DEVICE inline GroupChoice two_of_four_choice(float x0, float x1, float x2, float x3, float winner01,
                                                       float winner23, bool one_beats_zero, bool three_beats_two,
                                                       bool keep01, bool keep23) {
  GroupChoice choice;
  choice.first = keep01 ? x0 : (keep23 ? x2 : winner01);
  choice.second = keep01 ? x1 : (keep23 ? x3 : winner23);
  choice.nibble = keep01 ? 0x4u : (keep23 ? 0xEu : pair_winners_nibble(one_beats_zero, three_beats_two));
  choice.group_max = fmaxf(winner01, winner23);
  return choice;
}

// The decisions a 2:4 network makes on keys x0 < x1 < x2 < x3 (and 1:2, which keeps each pair's winner): which key
// wins each pair, and whether one pair is kept whole (never both).
struct PairDecisions {
  bool one_beats_zero, three_beats_two;
  bool keep01, keep23;
};

// 2:4: the winner and loser of each pair decide: the loser of pair (0, 1) beats the winner of pair (2, 3) -> keep
// {0, 1}; the loser of (2, 3) beats the winner of (0, 1) -> keep {2, 3} (the two cannot both hold); otherwise keep
// both pair winners. Four comparisons, no branch.
DFSS_HOST_DEVICE inline PairDecisions decide_2_of_4(float x0, float x1, float x2, float x3) {
  PairDecisions decisions;
  decisions.one_beats_zero = ranks_above(x1, x0);  // on a tie the lower key (0) wins
  decisions.three_beats_two = ranks_above(x3, x2);
  const float winner01 = decisions.one_beats_zero ? x1 : x0;
  const float loser01 = decisions.one_beats_zero ? x0 : x1;
  const float winner23 = decisions.three_beats_two ? x3 : x2;
  const float loser23 = decisions.three_beats_two ? x2 : x3;
  decisions.keep01 = !ranks_above(winner23, loser01);  // keys 0, 1 are lower than 2, 3: they win ties
  decisions.keep23 = ranks_above(loser23, winner01);
  return decisions;
}

// The choice that a group's decisions make (2:4 or 1:2).
DFSS_HOST_DEVICE inline GroupChoice choice_of(const PairDecisions &d, float x0, float x1, float x2, float x3) {
  const float winner01 = d.one_beats_zero ? x1 : x0;
  const float winner23 = d.three_beats_two ? x3 : x2;
  return two_of_four_choice(x0, x1, x2, x3, winner01, winner23, d.one_beats_zero, d.three_beats_two, d.keep01,
                            d.keep23);
}

DFSS_HOST_DEVICE inline GroupChoice select_2_of_4(float x0, float x1, float x2, float x3) {
  return choice_of(decide_2_of_4(x0, x1, x2, x3), x0, x1, x2, x3);
}

// 1:2 on the pairs (x0, x1) and (x2, x3), as the 2:4 group (indices a and 2 + b) that the sparse tensor cores run:
// each pair's winner, no pair kept whole.
DFSS_HOST_DEVICE inline PairDecisions decide_1_of_2_pairs(float x0, float x1, float x2, float x3) {
  PairDecisions decisions;
  decisions.one_beats_zero = ranks_above(x1, x0);
  decisions.three_beats_two = ranks_above(x3, x2);
  decisions.keep01 = decisions.keep23 = false;
  return decisions;
}

DFSS_HOST_DEVICE inline GroupChoice select_1_of_2_pairs(float x0, float x1, float x2, float x3) {
  return choice_of(decide_1_of_2_pairs(x0, x1, x2, x3), x0, x1, x2, x3);
}

// The NaN-free forms, for groups without NaN, given the pairs' maxima max01 = fmaxf(x0, x1) and max23 =
// fmaxf(x2, x3), which the fused forward has from its row maxima: each ranking is one compare (a > b) where NaN takes
// two, and a pair's winner is its maximum, so two selects fewer a group. They keep the keys select_2_of_4 and
// select_1_of_2_pairs keep; a kept value equals its key's score (a zero may have the other sign: the same
// exponential). The fused forward votes per key step whether a score of the warp is NaN (bench/NOTES.md v6).
DFSS_HOST_DEVICE inline GroupChoice select_2_of_4_nan_free(float x0, float x1, float x2, float x3, float max01,
                                                          float max23) {
  const bool one_beats_zero = x1 > x0;
  const bool three_beats_two = x3 > x2;
  const float loser01 = one_beats_zero ? x0 : x1;
  const float loser23 = three_beats_two ? x2 : x3;
  const bool keep01 = !(max23 > loser01);
  const bool keep23 = loser23 > max01;
  return two_of_four_choice(x0, x1, x2, x3, max01, max23, one_beats_zero, three_beats_two, keep01, keep23);
}

DFSS_HOST_DEVICE inline GroupChoice select_1_of_2_pairs_nan_free(float x0, float x1, float x2, float x3, float max01,
                                                                float max23) {
  GroupChoice choice;
  choice.first = max01;
  choice.second = max23;
  choice.nibble = pair_winners_nibble(x1 > x0, x3 > x2);
  choice.group_max = fmaxf(max01, max23);
  return choice;
}

// ----- reading a choice back --------------------------------------------------------------------------------
// A nibble of the networks above is one of 0b0100 (keys 0, 1), 0b1110 (keys 2, 3) or 0b10ba (key a of 0, 1 and key
// 2 + b): the first kept key is 0, 1 or 2 and the second 1, 2 or 3 (1:2: 0 or 1, and 2 or 3). The two forms below
// use that, so each takes two selects (1:2: one) where a lookup by index takes three.

// x[first kept key] of any per-key quantity x0 .. x2 (x3 cannot be first; under 1:2, x2 cannot either).
template <int Pattern>
DFSS_HOST_DEVICE inline float at_first_kept(uint32_t nibble, float x0, float x1, float x2) {
  static_assert(Pattern == DFSS_PATTERN_2_4 || Pattern == DFSS_PATTERN_1_2, "sparse patterns only");
  const uint32_t index = nibble & 3u;
  if constexpr (Pattern == DFSS_PATTERN_1_2) return index == 1 ? x1 : x0;
  return index == 0 ? x0 : (index == 1 ? x1 : x2);
}

// x[second kept key] of x1 .. x3 (x0 cannot be second; under 1:2, x1 cannot either).
template <int Pattern>
DFSS_HOST_DEVICE inline float at_second_kept(uint32_t nibble, float x1, float x2, float x3) {
  static_assert(Pattern == DFSS_PATTERN_2_4 || Pattern == DFSS_PATTERN_1_2, "sparse patterns only");
  const uint32_t index = (nibble >> 2) & 3u;
  if constexpr (Pattern == DFSS_PATTERN_1_2) return index == 3 ? x3 : x2;
  return index == 3 ? x3 : (index == 2 ? x2 : x1);
}

// The kept keys of a group as 16-bit masks: keys01 and keys23 hold 0xFFFF in the half of each kept key of keys
// (0, 1) and (2, 3) (the low half for the lower key) and zero elsewhere, so that an AND zeroes the pruned keys of
// packed 16-bit values. Straight from the decisions: word selects, where spreading kept values by their nibble's
// indices compared every key with both.
struct KeptHalves {
  uint32_t keys01, keys23;
};

DFSS_HOST_DEVICE inline KeptHalves kept_halves(const PairDecisions &decisions) {
  const uint32_t winner01 = decisions.one_beats_zero ? 0xFFFF0000u : 0x0000FFFFu;
  const uint32_t winner23 = decisions.three_beats_two ? 0xFFFF0000u : 0x0000FFFFu;
  KeptHalves kept;
  kept.keys01 = decisions.keep01 ? 0xFFFFFFFFu : (decisions.keep23 ? 0u : winner01);
  kept.keys23 = decisions.keep23 ? 0xFFFFFFFFu : (decisions.keep01 ? 0u : winner23);
  return kept;
}

// The networks of a sparse pattern of dfss.h: its decisions alone (for callers that need no kept values or nibble),
// and its choice.
template <int Pattern>
DFSS_HOST_DEVICE inline PairDecisions decide_group(float x0, float x1, float x2, float x3) {
  static_assert(Pattern == DFSS_PATTERN_2_4 || Pattern == DFSS_PATTERN_1_2, "sparse patterns only");
  if constexpr (Pattern == DFSS_PATTERN_2_4) {
    return decide_2_of_4(x0, x1, x2, x3);
  } else {
    return decide_1_of_2_pairs(x0, x1, x2, x3);
  }
}

template <int Pattern>
DFSS_HOST_DEVICE inline GroupChoice select_group(float x0, float x1, float x2, float x3) {
  return choice_of(decide_group<Pattern>(x0, x1, x2, x3), x0, x1, x2, x3);
}

template <int Pattern>
DFSS_HOST_DEVICE inline GroupChoice select_group_nan_free(float x0, float x1, float x2, float x3, float max01,
                                                         float max23) {
  static_assert(Pattern == DFSS_PATTERN_2_4 || Pattern == DFSS_PATTERN_1_2, "sparse patterns only");
  if constexpr (Pattern == DFSS_PATTERN_2_4) {
    return select_2_of_4_nan_free(x0, x1, x2, x3, max01, max23);
  } else {
    return select_1_of_2_pairs_nan_free(x0, x1, x2, x3, max01, max23);
  }
}

}  // namespace dfss
