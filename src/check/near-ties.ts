// Rows whose N:M choice hangs on a near tie. Two implementations that add the products of a dot product in a
// different order may round a score differently in its last bits, and then keep another key of a group whose
// N-th and (N+1)-th scores are that close. Such rows are compared only where exact ties are impossible to miss.
import { sddmmPrune } from '../attention.js';
import { parsePattern } from '../pattern.js';
import { Tensor } from '../tensor.js';
import type { AttentionOptions } from '../validate.js';

export interface NearTies {
  /** Query rows [B, Hq, Nq] with a near tie in some group. */
  readonly rows: Uint8Array;
  /** Keys [B, Hk, Nk] in a group with a near tie in some row (gradients of keys sum over rows). */
  readonly keys: Uint8Array;
}

/**
 * The rows and keys whose choice hangs on a near tie: some group's N-th and (N+1)-th largest scores within
 * `relative` (of max(1, |N-th|)) in the exact float32 scores of the problem.
 */
export async function nearTies(q: Tensor, k: Tensor, options: AttentionOptions, relative = 2e-5): Promise<NearTies> {
  const [batch, headsQ, seqQ] = q.shape;
  const [, headsKv, seqK] = k.shape;
  const found = { rows: new Uint8Array(batch * headsQ * seqQ), keys: new Uint8Array(batch * headsKv * seqK) };
  const pattern = parsePattern(options.pattern ?? null);
  if (pattern === null) return found;
  // Float32 copies hold the same values, and the dense scores are then the exact float32 scores of the problem.
  const q32 = Tensor.fromArray(await q.toFloat32Array(), q.shape, { dtype: 'float32' });
  const k32 = Tensor.fromArray(await k.toFloat32Array(), k.shape, { dtype: 'float32' });
  const dense = await sddmmPrune(q32, k32, { ...options, pattern: 'dense', backend: 'cpu' });
  const scores = await dense.values.toFloat32Array();
  for (const t of [q32, k32]) t.dispose();
  dense.dispose();
  const { n, m } = pattern;
  const group = new Float64Array(m);
  for (let row = 0; row < found.rows.length; row++) {
    const b = Math.floor(row / (headsQ * seqQ));
    const hk = Math.floor((Math.floor(row / seqQ) % headsQ) / (headsQ / headsKv));
    for (let start = 0; start < seqK; start += m) {
      // NaN ranks lowest (dfss.h), and both sides rank it so: as -inf it sorts last and decides no near tie.
      for (let p = 0; p < m; p++) {
        const score = start + p < seqK ? scores[row * seqK + start + p] : -Infinity;
        group[p] = score === score ? score : -Infinity;
      }
      group.sort().reverse();
      const kept = group[n - 1];
      const dropped = group[n];
      if (!(Number.isFinite(dropped) && kept - dropped <= relative * Math.max(1, Math.abs(kept)))) continue;
      found.rows[row] = 1;
      for (let j = start; j < Math.min(start + m, seqK); j++) found.keys[(b * headsKv + hk) * seqK + j] = 1;
    }
  }
  return found;
}
