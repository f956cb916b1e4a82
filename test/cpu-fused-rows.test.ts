// The CPU fused forward's fast paths against the one-row steps they replace: scores of four query rows at once
// (computeScoreBlock) and the kept keys of a row in one pass (gatherKeptKeys). Both must give the same bits as the
// one-row path, which the backward uses, so that the forward and the backward keep the same keys.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { attentionForward } from '../src/cpu/attention.js';
import {
  accumulateRow,
  allowedKeyCount,
  computeScoreBlock,
  computeScores,
  keptScores,
  outputSpan,
  RowScratch,
  softmaxRow,
  validLength,
  writeRow,
} from '../src/cpu/rows.js';
import { rounderFor, roundToDType, type DType } from '../src/dtype.js';
import type { AttentionProblem } from '../src/problem.js';
import { gatherKeptKeys, groupCount, pruneRow } from '../src/select.js';
import { makeProblem, type Spec } from './support/problems.js';

/** Deterministic uniform numbers in [0, 1). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Values rounded to dtype: mostly normal-ish numbers, with every tenth one a special value when asked. */
function values(count: number, dtype: DType, next: () => number, special: boolean): Float32Array {
  const specials = [NaN, Infinity, -Infinity, 0, -0, 65504];
  const out = new Float32Array(count);
  for (let e = 0; e < count; e++) {
    const x = special && e % 10 === 3 ? specials[Math.floor(next() * specials.length)] : (next() - 0.5) * 6;
    out[e] = roundToDType(x, dtype);
  }
  return out;
}

/**
 * The same bits element by element, where a NaN must meet a NaN: ECMAScript leaves the bits of a NaN stored into a
 * Float32Array to the engine, and Bun's JavaScriptCore has stored the same NaN with other bits from another JIT tier
 * (about one run in twenty).
 */
function assertSameBits(actual: Float32Array, expected: Float32Array, message: string): void {
  assert.equal(actual.length, expected.length, message);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    const bothNaN = Number.isNaN(actual[i]) && Number.isNaN(expected[i]);
    if (a[i] !== e[i] && !bothNaN) assert.fail(`${message}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

/** The fused forward one row at a time, from the one-row steps of rows.ts (what the backward recomputes). */
function forwardRowByRow(p: AttentionProblem, q: Float32Array, k: Float32Array, v: Float32Array): { out: Float32Array; lse: Float32Array } {
  const round = rounderFor(p.dtype);
  const scale32 = Math.fround(p.scale);
  const slots = p.pattern === null ? p.seqK : groupCount(p.seqK, p.pattern.m) * p.pattern.n;
  const scratch = new RowScratch(p.seqK, slots, p.headDimV);
  const out = new Float32Array(outputSpan(p));
  const lse = new Float32Array(p.batch * p.headsQ * p.seqQ);
  for (let b = 0; b < p.batch; b++) {
    const validQ = validLength(p.seqlensQ, b, p.seqQ);
    const validK = validLength(p.seqlensK, b, p.seqK);
    for (let h = 0; h < p.headsQ; h++) {
      const hk = Math.floor(h / (p.headsQ / p.headsKv));
      const kBase = b * p.kStrides[0] + hk * p.kStrides[1];
      const vBase = b * p.vStrides[0] + hk * p.vStrides[1];
      for (let i = 0; i < p.seqQ; i++) {
        const allowed = allowedKeyCount(p.causal, i, validQ, validK);
        let count = 0;
        let keys = scratch.identity;
        let rowLse = -Infinity;
        if (allowed > 0) {
          const qBase = b * p.qStrides[0] + h * p.qStrides[1] + i * p.qStrides[2];
          const kept = keptScores(q, qBase, k, kBase, p.kStrides[2], p.headDim, allowed, scale32, p.pattern, scratch);
          count = kept.count;
          keys = kept.keys;
          rowLse = softmaxRow(kept.scores, 0, count, round, scratch.probs, 0, scratch.exps);
        }
        accumulateRow(scratch.probs, 0, keys, count, p.seqK, v, vBase, p.vStrides[2], p.headDimV, scratch.acc, scratch.liveRows, scratch.liveWeights);
        writeRow(scratch.acc, p.headDimV, round, out, b * p.outStrides[0] + h * p.outStrides[1] + i * p.outStrides[2]);
        lse[(b * p.headsQ + h) * p.seqQ + i] = rowLse;
      }
    }
  }
  return { out, lse };
}

describe('four query rows at once (computeScoreBlock)', () => {
  test('gives computeScores bit for bit, for 1 to 4 rows and key counts that are not a multiple of 4', () => {
    const next = random(3);
    const headDim = 7;
    const seqK = 11;
    const q = values(5 * 9, 'float32', next, true);
    const k = values(seqK * 8 + 2, 'float32', next, true);
    const scale32 = Math.fround(0.3);
    for (let rows = 1; rows <= 4; rows++) {
      for (const count of [1, 3, 4, 8, 11]) {
        const block = new Float32Array(rows * seqK).fill(-7);
        computeScoreBlock(q, 2, 9, rows, k, 1, 8, headDim, count, scale32, block, seqK);
        for (let r = 0; r < rows; r++) {
          const single = new Float32Array(seqK).fill(-7);
          computeScores(q, 2 + r * 9, k, 1, 8, headDim, count, scale32, single);
          assertSameBits(block.subarray(r * seqK, (r + 1) * seqK), single, `${rows} rows, ${count} keys, row ${r}`);
        }
      }
    }
  });

  const shapes: Spec[] = [
    { seqQ: 13, seqK: 13, headDim: 8 },
    { seqQ: 1, seqK: 6, headDim: 3, causal: true },
    { seqQ: 9, seqK: 5, headDim: 4, causal: true },
    { seqQ: 6, seqK: 22, headDim: 5, headDimV: 7, causal: true, batch: 2, headsQ: 4, headsKv: 2, layout: 'bnhd' },
    { seqQ: 11, seqK: 17, headDim: 16, batch: 2, seqlensQ: [11, 6], seqlensK: [17, 9], causal: true },
    { seqQ: 8, seqK: 31, headDim: 6, headDimV: 3, batch: 2, seqlensQ: [3, 8], seqlensK: [0, 30] },
  ];
  for (const dtype of ['float16', 'bfloat16', 'float32'] as const) {
    for (const pattern of ['dense', '2:4', '1:2', '1:4', '3:4', '3:8']) {
      test(`the fused forward equals the one-row steps bit for bit (${pattern}, ${dtype}, special values included)`, () => {
        const next = random(11);
        for (const spec of shapes) {
          const p = makeProblem({ ...spec, dtype, pattern });
          for (const special of [false, true]) {
            const q = values(p.batch * p.headsQ * p.seqQ * p.headDim, dtype, next, special);
            const k = values(p.batch * p.headsKv * p.seqK * p.headDim, dtype, next, special);
            const v = values(p.batch * p.headsKv * p.seqK * p.headDimV, dtype, next, special);
            const lse = new Float32Array(p.batch * p.headsQ * p.seqQ);
            const out = attentionForward(p, q, k, v, undefined, lse);
            const expected = forwardRowByRow(p, q, k, v);
            const name = `${JSON.stringify(spec)}${special ? ' with special values' : ''}`;
            assertSameBits(out, expected.out, `out, ${name}`);
            assertSameBits(lse, expected.lse, `lse, ${name}`);
          }
        }
      });
    }
  }
});

describe('the kept keys of a row in one pass (gatherKeptKeys)', () => {
  test('keeps what pruneRow keeps, below the row length, ascending, with their scores', () => {
    const next = random(5);
    for (let m = 2; m <= 8; m++) {
      for (let n = 1; n < m; n++) {
        for (let trial = 0; trial < 60; trial++) {
          const rowLength = 1 + Math.floor(next() * 4 * m);
          // some rows without NaN (the branch-free paths), some with NaN from a random group on
          const nanRate = trial % 2 === 0 ? 0 : 0.05;
          const scores = new Float32Array(rowLength + 3);
          for (let j = 0; j < scores.length; j++) {
            const r = next();
            scores[j] = r < nanRate ? NaN : r < 0.15 ? -Infinity : Math.floor(next() * 4);
          }
          const groups = Math.ceil(rowLength / m);
          const inGroup = new Int32Array(groups * n);
          pruneRow(scores, 3, rowLength, { n, m }, inGroup);
          const expectedKeys: number[] = [];
          for (let c = 0; c < inGroup.length; c++) {
            const key = Math.floor(c / n) * m + inGroup[c];
            if (key < rowLength) expectedKeys.push(key);
          }
          const keys = new Int32Array(groups * n + 1).fill(-9);
          const kept = new Float32Array(groups * n + 1).fill(-9);
          const count = gatherKeptKeys(scores, 3, rowLength, { n, m }, keys, kept);
          const message = `${n}:${m} row ${[...scores.subarray(3, 3 + rowLength)]}`;
          assert.deepEqual([...keys.subarray(0, count)], expectedKeys, message);
          assert.deepEqual([...kept.subarray(0, count)], expectedKeys.map((key) => scores[3 + key]), message);
          assert.equal(keys[count], -9, `nothing written past the kept keys: ${message}`);
        }
      }
    }
  });
});
