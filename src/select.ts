// The N:M selection: which N scores of each group of M keys survive (cuda/include/dfss.h, step 3). Every
// TypeScript path that prunes calls this file; nothing else decides which keys are kept.
//
// Order of the scores, highest first: the usual order of numbers with -Infinity below every finite value,
// and NaN below -Infinity (a NaN score is kept only when a group has fewer than N other entries). On equal
// ranks the lower key index wins. Positions at or past the end of the row count as -Infinity; they still
// take part, so a group always keeps exactly N slots.

import type { Pattern } from './pattern.js';

export type ScoreArray = Float32Array | Float64Array;

/** true when score a ranks strictly above score b (NaN lowest). */
function ranksAbove(a: number, b: number): boolean {
  return a > b || (b !== b && a === a);
}

// The group being ranked, copied once so that past-the-end positions read as -Infinity.
const groupScores = new Float64Array(8);
const groupRanks = new Int32Array(8);

/**
 * Selects the kept keys of the group that starts at key `groupStart` of a row whose scores are
 * scores[rowOffset .. rowOffset + rowLength). Writes the N kept in-group indices (0 .. M-1), ascending, to
 * kept[keptOffset .. keptOffset + N). Requires 1 <= n < m <= 8.
 */
export function selectGroup(
  scores: ScoreArray,
  rowOffset: number,
  rowLength: number,
  groupStart: number,
  n: number,
  m: number,
  kept: Int32Array,
  keptOffset: number,
): void {
  const present = Math.min(m, rowLength - groupStart);
  const base = rowOffset + groupStart;
  for (let j = 0; j < present; j++) groupScores[j] = scores[base + j];
  for (let j = present < 0 ? 0 : present; j < m; j++) groupScores[j] = -Infinity;

  if (n === 1) {
    // one winner: the first of the highest
    let best = 0;
    let bestScore = groupScores[0];
    for (let j = 1; j < m; j++) {
      const s = groupScores[j];
      if (ranksAbove(s, bestScore)) {
        best = j;
        bestScore = s;
      }
    }
    kept[keptOffset] = best;
    return;
  }

  // Rank by pairwise comparison: each pair adds one to the rank (number of keys that outrank it) of its loser;
  // on a tie the lower index wins. The keys with rank below n are kept, visited in ascending order.
  groupRanks.fill(0, 0, m);
  for (let j = 1; j < m; j++) {
    const s = groupScores[j];
    for (let l = 0; l < j; l++) {
      if (ranksAbove(s, groupScores[l])) groupRanks[l]++;
      else groupRanks[j]++;
    }
  }
  let written = 0;
  for (let j = 0; j < m; j++) if (groupRanks[j] < n) kept[keptOffset + written++] = j;
}

/** Number of groups of m keys that cover a row of rowLength keys (the last one may be cut by the end). */
export function groupCount(rowLength: number, m: number): number {
  return Math.ceil(rowLength / m);
}

/**
 * Selects every group of a row: for group g (g = 0 .. ceil(rowLength / M) - 1) writes its N kept in-group
 * indices, ascending, to keptIndex[keptOffset + g*N .. keptOffset + g*N + N). Same result as selectGroup on
 * every group; full groups of 2 and 4 keys without NaN take a branch-free path (random scores make the
 * branches of a comparison sort unpredictable, which would dominate the cost).
 */
export function pruneRow(
  scores: ScoreArray,
  rowOffset: number,
  rowLength: number,
  pattern: Pattern,
  keptIndex: Int32Array,
  keptOffset = 0,
): void {
  const { n, m } = pattern;
  const groups = groupCount(rowLength, m);
  const fullGroups = Math.floor(rowLength / m);
  let g = 0;
  if (m === 2) {
    for (; g < fullGroups; g++) {
      const base = rowOffset + 2 * g;
      const a = scores[base];
      const b = scores[base + 1];
      if (a === a && b === b) keptIndex[keptOffset + g] = +(b > a);
      else selectGroup(scores, rowOffset, rowLength, 2 * g, 1, 2, keptIndex, keptOffset + g);
    }
  } else if (m === 4) {
    for (; g < fullGroups; g++) {
      const base = rowOffset + 4 * g;
      const a = scores[base];
      const b = scores[base + 1];
      const c = scores[base + 2];
      const d = scores[base + 3];
      const out = keptOffset + g * n;
      if (a === a && b === b && c === c && d === d) {
        const packed = keptOfFour(a, b, c, d, n);
        for (let t = 0; t < n; t++) keptIndex[out + t] = (packed >>> (3 * t)) & 7;
      } else {
        selectGroup(scores, rowOffset, rowLength, 4 * g, n, 4, keptIndex, out);
      }
    }
  }
  for (; g < groups; g++) selectGroup(scores, rowOffset, rowLength, g * m, n, m, keptIndex, keptOffset + g * n);
}

/** For each set of kept keys of a group of four (bit j: key j), their indices ascending, 3 bits each. */
const KEPT_BY_MASK = (() => {
  const table = new Int32Array(16);
  for (let mask = 0; mask < 16; mask++) {
    let packed = 0;
    let count = 0;
    for (let j = 0; j < 4; j++) if ((mask >>> j) & 1) packed |= j << (3 * count++);
    table[mask] = packed;
  }
  return table;
})();

/**
 * The n kept in-group indices of a full group of four scores without NaN, ascending, packed 3 bits each (index t
 * at bits 3t .. 3t+2). Branch-free: random scores make the branches of a comparison sort unpredictable.
 */
function keptOfFour(a: number, b: number, c: number, d: number, n: number): number {
  // rank of each key = number of keys that outrank it (the lower index wins a tie)
  const ba = +(b > a);
  const ca = +(c > a);
  const da = +(d > a);
  const cb = +(c > b);
  const db = +(d > b);
  const dc = +(d > c);
  const keptMask =
    +(ba + ca + da < n) |
    (+(1 - ba + cb + db < n) << 1) |
    (+(2 - ca - cb + dc < n) << 2) |
    (+(3 - da - db - dc < n) << 3);
  return KEPT_BY_MASK[keptMask];
}

// One group's in-group indices, for the groups that gatherKeptKeys hands to selectGroup.
const groupKept = new Int32Array(8);

/**
 * The kept keys of a row, as pruneRow chooses them, in one pass: for every group that starts before rowLength,
 * its kept keys g*M + j (ascending) that are below rowLength (kept positions past the end are left out), written
 * to keys[0 ..] with their scores to keptValues[0 ..]. Returns how many were written (at most
 * ceil(rowLength / M) * N).
 */
export function gatherKeptKeys(
  scores: ScoreArray,
  rowOffset: number,
  rowLength: number,
  pattern: Pattern,
  keys: Int32Array,
  keptValues: ScoreArray,
): number {
  const { n, m } = pattern;
  const groups = groupCount(rowLength, m);
  const fullGroups = Math.floor(rowLength / m);
  let count = 0;
  let g = 0;
  if (m === 2) {
    for (; g < fullGroups; g++) {
      const base = rowOffset + 2 * g;
      const a = scores[base];
      const b = scores[base + 1];
      if (a !== a || b !== b) break; // NaN: selectGroup below, from this group on
      const j = +(b > a);
      keys[count] = 2 * g + j;
      keptValues[count] = j === 0 ? a : b;
      count++;
    }
  } else if (m === 4) {
    for (; g < fullGroups; g++) {
      const base = rowOffset + 4 * g;
      const a = scores[base];
      const b = scores[base + 1];
      const c = scores[base + 2];
      const d = scores[base + 3];
      if (a !== a || b !== b || c !== c || d !== d) break;
      const packed = keptOfFour(a, b, c, d, n);
      if (n === 2) {
        // 2:4 unrolled: the hot case
        const j0 = packed & 7;
        const j1 = packed >>> 3;
        keys[count] = 4 * g + j0;
        keptValues[count] = scores[base + j0];
        keys[count + 1] = 4 * g + j1;
        keptValues[count + 1] = scores[base + j1];
        count += 2;
        continue;
      }
      for (let t = 0; t < n; t++) {
        const j = (packed >>> (3 * t)) & 7;
        keys[count] = 4 * g + j;
        keptValues[count] = scores[base + j];
        count++;
      }
    }
  }
  for (; g < groups; g++) {
    const start = g * m;
    selectGroup(scores, rowOffset, rowLength, start, n, m, groupKept, 0);
    for (let t = 0; t < n; t++) {
      const key = start + groupKept[t];
      if (key < rowLength) {
        keys[count] = key;
        keptValues[count] = scores[rowOffset + key];
        count++;
      }
    }
  }
  return count;
}
