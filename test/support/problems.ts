// Attention problems for the CPU kernels' tests, from a short spec: defaults for what a test does not name,
// packed [B, H, N, D] or strided [B, N, H, D] layouts.
import type { DType } from '../../src/dtype.js';
import { parsePattern } from '../../src/pattern.js';
import type { AttentionProblem, Strides4 } from '../../src/problem.js';

export type Layout = 'bhnd' | 'bnhd';

export function stridesOf(layout: Layout, heads: number, seq: number, dim: number): Strides4 {
  return layout === 'bhnd' ? [heads * seq * dim, seq * dim, dim, 1] : [seq * heads * dim, dim, heads * dim, 1];
}

export interface Spec {
  dtype?: DType;
  pattern?: string;
  causal?: boolean;
  batch?: number;
  headsQ?: number;
  headsKv?: number;
  seqQ: number;
  seqK: number;
  headDim: number;
  headDimV?: number;
  scale?: number;
  seqlensQ?: number[];
  seqlensK?: number[];
  layout?: Layout;
}

export function makeProblem(spec: Spec): AttentionProblem {
  const batch = spec.batch ?? 1;
  const headsQ = spec.headsQ ?? 1;
  const headsKv = spec.headsKv ?? headsQ;
  const headDimV = spec.headDimV ?? spec.headDim;
  const layout = spec.layout ?? 'bhnd';
  return {
    dtype: spec.dtype ?? 'float32',
    pattern: parsePattern(spec.pattern ?? 'dense'),
    causal: spec.causal ?? false,
    batch,
    headsQ,
    headsKv,
    seqQ: spec.seqQ,
    seqK: spec.seqK,
    headDim: spec.headDim,
    headDimV,
    scale: spec.scale ?? 1 / Math.sqrt(spec.headDim),
    seqlensQ: spec.seqlensQ ? Int32Array.from(spec.seqlensQ) : null,
    seqlensK: spec.seqlensK ? Int32Array.from(spec.seqlensK) : null,
    qStrides: stridesOf(layout, headsQ, spec.seqQ, spec.headDim),
    kStrides: stridesOf(layout, headsKv, spec.seqK, spec.headDim),
    vStrides: stridesOf(layout, headsKv, spec.seqK, headDimV),
    outStrides: stridesOf(layout, headsQ, spec.seqQ, headDimV),
  };
}
