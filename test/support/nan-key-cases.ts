// The GPU cases with NaN keys, shared by the forward's and the backward's GPU tests.
import type { Case } from '../../src/check/cases.js';

/**
 * Sparse patterns with NaN keys (Case.nanKeys): NaN ranks lowest, so it is never kept, and the fused kernels' key
 * steps (forward and backward) alternate between their NaN-free choice and the NaN-aware one (the 64-key steps line
 * up with the NaN blocks). The outputs and gradients stay finite: no pruned NaN key reaches them.
 */
export function nanKeyCases(): Case[] {
  const base = { batch: 2, headsQ: 4, headsKv: 2, causal: false, exact: false, bnhd: false, lengths: false, nanKeys: true };
  return [
    { ...base, dtype: 'float16', pattern: '2:4', seqQ: 130, seqK: 300, headDim: 64, headDimV: 64, lengths: true },
    { ...base, dtype: 'bfloat16', pattern: '2:4', seqQ: 17, seqK: 200, headDim: 128, headDimV: 128, causal: true },
    { ...base, dtype: 'float16', pattern: '2:4', seqQ: 64, seqK: 256, headDim: 64, headDimV: 64, exact: true },
    { ...base, dtype: 'float16', pattern: '1:2', seqQ: 33, seqK: 1000, headDim: 128, headDimV: 128, bnhd: true },
    { ...base, dtype: 'bfloat16', pattern: '1:2', seqQ: 130, seqK: 67, headDim: 64, headDimV: 64, causal: true },
    { ...base, dtype: 'float32', pattern: '1:2', seqQ: 17, seqK: 200, headDim: 64, headDimV: 64 },
    { ...base, dtype: 'float16', pattern: '2:4', seqQ: 3, seqK: 130, headDim: 16, headDimV: 16 },
  ];
}
