// What every backend implements. The public API (attention.ts) validates the user's tensors and options into
// an AttentionProblem, moves the tensors to the backend's device, and moves the results back.
import type { AttentionProblem } from './problem.js';
import type { Device, Tensor } from './tensor.js';

export type BackendName = 'cpu' | 'cuda';
export type BackendChoice = BackendName | 'auto';

export interface Backend {
  readonly name: BackendName;
  /** Where the backend wants its input tensors and leaves its outputs. */
  readonly device: Device;
  /** out [B, Hq, Nq, Dv] contiguous; lse [B, Hq, Nq] float32 when asked for. */
  attention(problem: AttentionProblem, q: Tensor, k: Tensor, v: Tensor, withLse: boolean): Promise<{ out: Tensor; lse: Tensor | null }>;
  /** values [B, Hq, Nq, C] in the dtype; metadata [B, Hq, Nq, W] uint32, null for dense. */
  sddmmPrune(problem: AttentionProblem, q: Tensor, k: Tensor): Promise<{ values: Tensor; metadata: Tensor | null }>;
  /** probs like values; lse [B, Hq, Nq] float32. */
  compressedSoftmax(problem: AttentionProblem, values: Tensor): Promise<{ probs: Tensor; lse: Tensor }>;
  /** out [B, Hq, Nq, Dv] contiguous. */
  spmm(problem: AttentionProblem, probs: Tensor, metadata: Tensor | null, v: Tensor): Promise<Tensor>;
}
