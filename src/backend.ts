// What every backend implements. The public API (attention.ts) validates the user's tensors and options into
// an AttentionProblem, moves the tensors to the backend's device, and moves the results back.
import type { AttentionProblem } from './problem.js';
import type { Device, Tensor } from './tensor.js';
import type { BackwardProblem } from './validate.js';

/** What the backward reads: the forward's inputs, its out and lse, and dout, the gradient of out. */
export interface BackwardInputs {
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  readonly out: Tensor;
  readonly dout: Tensor;
  readonly lse: Tensor;
}

/** Gradients of q, k and v, contiguous, in the dtype. (A type, not an interface: it is a record of tensors.) */
export type AttentionGradients = {
  readonly dq: Tensor;
  readonly dk: Tensor;
  readonly dv: Tensor;
};

export type BackendName = 'cpu' | 'cuda';
export type BackendChoice = BackendName | 'auto';
/** How a forward runs: one fused pass, or the staged pipeline through compressed scores (AttentionOptions). */
export const PIPELINES = ['fused', 'staged'] as const;
export type Pipeline = (typeof PIPELINES)[number];

export interface Backend {
  readonly name: BackendName;
  /** Where the backend wants its input tensors and leaves its outputs. */
  readonly device: Device;
  /** out [B, Hq, Nq, Dv] contiguous; lse [B, Hq, Nq] float32 when asked for. */
  attention(
    problem: AttentionProblem,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    withLse: boolean,
    pipeline: Pipeline,
  ): Promise<{ out: Tensor; lse: Tensor | null }>;
  /** values [B, Hq, Nq, C] in the dtype; metadata [B, Hq, Nq, W] uint32, null for dense. */
  sddmmPrune(problem: AttentionProblem, q: Tensor, k: Tensor): Promise<{ values: Tensor; metadata: Tensor | null }>;
  /** probs like values; lse [B, Hq, Nq] float32. */
  compressedSoftmax(problem: AttentionProblem, values: Tensor): Promise<{ probs: Tensor; lse: Tensor }>;
  /** out [B, Hq, Nq, Dv] contiguous. */
  spmm(problem: AttentionProblem, probs: Tensor, metadata: Tensor | null, v: Tensor): Promise<Tensor>;
  /** The backward of attention (dfss.h, "backward"): dq [B, Hq, Nq, D], dk [B, Hk, Nk, D], dv [B, Hk, Nk, Dv]. */
  attentionBackward(problem: BackwardProblem, inputs: BackwardInputs): Promise<AttentionGradients>;
}
