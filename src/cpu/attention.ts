// Fused forward attention on the CPU: DESIGN.md section 2 / cuda/include/dfss.h steps 1-7, row by row.
// Inputs hold values already rounded to the dtype, addressed by the problem's strides from element 0.
// Pruned and masked keys are skipped entirely in the exponentials and in P V.

import { rounderFor } from '../dtype.js';
import type { AttentionProblem } from '../problem.js';
import { groupCount } from '../select.js';
import {
  accumulateRow,
  allowedKeyCount,
  keptScores,
  outputSpan,
  requireInputs,
  requireValidLengths,
  requireLength,
  RowScratch,
  softmaxRow,
  validLength,
  writeRow,
} from './rows.js';

/**
 * out = DFSS-attention(q, k, v). out is written by problem.outStrides (elements it does not address are left
 * as they are) with values rounded to the dtype; a new array is made when out is not given. lse, if given,
 * receives the [B, Hq, Nq] log-sum-exp of each row (contiguous float32).
 */
export function attentionForward(
  problem: AttentionProblem,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  out: Float32Array = new Float32Array(outputSpan(problem)),
  lse: Float32Array | null = null,
): Float32Array {
  const { batch, headsQ, headsKv, seqQ, seqK, headDim, headDimV, pattern, causal } = problem;
  requireInputs(problem, { q, k, v });
  requireValidLengths(problem);
  requireLength('out', out, outputSpan(problem), 'out shape and strides');
  if (lse !== null) requireLength('lse', lse, batch * headsQ * seqQ, '[B, Hq, Nq]');

  const round = rounderFor(problem.dtype);
  const scale32 = Math.fround(problem.scale);
  const headsPerKv = headsQ / headsKv;
  const [qsB, qsH, qsN] = problem.qStrides;
  const [ksB, ksH, ksN] = problem.kStrides;
  const [vsB, vsH, vsN] = problem.vStrides;
  const [osB, osH, osN] = problem.outStrides;
  const maxSlots = pattern === null ? seqK : groupCount(seqK, pattern.m) * pattern.n;
  const scratch = new RowScratch(seqK, maxSlots, headDimV);
  const { probs, exps, acc, liveRows, liveWeights, identity } = scratch;

  for (let b = 0; b < batch; b++) {
    const validQ = validLength(problem.seqlensQ, b, seqQ);
    const validK = validLength(problem.seqlensK, b, seqK);
    for (let h = 0; h < headsQ; h++) {
      const hk = Math.floor(h / headsPerKv);
      const kBase = b * ksB + hk * ksH;
      const vBase = b * vsB + hk * vsH;
      for (let i = 0; i < seqQ; i++) {
        const allowed = allowedKeyCount(causal, i, validQ, validK);
        let rowLse = -Infinity;
        let count = 0;
        let rowKeys = identity;
        if (allowed > 0) {
          const kept = keptScores(q, b * qsB + h * qsH + i * qsN, k, kBase, ksN, headDim, allowed, scale32, pattern, scratch);
          count = kept.count;
          rowKeys = kept.keys;
          rowLse = softmaxRow(kept.scores, 0, count, round, probs, 0, exps);
        }
        accumulateRow(probs, 0, rowKeys, count, seqK, v, vBase, vsN, headDimV, acc, liveRows, liveWeights);
        writeRow(acc, headDimV, round, out, b * osB + h * osH + i * osN);
        if (lse !== null) lse[(b * headsQ + h) * seqQ + i] = rowLse;
      }
    }
  }
  return out;
}
