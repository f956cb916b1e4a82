// The semantics of cuda/include/dfss.h (steps 1-7) on the CPU backend, checked against hand-computed
// examples and against an independent float64 reference written here.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { attentionForward } from '../src/cpu/attention.js';
import { compressedSoftmax, sddmmPrune, spmm } from '../src/cpu/staged.js';
import { DTYPES, roundToDType, type DType } from '../src/dtype.js';
import { InvalidArgumentError } from '../src/errors.js';
import { compressedRowSize, decodeMetadata } from '../src/layout.js';
import { parsePattern, type Pattern } from '../src/pattern.js';
import type { AttentionProblem, Strides4 } from '../src/problem.js';
import { pruneRow, selectGroup } from '../src/select.js';
import { makeProblem, type Spec } from './support/problems.js';

// ----- building problems and tensors ---------------------------------------------------------------------

type Fill = (b: number, h: number, n: number, d: number) => number;

/** A tensor of the given logical shape laid out by strides, values rounded to dtype. */
function tensor(shape: [number, number, number, number], strides: Strides4, dtype: DType, fill: Fill): Float32Array {
  const [B, H, N, D] = shape;
  const data = new Float32Array((B - 1) * strides[0] + (H - 1) * strides[1] + (N - 1) * strides[2] + D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let n = 0; n < N; n++)
        for (let d = 0; d < D; d++) data[b * strides[0] + h * strides[1] + n * strides[2] + d] = roundToDType(fill(b, h, n, d), dtype);
  return data;
}

interface Inputs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

function inputs(p: AttentionProblem, fq: Fill, fk: Fill, fv: Fill): Inputs {
  return {
    q: tensor([p.batch, p.headsQ, p.seqQ, p.headDim], p.qStrides, p.dtype, fq),
    k: tensor([p.batch, p.headsKv, p.seqK, p.headDim], p.kStrides, p.dtype, fk),
    v: tensor([p.batch, p.headsKv, p.seqK, p.headDimV], p.vStrides, p.dtype, fv),
  };
}

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Uniform values in [-1, 1). */
function uniform(seed: number): Fill {
  const next = random(seed);
  return () => next() * 2 - 1;
}

/** Small integers in [-2, 2]: with scale 1/4 every score is exact in every dtype, and ties are frequent. */
function integers(seed: number): Fill {
  const next = random(seed);
  return () => Math.floor(next() * 5) - 2;
}

/** v = identity (Dv = Nk): row i of the output is then the rounded probability vector of row i. */
const oneHot: Fill = (_b, _h, n, d) => (n === d ? 1 : 0);

function outAt(p: AttentionProblem, out: Float32Array, b: number, h: number, i: number, d: number): number {
  const s = p.outStrides;
  return out[b * s[0] + h * s[1] + i * s[2] + d];
}

/** out as a contiguous [B, Hq, Nq, Dv] array. */
function logicalOut(p: AttentionProblem, out: Float32Array): number[] {
  const values: number[] = [];
  for (let b = 0; b < p.batch; b++)
    for (let h = 0; h < p.headsQ; h++)
      for (let i = 0; i < p.seqQ; i++) for (let d = 0; d < p.headDimV; d++) values.push(outAt(p, out, b, h, i, d));
  return values;
}

function rowOf(p: AttentionProblem, out: Float32Array, i: number, b = 0, h = 0): number[] {
  return Array.from({ length: p.headDimV }, (_, d) => outAt(p, out, b, h, i, d));
}

function run(p: AttentionProblem, x: Inputs): { out: Float32Array; lse: Float32Array } {
  const lse = new Float32Array(p.batch * p.headsQ * p.seqQ);
  const out = attentionForward(p, x.q, x.k, x.v, undefined, lse);
  return { out, lse };
}

function runStaged(p: AttentionProblem, x: Inputs) {
  const scores = sddmmPrune(p, x.q, x.k);
  const { probs, lse } = compressedSoftmax(p, scores.values);
  const out = spmm(p, probs, scores.metadata, x.v);
  return { scores, probs, lse, out };
}

// ----- the independent float64 reference ------------------------------------------------------------------

interface Reference {
  /** [B, Hq, Nq, Dv] */
  out: Float64Array;
  /** [B, Hq, Nq] */
  lse: Float64Array;
  /** [B, Hq, Nq, Nk]: 1 where the key is kept and its score finite */
  kept: Uint8Array;
}

/**
 * Attention in float64 from the definition: scores, masks, N:M selection by sorting (score descending, index
 * ascending, positions past the end as -inf), softmax over kept finite scores, P V. With roundP, p is rounded
 * to the dtype before P V (step 5).
 */
function reference(p: AttentionProblem, x: Inputs, roundP: boolean): Reference {
  const { batch: B, headsQ: Hq, headsKv: Hk, seqQ: Nq, seqK: Nk, headDim: D, headDimV: Dv } = p;
  const out = new Float64Array(B * Hq * Nq * Dv);
  const lse = new Float64Array(B * Hq * Nq);
  const kept = new Uint8Array(B * Hq * Nq * Nk);
  const at = (a: Float32Array, s: Strides4, b: number, h: number, n: number, d: number) => a[b * s[0] + h * s[1] + n * s[2] + d];
  for (let b = 0; b < B; b++) {
    const nq = p.seqlensQ ? p.seqlensQ[b] : Nq;
    const nk = p.seqlensK ? p.seqlensK[b] : Nk;
    for (let h = 0; h < Hq; h++) {
      const hk = Math.floor((h * Hk) / Hq);
      for (let i = 0; i < Nq; i++) {
        const row = (b * Hq + h) * Nq + i;
        const scores: number[] = [];
        for (let j = 0; j < Nk; j++) {
          const allowed = i < nq && j < nk && (!p.causal || j <= i + nk - nq);
          let dot = 0;
          for (let d = 0; d < D; d++) dot += at(x.q, p.qStrides, b, h, i, d) * at(x.k, p.kStrides, b, hk, j, d);
          scores.push(allowed ? dot * p.scale : -Infinity);
        }
        const keep = new Array<boolean>(Nk).fill(p.pattern === null);
        if (p.pattern !== null) {
          const { n, m } = p.pattern;
          for (let g = 0; g * m < Nk; g++) {
            const members = Array.from({ length: m }, (_, t) => g * m + t);
            const score = (j: number) => (j < Nk ? scores[j] : -Infinity);
            members.sort((a, c) => (score(a) === score(c) ? a - c : score(c) - score(a)));
            for (const j of members.slice(0, n)) if (j < Nk) keep[j] = true;
          }
        }
        const live = scores.map((s, j) => keep[j] && Number.isFinite(s));
        const max = Math.max(-Infinity, ...scores.filter((_, j) => live[j]));
        if (max === -Infinity) {
          lse[row] = -Infinity;
          continue;
        }
        let sum = 0;
        for (let j = 0; j < Nk; j++) if (live[j]) sum += Math.exp(scores[j] - max);
        lse[row] = max + Math.log(sum);
        for (let j = 0; j < Nk; j++) {
          if (!live[j]) continue;
          kept[row * Nk + j] = 1;
          let prob = Math.exp(scores[j] - max) / sum;
          if (roundP) prob = roundToDType(prob, p.dtype);
          for (let d = 0; d < Dv; d++) out[row * Dv + d] += prob * at(x.v, p.vStrides, b, hk, j, d);
        }
      }
    }
  }
  return { out, lse, kept };
}

/** Relative precision of a dtype (half an ulp at 1). */
function epsilon(dtype: DType): number {
  return dtype === 'float16' ? 2 ** -11 : dtype === 'bfloat16' ? 2 ** -8 : 2 ** -24;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, message: string): void {
  assert.equal(actual.length, expected.length, `${message}: length`);
  for (let t = 0; t < actual.length; t++) {
    const a = actual[t];
    const e = expected[t];
    if (a === e) continue;
    assert.ok(Math.abs(a - e) <= tolerance, `${message}: element ${t}: ${a} vs ${e} (tolerance ${tolerance})`);
  }
}

function assertNoNaN(values: ArrayLike<number>, message: string): void {
  for (let t = 0; t < values.length; t++) assert.ok(!Number.isNaN(values[t]), `${message}: NaN at ${t}`);
}

const PATTERNS = ['1:2', '2:4', '3:8', '1:4'];

// ----- the selection routine --------------------------------------------------------------------------------

describe('selection (src/select.ts)', () => {
  function select(scores: number[], n: number, m: number, rowLength = scores.length): number[] {
    const kept = new Int32Array(n);
    selectGroup(Float64Array.from(scores), 0, rowLength, 0, n, m, kept, 0);
    return [...kept];
  }

  test('the N largest are kept, in ascending in-group order', () => {
    assert.deepEqual(select([3, 1, 4, 1], 2, 4), [0, 2]);
    assert.deepEqual(select([5, 9, 2, 6], 2, 4), [1, 3]);
    assert.deepEqual(select([0.5, 0.25], 1, 2), [0]);
    assert.deepEqual(select([1, 8, 2, 7, 3, 6, 4, 5], 3, 8), [1, 3, 5]);
  });

  test('ties: the lower index wins', () => {
    assert.deepEqual(select([2, 2, 2, 2], 2, 4), [0, 1]);
    assert.deepEqual(select([1, 3, 3, 3], 2, 4), [1, 2]);
    assert.deepEqual(select([7, 7], 1, 2), [0]);
    assert.deepEqual(select([0, 1, 1, 0], 1, 4), [1]);
    assert.deepEqual(select([1, 1, 1, 1], 3, 4), [0, 1, 2]);
    assert.deepEqual(select([-0, 0], 1, 2), [0], '-0 and 0 are equal scores');
  });

  test('-inf ranks below every finite score and like any other value among itself', () => {
    assert.deepEqual(select([-Infinity, -Infinity, 5, -Infinity], 2, 4), [0, 2]);
    assert.deepEqual(select([-Infinity, -Infinity, -Infinity, -Infinity], 2, 4), [0, 1]);
    assert.deepEqual(select([-Infinity, -1e30], 1, 2), [1]);
  });

  test('NaN ranks below -inf and is kept only to fill the N slots', () => {
    assert.deepEqual(select([NaN, -Infinity, 1, 2], 2, 4), [2, 3]);
    assert.deepEqual(select([NaN, -Infinity, -Infinity, 1], 3, 4), [1, 2, 3]);
    assert.deepEqual(select([NaN, NaN, 0, NaN], 2, 4), [0, 2]);
    assert.deepEqual(select([NaN, -Infinity], 1, 2), [1]);
    assert.deepEqual(select([NaN, NaN], 1, 2), [0]);
  });

  test('positions past the end of the row count as -inf and still take slots', () => {
    assert.deepEqual(select([4], 2, 4, 1), [0, 1]);
    assert.deepEqual(select([-1, 3], 2, 4, 2), [0, 1]);
    assert.deepEqual(select([-Infinity, 3, NaN], 3, 4, 3), [0, 1, 3], 'the past-the-end slot outranks the NaN');
    assert.deepEqual(select([1, 2, 3, 4, 5], 3, 8, 5), [2, 3, 4]);
  });

  test('pruneRow equals a sort-based selection for every pattern, on rows with ties, -inf and NaN', () => {
    const next = random(5);
    for (let m = 2; m <= 8; m++) {
      for (let n = 1; n < m; n++) {
        for (let trial = 0; trial < 40; trial++) {
          const rowLength = 1 + Math.floor(next() * 3 * m);
          const scores = new Float32Array(rowLength + 3);
          for (let j = 0; j < scores.length; j++) {
            const r = next();
            scores[j] = r < 0.05 ? NaN : r < 0.15 ? -Infinity : Math.floor(next() * 4);
          }
          const groups = Math.ceil(rowLength / m);
          const kept = new Int32Array(groups * n + 2).fill(-9);
          pruneRow(scores, 3, rowLength, { n, m }, kept, 1);
          assert.equal(kept[0], -9, 'nothing written before keptOffset');
          assert.equal(kept[groups * n + 1], -9, 'nothing written after the last group');
          const rank = (x: number) => (Number.isNaN(x) ? -Infinity : x);
          for (let g = 0; g < groups; g++) {
            const members = Array.from({ length: m }, (_, t) => t);
            const value = (t: number) => (g * m + t < rowLength ? scores[3 + g * m + t] : -Infinity);
            // order: higher first; -inf above NaN; equal -> lower index
            members.sort((a, b) => {
              const va = value(a);
              const vb = value(b);
              const na = Number.isNaN(va);
              const nb = Number.isNaN(vb);
              if (na !== nb) return na ? 1 : -1;
              if (na || rank(va) === rank(vb)) return a - b;
              return rank(vb) > rank(va) ? 1 : -1;
            });
            const expected = members.slice(0, n).sort((a, b) => a - b);
            assert.deepEqual([...kept.subarray(1 + g * n, 1 + g * n + n)], expected, `${n}:${m} row ${[...scores.subarray(3, 3 + rowLength)]} group ${g}`);
          }
        }
      }
    }
  });
});

// ----- hand-computed examples --------------------------------------------------------------------------------

describe('hand-computed examples', () => {
  // D = 1, q = 1, scale = 1: the score of key j is k_j itself
  function scoreRowProblem(scores: number[], pattern: string, dtype: DType, headDimV: number, fv: Fill) {
    const p = makeProblem({ dtype, pattern, seqQ: 1, seqK: scores.length, headDim: 1, headDimV, scale: 1 });
    return { p, x: inputs(p, () => 1, (_b, _h, j) => scores[j], fv) };
  }

  for (const dtype of DTYPES) {
    test(`2:4 keeps four equal scores of 0: out is the exact mean of their v rows (${dtype})`, () => {
      // groups [0, 0, -5, -5] and [0, -7, 0, -2]: kept keys 0, 1, 4, 6, each p = 1/4
      const { p, x } = scoreRowProblem([0, 0, -5, -5, 0, -7, 0, -2], '2:4', dtype, 2, (_b, _h, j, d) => (d === 0 ? j : 10 * j));
      const { out, lse } = run(p, x);
      assert.deepEqual([...out], [2.75, 27.5]);
      assert.equal(lse[0], Math.fround(Math.log(4)));
      const staged = runStaged(p, x);
      assert.deepEqual([...staged.out], [2.75, 27.5]);
      assert.deepEqual([...(staged.scores.metadata as Uint32Array)], [0x84], 'groups (0,1) -> 0x4 and (0,2) -> 0x8');
      assert.deepEqual([...staged.scores.values], [0, 0, 0, 0]);
      assert.deepEqual([...staged.probs], [0.25, 0.25, 0.25, 0.25]);
    });
  }

  test('2:4 on scores 3 1 4 1 | 5 9 2 6 keeps 3, 4, 9, 6 and weights them by softmax', () => {
    const scores = [3, 1, 4, 1, 5, 9, 2, 6];
    const { p, x } = scoreRowProblem(scores, '2:4', 'float32', 8, oneHot);
    const { out, lse } = run(p, x);
    const z = Math.exp(3) + Math.exp(4) + Math.exp(9) + Math.exp(6);
    const expected = scores.map((s, j) => ([0, 2, 5, 7].includes(j) ? Math.fround(Math.exp(s) / z) : 0));
    assertClose(out, expected, 1e-7, 'probabilities');
    assert.deepEqual([...out].map((x) => x !== 0), [true, false, true, false, false, true, false, true]);
    assert.ok(Math.abs(lse[0] - Math.log(z)) < 1e-6);
    const staged = runStaged(p, x);
    assert.deepEqual([...(staged.scores.metadata as Uint32Array)], [0xd8], 'group 0 keeps (0,2) -> 0x8, group 1 (1,3) -> 0xD');
    assert.deepEqual([...staged.scores.values], [3, 4, 9, 6]);
  });

  test('1:2 keeps the larger of each pair, the first on a tie', () => {
    const { p, x } = scoreRowProblem([1, 2, 5, 5, -1, -3], '1:2', 'float16', 6, oneHot);
    const { out } = run(p, x);
    // kept: key 1 (2), key 2 (5, first of a tie), key 4 (-1); softmax computed as the definition does, from the max
    const z = Math.exp(2 - 5) + Math.exp(0) + Math.exp(-1 - 5);
    const expected = [0, Math.exp(2 - 5) / z, 1 / z, 0, Math.exp(-1 - 5) / z, 0].map((v) => roundToDType(v, 'float16'));
    assert.deepEqual([...out], expected);
  });

  test('dense keeps every key: two equal scores and a much lower one', () => {
    const { p, x } = scoreRowProblem([0, 0, -200], 'dense', 'float16', 3, oneHot);
    const { out } = run(p, x);
    assert.deepEqual([...out], [0.5, 0.5, 0]);
  });

  test('the scaled score is fround(fround(q . k) * fround(scale)), accumulated in order', () => {
    // q . k = 1 + 2^-24 + 2^-24: in float32, 1 + 2^-24 rounds to 1 (tie to even) twice, giving 1, not 1 + 2^-23;
    // in the other order (2^-24 + 2^-24 + 1) it would be 1 + 2^-23. 11 keys: the 8-wide path and the rest.
    const p = makeProblem({ seqQ: 1, seqK: 11, headDim: 3, scale: 1 });
    const x = inputs(p, () => 1, (_b, _h, _j, d) => (d === 0 ? 1 : 2 ** -24), () => 1);
    const { values } = sddmmPrune(p, x.q, x.k);
    assert.deepEqual([...values], new Array(11).fill(1));
    const reversed = inputs(p, () => 1, (_b, _h, _j, d) => (d === 2 ? 1 : 2 ** -24), () => 1);
    assert.deepEqual([...sddmmPrune(p, reversed.q, reversed.k).values], new Array(11).fill(1 + 2 ** -23));
    const scaled = makeProblem({ seqQ: 1, seqK: 1, headDim: 1, scale: 0.1 });
    const y = inputs(scaled, () => 3, () => 1, () => 1);
    assert.equal(sddmmPrune(scaled, y.q, y.k).values[0], Math.fround(3 * Math.fround(0.1)));
  });
});

// ----- masks, -inf and cut groups ------------------------------------------------------------------------------

describe('-inf scores, masked keys and groups cut by the end of the row', () => {
  test('scores that overflow to -inf are pruned like any value and get p = 0', () => {
    // D = 2, q = [1e30, 1]: k = [-1e30, 0] gives -inf (float32 overflow), k = [0, s] gives s
    const row = [-Infinity, -Infinity, 2, -Infinity, 1, 1, 1, 1];
    const p = makeProblem({ pattern: '2:4', seqQ: 1, seqK: 8, headDim: 2, headDimV: 8, scale: 1 });
    const x = inputs(p, (_b, _h, _i, d) => (d === 0 ? 1e30 : 1), (_b, _h, j, d) => (row[j] === -Infinity ? (d === 0 ? -1e30 : 0) : d === 0 ? 0 : row[j]), oneHot);
    const staged = runStaged(p, x);
    assert.deepEqual([...staged.scores.values], [-Infinity, 2, 1, 1]);
    assert.deepEqual([...(staged.scores.metadata as Uint32Array)], [0x48], 'group 0 keeps (0,2), group 1 (0,1)');
    const { out } = run(p, x);
    const z = Math.exp(2) + 2 * Math.exp(1);
    assertClose(out, [0, 0, Math.exp(2) / z, 0, Math.exp(1) / z, Math.exp(1) / z, 0, 0], 1e-7, 'probabilities');
    assert.equal(out[0], 0);
  });

  test('scores that overflow to +inf or NaN are not finite: they get p = 0 and never make the row NaN', () => {
    // D = 2, q = [1e30, 1]: k = [1e30, 0] gives +inf, k = [0, s] gives s
    const p = makeProblem({ seqQ: 1, seqK: 3, headDim: 2, headDimV: 3, scale: 1 });
    const x = inputs(p, (_b, _h, _i, d) => (d === 0 ? 1e30 : 1), (_b, _h, j, d) => (j === 0 ? (d === 0 ? 1e30 : 0) : d === 0 ? 0 : j), oneHot);
    assert.deepEqual([...sddmmPrune(p, x.q, x.k).values], [Infinity, 1, 2]);
    const { out, lse } = run(p, x);
    const z = Math.exp(1) + Math.exp(2);
    assertClose(out, [0, Math.exp(1) / z, Math.exp(2) / z], 1e-7, 'probabilities');
    assert.ok(Math.abs(lse[0] - Math.log(z)) < 1e-6);
    const nan = makeProblem({ seqQ: 1, seqK: 2, headDim: 1, headDimV: 2, scale: 1 });
    const y = inputs(nan, () => 1, (_b, _h, j) => (j === 0 ? NaN : 5), oneHot);
    assert.deepEqual([...run(nan, y).out], [0, 1]);
  });

  test('a row whose scores are all -inf gives zeros and lse -inf, never NaN', () => {
    const p = makeProblem({ pattern: '2:4', seqQ: 1, seqK: 6, headDim: 1, scale: 1 });
    const x = inputs(p, () => 1e30, () => -1e30, () => 1);
    const { out, lse } = run(p, x);
    assert.deepEqual([...out], [0]);
    assert.equal(lse[0], -Infinity);
    const staged = runStaged(p, x);
    assert.deepEqual([...staged.probs], [0, 0, 0, 0]);
    assert.deepEqual([...staged.out], [0]);
    assert.equal(staged.lse[0], -Infinity);
  });

  test('keys past the valid key length are masked and take slots as -inf', () => {
    // Nk = 8, Nk_0 = 5: group 1 is [s4, masked, masked, masked] and keeps keys 4 and 5
    const p = makeProblem({ pattern: '2:4', seqQ: 1, seqK: 8, headDim: 1, headDimV: 8, scale: 1, seqlensK: [5] });
    const x = inputs(p, () => 1, (_b, _h, j) => [1, 3, 2, 0, -1, 9, 9, 9][j], oneHot);
    const staged = runStaged(p, x);
    assert.deepEqual([...staged.scores.values], [3, 2, -1, -Infinity]);
    assert.deepEqual([...(staged.scores.metadata as Uint32Array)], [0x49]);
    const { out } = run(p, x);
    const z = Math.exp(3) + Math.exp(2) + Math.exp(-1);
    assertClose(out, [0, Math.exp(3) / z, Math.exp(2) / z, 0, Math.exp(-1) / z, 0, 0, 0], 1e-7, 'probabilities');
  });

  const cutCases: Array<[string, number, number[], number[]]> = [
    // pattern, Nk, scores, expected compressed values (past-the-end slots -inf)
    ['2:4', 7, [0, 1, 2, 3, 6, 4, 5], [2, 3, 6, 5]],
    ['2:4', 5, [0, 1, 2, 3, 6], [2, 3, 6, -Infinity]],
    ['3:8', 10, [7, 6, 5, 4, 3, 2, 1, 0, -1, -2], [7, 6, 5, -1, -2, -Infinity]],
    ['1:2', 3, [1, 0, -4], [1, -4]],
    ['1:4', 6, [0, 0, 1, 0, -3, -2], [1, -2]],
  ];
  for (const [name, seqK, scores, values] of cutCases) {
    test(`${name} with Nk = ${seqK}: the last group is cut and its missing keys count as -inf`, () => {
      const p = makeProblem({ pattern: name, seqQ: 1, seqK, headDim: 1, headDimV: seqK, scale: 1 });
      const x = inputs(p, () => 1, (_b, _h, j) => scores[j], oneHot);
      const staged = runStaged(p, x);
      assert.deepEqual([...staged.scores.values], values);
      const { n, m } = p.pattern as Pattern;
      const indices = decodeMetadata(staged.scores.metadata as Uint32Array, 1, values.length, m);
      const keys = [...indices].map((t, c) => Math.floor(c / n) * m + t);
      for (let c = 0; c < values.length; c++) {
        if (values[c] === -Infinity) assert.ok(keys[c] >= seqK, `slot ${c} points past the end`);
        else assert.equal(scores[keys[c]], values[c]);
      }
      const { out } = run(p, x);
      const ref = reference(p, x, true);
      assertClose(out, ref.out, 1e-7, 'against the reference');
      assert.equal(out.filter((v) => v !== 0).length, values.filter((v) => v !== -Infinity).length);
    });
  }
});

// ----- fully masked rows and causal masks ------------------------------------------------------------------------

describe('fully masked rows and causal masking', () => {
  test('rows past the valid query length, or with no valid key, give zeros and lse -inf', () => {
    for (const pattern of ['dense', '2:4']) {
      const p = makeProblem({ pattern, batch: 2, seqQ: 4, seqK: 6, headDim: 3, seqlensQ: [2, 4], seqlensK: [6, 0] });
      const x = inputs(p, uniform(1), uniform(2), () => 7);
      for (const result of [run(p, x), runStaged(p, x)]) {
        assertNoNaN(result.out, pattern);
        assertNoNaN(result.lse, pattern);
        for (let i = 0; i < 4; i++) {
          const masked = i >= 2;
          const row = rowOf(p, result.out, i, 0);
          if (masked) assert.deepEqual(row, [0, 0, 0], `batch 0 row ${i}`);
          else for (const value of row) assert.ok(Math.abs(value - 7) < 1e-5, `batch 0 row ${i}: ${value}`);
          assert.equal(result.lse[i] === -Infinity, masked);
          assert.deepEqual(rowOf(p, result.out, i, 1), [0, 0, 0], `batch 1 (no keys) row ${i}`);
          assert.equal(result.lse[4 + i], -Infinity);
        }
      }
    }
  });

  test('causal with Nq < Nk: bottom-right aligned, row i sees keys 0 .. i + Nk - Nq', () => {
    const p = makeProblem({ causal: true, seqQ: 3, seqK: 8, headDim: 2, headDimV: 8 });
    const x = inputs(p, uniform(3), uniform(4), oneHot);
    const { out, lse } = run(p, x);
    for (let i = 0; i < 3; i++) {
      const row = rowOf(p, out, i);
      for (let j = 0; j < 8; j++) assert.equal(row[j] > 0, j <= i + 5, `row ${i} key ${j}`);
      assert.ok(Number.isFinite(lse[i]));
    }
    const ref = reference(p, x, true);
    assertClose(out, ref.out, 1e-6, 'against the reference');
  });

  test('causal with Nq > Nk: the first Nq - Nk rows see no key at all', () => {
    const p = makeProblem({ causal: true, seqQ: 8, seqK: 3, headDim: 2, headDimV: 3 });
    const x = inputs(p, uniform(5), uniform(6), oneHot);
    for (const pattern of ['dense', '1:2']) {
      const q = { ...p, pattern: parsePattern(pattern) };
      const { out, lse } = run(q, x);
      assertNoNaN(out, pattern);
      for (let i = 0; i < 5; i++) {
        assert.deepEqual(rowOf(q, out, i), [0, 0, 0], `row ${i}`);
        assert.equal(lse[i], -Infinity);
      }
      assert.deepEqual(rowOf(q, out, 5), [1, 0, 0], 'row 5 sees key 0 only');
      const row6 = rowOf(q, out, 6);
      const live6 = row6.filter((v) => v > 0).length;
      assert.equal(row6[2], 0, 'row 6 does not see key 2');
      assert.equal(live6, pattern === 'dense' ? 2 : 1, 'row 6 sees keys 0 and 1 (1:2 keeps one of them)');
      assertClose(out, reference(q, x, true).out, 1e-6, `against the reference (${pattern})`);
      assertClose(runStaged(q, x).out, out, 0, `staged (${pattern})`);
    }
  });

  test('causal 2:4 with Nq = Nk = 8: masked keys take slots, the first row keeps key 0 only', () => {
    const p = makeProblem({ pattern: '2:4', causal: true, seqQ: 8, seqK: 8, headDim: 2, headDimV: 8 });
    const x = inputs(p, uniform(7), uniform(8), oneHot);
    const staged = runStaged(p, x);
    const words = staged.scores.metadata as Uint32Array;
    assert.equal(words[0] & 0xff, 0x44, 'row 0: group 0 keeps (0, masked 1), group 1 (fully masked) keeps (0,1)');
    assert.deepEqual(rowOf(p, run(p, x).out, 0), [1, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(staged.scores.values[1], -Infinity);
    assertClose(run(p, x).out, reference(p, x, true).out, 1e-6, 'against the reference');
  });
});

// ----- per-batch lengths, GQA and strides --------------------------------------------------------------------------

describe('per-batch lengths, grouped-query attention and strides', () => {
  test('per-batch lengths equal running each batch entry alone on its valid part; the padding (NaN) is never used', () => {
    for (const pattern of ['dense', '2:4', '3:8']) {
      for (const causal of [false, true]) {
        const lengthsQ = [3, 5];
        const lengthsK = [4, 8];
        const p = makeProblem({ pattern, causal, batch: 2, headsQ: 2, seqQ: 5, seqK: 8, headDim: 4, seqlensQ: lengthsQ, seqlensK: lengthsK });
        const padded = (f: Fill, lengths: number[]): Fill => (b, h, n, d) => (n < lengths[b] ? f(b, h, n, d) : Number.NaN);
        const x = inputs(p, padded(uniform(11), lengthsQ), padded(uniform(12), lengthsK), padded(uniform(13), lengthsK));
        const { out, lse } = run(p, x);
        assert.deepEqual(runStaged(p, x).out, out, `${pattern} causal ${causal}: staged and fused`);
        for (let b = 0; b < 2; b++) {
          const alone = makeProblem({ pattern, causal, headsQ: 2, seqQ: lengthsQ[b], seqK: lengthsK[b], headDim: 4 });
          const at = (a: Float32Array, s: Strides4) => (bb: number, h: number, n: number, d: number) => a[b * s[0] + h * s[1] + n * s[2] + d];
          const y = inputs(alone, at(x.q, p.qStrides), at(x.k, p.kStrides), at(x.v, p.vStrides));
          const expected = run(alone, y);
          for (let h = 0; h < 2; h++) {
            for (let i = 0; i < 5; i++) {
              const row = rowOf(p, out, i, b, h);
              if (i < lengthsQ[b]) {
                assert.deepEqual(row, rowOf(alone, expected.out, i, 0, h), `${pattern} causal ${causal} b ${b} h ${h} i ${i}`);
                assert.equal(lse[(b * 2 + h) * 5 + i], expected.lse[h * lengthsQ[b] + i]);
              } else {
                assert.deepEqual(row, [0, 0, 0, 0]);
              }
            }
          }
        }
      }
    }
  });

  test('GQA (Hq = 4, Hk = 2) equals running with the k and v heads repeated', () => {
    for (const pattern of ['dense', '2:4', '1:4']) {
      const gqa = makeProblem({ pattern, headsQ: 4, headsKv: 2, seqQ: 6, seqK: 9, headDim: 4, causal: true, dtype: 'bfloat16' });
      const full = makeProblem({ pattern, headsQ: 4, headsKv: 4, seqQ: 6, seqK: 9, headDim: 4, causal: true, dtype: 'bfloat16' });
      const fk = uniform(21);
      const fv = uniform(22);
      const kv = inputs(gqa, uniform(20), fk, fv);
      const pick = (a: Float32Array, s: Strides4) => (b: number, h: number, n: number, d: number) => a[b * s[0] + Math.floor(h / 2) * s[1] + n * s[2] + d];
      const repeated = inputs(full, (b, h, n, d) => kv.q[h * 24 + n * 4 + d], pick(kv.k, gqa.kStrides), pick(kv.v, gqa.vStrides));
      assert.deepEqual([...repeated.q], [...kv.q]);
      const a = run(gqa, kv);
      const b = run(full, repeated);
      assert.deepEqual([...a.out], [...b.out], pattern);
      assert.deepEqual([...a.lse], [...b.lse], pattern);
      // and heads 0 and 1 (sharing kv head 0) differ from heads 2 and 3: the right kv head was read
      assert.notDeepEqual(rowOf(gqa, a.out, 0, 0, 0), rowOf(gqa, a.out, 0, 0, 2));
      assert.deepEqual([...runStaged(gqa, kv).out], [...runStaged(full, repeated).out]);
    }
  });

  test('[B,H,N,D] and [B,N,H,D] strides give identical results', () => {
    for (const pattern of ['dense', '2:4']) {
      const spec: Spec = { pattern, batch: 2, headsQ: 4, headsKv: 2, seqQ: 5, seqK: 11, headDim: 8, headDimV: 6, dtype: 'float16', causal: true };
      const bhnd = makeProblem({ ...spec, layout: 'bhnd' });
      const bnhd = makeProblem({ ...spec, layout: 'bnhd' });
      const fills = [uniform(31), uniform(32), uniform(33)];
      // the same logical values in both layouts
      const values = fills.map((f) => {
        const cache = new Map<string, number>();
        return (b: number, h: number, n: number, d: number) => {
          const key = `${b},${h},${n},${d}`;
          if (!cache.has(key)) cache.set(key, f(b, h, n, d));
          return cache.get(key) as number;
        };
      });
      const x1 = inputs(bhnd, values[0], values[1], values[2]);
      const x2 = inputs(bnhd, values[0], values[1], values[2]);
      assert.notDeepEqual([...x1.q], [...x2.q], 'the buffers really differ');
      const r1 = run(bhnd, x1);
      const r2 = run(bnhd, x2);
      assert.deepEqual(logicalOut(bhnd, r1.out), logicalOut(bnhd, r2.out), pattern);
      assert.deepEqual([...r1.lse], [...r2.lse]);
      assert.deepEqual(logicalOut(bnhd, runStaged(bnhd, x2).out), logicalOut(bhnd, runStaged(bhnd, x1).out));
    }
  });

  test('output elements the strides do not address are left alone', () => {
    const p = makeProblem({ seqQ: 3, seqK: 4, headDim: 2 });
    const padded = { ...p, outStrides: [9, 9, 3, 1] as Strides4 };
    const x = inputs(p, uniform(41), uniform(42), uniform(43));
    const out = new Float32Array(9).fill(-123);
    attentionForward(padded, x.q, x.k, x.v, out);
    for (let i = 0; i < 3; i++) assert.equal(out[i * 3 + 2], -123);
    assert.deepEqual([...out].filter((_, t) => t % 3 !== 2), logicalOut(p, run(p, x).out));
  });
});

// ----- against the float64 reference, every pattern and dtype -------------------------------------------------------

describe('agreement with the float64 reference', () => {
  for (const dtype of DTYPES) {
    test(`dense equals plain softmax attention (random inputs, ${dtype})`, () => {
      const p = makeProblem({ dtype, batch: 2, headsQ: 3, seqQ: 17, seqK: 23, headDim: 16, headDimV: 8 });
      const x = inputs(p, uniform(51), uniform(52), uniform(53));
      const { out, lse } = run(p, x);
      const plain = reference(p, x, false);
      // p rounded once to the dtype, the output rounded once: |error| <= 2 eps max|v| plus float32 score noise
      assertClose(out, plain.out, 3 * epsilon(dtype) + 1e-5, 'out');
      assertClose(lse, plain.lse, 1e-5, 'lse');
      for (const value of out) assert.equal(value, roundToDType(value, dtype), 'the output is in the dtype');
      // with the same rounding of p, only the final rounding and float32 scores remain
      assertClose(out, reference(p, x, true).out, 1.5 * epsilon(dtype) + 1e-5, 'out with p rounded');
    });

    for (const pattern of PATTERNS) {
      test(`${pattern} keeps exactly the reference's keys and matches its output (${dtype})`, () => {
        // integer inputs and scale 1/4: every score is exact, so the selection must agree key for key
        const spec: Spec = { dtype, pattern, batch: 2, headsQ: 2, seqQ: 9, seqK: 21, headDim: 4, headDimV: 21, scale: 0.25 };
        const p = makeProblem(spec);
        const x = inputs(p, integers(61), integers(62), oneHot);
        const { out, lse } = run(p, x);
        const ref = reference(p, x, true);
        for (let t = 0; t < out.length; t++) assert.equal(out[t] !== 0, ref.kept[t] === 1, `element ${t}`);
        assertClose(out, ref.out, epsilon(dtype) * 1.01, 'probabilities');
        assertClose(lse, ref.lse, 4e-6, 'lse');

        const random = makeProblem({ ...spec, headDimV: 5 });
        const y = inputs(random, integers(63), integers(64), uniform(65));
        assertClose(run(random, y).out, reference(random, y, true).out, 2 * epsilon(dtype) + 1e-6, 'random v');
      });
    }
  }

  test('N:M keeps N of every M keys per row; a cut last group keeps min(N, keys present)', () => {
    for (const pattern of PATTERNS) {
      const { n, m } = parsePattern(pattern) as Pattern;
      for (const seqK of [8 * m, 8 * m + 1, 8 * m + m - 1]) {
        const p = makeProblem({ pattern, seqQ: 4, seqK, headDim: 8, headDimV: seqK });
        const x = inputs(p, uniform(71), uniform(72), oneHot);
        const { out } = run(p, x);
        const rest = seqK % m;
        const expected = Math.floor(seqK / m) * n + Math.min(n, rest);
        for (let i = 0; i < 4; i++) assert.equal(rowOf(p, out, i).filter((v) => v !== 0).length, expected, `${pattern} Nk ${seqK} row ${i}`);
        const { values } = sddmmPrune(p, x.q, x.k);
        assert.equal(values.length, 4 * compressedRowSize(seqK, p.pattern).values);
        assert.equal(values.filter((v) => v !== -Infinity).length, 4 * expected);
      }
    }
  });
});

// ----- staged operations ---------------------------------------------------------------------------------------------

describe('staged pipeline (sddmmPrune -> compressedSoftmax -> spmm)', () => {
  for (const dtype of DTYPES) {
    for (const pattern of ['dense', ...PATTERNS]) {
      test(`equals the fused forward (${pattern}, ${dtype})`, () => {
        const spec: Spec = { dtype, pattern, causal: true, batch: 2, headsQ: 4, headsKv: 2, seqQ: 7, seqK: 19, headDim: 8, headDimV: 5, seqlensK: [19, 13] };
        // exact scores: the staged rounding of scores to the dtype changes nothing, so the results are equal
        const exact = makeProblem({ ...spec, scale: 0.25 });
        const x = inputs(exact, integers(81), integers(82), uniform(83));
        const fused = run(exact, x);
        const staged = runStaged(exact, x);
        assert.deepEqual([...staged.out], [...fused.out]);
        assert.deepEqual([...staged.lse], [...fused.lse]);

        // random scores: equal for float32; the 16-bit types also round the scores in between
        const p = makeProblem(spec);
        const y = inputs(p, uniform(84), uniform(85), uniform(86));
        const a = run(p, y);
        const b = runStaged(p, y);
        for (const value of b.scores.values) assert.equal(value, roundToDType(value, dtype), 'compressed scores are in the dtype');
        for (const value of b.probs) assert.equal(value, roundToDType(value, dtype), 'probabilities are in the dtype');
        for (const value of b.out) assert.equal(value, roundToDType(value, dtype), 'the output is in the dtype');
        if (dtype === 'float32') {
          assert.deepEqual([...b.out], [...a.out]);
          assert.deepEqual([...b.lse], [...a.lse]);
        } else {
          assertClose(b.out, a.out, 8 * epsilon(dtype), 'out');
          assertClose(b.lse, a.lse, 8 * epsilon(dtype), 'lse');
        }
      });
    }
  }

  test('lse equals the log-sum-exp of the kept scores', () => {
    for (const pattern of ['dense', ...PATTERNS]) {
      const p = makeProblem({ pattern, causal: true, batch: 1, headsQ: 2, seqQ: 6, seqK: 13, headDim: 4 });
      const x = inputs(p, uniform(91), uniform(92), uniform(93));
      const { lse } = run(p, x);
      const { values } = sddmmPrune(p, x.q, x.k);
      const slots = compressedRowSize(p.seqK, p.pattern).values;
      for (let row = 0; row < 12; row++) {
        const kept = [...values.subarray(row * slots, (row + 1) * slots)].filter((v) => v !== -Infinity);
        const max = Math.max(...kept);
        const expected = max + Math.log(kept.reduce((sum, s) => sum + Math.exp(s - max), 0));
        assert.ok(Math.abs(lse[row] - expected) <= 1e-6 * Math.max(1, Math.abs(expected)), `${pattern} row ${row}: ${lse[row]} vs ${expected}`);
      }
    }
  });

  test('compressed probabilities sum to 1 per row (up to rounding) and are 0 where the score was -inf', () => {
    const p = makeProblem({ pattern: '2:4', dtype: 'float16', causal: true, seqQ: 5, seqK: 10, headDim: 4 });
    const x = inputs(p, uniform(94), uniform(95), uniform(96));
    const { values } = sddmmPrune(p, x.q, x.k);
    const { probs } = compressedSoftmax(p, values);
    for (let row = 0; row < 5; row++) {
      let sum = 0;
      for (let c = 0; c < 6; c++) {
        const v = values[row * 6 + c];
        const prob = probs[row * 6 + c];
        if (v === -Infinity) assert.equal(prob, 0);
        assert.equal(prob, roundToDType(prob, 'float16'));
        sum += prob;
      }
      assert.ok(Math.abs(sum - 1) < 6 * 2 ** -11, `row ${row} sums to ${sum}`);
    }
  });

  test('compressedSoftmax works in place', () => {
    const p = makeProblem({ pattern: '1:2', seqQ: 3, seqK: 6, headDim: 4 });
    const x = inputs(p, uniform(97), uniform(98), uniform(99));
    const { values } = sddmmPrune(p, x.q, x.k);
    const separate = compressedSoftmax(p, values);
    const inPlace = compressedSoftmax(p, values, values);
    assert.equal(inPlace.probs, values);
    assert.deepEqual([...values], [...separate.probs]);
    assert.deepEqual([...inPlace.lse], [...separate.lse]);
  });

  test('slots with probability 0 contribute nothing, even where v holds NaN or Inf', () => {
    // one valid key: the group keeps key 0 (p = 1) and the masked key 1 (p = 0), whose v is NaN
    const p = makeProblem({ pattern: '2:4', seqQ: 1, seqK: 4, headDim: 1, headDimV: 1, scale: 1, seqlensK: [1] });
    const x = inputs(p, () => 1, () => 1, (_b, _h, j) => [3, NaN, Infinity, NaN][j]);
    const staged = runStaged(p, x);
    assert.deepEqual([...staged.probs], [1, 0]);
    assert.equal(staged.out[0], 3);
    assert.equal(run(p, x).out[0], 3);
  });
});

// ----- arguments ---------------------------------------------------------------------------------------------------

describe('arguments', () => {
  const p = makeProblem({ pattern: '2:4', seqQ: 3, seqK: 8, headDim: 4 });
  const x = inputs(p, uniform(1), uniform(2), uniform(3));

  test('inputs are not modified', () => {
    const copies = [x.q.slice(), x.k.slice(), x.v.slice()];
    const staged = runStaged(p, x);
    const values = staged.scores.values.slice();
    spmm(p, staged.probs, staged.scores.metadata, x.v);
    run(p, x);
    assert.deepEqual([x.q, x.k, x.v], copies);
    compressedSoftmax(p, staged.scores.values);
    assert.deepEqual(staged.scores.values, values);
  });

  test('arrays too short for their shape and strides are named errors', () => {
    const named = (argument: string) => (e: unknown) => e instanceof InvalidArgumentError && e.argument === argument;
    assert.throws(() => attentionForward(p, x.q.subarray(1), x.k, x.v), named('q'));
    assert.throws(() => attentionForward(p, x.q, x.k.subarray(1), x.v), named('k'));
    assert.throws(() => attentionForward(p, x.q, x.k, x.v.subarray(1)), named('v'));
    assert.throws(() => attentionForward(p, x.q, x.k, x.v, new Float32Array(11)), named('out'));
    assert.throws(() => attentionForward(p, x.q, x.k, x.v, undefined, new Float32Array(2)), named('lse'));
    assert.throws(() => sddmmPrune(p, x.q, x.k.subarray(4)), named('k'));
    const { values, metadata } = sddmmPrune(p, x.q, x.k);
    assert.throws(() => compressedSoftmax(p, values.subarray(1)), named('values'));
    assert.throws(() => compressedSoftmax(p, values, new Float32Array(3)), named('probs'));
    assert.throws(() => spmm(p, values, null, x.v), named('metadata'));
    assert.throws(() => spmm(p, values, (metadata as Uint32Array).subarray(1), x.v), named('metadata'));
    assert.throws(() => spmm({ ...p, pattern: null }, new Float32Array(24), metadata, x.v), named('metadata'));
    assert.throws(() => spmm(p, values, metadata, x.v.subarray(2)), named('v'));
  });

  test('per-batch lengths outside 0 .. N are named errors', () => {
    const named = (argument: string) => (e: unknown) => e instanceof InvalidArgumentError && e.argument === argument;
    assert.throws(() => attentionForward({ ...p, seqlensK: Int32Array.from([9]) }, x.q, x.k, x.v), named('seqlensK[0]'));
    assert.throws(() => attentionForward({ ...p, seqlensQ: Int32Array.from([-1]) }, x.q, x.k, x.v), named('seqlensQ[0]'));
    assert.throws(() => sddmmPrune({ ...p, seqlensQ: new Int32Array(0) }, x.q, x.k), named('seqlensQ'));
  });
});
