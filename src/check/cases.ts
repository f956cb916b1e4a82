// The problems on which the CUDA backend is checked against the CPU backend (`dfss check` and the GPU tests): a
// case names shapes, dtype, pattern, masks and layout; inputs are drawn from a seeded generator, so a failure can
// be replayed from the seed that is printed with it.
import type { DType } from '../dtype.js';
import { SeededRandom } from '../random.js';
import { Tensor } from '../tensor.js';
import type { AttentionOptions } from '../validate.js';

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
  /**
   * Per-batch valid lengths (shorter than the padded ones). The padding past them holds NaN in every input (q, k,
   * v, and dout in the backward): it must never reach a result.
   */
  lengths: boolean;
  /** q and k are small integers and the scale a power of two, so every score is exact and ties are common. */
  exact: boolean;
  /**
   * Some keys are NaN in every element (so are their scores): in every group of 4 at most key 1, and only in the
   * odd 64-key blocks, so that a sparse pattern never keeps one and tiles with and without NaN alternate.
   */
  nanKeys?: boolean;
}

export function caseName(c: Case): string {
  const masks = [c.causal && 'causal', c.lengths && 'lengths', c.bnhd && 'bnhd', c.exact && 'exact', c.nanKeys && 'nan-keys']
    .filter(Boolean)
    .join('+');
  return `${c.dtype} ${c.pattern} B${c.batch} H${c.headsQ}/${c.headsKv} Nq${c.seqQ} Nk${c.seqK} D${c.headDim}/${c.headDimV}${masks ? ' ' + masks : ''}`;
}

/**
 * The grid of cases: every dtype with every pattern libdfss implements for it, odd sizes from 1 up, causal and
 * not, exact and random scores, grouped-query heads, per-batch lengths and strided layouts spread over them; then
 * the shapes the tensor-core kernels take. `large` adds rows of 1000 to 4099 keys (slow on the CPU side).
 */
export function checkCases(options: { large: boolean }): Case[] {
  const out: Case[] = [];
  const patterns: Record<DType, string[]> = { float16: ['dense', '1:2', '2:4'], bfloat16: ['dense', '1:2', '2:4'], float32: ['dense', '1:2'] };
  const shapes: [number, number][] = [[1, 1], [3, 3], [17, 17], [17, 33], [33, 17], [1, 7]];
  let n = 0;
  for (const dtype of ['float16', 'bfloat16', 'float32'] as const)
    for (const pattern of patterns[dtype])
      for (const [seqQ, seqK] of shapes)
        for (const causal of [false, true])
          for (const exact of [false, true]) {
            n++;
            out.push({
              dtype, pattern, causal, exact, seqQ, seqK,
              batch: 1 + (n % 3),
              headsQ: n % 2 ? 4 : 2,
              headsKv: n % 4 === 1 ? 2 : n % 2 ? 4 : 1,
              headDim: exact ? 16 : [8, 16, 32, 64][n % 4],
              headDimV: [8, 16, 64, 5][(n >> 1) % 4],
              bnhd: n % 3 === 0,
              lengths: n % 5 < 2,
            });
          }
  // The shapes the tensor-core kernels take (fp16/bf16, D = Dv in {64, 96, 128}): odd sizes around their tiles, and
  // rows past the key tiles the staged one call keeps on chip (2100 keys), with masks, lengths, grouped-query heads
  // and strided layouts spread over the cases.
  const tensorCoreShapes: [number, number][] = [[1, 1], [3, 3], [17, 17], [17, 200], [130, 67], [1000, 1000], [17, 2100]];
  for (const dtype of ['float16', 'bfloat16'] as const)
    for (const pattern of ['dense', '1:2', '2:4'])
      for (const headDim of [64, 96, 128])
        for (const [seqQ, seqK] of tensorCoreShapes) {
          n++;
          out.push({
            dtype, pattern, seqQ, seqK, headDim, headDimV: headDim,
            causal: n % 2 === 0,
            exact: n % 3 === 0,
            batch: seqQ * seqK > 100000 ? 1 : 1 + (n % 2),
            headsQ: seqQ * seqK > 100000 ? 2 : 4,
            headsKv: n % 4 === 1 ? 1 : 2,
            bnhd: n % 5 === 1,
            lengths: n % 7 < 3,
          });
        }
  // Larger rows: many groups, several warps' worth of keys, head dims of the fast kernels.
  if (!options.large) return out;
  for (const dtype of ['float16', 'bfloat16', 'float32'] as const)
    for (const [pattern, causal, exact, seqQ, seqK, headDim] of [
      [dtype === 'float32' ? '1:2' : '2:4', false, false, 1000, 1000, 64],
      [dtype === 'float32' ? '1:2' : '2:4', true, true, 200, 1001, 32],
      ['1:2', true, false, 130, 4099, 128],
      ['dense', true, false, 257, 1000, 128],
    ] as const)
      out.push({ dtype, pattern, causal, exact, seqQ, seqK, headDim, headDimV: headDim, batch: 1, headsQ: 2, headsKv: 1, bnhd: exact, lengths: exact });
  return out;
}

/** A host tensor [B, H, N, D] of `values` (row-major in that order), packed or as a view of a [B, N, H, D] buffer. */
export function operand(values: Float32Array, shape: [number, number, number, number], dtype: DType, bnhd: boolean): Tensor {
  if (!bnhd) return Tensor.fromArray(values, shape, { dtype });
  const [b, h, n, d] = shape;
  const permuted = new Float32Array(values.length);
  for (let ib = 0; ib < b; ib++)
    for (let ih = 0; ih < h; ih++)
      for (let in_ = 0; in_ < n; in_++)
        for (let id = 0; id < d; id++) permuted[((ib * n + in_) * h + ih) * d + id] = values[((ib * h + ih) * n + in_) * d + id];
  return Tensor.fromArray(permuted, [b, n, h, d], { dtype }).transpose(1, 2);
}

/** NaN in the rows of values ([B, H, N, D] order) at or past their batch entry's valid length: padding. */
export function fillPadding(values: Float32Array, shape: [number, number, number, number], valid: ArrayLike<number>): void {
  const [batch, heads, rows, width] = shape;
  for (let b = 0; b < batch; b++)
    for (let h = 0; h < heads; h++) {
      const head = (b * heads + h) * rows;
      values.fill(Number.NaN, (head + valid[b]) * width, (head + rows) * width);
    }
}

export interface Inputs {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  options: AttentionOptions;
}

/** Host q, k, v of the case drawn from `random`, and the attention options (pattern, masks, scale) it names. */
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
  const queries = draw(qShape);
  const keys = draw(kShape);
  const values = random.normals(count(vShape));
  if (options.seqlensQ && options.seqlensK) {
    fillPadding(queries, qShape, options.seqlensQ);
    fillPadding(keys, kShape, options.seqlensK);
    fillPadding(values, vShape, options.seqlensK);
  }
  if (c.nanKeys) {
    for (let row = 0; row < c.batch * c.headsKv * c.seqK; row++) {
      const key = row % c.seqK;
      if (key % 4 === 1 && Math.floor(key / 64) % 2 === 1 && random.uniform() < 0.5)
        keys.fill(Number.NaN, row * c.headDim, (row + 1) * c.headDim);
    }
  }
  return {
    q: operand(queries, qShape, c.dtype, c.bnhd),
    k: operand(keys, kShape, c.dtype, c.bnhd),
    v: operand(values, vShape, c.dtype, c.bnhd),
    options,
  };
}

/** Absolute and relative tolerance of one output element, by dtype: one rounding of P and of the output. */
export function tolerance(dtype: DType): { atol: number; rtol: number } {
  if (dtype === 'float16') return { atol: 2e-3, rtol: 4e-3 };
  if (dtype === 'bfloat16') return { atol: 1.6e-2, rtol: 3e-2 };
  return { atol: 2e-5, rtol: 1e-4 };
}

/**
 * A fresh seed for each run, printed by the caller; DFSS_TEST_SEED (an integer in 0 .. 2^32 - 1) replays a run from
 * the seed it printed (e.g. a failure seen under compute-sanitizer, again without the sanitizer).
 */
export function freshSeed(): number {
  const replay = typeof process === 'undefined' ? undefined : process.env.DFSS_TEST_SEED;
  if (replay !== undefined && replay !== '') {
    const seed = Number(replay);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`DFSS_TEST_SEED: expected an integer in 0 .. 4294967295, got '${replay}'`);
    }
    return seed;
  }
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}
