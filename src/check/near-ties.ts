// Rows whose N:M choice hangs on a near tie. Two implementations that add the products of a dot product in a
// different order may round a score differently in its last bits, and then keep another key of a group whose
// N-th and (N+1)-th scores are that close. Such rows are compared only where exact ties are impossible to miss.
import { sddmmPrune } from '../attention.js';
import { parsePattern } from '../pattern.js';
import { Tensor } from '../tensor.js';
import type { AttentionOptions } from '../validate.js';

/** A flag per row [B, Hq, Nq]: true where some group's N-th and (N+1)-th largest scores are within `relative`. */
export async function nearTieRows(q: Tensor, k: Tensor, options: AttentionOptions, relative = 2e-5): Promise<Uint8Array> {
  const pattern = parsePattern(options.pattern ?? null);
  const rows = q.shape[0] * q.shape[1] * q.shape[2];
  const flags = new Uint8Array(rows);
  if (pattern === null) return flags;
  // Float32 copies hold the same values, and the dense scores are then the exact float32 scores of the problem.
  const q32 = Tensor.fromArray(await q.toFloat32Array(), q.shape, { dtype: 'float32' });
  const k32 = Tensor.fromArray(await k.toFloat32Array(), k.shape, { dtype: 'float32' });
  const dense = await sddmmPrune(q32, k32, { ...options, pattern: 'dense', backend: 'cpu' });
  const scores = await dense.values.toFloat32Array();
  const seqK = k.shape[2];
  const { n, m } = pattern;
  const group = new Float64Array(m);
  for (let row = 0; row < rows; row++) {
    for (let start = 0; start < seqK && !flags[row]; start += m) {
      for (let p = 0; p < m; p++) group[p] = start + p < seqK ? scores[row * seqK + start + p] : -Infinity;
      group.sort().reverse();
      const kept = group[n - 1];
      const dropped = group[n];
      if (Number.isFinite(dropped) && kept - dropped <= relative * Math.max(1, Math.abs(kept))) flags[row] = 1;
    }
  }
  for (const t of [q32, k32]) t.dispose();
  dense.dispose();
  return flags;
}
