// The CPU backward (src/cpu/backward.ts, dfss.h "backward") against central finite differences of a float64
// forward with the forward's N:M selection frozen, against plain softmax attention's gradient for the dense
// pattern, and on the rules of the semantics: grouped-query sums, masks, lengths, fully masked rows, pruned keys,
// the forward's tie-breaks. Then the public API: attentionBackward, attentionForTraining, argument errors.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { AttentionContext, attention, attentionBackward, attentionForTraining, attentionWithLse } from '../src/attention.js';
import { attentionForward } from '../src/cpu/attention.js';
import { attentionBackward as cpuAttentionBackward, type GradientArrays } from '../src/cpu/backward.js';
import { sddmmPrune } from '../src/cpu/staged.js';
import { type DType, roundToDType } from '../src/dtype.js';
import { InvalidArgumentError } from '../src/errors.js';
import { compressedRowSize, decodeMetadata } from '../src/layout.js';
import type { AttentionProblem, Strides4 } from '../src/problem.js';
import { SeededRandom } from '../src/random.js';
import { Tensor } from '../src/tensor.js';
import { makeProblem, type Spec, stridesOf } from './support/problems.js';

// ----- problems and inputs ---------------------------------------------------------------------------------

type Shape4 = readonly [number, number, number, number];

/** Offset of [b, h, n, d] in a buffer with these strides. */
function at(strides: Strides4, b: number, h: number, n: number, d: number): number {
  return b * strides[0] + h * strides[1] + n * strides[2] + d;
}

/** Calls visit(offset, logical) for each element of a [B, H, N, D] tensor laid out by strides, in logical order. */
function forEachElement(shape: Shape4, strides: Strides4, visit: (offset: number, logical: number) => void): void {
  let logical = 0;
  for (let b = 0; b < shape[0]; b++)
    for (let h = 0; h < shape[1]; h++)
      for (let n = 0; n < shape[2]; n++) for (let d = 0; d < shape[3]; d++) visit(at(strides, b, h, n, d), logical++);
}

/** A buffer of `shape` laid out by strides, filled in logical order by draw() rounded to the dtype. */
function buffer(shape: Shape4, strides: Strides4, dtype: DType, draw: () => number): Float32Array {
  const data = new Float32Array((shape[0] - 1) * strides[0] + (shape[1] - 1) * strides[1] + (shape[2] - 1) * strides[2] + shape[3]);
  forEachElement(shape, strides, (offset) => (data[offset] = roundToDType(draw(), dtype)));
  return data;
}

interface Operands {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  /** The gradient of out, [B, Hq, Nq, Dv] laid out by outStrides. */
  dout: Float32Array;
}

function shapes(p: AttentionProblem): { q: Shape4; k: Shape4; v: Shape4; out: Shape4 } {
  return {
    q: [p.batch, p.headsQ, p.seqQ, p.headDim],
    k: [p.batch, p.headsKv, p.seqK, p.headDim],
    v: [p.batch, p.headsKv, p.seqK, p.headDimV],
    out: [p.batch, p.headsQ, p.seqQ, p.headDimV],
  };
}

function operands(p: AttentionProblem, random: SeededRandom, qk: 'normal' | 'integers' = 'normal'): Operands {
  const s = shapes(p);
  const normal = () => random.normals(1)[0];
  const drawQk = qk === 'normal' ? normal : () => random.integers(1, -2, 2)[0];
  return {
    q: buffer(s.q, p.qStrides, p.dtype, drawQk),
    k: buffer(s.k, p.kStrides, p.dtype, drawQk),
    v: buffer(s.v, p.vStrides, p.dtype, normal),
    dout: buffer(s.out, p.outStrides, p.dtype, normal),
  };
}

/** The forward (out by outStrides, lse) and the backward of the CPU backend, dout laid out like out. */
function forwardAndBackward(p: AttentionProblem, x: Operands): { out: Float32Array; lse: Float32Array; grads: GradientArrays } {
  const lse = new Float32Array(p.batch * p.headsQ * p.seqQ);
  const out = attentionForward(p, x.q, x.k, x.v, undefined, lse);
  const grads = cpuAttentionBackward(p, x.q, x.k, x.v, out, x.dout, p.outStrides, lse);
  return { out, lse, grads };
}

/** kept[row * Nk + j] = 1 where the forward keeps key j of query row `row` with a finite score (sddmmPrune). */
function forwardSelection(p: AttentionProblem, x: Operands): Uint8Array {
  const rows = p.batch * p.headsQ * p.seqQ;
  const { values, metadata } = sddmmPrune(p, x.q, x.k);
  const { values: slots } = compressedRowSize(p.seqK, p.pattern);
  const kept = new Uint8Array(rows * p.seqK);
  const inGroup = p.pattern && decodeMetadata(metadata!, rows, slots, p.pattern.m);
  for (let row = 0; row < rows; row++) {
    for (let c = 0; c < slots; c++) {
      const key = p.pattern ? Math.floor(c / p.pattern.n) * p.pattern.m + inGroup![row * slots + c] : c;
      if (key < p.seqK && Number.isFinite(values[row * slots + c])) kept[row * p.seqK + key] = 1;
    }
  }
  return kept;
}

// ----- float64 references ------------------------------------------------------------------------------------

/**
 * DFSS attention in float64 with the selection frozen to `kept`: out [B, Hq, Nq, Dv] contiguous. Rows with no
 * kept key give 0. The scale is the float32 one the library uses.
 */
function frozenForward(p: AttentionProblem, q: Float64Array, k: Float64Array, v: Float64Array, kept: Uint8Array): Float64Array {
  const scale = Math.fround(p.scale);
  const out = new Float64Array(p.batch * p.headsQ * p.seqQ * p.headDimV);
  const scores = new Float64Array(p.seqK);
  const group = p.headsQ / p.headsKv;
  for (let b = 0; b < p.batch; b++)
    for (let h = 0; h < p.headsQ; h++)
      for (let i = 0; i < p.seqQ; i++) {
        const row = (b * p.headsQ + h) * p.seqQ + i;
        const hk = Math.floor(h / group);
        let max = -Infinity;
        for (let j = 0; j < p.seqK; j++) {
          scores[j] = -Infinity;
          if (!kept[row * p.seqK + j]) continue;
          let dot = 0;
          for (let d = 0; d < p.headDim; d++) dot += q[at(p.qStrides, b, h, i, d)] * k[at(p.kStrides, b, hk, j, d)];
          scores[j] = scale * dot;
          max = Math.max(max, scores[j]);
        }
        if (max === -Infinity) continue;
        let sum = 0;
        for (let j = 0; j < p.seqK; j++) sum += Math.exp(scores[j] - max);
        for (let j = 0; j < p.seqK; j++) {
          const prob = Math.exp(scores[j] - max) / sum;
          if (prob === 0) continue;
          for (let d = 0; d < p.headDimV; d++) out[row * p.headDimV + d] += prob * v[at(p.vStrides, b, hk, j, d)];
        }
      }
  return out;
}

/** sum(dout * out) for the frozen forward; dout as a contiguous float64 [B, Hq, Nq, Dv]. */
function frozenLoss(p: AttentionProblem, q: Float64Array, k: Float64Array, v: Float64Array, kept: Uint8Array, dout: Float64Array): number {
  const out = frozenForward(p, q, k, v, kept);
  let loss = 0;
  for (let e = 0; e < out.length; e++) loss += out[e] * dout[e];
  return loss;
}

/** Contiguous float64 values of a strided buffer. */
function logical(shape: Shape4, strides: Strides4, data: Float32Array): Float64Array {
  const values = new Float64Array(shape[0] * shape[1] * shape[2] * shape[3]);
  forEachElement(shape, strides, (offset, e) => (values[e] = data[offset]));
  return values;
}

interface Expected {
  dq: Float64Array;
  dk: Float64Array;
  dv: Float64Array;
}

/** Central differences of frozenLoss in every element of q, k and v (contiguous [B, H, N, D] gradients). */
function finiteDifferences(p: AttentionProblem, x: Operands, kept: Uint8Array, step = 1e-5): Expected {
  const s = shapes(p);
  const dout = logical(s.out, p.outStrides, x.dout);
  const q = Float64Array.from(x.q);
  const k = Float64Array.from(x.k);
  const v = Float64Array.from(x.v);
  const loss = () => frozenLoss(p, q, k, v, kept, dout);
  const derivative = (data: Float64Array, shape: Shape4, strides: Strides4) => {
    const gradient = new Float64Array(shape[0] * shape[1] * shape[2] * shape[3]);
    forEachElement(shape, strides, (offset, e) => {
      const saved = data[offset];
      data[offset] = saved + step;
      const up = loss();
      data[offset] = saved - step;
      const down = loss();
      data[offset] = saved;
      gradient[e] = (up - down) / (2 * step);
    });
    return gradient;
  };
  return { dq: derivative(q, s.q, p.qStrides), dk: derivative(k, s.k, p.kStrides), dv: derivative(v, s.v, p.vStrides) };
}

/**
 * Plain softmax attention's gradient (dense: every allowed key), written independently of the library's
 * formulation: dS = P o (dP - rowsum(P o dP)) instead of D_i = dout_i . out_i.
 */
function softmaxAttentionGradient(p: AttentionProblem, x: Operands): Expected {
  const s = shapes(p);
  const q = logical(s.q, p.qStrides, x.q);
  const k = logical(s.k, p.kStrides, x.k);
  const v = logical(s.v, p.vStrides, x.v);
  const dout = logical(s.out, p.outStrides, x.dout);
  const scale = Math.fround(p.scale);
  const { headDim: D, headDimV: Dv, seqK: Nk } = p;
  const grads = { dq: new Float64Array(q.length), dk: new Float64Array(k.length), dv: new Float64Array(v.length) };
  const probs = new Float64Array(Nk);
  const dp = new Float64Array(Nk);
  for (let b = 0; b < p.batch; b++)
    for (let h = 0; h < p.headsQ; h++)
      for (let i = 0; i < p.seqQ; i++) {
        const row = (b * p.headsQ + h) * p.seqQ + i;
        const kvHead = b * p.headsKv + Math.floor(h / (p.headsQ / p.headsKv));
        const validQ = p.seqlensQ ? p.seqlensQ[b] : p.seqQ;
        const validK = p.seqlensK ? p.seqlensK[b] : Nk;
        const allowed = (j: number) => i < validQ && j < validK && (!p.causal || j <= i + validK - validQ);
        let max = -Infinity;
        for (let j = 0; j < Nk; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[row * D + d] * k[(kvHead * Nk + j) * D + d];
          probs[j] = allowed(j) ? scale * dot : -Infinity;
          max = Math.max(max, probs[j]);
        }
        if (max === -Infinity) continue;
        let sum = 0;
        for (let j = 0; j < Nk; j++) sum += Math.exp(probs[j] - max);
        let rowSum = 0;
        for (let j = 0; j < Nk; j++) {
          probs[j] = Math.exp(probs[j] - max) / sum;
          dp[j] = 0;
          for (let d = 0; d < Dv; d++) dp[j] += dout[row * Dv + d] * v[(kvHead * Nk + j) * Dv + d];
          rowSum += probs[j] * dp[j];
        }
        for (let j = 0; j < Nk; j++) {
          const ds = probs[j] * (dp[j] - rowSum);
          for (let d = 0; d < D; d++) {
            grads.dq[row * D + d] += scale * ds * k[(kvHead * Nk + j) * D + d];
            grads.dk[(kvHead * Nk + j) * D + d] += scale * ds * q[row * D + d];
          }
          for (let d = 0; d < Dv; d++) grads.dv[(kvHead * Nk + j) * Dv + d] += probs[j] * dout[row * Dv + d];
        }
      }
  return grads;
}

function assertNear(what: string, got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let e = 0; e < got.length; e++) {
    const ok = Math.abs(got[e] - want[e]) <= atol + rtol * Math.abs(want[e]);
    if (!ok) assert.fail(`${what}: element ${e} is ${got[e]}, expected ${want[e]} (|difference| ${Math.abs(got[e] - want[e])})`);
  }
}

/** Asserts the gradients agree with the expected ones within float32 rounding of the scores and lse. */
function assertGradients(what: string, got: GradientArrays, want: Expected, atol = 2e-5, rtol = 2e-5): void {
  assertNear(`${what} dq`, got.dq, want.dq, atol, rtol);
  assertNear(`${what} dk`, got.dk, want.dk, atol, rtol);
  assertNear(`${what} dv`, got.dv, want.dv, atol, rtol);
}

function someNonZero(values: ArrayLike<number>): boolean {
  for (let e = 0; e < values.length; e++) if (values[e] !== 0) return true;
  return false;
}

// ----- the tests ------------------------------------------------------------------------------------------

describe('CPU backward against central finite differences (float64, selection frozen)', () => {
  const specs: [string, Spec][] = [
    ['dense', { batch: 1, headsQ: 2, seqQ: 4, seqK: 7, headDim: 5, headDimV: 3 }],
    ['2:4, grouped-query heads, causal, a cut last group', { pattern: '2:4', batch: 2, headsQ: 4, headsKv: 2, seqQ: 5, seqK: 11, headDim: 4, headDimV: 3, causal: true }],
    ['1:2, per-batch lengths, [B, N, H, D] layout', { pattern: '1:2', batch: 2, headsQ: 2, seqQ: 5, seqK: 9, headDim: 3, headDimV: 4, seqlensQ: [5, 3], seqlensK: [9, 4], layout: 'bnhd' }],
    ['3:8 (CPU only), causal with Nq > Nk (fully masked rows)', { pattern: '3:8', batch: 1, headsQ: 3, headsKv: 1, seqQ: 9, seqK: 13, headDim: 4, headDimV: 2, causal: true }],
    ['2:4, a batch entry with no valid query row', { pattern: '2:4', batch: 2, headsQ: 2, headsKv: 1, seqQ: 3, seqK: 10, headDim: 4, seqlensQ: [3, 0], seqlensK: [7, 10] }],
    ['1:2, a scale other than 1/sqrt(D)', { pattern: '1:2', batch: 1, headsQ: 2, headsKv: 2, seqQ: 4, seqK: 6, headDim: 3, headDimV: 2, scale: 1.7 }],
  ];
  for (const [name, spec] of specs) {
    test(name, () => {
      const p = makeProblem(spec);
      const x = operands(p, new SeededRandom(name.length * 7919));
      const { out, grads } = forwardAndBackward(p, x);
      const kept = forwardSelection(p, x);
      // The frozen float64 forward is the library's forward: same out within float32 rounding.
      const s = shapes(p);
      assertNear('frozen forward out', logical(s.out, p.outStrides, out), frozenForward(p, Float64Array.from(x.q), Float64Array.from(x.k), Float64Array.from(x.v), kept), 1e-6, 1e-5);
      const numeric = finiteDifferences(p, x, kept);
      assertGradients(name, grads, numeric);
      // Not all trivially zero: the check has something to compare.
      assert.ok(someNonZero(grads.dq) && someNonZero(grads.dk) && someNonZero(grads.dv), 'some gradients are non-zero');
    });
  }
});

describe('CPU backward: rules of the semantics', () => {
  test('dense pattern: the gradient of plain softmax attention, with masks, lengths and grouped-query heads', () => {
    for (const spec of [
      { batch: 2, headsQ: 4, headsKv: 2, seqQ: 6, seqK: 9, headDim: 8, headDimV: 5 },
      { batch: 2, headsQ: 2, headsKv: 1, seqQ: 7, seqK: 5, headDim: 4, causal: true, seqlensQ: [7, 4], seqlensK: [5, 3] },
    ] as Spec[]) {
      const p = makeProblem(spec);
      const x = operands(p, new SeededRandom(11));
      assertGradients('dense', forwardAndBackward(p, x).grads, softmaxAttentionGradient(p, x));
    }
  });

  test('grouped-query heads: dk and dv sum over the query heads of each kv head; dq is unchanged', () => {
    const grouped = makeProblem({ pattern: '2:4', batch: 2, headsQ: 6, headsKv: 2, seqQ: 5, seqK: 10, headDim: 4, headDimV: 3, causal: true });
    const expanded = makeProblem({ pattern: '2:4', batch: 2, headsQ: 6, headsKv: 6, seqQ: 5, seqK: 10, headDim: 4, headDimV: 3, causal: true });
    const x = operands(grouped, new SeededRandom(5));
    // k and v of the expanded problem: every query head gets its own copy of its kv head.
    const copyHeads = (data: Float32Array, dim: number) => {
      const copy = new Float32Array(2 * 6 * 10 * dim);
      for (let b = 0; b < 2; b++)
        for (let h = 0; h < 6; h++) copy.set(data.subarray((b * 2 + Math.floor(h / 3)) * 10 * dim, (b * 2 + Math.floor(h / 3) + 1) * 10 * dim), (b * 6 + h) * 10 * dim);
      return copy;
    };
    const y: Operands = { ...x, k: copyHeads(x.k, 4), v: copyHeads(x.v, 3) };
    const g = forwardAndBackward(grouped, x).grads;
    const e = forwardAndBackward(expanded, y).grads;
    assert.deepEqual(g.dq, e.dq);
    const sumGroups = (data: Float32Array, dim: number) => {
      const sums = new Float64Array(2 * 2 * 10 * dim);
      for (let b = 0; b < 2; b++)
        for (let h = 0; h < 6; h++)
          for (let t = 0; t < 10 * dim; t++) sums[(b * 2 + Math.floor(h / 3)) * 10 * dim + t] += data[(b * 6 + h) * 10 * dim + t];
      return sums;
    };
    assertNear('dk', g.dk, sumGroups(e.dk, 4), 1e-6, 1e-6);
    assertNear('dv', g.dv, sumGroups(e.dv, 3), 1e-6, 1e-6);
  });

  test('fully masked rows, masked keys and keys past the valid length get exactly zero gradients; padding is not read', () => {
    // causal with Nq > Nk: rows 0 .. Nq - Nk - 1 see no key; batch 1 has 2 valid rows and 3 valid keys.
    const p = makeProblem({ pattern: '2:4', batch: 2, headsQ: 2, headsKv: 1, seqQ: 8, seqK: 6, headDim: 4, headDimV: 3, causal: true, seqlensQ: [8, 2], seqlensK: [6, 3] });
    const x = operands(p, new SeededRandom(3));
    // The padding of batch 1 (rows 2 .. 7 of q and dout, keys 3 .. 5 of k and v) holds NaN: no result may read it.
    for (let h = 0; h < 2; h++)
      for (let i = 2; i < 8; i++) {
        for (let d = 0; d < 4; d++) x.q[at(p.qStrides, 1, h, i, d)] = Number.NaN;
        for (let d = 0; d < 3; d++) x.dout[at(p.outStrides, 1, h, i, d)] = Number.NaN;
      }
    for (let j = 3; j < 6; j++) {
      for (let d = 0; d < 4; d++) x.k[at(p.kStrides, 1, 0, j, d)] = Number.NaN;
      for (let d = 0; d < 3; d++) x.v[at(p.vStrides, 1, 0, j, d)] = Number.NaN;
    }
    const { lse, grads } = forwardAndBackward(p, x);
    const dqRow = (b: number, h: number, i: number) => [...grads.dq.subarray(((b * 2 + h) * 8 + i) * 4, ((b * 2 + h) * 8 + i + 1) * 4)];
    for (let h = 0; h < 2; h++) {
      for (const i of [0, 1]) {
        assert.equal(lse[(0 * 2 + h) * 8 + i], -Infinity);
        assert.deepEqual(dqRow(0, h, i), [0, 0, 0, 0], `batch 0 head ${h} row ${i} (above the causal diagonal)`);
      }
      assert.ok(someNonZero(dqRow(0, h, 3)), 'row 3 of batch 0 sees keys 0 and 1'); // (row 2 sees one key: p = 1, ds = 0)
      for (let i = 2; i < 8; i++) assert.deepEqual(dqRow(1, h, i), [0, 0, 0, 0], `batch 1 head ${h} row ${i} (past Nq_b)`);
    }
    // batch 1: keys 3 .. 5 are past Nk_b = 3
    for (let j = 3; j < 6; j++) {
      assert.deepEqual([...grads.dk.subarray((1 * 6 + j) * 4, (1 * 6 + j) * 4 + 4)], [0, 0, 0, 0], `dk key ${j}`);
      assert.deepEqual([...grads.dv.subarray((1 * 6 + j) * 3, (1 * 6 + j) * 3 + 3)], [0, 0, 0], `dv key ${j}`);
    }
    for (const values of [grads.dq, grads.dk, grads.dv]) assert.ok(values.every(Number.isFinite), 'no NaN or infinity');
  });

  test('a row whose lse is -inf contributes nothing, whatever its scores', () => {
    const p = makeProblem({ pattern: '1:2', headsQ: 1, seqQ: 3, seqK: 6, headDim: 4 });
    const x = operands(p, new SeededRandom(8));
    const { out, lse, grads } = forwardAndBackward(p, x);
    lse[1] = -Infinity;
    const dropped = cpuAttentionBackward(p, x.q, x.k, x.v, out, x.dout, p.outStrides, lse);
    assert.deepEqual([...dropped.dq.subarray(4, 8)], [0, 0, 0, 0]);
    assert.deepEqual([...dropped.dq.subarray(0, 4)], [...grads.dq.subarray(0, 4)]);
    assert.notDeepEqual(dropped.dk, grads.dk);
  });

  test('pruned keys get no gradient; every kept key of a row gets its share of dv', () => {
    for (const pattern of ['1:2', '2:4', '3:8']) {
      const p = makeProblem({ pattern, batch: 2, headsQ: 3, seqQ: 1, seqK: 17, headDim: 4, headDimV: 2 });
      const x = operands(p, new SeededRandom(21));
      const kept = forwardSelection(p, x);
      const { grads } = forwardAndBackward(p, x);
      // one query row per (b, h) and Hq = Hk: each key row of dk and dv belongs to that one query row
      for (let row = 0; row < 6; row++)
        for (let j = 0; j < 17; j++) {
          const dvZero = grads.dv[(row * 17 + j) * 2] === 0 && grads.dv[(row * 17 + j) * 2 + 1] === 0;
          const dkZero = grads.dk.subarray((row * 17 + j) * 4, (row * 17 + j + 1) * 4).every((g) => g === 0);
          assert.equal(dvZero, !kept[row * 17 + j], `${pattern} row ${row} key ${j}: dv zero iff pruned`);
          if (!kept[row * 17 + j]) assert.ok(dkZero, `${pattern} row ${row} key ${j}: dk zero where pruned`);
        }
    }
  });

  test('exact ties: the backward keeps the keys the forward kept (lower index first)', () => {
    // small integers, scale 1/4: exact scores with many ties in every group
    const p = makeProblem({ pattern: '2:4', batch: 1, headsQ: 4, seqQ: 1, seqK: 23, headDim: 2, headDimV: 1, scale: 0.25 });
    const x = operands(p, new SeededRandom(2), 'integers');
    x.dout.fill(1); // dv_j = round(p_j): non-zero exactly where key j is kept
    const kept = forwardSelection(p, x);
    let ties = 0;
    for (let row = 0; row < 4; row++)
      for (let g = 0; g < 23; g += 4) {
        const scores = new Set<number>();
        for (let j = g; j < Math.min(g + 4, 23); j++) scores.add(x.q[row * 2] * x.k[(row * 23 + j) * 2] + x.q[row * 2 + 1] * x.k[(row * 23 + j) * 2 + 1]);
        if (scores.size < Math.min(4, 23 - g)) ties++;
      }
    assert.ok(ties > 4, `${ties} groups with tied scores`);
    const { grads } = forwardAndBackward(p, x);
    assert.deepEqual([...grads.dv].map((g) => (g !== 0 ? 1 : 0)), [...kept]);
  });

  test('dout with other strides than out gives the same gradients', () => {
    const p = makeProblem({ pattern: '2:4', batch: 2, headsQ: 2, seqQ: 5, seqK: 8, headDim: 4, headDimV: 3 });
    const x = operands(p, new SeededRandom(4));
    const { out, lse, grads } = forwardAndBackward(p, x);
    const bnhd = stridesOf('bnhd', 2, 5, 3);
    const permuted = new Float32Array(x.dout.length);
    forEachElement(shapes(p).out, bnhd, (offset, e) => (permuted[offset] = x.dout[e]));
    assert.deepEqual(cpuAttentionBackward(p, x.q, x.k, x.v, out, permuted, bnhd, lse), grads);
  });

  test('inputs are not modified; results are rounded to the dtype', () => {
    for (const dtype of ['float16', 'bfloat16'] as const) {
      const p = makeProblem({ dtype, pattern: '2:4', batch: 1, headsQ: 2, seqQ: 6, seqK: 9, headDim: 8, headDimV: 4 });
      const x = operands(p, new SeededRandom(9));
      const copies = { q: x.q.slice(), k: x.k.slice(), v: x.v.slice(), dout: x.dout.slice() };
      const { grads } = forwardAndBackward(p, x);
      assert.deepEqual({ q: x.q, k: x.k, v: x.v, dout: x.dout }, copies);
      for (const values of [grads.dq, grads.dk, grads.dv]) for (const g of values) assert.equal(roundToDType(g, dtype), g);
    }
  });
});

// ----- the public API -------------------------------------------------------------------------------------

function hostOperands(dtype: DType, random: SeededRandom) {
  const [B, Hq, Hk, Nq, Nk, D, Dv] = [2, 4, 2, 5, 11, 8, 4];
  const t = (shape: number[]) => Tensor.fromArray(random.normals(shape.reduce((a, b) => a * b)), shape, { dtype });
  return { q: t([B, Hq, Nq, D]), k: t([B, Hk, Nk, D]), v: t([B, Hk, Nk, Dv]), dout: t([B, Hq, Nq, Dv]) };
}

async function values(t: Tensor): Promise<number[]> {
  return [...(await t.toFloat32Array())];
}

describe('attentionBackward and attentionForTraining (public API, CPU backend)', () => {
  const options = { pattern: '2:4', causal: true, backend: 'cpu' as const };

  test('attentionBackward returns dq, dk, dv of the shapes and dtype of q, k, v', async () => {
    const x = hostOperands('float16', new SeededRandom(1));
    const { out, lse } = await attentionWithLse(x.q, x.k, x.v, options);
    const g = await attentionBackward(x.q, x.k, x.v, out, x.dout, lse, options);
    assert.deepEqual([g.dq.shape, g.dk.shape, g.dv.shape], [x.q.shape, x.k.shape, x.v.shape]);
    assert.deepEqual([g.dq.dtype, g.dk.dtype, g.dv.dtype, g.dq.device], ['float16', 'float16', 'float16', 'cpu']);
    assert.ok(someNonZero(await values(g.dk)));
  });

  test('attentionForTraining: out is attention(), backward(dout) is attentionBackward, options fixed at the forward', async () => {
    const x = hostOperands('float32', new SeededRandom(2));
    const lengths = [5, 3];
    const forwardOptions = { ...options, seqlensQ: lengths };
    const ctx = await attentionForTraining(x.q, x.k, x.v, forwardOptions);
    assert.ok(ctx instanceof AttentionContext);
    assert.deepEqual(await values(ctx.out), await values(await attention(x.q, x.k, x.v, forwardOptions)));
    const want = await attentionBackward(x.q, x.k, x.v, ctx.out, x.dout, ctx.lse, forwardOptions);
    lengths[1] = 0; // a later change of the caller's options does not reach the backward
    const got = await ctx.backward(x.dout);
    for (const key of ['dq', 'dk', 'dv'] as const) assert.deepEqual(await values(got[key]), await values(want[key]), key);
    ctx.dispose();
    assert.ok(ctx.out.disposed && ctx.lse.disposed);
  });

  test('a strided dout ([B, N, H, D] buffer) gives the gradients of the packed one', async () => {
    const x = hostOperands('float32', new SeededRandom(3));
    const { out, lse } = await attentionWithLse(x.q, x.k, x.v, options);
    const packed = await attentionBackward(x.q, x.k, x.v, out, x.dout, lse, options);
    const [B, H, N, D] = x.dout.shape;
    const data = await x.dout.toFloat32Array();
    const bnhd = new Float32Array(data.length);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++)
        for (let n = 0; n < N; n++) for (let d = 0; d < D; d++) bnhd[((b * N + n) * H + h) * D + d] = data[((b * H + h) * N + n) * D + d];
    const strided = Tensor.fromArray(bnhd, [B, N, H, D]).transpose(1, 2);
    const got = await attentionBackward(x.q, x.k, x.v, out, strided, lse, options);
    for (const key of ['dq', 'dk', 'dv'] as const) assert.deepEqual(await values(got[key]), await values(packed[key]), key);
  });

  test('bad arguments are refused with an error naming the argument', async () => {
    const x = hostOperands('float16', new SeededRandom(4));
    const { out, lse } = await attentionWithLse(x.q, x.k, x.v, options);
    const refuses = async (argument: string, call: () => Promise<unknown>) =>
      assert.rejects(call, (error: unknown) => error instanceof InvalidArgumentError && error.argument === argument);
    await refuses('out.shape', () => attentionBackward(x.q, x.k, x.v, x.q, x.dout, lse, options));
    await refuses('dout.shape', () => attentionBackward(x.q, x.k, x.v, out, x.q, lse, options));
    const dout32 = Tensor.fromArray(new Float32Array(x.dout.size), x.dout.shape);
    await refuses('dout.dtype', () => attentionBackward(x.q, x.k, x.v, out, dout32, lse, options));
    const lse16 = Tensor.fromArray(new Float32Array(lse.size), lse.shape, { dtype: 'float16' });
    await refuses('lse.dtype', () => attentionBackward(x.q, x.k, x.v, out, x.dout, lse16, options));
    await refuses('lse.shape', () => attentionBackward(x.q, x.k, x.v, out, x.dout, Tensor.fromArray(new Float32Array(10), [10]), options));
    const [B, H, N] = lse.shape;
    const lseTransposed = Tensor.fromArray(new Float32Array(lse.size), [B, N, H]).transpose(1, 2);
    await refuses('lse.strides', () => attentionBackward(x.q, x.k, x.v, out, x.dout, lseTransposed, options));
    await refuses('lse', () => attentionBackward(x.q, x.k, x.v, out, x.dout, null as unknown as Tensor, options));
    await refuses('options.pattern', () => attentionBackward(x.q, x.k, x.v, out, x.dout, lse, { ...options, pattern: '5:4' }));
    await refuses('options.unknown', () => attentionBackward(x.q, x.k, x.v, out, x.dout, lse, { ...options, unknown: 1 } as never));
  });

  test('the caller\'s tensors are left as they were', async () => {
    const x = hostOperands('bfloat16', new SeededRandom(5));
    const { out, lse } = await attentionWithLse(x.q, x.k, x.v, options);
    const inputs = [x.q, x.k, x.v, out, x.dout, lse];
    const before = await Promise.all(inputs.map((t) => t.toRawArray()));
    await attentionBackward(x.q, x.k, x.v, out, x.dout, lse, options);
    assert.deepEqual(await Promise.all(inputs.map((t) => t.toRawArray())), before);
  });
});
