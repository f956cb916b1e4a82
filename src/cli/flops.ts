// Floating-point work of attention, for the rates the demo and the benchmark print.

/** Number of (query, key) pairs of one head that no mask removes (causal: bottom-right aligned). */
export function allowedPairs(seqQ: number, seqK: number, causal: boolean): number {
  if (!causal) return seqQ * seqK;
  let pairs = 0;
  for (let i = 0; i < seqQ; i++) pairs += Math.min(seqK, Math.max(0, i + 1 + seqK - seqQ));
  return pairs;
}

/**
 * The dense-equivalent work of attention, 4 B H D per allowed pair (two matrix products of 2 flops per
 * multiply-add): what full attention would do, so that a faster sparse kernel shows as a higher rate.
 */
export function attentionFlops(batch: number, heads: number, seqQ: number, seqK: number, headDim: number, causal: boolean): number {
  return 4 * batch * heads * headDim * allowedPairs(seqQ, seqK, causal);
}
