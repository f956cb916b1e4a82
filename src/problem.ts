// The shape of one attention problem as every backend sees it, after the public API has validated the
// user's tensors and options. It mirrors dfss_attention_desc in cuda/include/dfss.h.
import type { DType } from './dtype.js';
import type { Pattern } from './pattern.js';

/** Element strides for (batch, head, row, column) of a 4-d tensor; the column stride is 1. */
export type Strides4 = readonly [number, number, number, number];

/**
 * The sizes, scale, masks and strides of a problem: every field of dfss_attention_desc but dtype and pattern (the
 * native descriptor, ffi/attention-desc.ts, takes them with any array-like strides).
 */
export interface AttentionGeometry<Strides = Strides4> {
  readonly causal: boolean;
  readonly batch: number;
  readonly headsQ: number;
  readonly headsKv: number;
  readonly seqQ: number;
  readonly seqK: number;
  readonly headDim: number;
  readonly headDimV: number;
  readonly scale: number;
  /** Valid query / key length of each batch entry ([B]), or null for all rows / keys. */
  readonly seqlensQ: Int32Array | null;
  readonly seqlensK: Int32Array | null;
  readonly qStrides: Strides;
  readonly kStrides: Strides;
  readonly vStrides: Strides;
  readonly outStrides: Strides;
}

export interface AttentionProblem extends AttentionGeometry {
  readonly dtype: DType;
  /** null: dense attention (no pruning). */
  readonly pattern: Pattern | null;
}
