// The public operations: fused attention and the paper's three staged steps, on the backend the caller picks.
// Results live on the device of the inputs: host tensors in, host tensors out, whichever backend ran.
import type { AttentionGradients, Backend, BackendChoice, BackendName } from './backend.js';
import { cpuBackend } from './cpu/backend.js';
import { cudaBackend } from './cuda/backend.js';
import { cudaStatus, requireCuda } from './cuda/runtime.js';
import type { DType } from './dtype.js';
import { InvalidArgumentError } from './errors.js';
import { compressedRowSize } from './layout.js';
import { type Pattern, formatPattern } from './pattern.js';
import type { AttentionProblem } from './problem.js';
import { type Device, Tensor } from './tensor.js';
import {
  type AttentionOptions,
  attentionProblem,
  backwardProblem,
  checkBackendChoice,
  checkOperand,
  checkOptions,
  checkPipeline,
  checkSeqlens,
  sameDevice,
} from './validate.js';

export type { AttentionOptions } from './validate.js';
export type { AttentionGradients } from './backend.js';

/** Whether libdfss implements this dtype and pattern (dfss.h); the CPU backend implements every N:M. */
export function cudaSupports(dtype: DType, pattern: Pattern | null): boolean {
  const name = formatPattern(pattern);
  return name === 'dense' || name === '1:2' || (name === '2:4' && dtype !== 'float32');
}

/**
 * The backend a choice resolves to: 'cpu', 'cuda' (a NoDeviceError where it cannot run), or 'auto': CUDA when
 * the inputs are already on the GPU, or when libdfss loads, a device exists and it implements the problem's
 * dtype and pattern; else the CPU.
 */
export function resolveBackend(choice: BackendChoice, inputs?: { device: Device; dtype: DType; pattern: Pattern | null }): BackendName {
  const c = checkBackendChoice(choice);
  if (c === 'cuda') {
    requireCuda();
    return 'cuda';
  }
  if (c === 'cpu') return 'cpu';
  if (inputs?.device === 'cuda') return 'cuda';
  if (!cudaStatus().available) return 'cpu';
  return inputs === undefined || cudaSupports(inputs.dtype, inputs.pattern) ? 'cuda' : 'cpu';
}

function backendFor(choice: unknown, device: Device, problem: AttentionProblem): Backend {
  const name = resolveBackend(checkBackendChoice(choice), { device, dtype: problem.dtype, pattern: problem.pattern });
  return name === 'cuda' ? cudaBackend : cpuBackend;
}

/** Runs `work` on copies of the inputs on the backend's device, then brings its outputs back to `home`. */
async function onBackend<T extends Record<string, Tensor | null>>(
  backend: Backend,
  home: Device,
  inputs: Tensor[],
  work: (moved: Tensor[]) => Promise<T>,
): Promise<T> {
  if (backend.device === home) return work(inputs);
  const moved: Tensor[] = [];
  try {
    for (const t of inputs) moved.push(await t.to(backend.device));
    const result = await work(moved);
    const back: Record<string, Tensor | null> = {};
    for (const [key, t] of Object.entries(result)) {
      back[key] = t && (await t.to(home));
      t?.dispose();
    }
    return back as T;
  } finally {
    for (const t of moved) t.dispose();
  }
}

async function forward(q: unknown, k: unknown, v: unknown, options: unknown, withLse: boolean) {
  const o = checkOptions(options);
  const tq = checkOperand(q, 'q', '[B, Hq, Nq, D]');
  const tk = checkOperand(k, 'k', '[B, Hk, Nk, D]');
  const tv = checkOperand(v, 'v', '[B, Hk, Nk, Dv]');
  sameDevice({ q: tq, k: tk, v: tv });
  const problem = attentionProblem(tq, tk, tv, o);
  const pipeline = checkPipeline(o.pipeline);
  const backend = backendFor(o.backend, tq.device, problem);
  return onBackend(backend, tq.device, [tq, tk, tv], ([a, b, c]) =>
    backend.attention(problem, a, b, c, withLse, pipeline),
  );
}

/**
 * DFSS attention: softmax(scale q k^T, pruned to the N:M pattern in every row) v, with q [B, Hq, Nq, D],
 * k [B, Hk, Nk, D], v [B, Hk, Nk, Dv] (Hq a multiple of Hk: grouped-query attention), all of one dtype and on
 * one device. Returns out [B, Hq, Nq, Dv] in the dtype, on the inputs' device.
 */
export async function attention(q: Tensor, k: Tensor, v: Tensor, options?: AttentionOptions): Promise<Tensor> {
  return (await forward(q, k, v, options, false)).out;
}

/** attention() that also returns lse [B, Hq, Nq] (float32, natural log of the sum of exp of the kept scores). */
export async function attentionWithLse(q: Tensor, k: Tensor, v: Tensor, options?: AttentionOptions): Promise<{ out: Tensor; lse: Tensor }> {
  const { out, lse } = await forward(q, k, v, options, true);
  return { out, lse: lse! };
}

/**
 * The gradients of attention(q, k, v, options) for the gradient `dout` of its output: dq, dk and dv (in the
 * dtype, contiguous, on the inputs' device; with grouped-query attention dk and dv sum over the query heads of
 * each kv head). `out` and `lse` are the forward's (attentionWithLse) and `options` must be the forward's: the
 * backward recomputes the scores and makes the forward's N:M choice, which it holds fixed (gradients flow to the
 * kept scores only; rows with nothing left give zero gradients). dout has out's shape and dtype, any strides.
 */
export async function attentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  dout: Tensor,
  lse: Tensor,
  options?: AttentionOptions,
): Promise<AttentionGradients> {
  const o = checkOptions(options);
  const tq = checkOperand(q, 'q', '[B, Hq, Nq, D]');
  const tk = checkOperand(k, 'k', '[B, Hk, Nk, D]');
  const tv = checkOperand(v, 'v', '[B, Hk, Nk, Dv]');
  const tout = checkOperand(out, 'out', '[B, Hq, Nq, Dv]');
  const tdout = checkOperand(dout, 'dout', '[B, Hq, Nq, Dv]');
  const tlse = Tensor.check(lse, 'lse');
  sameDevice({ q: tq, k: tk, v: tv, out: tout, dout: tdout, lse: tlse });
  const problem = backwardProblem(tq, tk, tv, tout, tdout, tlse, o);
  checkPipeline(o.pipeline); // the forward's option, checked alike; both pipelines share the fused backward
  const backend = backendFor(o.backend, tq.device, problem);
  return onBackend(backend, tq.device, [tq, tk, tv, tout, tdout, tlse], ([a, b, c, d, e, f]) =>
    backend.attentionBackward(problem, { q: a, k: b, v: c, out: d, dout: e, lse: f }),
  );
}

/** The options as they were at the forward: later changes to the caller's object or arrays do not reach them. */
function snapshot(options: AttentionOptions | undefined): AttentionOptions {
  const copy: AttentionOptions = { ...checkOptions(options) };
  if (copy.seqlensQ) copy.seqlensQ = Array.from(copy.seqlensQ);
  if (copy.seqlensK) copy.seqlensK = Array.from(copy.seqlensK);
  return copy;
}

/**
 * One attention call of a training step: its output and what its backward needs. Made by attentionForTraining;
 * holds references to q, k and v (they must stay live until backward), owns out and lse.
 */
export class AttentionContext {
  readonly #q: Tensor;
  readonly #k: Tensor;
  readonly #v: Tensor;
  readonly #options: AttentionOptions;

  /** @internal Use attentionForTraining. */
  constructor(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    /** The attention's output [B, Hq, Nq, Dv]. */
    readonly out: Tensor,
    /** The log-sum-exp of each row [B, Hq, Nq] (float32). */
    readonly lse: Tensor,
    options: AttentionOptions,
  ) {
    this.#q = q;
    this.#k = k;
    this.#v = v;
    this.#options = options;
  }

  /** dq, dk and dv for dout, the gradient of out (attentionBackward with the forward's tensors and options). */
  backward(dout: Tensor): Promise<AttentionGradients> {
    return attentionBackward(this.#q, this.#k, this.#v, this.out, dout, this.lse, this.#options);
  }

  /** Frees out and lse. */
  dispose(): void {
    this.out.dispose();
    this.lse.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * The forward of a training step: attention(q, k, v, options), returned as an AttentionContext whose
 * backward(dout) gives dq, dk and dv. The options are fixed at this call.
 *
 *   const ctx = await attentionForTraining(q, k, v, { pattern: '2:4', causal: true });
 *   const { dq, dk, dv } = await ctx.backward(dout); // dout: the loss's gradient of ctx.out
 */
export async function attentionForTraining(q: Tensor, k: Tensor, v: Tensor, options?: AttentionOptions): Promise<AttentionContext> {
  const fixed = snapshot(options);
  const { out, lse } = await attentionWithLse(q, k, v, fixed);
  return new AttentionContext(q, k, v, out, lse, fixed);
}

/**
 * Compressed rows of the staged pipeline (dfss.h, "Compressed layout"): `values` [B, Hq, Nq, C] in the dtype
 * (scores after sddmmPrune, probabilities after compressedSoftmax) and `metadata` [B, Hq, Nq, W] uint32 words
 * holding the in-group index of each kept value (null for dense). Owns its tensors: dispose() frees them.
 */
export class CompressedRows {
  constructor(
    readonly values: Tensor,
    readonly metadata: Tensor | null,
    readonly pattern: Pattern | null,
    /** Nk, the length of the uncompressed rows. */
    readonly seqK: number,
    /** Log-sum-exp of each row after compressedSoftmax; null for scores. */
    readonly lse: Tensor | null = null,
    /**
     * The valid keys of each batch entry (the seqlensK that sddmmPrune was given), or null: all Nk. spmm reads v only
     * below them (the rest is padding).
     */
    readonly seqlensK: Int32Array | null = null,
  ) {}

  get device(): Device {
    return this.values.device;
  }

  dispose(): void {
    this.values.dispose();
    this.metadata?.dispose();
    this.lse?.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

const STAGED_OPTIONS = new Set(['backend']);

/** The problem of a compressed-row step: shapes from the rows (and v), nothing else is used. */
function compressedProblem(rows: CompressedRows, argument: string, v: Tensor | null): AttentionProblem {
  if (!(rows instanceof CompressedRows)) throw new InvalidArgumentError(argument, 'the CompressedRows of sddmmPrune or compressedSoftmax', rows);
  const values = Tensor.check(rows.values, `${argument}.values`);
  const [batch, headsQ, seqQ, slots] = values.shape;
  const expected = compressedRowSize(rows.seqK, rows.pattern);
  if (values.shape.length !== 4 || slots !== expected.values)
    throw new InvalidArgumentError(`${argument}.values.shape`, `[B, Hq, Nq, ${expected.values}]`, values.shape);
  if (rows.metadata) Tensor.check(rows.metadata, `${argument}.metadata`);
  const seqlensK = checkSeqlens(rows.seqlensK, `${argument}.seqlensK`, batch, rows.seqK, 'Nk');
  const headsKv = v ? v.shape[1] : headsQ;
  const headDimV = v ? v.shape[3] : 1;
  return {
    dtype: values.dtype as DType,
    pattern: rows.pattern,
    causal: false,
    batch,
    headsQ,
    headsKv,
    seqQ,
    seqK: rows.seqK,
    headDim: 1,
    headDimV,
    scale: 1,
    seqlensQ: null,
    seqlensK,
    qStrides: [headsQ * seqQ, seqQ, 1, 1],
    kStrides: [headsKv * rows.seqK, rows.seqK, 1, 1],
    vStrides: v ? [v.strides[0], v.strides[1], v.strides[2], 1] : [headsKv * rows.seqK, rows.seqK, 1, 1],
    outStrides: [headsQ * seqQ * headDimV, seqQ * headDimV, headDimV, 1],
  };
}

/** Staged step 1: the scaled, masked scores of q k^T pruned to the pattern, in the compressed layout. */
export async function sddmmPrune(q: Tensor, k: Tensor, options?: AttentionOptions): Promise<CompressedRows> {
  const o = checkOptions(options);
  const tq = checkOperand(q, 'q', '[B, Hq, Nq, D]');
  const tk = checkOperand(k, 'k', '[B, Hk, Nk, D]');
  sameDevice({ q: tq, k: tk });
  const problem = attentionProblem(tq, tk, null, o);
  const backend = backendFor(o.backend, tq.device, problem);
  const { values, metadata } = await onBackend(backend, tq.device, [tq, tk], ([a, b]) => backend.sddmmPrune(problem, a, b));
  return new CompressedRows(values, metadata, problem.pattern, problem.seqK, null, problem.seqlensK);
}

/** Staged step 2: softmax over each compressed row; probabilities rounded to the dtype, with each row's lse. */
export async function compressedSoftmax(scores: CompressedRows, options?: { backend?: BackendChoice }): Promise<CompressedRows> {
  const o = checkOptions(options, STAGED_OPTIONS);
  const problem = compressedProblem(scores, 'scores', null);
  const home = scores.values.device;
  const backend = backendFor(o.backend, home, problem);
  const { probs, lse } = await onBackend(backend, home, [scores.values], ([values]) => backend.compressedSoftmax(problem, values));
  let metadata: Tensor | null = null;
  try {
    metadata = scores.metadata && (await scores.metadata.to(home));
  } catch (error) {
    probs.dispose();
    lse.dispose();
    throw error;
  }
  return new CompressedRows(probs, metadata, scores.pattern, scores.seqK, lse, scores.seqlensK);
}

/** Staged step 3: out = P v with P the compressed probabilities of compressedSoftmax; v [B, Hk, Nk, Dv]. */
export async function spmm(probs: CompressedRows, v: Tensor, options?: { backend?: BackendChoice }): Promise<Tensor> {
  const o = checkOptions(options, STAGED_OPTIONS);
  const tv = checkOperand(v, 'v', '[B, Hk, Nk, Dv]');
  const problem = compressedProblem(probs, 'probs', tv);
  if (tv.shape[0] !== problem.batch) throw new InvalidArgumentError('v.shape[0]', `${problem.batch} (the batch of probs)`, tv.shape[0]);
  if (tv.shape[2] !== probs.seqK) throw new InvalidArgumentError('v.shape[2]', `${probs.seqK} (the keys of probs)`, tv.shape[2]);
  if (problem.headsQ % tv.shape[1] !== 0)
    throw new InvalidArgumentError('v.shape[1]', `a divisor of the ${problem.headsQ} query heads`, tv.shape[1]);
  if (tv.dtype !== problem.dtype) throw new InvalidArgumentError('v.dtype', `'${problem.dtype}', the dtype of probs`, tv.dtype);
  sameDevice({ 'probs.values': probs.values, v: tv });
  const home = tv.device;
  const backend = backendFor(o.backend, home, problem);
  const inputs = probs.metadata ? [probs.values, tv, probs.metadata] : [probs.values, tv];
  const { out } = await onBackend(backend, home, inputs, async ([p, vv, m]) => ({ out: await backend.spmm(problem, p, m ?? null, vv) }));
  return out;
}
