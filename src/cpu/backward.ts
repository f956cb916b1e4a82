// The backward of fused attention on the CPU (cuda/include/dfss.h, "backward"): gradients of q, k and v with the
// N:M selection held fixed. Each row's scores and kept keys come from keptScores (rows.ts), the forward's own
// row code, so the backward keeps exactly the keys the forward kept. Per row i and kept key j:
//   p = exp(s - lse_i), D_i = dout_i . out_i, dp = dout_i . v_j, ds = p (dp - D_i);
//   dq_i += ds k_j,  dk_j += ds q_i,  dv_j += round(p) dout_i  (p rounded to the dtype, as P v used it);
// then dq and dk are multiplied by scale. Every sum is float64; the outputs are rounded to the dtype once. Rows
// with lse = -inf (nothing finite) contribute nothing, and grouped-query heads add into their kv head's dk, dv.

import type { AttentionProblem, Strides4 } from '../problem.js';
import {
  allowedKeyCount,
  keptScores,
  prepareFusedRows,
  requireLength,
  stridedSpan,
  validLength,
} from './rows.js';

export interface GradientArrays {
  /** [B, Hq, Nq, D] contiguous, rounded to the dtype. */
  readonly dq: Float32Array;
  /** [B, Hk, Nk, D] contiguous, rounded to the dtype. */
  readonly dk: Float32Array;
  /** [B, Hk, Nk, Dv] contiguous, rounded to the dtype. */
  readonly dv: Float32Array;
}

/**
 * Gradients of q, k and v for the forward of `problem` (q, k, v by its strides; out, the forward's output, by
 * problem.outStrides), given dout (the gradient of out, by doutStrides) and the forward's lse ([B, Hq, Nq]
 * contiguous). Inputs hold values already rounded to the dtype and are not modified.
 */
export function attentionBackward(
  problem: AttentionProblem,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  out: Float32Array,
  dout: Float32Array,
  doutStrides: Strides4,
  lse: Float32Array,
): GradientArrays {
  const { batch, headsQ, headsKv, seqQ, seqK, headDim, headDimV, pattern, causal } = problem;
  const { round, scale32, headsPerKv, scratch } = prepareFusedRows(problem, { q, k, v }, out);
  requireLength('dout', dout, stridedSpan([batch, headsQ, seqQ, headDimV], doutStrides), 'dout shape and strides');
  requireLength('lse', lse, batch * headsQ * seqQ, '[B, Hq, Nq]');
  const [qsB, qsH, qsN] = problem.qStrides;
  const [ksB, ksH, ksN] = problem.kStrides;
  const [vsB, vsH, vsN] = problem.vStrides;
  const [osB, osH, osN] = problem.outStrides;
  const [dsB, dsH, dsN] = doutStrides;

  const dq = new Float32Array(batch * headsQ * seqQ * headDim);
  const dkSum = new Float64Array(batch * headsKv * seqK * headDim);
  const dvSum = new Float64Array(batch * headsKv * seqK * headDimV);
  const dqSum = new Float64Array(headDim);

  for (let b = 0; b < batch; b++) {
    const validQ = validLength(problem.seqlensQ, b, seqQ);
    const validK = validLength(problem.seqlensK, b, seqK);
    for (let h = 0; h < headsQ; h++) {
      const hk = Math.floor(h / headsPerKv);
      const kBase = b * ksB + hk * ksH;
      const vBase = b * vsB + hk * vsH;
      const keyRows = (b * headsKv + hk) * seqK; // first key row of this kv head in dk and dv
      for (let i = 0; i < seqQ; i++) {
        const row = (b * headsQ + h) * seqQ + i;
        const qBase = b * qsB + h * qsH + i * qsN;
        const outBase = b * osB + h * osH + i * osN;
        const doutBase = b * dsB + h * dsH + i * dsN;
        const allowed = allowedKeyCount(causal, i, validQ, validK);
        const rowLse = lse[row];
        dqSum.fill(0);
        if (allowed > 0 && Number.isFinite(rowLse)) {
          const kept = keptScores(q, qBase, k, kBase, ksN, headDim, allowed, scale32, pattern, scratch);
          let rowDot = 0;
          for (let d = 0; d < headDimV; d++) rowDot += dout[doutBase + d] * out[outBase + d];
          for (let t = 0; t < kept.count; t++) {
            const s = kept.scores[t];
            if (!Number.isFinite(s)) continue; // p = 0
            const key = kept.keys[t];
            const kRow = kBase + key * ksN;
            const vRow = vBase + key * vsN;
            const p = Math.exp(s - rowLse);
            let dp = 0;
            for (let d = 0; d < headDimV; d++) dp += dout[doutBase + d] * v[vRow + d];
            const ds = p * (dp - rowDot);
            const dkRow = (keyRows + key) * headDim;
            for (let d = 0; d < headDim; d++) {
              dqSum[d] += ds * k[kRow + d];
              dkSum[dkRow + d] += ds * q[qBase + d];
            }
            const roundedP = round(p);
            const dvRow = (keyRows + key) * headDimV;
            for (let d = 0; d < headDimV; d++) dvSum[dvRow + d] += roundedP * dout[doutBase + d];
          }
        }
        for (let d = 0; d < headDim; d++) dq[row * headDim + d] = round(scale32 * dqSum[d]);
      }
    }
  }
  const dk = new Float32Array(dkSum.length);
  for (let e = 0; e < dk.length; e++) dk[e] = round(scale32 * dkSum[e]);
  const dv = new Float32Array(dvSum.length);
  for (let e = 0; e < dv.length; e++) dv[e] = round(dvSum[e]);
  return { dq, dk, dv };
}
