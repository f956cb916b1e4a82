// test_tma_key_boxes.cu: the TMA copies of a sparse kernel's K tile (key_permutation.h's tma_key_box_*, used by the
// Hopper forward's producer) against the tile order of key_permutation.h (tile_key_of_row). A box of the tensor map
// (column, key % 4, key / 4, ...) with extents (64, 2, 4) lands its elements in order, key % 4 fastest: element (e, a)
// of box b is tile row tma_key_box_row(b) + 2a + e and holds key 4 (tma_key_box_high(b) + a) + tma_key_box_low(b) + e.
// Checks that this is tile_key_of_row of that row, that the boxes write every row of the 64-row tile once, and that
// each box starts on a 1024-byte swizzle atom (8 rows of 128 bytes). Host code: it runs where no GPU exists.
// Prints the first failed checks and closes with 'passed' or 'FAILED'; exits non-zero when a check failed.
#include <cstdio>

#include "key_permutation.h"

using namespace dfss;

int failures = 0;
#define CHECK(c)                                                                        \
  do {                                                                                  \
    if (!(c)) {                                                                         \
      if (failures++ < 10) std::printf("FAIL line %d: %s\n", __LINE__, #c);             \
    }                                                                                   \
  } while (0)

int main() {
  constexpr int kTileRows = 64;
  int writes[kTileRows] = {0};
  for (int box = 0; box < kTmaKeyBoxes; ++box) {
    CHECK(tma_key_box_row(box) % 8 == 0);
    CHECK(tma_key_box_low(box) + 2 <= 4);  // the box's key % 4 range stays inside a group of 4
    for (int a = 0; a < 4; ++a) {
      for (int e = 0; e < 2; ++e) {
        const int row = tma_key_box_row(box) + 2 * a + e;
        const int key = 4 * (tma_key_box_high(box) + a) + tma_key_box_low(box) + e;
        CHECK(row >= 0 && row < kTileRows);
        if (row < 0 || row >= kTileRows) continue;
        ++writes[row];
        CHECK(tile_key_of_row(row) == key);
      }
    }
  }
  for (int row = 0; row < kTileRows; ++row) CHECK(writes[row] == 1);
  std::printf("test_tma_key_boxes: %s\n", failures == 0 ? "passed" : "FAILED");
  return failures == 0 ? 0 : 1;
}
