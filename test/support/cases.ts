// Problems and inputs shared by the tests that compare backends: a case names shapes, dtype, pattern, masks
// and layout; inputs are drawn fresh from a seed that the test prints, so a failure can be replayed.
import type { DType } from '../../src/dtype.js';
import { SeededRandom } from '../../src/random.js';
import { Tensor } from '../../src/tensor.js';
import type { AttentionOptions } from '../../src/validate.js';

export interface Case {
  dtype: DType;
  pattern: string;
  causal: boolean;
  batch: number;
  headsQ: number;
  headsKv: number;
  seqQ: number;
  seqK: number;
  headDim: number;
  headDimV: number;
  /** [B, N, H, D] buffers viewed as [B, H, N, D] (strided) instead of packed [B, H, N, D]. */
  bnhd: boolean;
  /** Per-batch valid lengths (shorter than the padded ones). */
  lengths: boolean;
  /** q and k are small integers and the scale a power of two, so every score is exact and ties are common. */
  exact: boolean;
}

export function caseName(c: Case): string {
  const masks = [c.causal && 'causal', c.lengths && 'lengths', c.bnhd && 'bnhd', c.exact && 'exact'].filter(Boolean).join('+');
  return `${c.dtype} ${c.pattern} B${c.batch} H${c.headsQ}/${c.headsKv} Nq${c.seqQ} Nk${c.seqK} D${c.headDim}/${c.headDimV}${masks ? ' ' + masks : ''}`;
}

/** A host tensor [B, H, N, D] of `values` (row-major in that order), packed or as a view of a [B, N, H, D] buffer. */
function operand(values: Float32Array, shape: [number, number, number, number], dtype: DType, bnhd: boolean): Tensor {
  if (!bnhd) return Tensor.fromArray(values, shape, { dtype });
  const [b, h, n, d] = shape;
  const permuted = new Float32Array(values.length);
  for (let ib = 0; ib < b; ib++)
    for (let ih = 0; ih < h; ih++)
      for (let in_ = 0; in_ < n; in_++)
        for (let id = 0; id < d; id++) permuted[((ib * n + in_) * h + ih) * d + id] = values[((ib * h + ih) * n + in_) * d + id];
  return Tensor.fromArray(permuted, [b, n, h, d], { dtype }).transpose(1, 2);
}

export interface Inputs {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  options: AttentionOptions;
}

export function makeInputs(c: Case, random: SeededRandom): Inputs {
  const qShape: [number, number, number, number] = [c.batch, c.headsQ, c.seqQ, c.headDim];
  const kShape: [number, number, number, number] = [c.batch, c.headsKv, c.seqK, c.headDim];
  const vShape: [number, number, number, number] = [c.batch, c.headsKv, c.seqK, c.headDimV];
  const count = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const draw = (s: number[]) => (c.exact ? random.integers(count(s), -2, 2) : random.normals(count(s)));
  const options: AttentionOptions = { pattern: c.pattern, causal: c.causal };
  if (c.exact) options.scale = 0.25;
  if (c.lengths) {
    options.seqlensQ = Array.from({ length: c.batch }, (_, b) => (b === 0 ? c.seqQ : Math.floor(random.uniform() * (c.seqQ + 1))));
    options.seqlensK = Array.from({ length: c.batch }, (_, b) => (b === 0 ? c.seqK : Math.floor(random.uniform() * (c.seqK + 1))));
  }
  return {
    q: operand(draw(qShape), qShape, c.dtype, c.bnhd),
    k: operand(draw(kShape), kShape, c.dtype, c.bnhd),
    v: operand(random.normals(count(vShape)), vShape, c.dtype, c.bnhd),
    options,
  };
}

/** Absolute and relative tolerance of one output element, by dtype: one rounding of P and of the output. */
export function tolerance(dtype: DType): { atol: number; rtol: number } {
  if (dtype === 'float16') return { atol: 2e-3, rtol: 4e-3 };
  if (dtype === 'bfloat16') return { atol: 1.6e-2, rtol: 3e-2 };
  return { atol: 2e-5, rtol: 1e-4 };
}

/** A fresh seed for each run, printed by the caller. */
export function freshSeed(): number {
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}
