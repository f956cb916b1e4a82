// The per-row steps of CPU attention (cuda/include/dfss.h, steps 1-7), shared by the fused forward
// (attention.ts), the staged operations (staged.ts) and the backward (backward.ts) so that all compute exactly
// the same thing.
//
// Arithmetic, chosen to match the GPU reference kernels:
//   - scores: acc = fround(acc + q[d] * k[d]) for d = 0 .. D-1, then s = fround(acc * fround(scale)). For
//     float16 / bfloat16 inputs q[d] * k[d] is exact in float64 and the one rounding to float32 equals
//     fmaf(q[d], k[d], acc). For float32 inputs the product has up to 48 bits, so in rare cases the sum is
//     rounded twice (to float64, then float32) and may differ from fmaf in the last bit.
//   - softmax: max over the finite entries; e = exp(s - max) and its sum in float64; p = e / sum rounded to
//     the dtype; lse = fround(max + log(sum)). Entries that are not finite (masked -inf, and NaN or +inf
//     from overflowing inputs) get p = 0, as step 4 takes "the kept, finite entries".
//   - P V: sum of p * v in float64 in ascending key order, rounded to the dtype once at the end (the GPU
//     accumulates in float32; tests allow for the difference). Entries with p = 0 are skipped, so they add
//     nothing even where v holds Inf or NaN.

import { rounderFor } from '../dtype.js';
import { InvalidArgumentError } from '../errors.js';
import type { AttentionProblem, Strides4 } from '../problem.js';
import type { Pattern } from '../pattern.js';
import { gatherKeptKeys, groupCount, pruneRow } from '../select.js';

export type Rounder = (x: number) => number;

/** Number of elements a strided buffer of this shape needs: 1 + the largest offset (0 if empty). */
export function stridedSpan(shape: readonly number[], strides: Strides4): number {
  let last = 0;
  for (let axis = 0; axis < shape.length; axis++) {
    if (shape[axis] === 0) return 0;
    last += (shape[axis] - 1) * strides[axis];
  }
  return last + 1;
}

/** Throws unless array holds at least `needed` elements. */
export function requireLength(argument: string, array: ArrayLike<number>, needed: number, what: string): void {
  if (array.length < needed) {
    throw new InvalidArgumentError(argument, `at least ${needed} elements (${what})`, `${array.length} elements`);
  }
}

/** Valid queries (or keys) of batch entry b: seqlens[b], or the full length. */
export function validLength(seqlens: Int32Array | null, b: number, full: number): number {
  return seqlens === null ? full : seqlens[b];
}

/**
 * Number of allowed keys of query row i: keys 0 .. count-1 are allowed, all others masked (step 2). Rows at
 * or past the valid query length, and causal rows above the bottom-right diagonal, get 0.
 */
export function allowedKeyCount(causal: boolean, i: number, validQ: number, validK: number): number {
  if (i >= validQ) return 0;
  if (!causal) return validK;
  const last = i + validK - validQ; // bottom-right aligned diagonal
  return last < 0 ? 0 : Math.min(validK, last + 1);
}

/** Checks that q, k and v hold every element their shapes and strides address. */
export function requireInputs(
  problem: AttentionProblem,
  inputs: { q?: ArrayLike<number>; k?: ArrayLike<number>; v?: ArrayLike<number> },
): void {
  const { batch, headsQ, headsKv, seqQ, seqK, headDim, headDimV } = problem;
  if (inputs.q) requireLength('q', inputs.q, stridedSpan([batch, headsQ, seqQ, headDim], problem.qStrides), 'q shape and strides');
  if (inputs.k) requireLength('k', inputs.k, stridedSpan([batch, headsKv, seqK, headDim], problem.kStrides), 'k shape and strides');
  if (inputs.v) requireLength('v', inputs.v, stridedSpan([batch, headsKv, seqK, headDimV], problem.vStrides), 'v shape and strides');
}

/** Checks the per-batch valid lengths: [B] arrays with 0 <= Nq_b <= Nq and 0 <= Nk_b <= Nk. */
export function requireValidLengths(problem: AttentionProblem): void {
  const check = (argument: string, lengths: Int32Array | null, full: number) => {
    if (lengths === null) return;
    if (lengths.length < problem.batch) {
      throw new InvalidArgumentError(argument, `an Int32Array of B = ${problem.batch} lengths`, `${lengths.length} elements`);
    }
    for (let b = 0; b < problem.batch; b++) {
      if (!(lengths[b] >= 0 && lengths[b] <= full)) throw new InvalidArgumentError(`${argument}[${b}]`, `0 .. ${full}`, lengths[b]);
    }
  };
  check('seqlensQ', problem.seqlensQ, problem.seqQ);
  check('seqlensK', problem.seqlensK, problem.seqK);
}

/**
 * What the fused forward and backward do before their row loops: q, k, v, the valid lengths and out (by
 * problem.outStrides) checked; then the dtype's rounding, the float32 scale, the query heads of a kv head, and row
 * scratch wide enough for every key (or every kept slot of the pattern).
 */
export function prepareFusedRows(
  problem: AttentionProblem,
  inputs: { q: ArrayLike<number>; k: ArrayLike<number>; v: ArrayLike<number> },
  out: ArrayLike<number>,
) {
  requireInputs(problem, inputs);
  requireValidLengths(problem);
  requireLength('out', out, outputSpan(problem), 'out shape and strides');
  const { seqK, headDimV, pattern } = problem;
  const maxSlots = pattern === null ? seqK : groupCount(seqK, pattern.m) * pattern.n;
  return {
    round: rounderFor(problem.dtype),
    scale32: Math.fround(problem.scale),
    headsPerKv: problem.headsQ / problem.headsKv,
    scratch: new RowScratch(seqK, maxSlots, headDimV),
  };
}

/** Number of elements out needs for its shape and strides. */
export function outputSpan(problem: AttentionProblem): number {
  return stridedSpan([problem.batch, problem.headsQ, problem.seqQ, problem.headDimV], problem.outStrides);
}

/**
 * Step 1 for keys 0 .. count-1 of one row: scores[j] = fround(fround(sum_d q[d] k_j[d]) * scale32), with
 * q at qBase and key j at kBase + j * kRowStride. Eight keys at a time, so that eight independent float32
 * chains hide each other's latency; each chain keeps the order d = 0 .. D-1.
 */
export function computeScores(
  q: Float32Array,
  qBase: number,
  k: Float32Array,
  kBase: number,
  kRowStride: number,
  headDim: number,
  count: number,
  scale32: number,
  scores: Float32Array,
  scoresOffset = 0,
): void {
  const fround = Math.fround;
  const ks = kRowStride;
  const s = scoresOffset;
  let j = 0;
  for (; j + 8 <= count; j += 8) {
    const k0 = kBase + j * ks;
    const k1 = k0 + ks;
    const k2 = k1 + ks;
    const k3 = k2 + ks;
    const k4 = k3 + ks;
    const k5 = k4 + ks;
    const k6 = k5 + ks;
    const k7 = k6 + ks;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let a4 = 0;
    let a5 = 0;
    let a6 = 0;
    let a7 = 0;
    for (let d = 0; d < headDim; d++) {
      const x = q[qBase + d];
      a0 = fround(a0 + x * k[k0 + d]);
      a1 = fround(a1 + x * k[k1 + d]);
      a2 = fround(a2 + x * k[k2 + d]);
      a3 = fround(a3 + x * k[k3 + d]);
      a4 = fround(a4 + x * k[k4 + d]);
      a5 = fround(a5 + x * k[k5 + d]);
      a6 = fround(a6 + x * k[k6 + d]);
      a7 = fround(a7 + x * k[k7 + d]);
    }
    scores[s + j] = fround(a0 * scale32);
    scores[s + j + 1] = fround(a1 * scale32);
    scores[s + j + 2] = fround(a2 * scale32);
    scores[s + j + 3] = fround(a3 * scale32);
    scores[s + j + 4] = fround(a4 * scale32);
    scores[s + j + 5] = fround(a5 * scale32);
    scores[s + j + 6] = fround(a6 * scale32);
    scores[s + j + 7] = fround(a7 * scale32);
  }
  for (; j < count; j++) {
    const k0 = kBase + j * ks;
    let a0 = 0;
    for (let d = 0; d < headDim; d++) a0 = fround(a0 + q[qBase + d] * k[k0 + d]);
    scores[s + j] = fround(a0 * scale32);
  }
}

/** Query rows that computeScoreBlock scores together. */
export const SCORE_BLOCK_ROWS = 4;

/**
 * Step 1 for `rows` (at most SCORE_BLOCK_ROWS) consecutive query rows and keys 0 .. count-1: query r at
 * qBase + r * qRowStride, its score of key j to scores[r * scoresRowStride + j]. Exactly computeScores' arithmetic
 * and order (the same bits), four queries by four keys per pass: each q and k element loaded feeds four float32
 * chains, which halves the loads and index checks per multiply-add against one query by eight keys.
 */
export function computeScoreBlock(
  q: Float32Array,
  qBase: number,
  qRowStride: number,
  rows: number,
  k: Float32Array,
  kBase: number,
  kRowStride: number,
  headDim: number,
  count: number,
  scale32: number,
  scores: Float32Array,
  scoresRowStride: number,
): void {
  if (rows !== SCORE_BLOCK_ROWS) {
    for (let r = 0; r < rows; r++) {
      computeScores(q, qBase + r * qRowStride, k, kBase, kRowStride, headDim, count, scale32, scores, r * scoresRowStride);
    }
    return;
  }
  const fround = Math.fround;
  const ks = kRowStride;
  const q0 = qBase;
  const q1 = q0 + qRowStride;
  const q2 = q1 + qRowStride;
  const q3 = q2 + qRowStride;
  const s0 = 0;
  const s1 = scoresRowStride;
  const s2 = s1 + scoresRowStride;
  const s3 = s2 + scoresRowStride;
  let j = 0;
  for (; j + 4 <= count; j += 4) {
    const k0 = kBase + j * ks;
    const k1 = k0 + ks;
    const k2 = k1 + ks;
    const k3 = k2 + ks;
    // a<query><key>
    let a00 = 0, a01 = 0, a02 = 0, a03 = 0;
    let a10 = 0, a11 = 0, a12 = 0, a13 = 0;
    let a20 = 0, a21 = 0, a22 = 0, a23 = 0;
    let a30 = 0, a31 = 0, a32 = 0, a33 = 0;
    for (let d = 0; d < headDim; d++) {
      const x0 = q[q0 + d];
      const x1 = q[q1 + d];
      const x2 = q[q2 + d];
      const x3 = q[q3 + d];
      const y0 = k[k0 + d];
      const y1 = k[k1 + d];
      const y2 = k[k2 + d];
      const y3 = k[k3 + d];
      a00 = fround(a00 + x0 * y0);
      a01 = fround(a01 + x0 * y1);
      a02 = fround(a02 + x0 * y2);
      a03 = fround(a03 + x0 * y3);
      a10 = fround(a10 + x1 * y0);
      a11 = fround(a11 + x1 * y1);
      a12 = fround(a12 + x1 * y2);
      a13 = fround(a13 + x1 * y3);
      a20 = fround(a20 + x2 * y0);
      a21 = fround(a21 + x2 * y1);
      a22 = fround(a22 + x2 * y2);
      a23 = fround(a23 + x2 * y3);
      a30 = fround(a30 + x3 * y0);
      a31 = fround(a31 + x3 * y1);
      a32 = fround(a32 + x3 * y2);
      a33 = fround(a33 + x3 * y3);
    }
    scores[s0 + j] = fround(a00 * scale32);
    scores[s0 + j + 1] = fround(a01 * scale32);
    scores[s0 + j + 2] = fround(a02 * scale32);
    scores[s0 + j + 3] = fround(a03 * scale32);
    scores[s1 + j] = fround(a10 * scale32);
    scores[s1 + j + 1] = fround(a11 * scale32);
    scores[s1 + j + 2] = fround(a12 * scale32);
    scores[s1 + j + 3] = fround(a13 * scale32);
    scores[s2 + j] = fround(a20 * scale32);
    scores[s2 + j + 1] = fround(a21 * scale32);
    scores[s2 + j + 2] = fround(a22 * scale32);
    scores[s2 + j + 3] = fround(a23 * scale32);
    scores[s3 + j] = fround(a30 * scale32);
    scores[s3 + j + 1] = fround(a31 * scale32);
    scores[s3 + j + 2] = fround(a32 * scale32);
    scores[s3 + j + 3] = fround(a33 * scale32);
  }
  for (; j < count; j++) {
    const k0 = kBase + j * ks;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    for (let d = 0; d < headDim; d++) {
      const y = k[k0 + d];
      a0 = fround(a0 + q[q0 + d] * y);
      a1 = fround(a1 + q[q1 + d] * y);
      a2 = fround(a2 + q[q2 + d] * y);
      a3 = fround(a3 + q[q3 + d] * y);
    }
    scores[s0 + j] = fround(a0 * scale32);
    scores[s1 + j] = fround(a1 * scale32);
    scores[s2 + j] = fround(a2 * scale32);
    scores[s3 + j] = fround(a3 * scale32);
  }
}

/** The key of each compressed slot: keys[c] = floor(c / n) * m + inGroup[c], for c < slots. */
export function slotKeys(inGroup: Int32Array, slots: number, n: number, m: number, keys: Int32Array): void {
  for (let g = 0, c = 0; c < slots; g += m) {
    for (let t = 0; t < n && c < slots; t++, c++) keys[c] = g + inGroup[c];
  }
}

/**
 * Step 3 for the first `slots` compressed slots of a row whose keys 0 .. allowed-1 have scores and whose
 * other keys are masked (-inf, exactly like positions past the end, so the selection runs on the allowed
 * prefix only). Writes in-group indices to inGroup and keys to keys; fully masked groups keep their first N.
 */
export function selectSlots(
  scores: Float32Array,
  allowed: number,
  pattern: Pattern,
  slots: number,
  inGroup: Int32Array,
  keys: Int32Array,
): void {
  const { n, m } = pattern;
  const liveSlots = Math.min(slots, groupCount(allowed, m) * n);
  if (allowed > 0) pruneRow(scores, 0, allowed, pattern, inGroup, 0);
  for (let c = liveSlots; c < slots; c++) inGroup[c] = c % n;
  slotKeys(inGroup, slots, n, m, keys);
}

/** The keys a row keeps, ascending, and their scores: keys[0 .. count) and scores[0 .. count). */
export interface KeptRow {
  readonly count: number;
  readonly keys: Int32Array;
  readonly scores: Float32Array;
}

/**
 * Step 3 of one row whose scores of keys 0 .. allowed-1 are scores[offset .. offset + allowed) (allowed >= 1;
 * later keys are masked, so the selection runs on the allowed prefix only): writes the keys the N:M choice keeps
 * among the allowed ones, ascending, to scratch.keys and their scores to scratch.gathered, and returns how many
 * there are. Masked keys are never kept, even where a group keeps them.
 */
export function gatherKept(scores: Float32Array, offset: number, allowed: number, pattern: Pattern, scratch: RowScratch): number {
  return gatherKeptKeys(scores, offset, allowed, pattern, scratch.keys, scratch.gathered);
}

/**
 * Steps 1-3 of one row whose keys 0 .. allowed-1 are allowed (allowed >= 1; later keys are masked): the scores
 * (computeScores, q at qBase, key j at kBase + j * kRowStride), then the keys the N:M choice keeps among the
 * allowed ones (dense: all of them; gatherKept), with their scores. The arrays are the scratch's, valid until its
 * next use. The forward and the backward both keep their rows' keys with gatherKept, so they keep the same keys.
 */
export function keptScores(
  q: Float32Array,
  qBase: number,
  k: Float32Array,
  kBase: number,
  kRowStride: number,
  headDim: number,
  allowed: number,
  scale32: number,
  pattern: Pattern | null,
  scratch: RowScratch,
): KeptRow {
  const { scores, keys, gathered, identity } = scratch;
  computeScores(q, qBase, k, kBase, kRowStride, headDim, allowed, scale32, scores);
  if (pattern === null) return { count: allowed, keys: identity, scores };
  return { count: gatherKept(scores, 0, allowed, pattern, scratch), keys, scores: gathered };
}

/**
 * Steps 4 and 6 for values[offset .. offset + count): writes p (rounded) to probs[probsOffset ..] and returns
 * the row's log-sum-exp (-inf when no entry is finite; then every p is 0). probs may be values at the same
 * offset (in place). exps is float64 scratch of at least count elements.
 */
export function softmaxRow(
  values: Float32Array,
  offset: number,
  count: number,
  round: Rounder,
  probs: Float32Array,
  probsOffset: number,
  exps: Float64Array,
): number {
  let max = -Infinity;
  for (let t = 0; t < count; t++) {
    const s = values[offset + t];
    if (s > max && s < Infinity) max = s;
  }
  if (max === -Infinity) {
    probs.fill(0, probsOffset, probsOffset + count);
    return -Infinity;
  }
  let sum = 0;
  for (let t = 0; t < count; t++) {
    const s = values[offset + t];
    const e = s > -Infinity && s < Infinity ? Math.exp(s - max) : 0;
    exps[t] = e;
    sum += e;
  }
  for (let t = 0; t < count; t++) probs[probsOffset + t] = round(exps[t] / sum);
  return Math.fround(max + Math.log(sum));
}

/**
 * Step 5 without the final rounding: acc[d] = sum over t < count of probs[probsOffset + t] * v_key[d], with
 * key = keys[t] and v_key at vBase + key * vRowStride, in order of t. Entries with p = 0 or key >= keyLimit
 * are skipped. liveRows / liveWeights are scratch of at least count elements.
 */
export function accumulateRow(
  probs: Float32Array,
  probsOffset: number,
  keys: Int32Array,
  count: number,
  keyLimit: number,
  v: Float32Array,
  vBase: number,
  vRowStride: number,
  headDimV: number,
  acc: Float64Array,
  liveRows: Int32Array,
  liveWeights: Float64Array,
): void {
  let live = 0;
  for (let t = 0; t < count; t++) {
    const p = probs[probsOffset + t];
    const key = keys[t];
    if (p !== 0 && key < keyLimit) {
      liveRows[live] = vBase + key * vRowStride;
      liveWeights[live] = p;
      live++;
    }
  }
  acc.fill(0, 0, headDimV);
  let t = 0;
  // eight rows per pass over acc; the additions keep the order of t
  for (; t + 8 <= live; t += 8) {
    const o0 = liveRows[t];
    const o1 = liveRows[t + 1];
    const o2 = liveRows[t + 2];
    const o3 = liveRows[t + 3];
    const o4 = liveRows[t + 4];
    const o5 = liveRows[t + 5];
    const o6 = liveRows[t + 6];
    const o7 = liveRows[t + 7];
    const p0 = liveWeights[t];
    const p1 = liveWeights[t + 1];
    const p2 = liveWeights[t + 2];
    const p3 = liveWeights[t + 3];
    const p4 = liveWeights[t + 4];
    const p5 = liveWeights[t + 5];
    const p6 = liveWeights[t + 6];
    const p7 = liveWeights[t + 7];
    for (let d = 0; d < headDimV; d++) {
      acc[d] =
        acc[d] +
        p0 * v[o0 + d] +
        p1 * v[o1 + d] +
        p2 * v[o2 + d] +
        p3 * v[o3 + d] +
        p4 * v[o4 + d] +
        p5 * v[o5 + d] +
        p6 * v[o6 + d] +
        p7 * v[o7 + d];
    }
  }
  for (; t < live; t++) {
    const o0 = liveRows[t];
    const p0 = liveWeights[t];
    for (let d = 0; d < headDimV; d++) acc[d] += p0 * v[o0 + d];
  }
}

/** Writes acc[0 .. headDimV) rounded to the dtype to out[outBase ..]. */
export function writeRow(acc: Float64Array, headDimV: number, round: Rounder, out: Float32Array, outBase: number): void {
  for (let d = 0; d < headDimV; d++) out[outBase + d] = round(acc[d]);
}

/** Scratch buffers of one operation, sized once for its problem. */
export class RowScratch {
  readonly scores: Float32Array;
  readonly inGroup: Int32Array;
  readonly keys: Int32Array;
  readonly gathered: Float32Array;
  readonly probs: Float32Array;
  readonly exps: Float64Array;
  readonly acc: Float64Array;
  readonly liveRows: Int32Array;
  readonly liveWeights: Float64Array;
  /** keys[t] = t: the keys of a dense row. */
  readonly identity: Int32Array;

  constructor(seqK: number, slotsPerRow: number, headDimV: number) {
    const width = Math.max(seqK, slotsPerRow);
    this.scores = new Float32Array(seqK);
    this.inGroup = new Int32Array(width);
    this.keys = new Int32Array(width);
    this.gathered = new Float32Array(width);
    this.probs = new Float32Array(width);
    this.exps = new Float64Array(width);
    this.acc = new Float64Array(headDimV);
    this.liveRows = new Int32Array(width);
    this.liveWeights = new Float64Array(width);
    this.identity = new Int32Array(width);
    for (let t = 0; t < width; t++) this.identity[t] = t;
  }
}
