// Turns the user's tensors and options into an AttentionProblem, or throws an error that names the argument
// and what was expected. The one place where the public API checks its input.
import { type BackendChoice, type Pipeline, PIPELINES } from './backend.js';
import { type DType, isDType } from './dtype.js';
import { InvalidArgumentError } from './errors.js';
import { type Pattern, parsePattern } from './pattern.js';
import type { AttentionProblem, Strides4 } from './problem.js';
import { Tensor, contiguousStrides } from './tensor.js';

export interface AttentionOptions {
  /** 'dense' (default), '1:2', '2:4', any 'N:M' with M <= 8 on the CPU, or { n, m }. */
  pattern?: string | Pattern | null;
  /** Bottom-right aligned causal mask. Default false. */
  causal?: boolean;
  /** Score scale. Default 1 / sqrt(D). */
  scale?: number;
  /**
   * Valid query rows of each batch entry (length B, 0 <= value <= Nq). Rows past it give zeros; they are padding (of
   * q, and of dout in the backward), never read, and may hold anything, NaN included.
   */
  seqlensQ?: ArrayLike<number>;
  /** Valid keys of each batch entry (length B, 0 <= value <= Nk). Rows of k and v past it are padding, never read. */
  seqlensK?: ArrayLike<number>;
  /** 'auto' (default): CUDA where it can run this problem, else the CPU. */
  backend?: BackendChoice;
  /**
   * How the forward runs; the results have the same semantics either way. 'fused' (default): one pass that never
   * stores the scores. 'staged': the paper's pipeline (dfss_attention_staged on the GPU, the three staged steps on
   * the CPU), whose compressed scores pass through memory rounded to the dtype. attentionBackward takes it with the
   * forward's other options and runs the fused backward for both.
   */
  pipeline?: Pipeline;
}

const OPTION_NAMES = new Set(['pattern', 'causal', 'scale', 'seqlensQ', 'seqlensK', 'backend', 'pipeline']);

export function checkOptions(options: unknown, allowed: ReadonlySet<string> = OPTION_NAMES): Record<string, unknown> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw new InvalidArgumentError('options', 'an object', options);
  for (const key in options)
    if (Object.hasOwn(options, key) && !allowed.has(key)) throw new InvalidArgumentError(`options.${key}`, `one of the options ${[...allowed].join(', ')}`, 'an unknown option');
  return options as Record<string, unknown>;
}

export function checkBackendChoice(choice: unknown): BackendChoice {
  if (choice === undefined) return 'auto';
  if (choice === 'auto' || choice === 'cpu' || choice === 'cuda') return choice;
  throw new InvalidArgumentError('options.backend', "'auto', 'cpu' or 'cuda'", choice);
}

export function checkPipeline(choice: unknown): Pipeline {
  if (choice === undefined) return 'fused';
  if ((PIPELINES as readonly unknown[]).includes(choice)) return choice as Pipeline;
  throw new InvalidArgumentError('options.pipeline', PIPELINES.map((p) => `'${p}'`).join(' or '), choice);
}

/** A live rank-4 float tensor. */
export function checkOperand(x: unknown, argument: string, layout: string): Tensor {
  const t = Tensor.check(x, argument);
  if (t.shape.length !== 4) throw new InvalidArgumentError(`${argument}.shape`, `4 dimensions ${layout}`, t.shape);
  if (!isDType(t.dtype)) throw new InvalidArgumentError(`${argument}.dtype`, "'float16', 'bfloat16' or 'float32'", t.dtype);
  if (t.shape[3] > 1 && t.strides[3] !== 1)
    throw new InvalidArgumentError(`${argument}.strides[3]`, '1 (the last dimension must be contiguous)', t.strides[3]);
  return t;
}

/** The strides the library gets: the tensor's own (frozen) array where its column stride is already 1. */
function strides4(t: Tensor): Strides4 {
  const s = t.strides;
  return s[3] === 1 ? (s as unknown as Strides4) : [s[0], s[1], s[2], 1];
}

export function checkSeqlens(x: unknown, argument: string, batch: number, limit: number, limitName: string): Int32Array | null {
  if (x === undefined || x === null) return null;
  const arr = x as ArrayLike<unknown>;
  if (typeof x !== 'object' || typeof arr.length !== 'number')
    throw new InvalidArgumentError(argument, `an array of ${batch} lengths`, x);
  if (arr.length !== batch) throw new InvalidArgumentError(argument, `${batch} lengths (one per batch entry)`, `${arr.length}`);
  const out = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    const n = arr[b];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > limit)
      throw new InvalidArgumentError(`${argument}[${b}]`, `an integer in 0..${limit} (${limitName})`, n);
    out[b] = n;
  }
  return out;
}

/**
 * The first of `tensors` after checking that every other has its `property`, else an error naming the first that
 * differs. Runs on every call: it walks the record without building arrays, and makes strings only for the error.
 */
function sameProperty(tensors: Record<string, Tensor>, property: 'device' | 'dtype'): Tensor {
  let firstName = '';
  let first: Tensor | undefined;
  for (const name in tensors) {
    const t = tensors[name];
    if (first === undefined) {
      firstName = name;
      first = t;
    } else if (t[property] !== first[property]) {
      throw new InvalidArgumentError(`${name}.${property}`, `'${first[property]}', the ${property} of ${firstName}`, t[property]);
    }
  }
  return first!;
}

export function sameDevice(tensors: Record<string, Tensor>): void {
  sameProperty(tensors, 'device');
}

export function sameDType(tensors: Record<string, Tensor>): DType {
  return sameProperty(tensors, 'dtype').dtype as DType;
}

/** The last pattern string parsed and its value: a program passes the same option on every call. */
let lastPatternText: string | undefined;
let lastPattern: Pattern | null = null;

function patternOption(x: unknown): Pattern | null {
  if (typeof x === 'string' && x === lastPatternText) return lastPattern;
  const pattern = parsePattern(x as string | Pattern | null | undefined, 'options.pattern');
  if (typeof x === 'string') {
    lastPatternText = x;
    lastPattern = pattern;
  }
  return pattern;
}

/** The problem of attention(q, k, v) or of sddmmPrune(q, k) (v null: Dv = 1, v strides unused). */
export function attentionProblem(q: Tensor, k: Tensor, v: Tensor | null, o: Record<string, unknown>): AttentionProblem {
  const [batch, headsQ, seqQ, headDim] = q.shape;
  const [kBatch, headsKv, seqK, kDim] = k.shape;
  if (kBatch !== batch) throw new InvalidArgumentError('k.shape[0]', `${batch} (the batch of q)`, kBatch);
  if (kDim !== headDim) throw new InvalidArgumentError('k.shape[3]', `${headDim} (the head dim of q)`, kDim);
  if (headsQ % headsKv !== 0)
    throw new InvalidArgumentError('k.shape[1]', `a divisor of the ${headsQ} query heads (grouped-query attention)`, headsKv);
  if (v) {
    if (v.shape[0] !== batch) throw new InvalidArgumentError('v.shape[0]', `${batch} (the batch of q)`, v.shape[0]);
    if (v.shape[1] !== headsKv) throw new InvalidArgumentError('v.shape[1]', `${headsKv} (the heads of k)`, v.shape[1]);
    if (v.shape[2] !== seqK) throw new InvalidArgumentError('v.shape[2]', `${seqK} (the keys of k)`, v.shape[2]);
  }
  const headDimV = v ? v.shape[3] : 1;
  const pattern = patternOption(o.pattern);
  if (o.causal !== undefined && typeof o.causal !== 'boolean') throw new InvalidArgumentError('options.causal', 'a boolean', o.causal);
  const scale = o.scale === undefined ? 1 / Math.sqrt(headDim) : o.scale;
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new InvalidArgumentError('options.scale', 'a finite number', scale);
  return {
    dtype: sameDType(v ? { q, k, v } : { q, k }),
    pattern,
    causal: o.causal === true,
    batch,
    headsQ,
    headsKv,
    seqQ,
    seqK,
    headDim,
    headDimV,
    scale,
    seqlensQ: checkSeqlens(o.seqlensQ, 'options.seqlensQ', batch, seqQ, 'Nq'),
    seqlensK: checkSeqlens(o.seqlensK, 'options.seqlensK', batch, seqK, 'Nk'),
    qStrides: strides4(q),
    kStrides: strides4(k),
    vStrides: v ? strides4(v) : [seqK * headsKv, seqK, 1, 1],
    outStrides: [headsQ * seqQ * headDimV, seqQ * headDimV, headDimV, 1],
  };
}

/** The problem of attentionBackward: the forward's problem with out's own strides, and dout's. */
export interface BackwardProblem extends AttentionProblem {
  /** Element strides of dout [B, Hq, Nq, Dv], the gradient of out (outStrides are those of out as given). */
  readonly doutStrides: Strides4;
}

/**
 * The problem of attentionBackward(q, k, v, out, dout, lse): the forward's (attentionProblem), with out and dout
 * [B, Hq, Nq, Dv] in the dtype and lse a contiguous float32 [B, Hq, Nq]. The tensors are live and checked by
 * checkOperand / Tensor.check; their devices are compared by the caller.
 */
export function backwardProblem(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  dout: Tensor,
  lse: Tensor,
  o: Record<string, unknown>,
): BackwardProblem {
  const problem = attentionProblem(q, k, v, o);
  const { batch, headsQ, seqQ, headDimV } = problem;
  const outShape = [batch, headsQ, seqQ, headDimV];
  for (const [name, t] of [['out', out], ['dout', dout]] as const) {
    if (t.shape.some((size, axis) => size !== outShape[axis]))
      throw new InvalidArgumentError(`${name}.shape`, `[${outShape.join(', ')}] ([B, Hq, Nq, Dv] of q and v)`, t.shape);
  }
  sameDType({ q, out, dout });
  const lseShape = [batch, headsQ, seqQ];
  if (lse.shape.length !== 3 || lse.shape.some((size, axis) => size !== lseShape[axis]))
    throw new InvalidArgumentError('lse.shape', `[${lseShape.join(', ')}] ([B, Hq, Nq] of q)`, lse.shape);
  if (lse.dtype !== 'float32') throw new InvalidArgumentError('lse.dtype', "'float32' (the forward's log-sum-exp)", lse.dtype);
  if (!lse.isContiguous) throw new InvalidArgumentError('lse.strides', `contiguous strides [${contiguousStrides(lseShape).join(', ')}]`, lse.strides);
  return { ...problem, outStrides: strides4(out), doutStrides: strides4(dout) };
}
