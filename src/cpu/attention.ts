// Fused forward attention on the CPU: DESIGN.md section 2 / cuda/include/dfss.h steps 1-7, row by row, the scores
// of four query rows at a time (computeScoreBlock: the same bits as one row at a time, at about half the cost).
// Inputs hold values already rounded to the dtype, addressed by the problem's strides from element 0.
// Pruned and masked keys are skipped entirely in the exponentials and in P V.

import type { AttentionProblem } from '../problem.js';
import {
  accumulateRow,
  allowedKeyCount,
  computeScoreBlock,
  gatherKept,
  outputSpan,
  prepareFusedRows,
  requireLength,
  SCORE_BLOCK_ROWS,
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
  const { batch, headsQ, seqQ, seqK, headDim, headDimV, pattern, causal } = problem;
  const { round, scale32, headsPerKv, scratch } = prepareFusedRows(problem, { q, k, v }, out);
  if (lse !== null) requireLength('lse', lse, batch * headsQ * seqQ, '[B, Hq, Nq]');
  const [qsB, qsH, qsN] = problem.qStrides;
  const [ksB, ksH, ksN] = problem.kStrides;
  const [vsB, vsH, vsN] = problem.vStrides;
  const [osB, osH, osN] = problem.outStrides;
  const { keys, gathered, probs, exps, acc, liveRows, liveWeights, identity } = scratch;
  const blockScores = new Float32Array(SCORE_BLOCK_ROWS * seqK); // row r of a block at r * seqK

  for (let b = 0; b < batch; b++) {
    const validQ = validLength(problem.seqlensQ, b, seqQ);
    const validK = validLength(problem.seqlensK, b, seqK);
    for (let h = 0; h < headsQ; h++) {
      const hk = Math.floor(h / headsPerKv);
      const kBase = b * ksB + hk * ksH;
      const vBase = b * vsB + hk * vsH;
      for (let i0 = 0; i0 < seqQ; i0 += SCORE_BLOCK_ROWS) {
        const rows = Math.min(SCORE_BLOCK_ROWS, seqQ - i0);
        // scores of every row's allowed keys at once (a row's scores past its own allowed keys go unused)
        let blockKeys = 0;
        for (let r = 0; r < rows; r++) blockKeys = Math.max(blockKeys, allowedKeyCount(causal, i0 + r, validQ, validK));
        if (blockKeys > 0) {
          const qBase = b * qsB + h * qsH + i0 * qsN;
          computeScoreBlock(q, qBase, qsN, rows, k, kBase, ksN, headDim, blockKeys, scale32, blockScores, seqK);
        }
        for (let r = 0; r < rows; r++) {
          const i = i0 + r;
          const allowed = allowedKeyCount(causal, i, validQ, validK);
          let rowLse = -Infinity;
          let count = 0;
          let rowKeys = identity;
          if (allowed > 0 && pattern === null) {
            count = allowed;
            rowLse = softmaxRow(blockScores, r * seqK, count, round, probs, 0, exps);
          } else if (allowed > 0 && pattern !== null) {
            count = gatherKept(blockScores, r * seqK, allowed, pattern, scratch);
            rowKeys = keys;
            rowLse = softmaxRow(gathered, 0, count, round, probs, 0, exps);
          }
          accumulateRow(probs, 0, rowKeys, count, seqK, v, vBase, vsN, headDimV, acc, liveRows, liveWeights);
          writeRow(acc, headDimV, round, out, b * osB + h * osH + i * osN);
          if (lse !== null) lse[(b * headsQ + h) * seqQ + i] = rowLse;
        }
      }
    }
  }
  return out;
}
