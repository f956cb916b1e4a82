// The CUDA backward (dfss_attention_backward) against the CPU backward, for every dtype, pattern and mask of the
// GPU case grid (src/check/cases.ts) and of the fused tensor-core backward's grid (support/backward-cases.ts) at
// odd sizes, with device outputs poisoned (NaN) so an unwritten element shows: from the CPU forward's out and lse
// (the backward alone), and as a training step on the GPU (attentionForTraining, then backward, against the CPU
// backward of the GPU forward's out and lse). Also: the same bits on a second run, and the forward's N:M choice kept
// under exact ties and under near ties that only the float32 rounding of the scores decides. Where random scores
// put a group's N-th and (N+1)-th scores within float32 rounding of each other, the CPU and the GPU may keep
// different keys: such rows (dq) and their groups' keys (dk, dv) are left out.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { attentionBackward, attentionForTraining, attentionWithLse, sddmmPrune } from '../src/attention.js';
import { type Case, caseName, checkCases, fillPadding, freshSeed, makeInputs, operand, tolerance } from '../src/check/cases.js';
import { compareBits, compareClose } from '../src/check/compare.js';
import { type NearTies, nearTies } from '../src/check/near-ties.js';
import { cudaStatus, poisonDeviceAllocations } from '../src/cuda/runtime.js';
import { type DType } from '../src/dtype.js';
import { decodeMetadata } from '../src/layout.js';
import { parsePattern } from '../src/pattern.js';
import { SeededRandom } from '../src/random.js';
import { Tensor } from '../src/tensor.js';
import type { AttentionOptions } from '../src/validate.js';
import { tensorCoreBackwardCases } from './support/backward-cases.js';
import { selectedCases } from './support/case-filter.js';
import { nanKeyCases } from './support/nan-key-cases.js';

const cuda = cudaStatus();
const skip = cuda.available ? false : `no CUDA device (${cuda.reason})`;
if (skip) console.log(`# GPU backward tests skipped: ${skip}`);

const seed = freshSeed();
console.log(`# gpu-backward seed ${seed} (DFSS_TEST_SEED=${seed} replays it)`);

// DFSS_GPU_TESTS=small leaves the larger rows out, for the slowest compute-sanitizer tools.
const small = process.env.DFSS_GPU_TESTS === 'small';
const cases = selectedCases(
  [...checkCases({ large: !small }), ...tensorCoreBackwardCases({ large: !small }), ...backwardNanKeyCases()].filter(
    (c) => !small || c.seqQ * c.seqK <= 100000,
  ),
  'gpu-backward',
);

/**
 * The NaN-key cases without causal masks. With one, a row that masks a NaN key inside the valid keys can keep it at
 * p = 0 (a group whose scores are all -inf keeps its first N keys), and dQ = dS K then multiplies 0 by the NaN row of
 * K: the GPU's dq may turn NaN where the CPU's, which skips masked keys, does not, as dfss.h allows ("Padding").
 * Keys past the lengths are padding, never read, so the cases with lengths stay.
 */
function backwardNanKeyCases(): Case[] {
  return nanKeyCases().map((c) => ({ ...c, causal: false }));
}

/**
 * dout [B, Hq, Nq, Dv] of the case: normal values in the dtype, NaN in the padding past seqlensQ (as the case's other
 * inputs), laid out like the case's other tensors.
 */
function makeDout(c: Case, random: SeededRandom, seqlensQ: ArrayLike<number> | undefined): Tensor {
  const [B, H, N, D] = [c.batch, c.headsQ, c.seqQ, c.headDimV];
  const values = random.normals(B * H * N * D);
  if (seqlensQ) fillPadding(values, [B, H, N, D], seqlensQ);
  return operand(values, [B, H, N, D], c.dtype, c.bnhd);
}

function maxAbs(values: Float32Array): number {
  let max = 0;
  for (const x of values) max = Math.max(max, Math.abs(x));
  return max;
}

interface Named {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
}

/**
 * Asserts got (device) agrees with want (host) element by element: |got - want| <= atol * max(1, max |want|) +
 * rtol * |want| (the absolute part scaled to the gradient's size: a gradient sums many terms), over the rows and
 * keys the filters keep.
 */
async function assertGradientsClose(what: string, got: Named, want: Named, dtype: DType, skipRows?: NearTies): Promise<void> {
  const { atol, rtol } = tolerance(dtype);
  const failures: string[] = [];
  for (const [name, rowFlags] of [['dq', skipRows?.rows], ['dk', skipRows?.keys], ['dv', skipRows?.keys]] as const) {
    const g = await got[name].toFloat32Array();
    const w = await want[name].toFloat32Array();
    const rowLength = want[name].shape[3];
    const use = rowFlags && ((row: number) => rowFlags[row] === 0);
    const mismatch = compareClose(g, w, rowLength, atol * Math.max(1, maxAbs(w)), rtol, use);
    if (mismatch.count > 0) failures.push(`${name}: ${mismatch.count} elements differ; first: ${mismatch.first}`);
  }
  assert.deepEqual(failures, [], what);
}

async function toDevice(tensors: Tensor[]): Promise<Tensor[]> {
  const moved: Tensor[] = [];
  for (const t of tensors) moved.push(await t.to('cuda'));
  return moved;
}

test('CUDA backward agrees with the CPU backward', { skip }, async (t) => {
  const random = new SeededRandom(seed);
  poisonDeviceAllocations(0xff);
  try {
    for (const c of cases) {
      await t.test(caseName(c), async () => {
        const { q, k, v, options } = makeInputs(c, random);
        const dout = makeDout(c, random, options.seqlensQ);
        const owned: { dispose(): void }[] = [q, k, v, dout];
        try {
          const skipRows = c.exact ? undefined : await nearTies(q, k, options);
          if (skipRows) {
            const tied = skipRows.rows.reduce((a, b) => a + b, 0);
            assert.ok(tied <= 0.25 * skipRows.rows.length, `${tied} of ${skipRows.rows.length} rows have near ties: too few left to compare`);
          }
          const cpuOptions = { ...options, backend: 'cpu' as const };
          const gpuOptions = { ...options, backend: 'cuda' as const };
          const forward = await attentionWithLse(q, k, v, cpuOptions);
          owned.push(forward.out, forward.lse);
          const want = await attentionBackward(q, k, v, forward.out, dout, forward.lse, cpuOptions);
          owned.push(want.dq, want.dk, want.dv);

          // The backward alone, on the CPU forward's out and lse.
          const device = await toDevice([q, k, v, forward.out, dout, forward.lse]);
          owned.push(...device);
          const [dq, dk, dv, dOut, dDout, dLse] = device;
          const got = await attentionBackward(dq, dk, dv, dOut, dDout, dLse, gpuOptions);
          owned.push(got.dq, got.dk, got.dv);
          assert.equal(got.dq.device, 'cuda');
          await assertGradientsClose('backward', got, want, c.dtype, skipRows);

          // Deterministic: a second run gives the same bits.
          const again = await attentionBackward(dq, dk, dv, dOut, dDout, dLse, gpuOptions);
          owned.push(again.dq, again.dk, again.dv);
          for (const name of ['dq', 'dk', 'dv'] as const) {
            const m = compareBits(await again[name].toRawArray(), await got[name].toRawArray(), 1);
            assert.equal(m.count, 0, `${name} differs between two runs: ${m.first}`);
          }

          // A training step on the GPU: its own forward, then the backward of the context. The forward agrees with
          // the CPU's on the rows without near ties; a row whose near tie the GPU settled otherwise has another out
          // and lse, and through D_i = dout . out another dS at every key it keeps, so the backward is held to the
          // CPU backward of the GPU forward's out and lse (where only the tied keys differ, as above).
          const ctx = await attentionForTraining(dq, dk, dv, gpuOptions);
          owned.push(ctx);
          const { atol, rtol } = tolerance(c.dtype);
          const decided = skipRows && ((row: number) => skipRows.rows[row] === 0);
          const [stepOut, stepLse] = [await ctx.out.to('cpu'), await ctx.lse.to('cpu')];
          owned.push(stepOut, stepLse);
          const outMismatch = compareClose(await stepOut.toFloat32Array(), await forward.out.toFloat32Array(), c.headDimV, atol, rtol, decided);
          assert.equal(outMismatch.count, 0, `training step forward out: ${outMismatch.first}`);
          const lseMismatch = compareClose(await stepLse.toFloat32Array(), await forward.lse.toFloat32Array(), 1, 1e-5, 1e-5, decided);
          assert.equal(lseMismatch.count, 0, `training step forward lse: ${lseMismatch.first}`);
          const stepWant = await attentionBackward(q, k, v, stepOut, dout, stepLse, cpuOptions);
          owned.push(stepWant.dq, stepWant.dk, stepWant.dv);
          const step = await ctx.backward(dDout);
          owned.push(step.dq, step.dk, step.dv);
          await assertGradientsClose('training step', step, stepWant, c.dtype, skipRows);
        } finally {
          for (const x of owned) x.dispose();
        }
      });
    }
  } finally {
    poisonDeviceAllocations(null);
  }
});

test('the CUDA backward keeps exactly the keys the forward kept, ties included', { skip }, async (t) => {
  const random = new SeededRandom(seed ^ 0x5eed);
  const [B, H, Nk, D, Dv] = [2, 3, 257, 4, 2];
  for (const dtype of ['float16', 'bfloat16', 'float32'] as const)
    for (const pattern of dtype === 'float32' ? ['dense', '1:2'] : ['dense', '1:2', '2:4']) {
      await t.test(`${dtype} ${pattern}`, async () => {
        // Scores in {-1, -0.75, ..., 1}: exact everywhere, tied in most groups, p never below e^-2 / Nk.
        const q = Tensor.fromArray(random.integers(B * H * D, -1, 1), [B, H, 1, D], { dtype });
        const k = Tensor.fromArray(random.integers(B * H * Nk * D, -1, 1), [B, H, Nk, D], { dtype });
        const v = Tensor.fromArray(random.normals(B * H * Nk * Dv), [B, H, Nk, Dv], { dtype });
        const dout = Tensor.fromArray(new Float32Array(B * H * Dv).fill(1), [B, H, 1, Dv], { dtype });
        const options: AttentionOptions = { pattern, scale: 0.25 };
        const owned: { dispose(): void }[] = [q, k, v, dout];
        try {
          const scores = await sddmmPrune(q, k, { ...options, backend: 'cpu' });
          owned.push(scores);
          const device = await toDevice([q, k, v, dout]);
          owned.push(...device);
          const [dq, dk, dv, dDout] = device;
          const ctx = await attentionForTraining(dq, dk, dv, { ...options, backend: 'cuda' });
          owned.push(ctx);
          const grads = await ctx.backward(dDout);
          owned.push(grads.dq, grads.dk, grads.dv);
          // One query row per (b, h) and dout = 1: dv of key j is round(p_j), non-zero exactly where j is kept.
          const kept = new Uint8Array(B * H * Nk);
          const parsed = parsePattern(pattern);
          const slots = scores.values.shape[3];
          const inGroup = parsed && decodeMetadata((await scores.metadata!.toRawArray()) as Uint32Array, B * H, slots, parsed.m);
          for (let row = 0; row < B * H; row++)
            for (let c = 0; c < slots; c++) {
              const key = parsed ? Math.floor(c / parsed.n) * parsed.m + inGroup![row * slots + c] : c;
              if (key < Nk) kept[row * Nk + key] = 1;
            }
          const dvValues = await grads.dv.toFloat32Array();
          const nonZero = Array.from({ length: B * H * Nk }, (_, key) => (dvValues[key * Dv] !== 0 ? 1 : 0));
          assert.deepEqual(nonZero, [...kept]);
        } finally {
          for (const x of owned) x.dispose();
        }
      });
    }
});

/** `values` with its elements in a random order (Fisher-Yates). */
function shuffled(values: Float32Array, random: SeededRandom): Float32Array {
  const out = Float32Array.from(values);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random.uniform() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

test('the CUDA backward keeps exactly the keys the forward kept, near ties included', { skip }, async (t) => {
  const random = new SeededRandom(seed ^ 0x7e1e);
  const H = 2;
  for (const dtype of ['float16', 'bfloat16'] as const)
    for (const pattern of ['1:2', '2:4'])
      for (const D of [64, 128]) {
        await t.test(`${dtype} ${pattern} D${D}`, async () => {
          // Every key of a head is a permutation of one vector and every query row a multiple of (1, ..., 1): all the
          // scores of a row are equal in exact arithmetic, and only the rounding of the float32 sums, which depends
          // on the order of the terms, tells them apart (the vector's elements span 2^-8 .. 2^8, so the sums do
          // round). V = identity (Nk = Dv = D), so the forward's out row i is
          // P_i, zero exactly where the forward pruned; dout = identity (Nq = Dv), so dv = P^T, zero exactly where
          // the backward's own choice pruned.
          const N = D;
          const owned: { dispose(): void }[] = [];
          try {
            const spread = random.normals(D).map((x) => x * 2 ** (Math.floor(random.uniform() * 17) - 8));
            const base = Tensor.fromArray(spread, [1, 1, 1, D], { dtype });
            owned.push(base);
            const baseValues = await base.toFloat32Array(); // rounded to the dtype: permutations keep the multiset
            const kValues = new Float32Array(H * N * D);
            for (let key = 0; key < H * N; key++) kValues.set(shuffled(baseValues, random), key * D);
            const qValues = new Float32Array(H * N * D);
            const multiples = random.normals(H * N);
            for (let row = 0; row < H * N; row++) qValues.fill(multiples[row], row * D, (row + 1) * D);
            const identity = new Float32Array(H * N * D);
            for (let h = 0; h < H; h++) for (let i = 0; i < N; i++) identity[(h * N + i) * D + i] = 1;
            const host = [
              Tensor.fromArray(qValues, [1, H, N, D], { dtype }),
              Tensor.fromArray(kValues, [1, H, N, D], { dtype }),
              Tensor.fromArray(identity, [1, H, N, D], { dtype }),
              Tensor.fromArray(identity, [1, H, N, D], { dtype }),
            ];
            owned.push(...host);
            const [q, k, v, dout] = await toDevice(host);
            owned.push(q, k, v, dout);
            const ctx = await attentionForTraining(q, k, v, { pattern, backend: 'cuda' });
            owned.push(ctx);
            const grads = await ctx.backward(dout);
            owned.push(grads.dq, grads.dk, grads.dv);

            const out = await ctx.out.toFloat32Array();
            const dv = await grads.dv.toFloat32Array();
            const forwardPruned: number[] = [];
            const backwardPruned: number[] = [];
            let lowerKeysKept = 0; // groups where the forward kept what a plain tie rule (lower keys first) keeps
            const { n, m } = parsePattern(pattern)!;
            for (let h = 0; h < H; h++)
              for (let i = 0; i < N; i++)
                for (let j = 0; j < N; j++) {
                  forwardPruned.push(out[(h * N + i) * D + j] === 0 ? 1 : 0);
                  backwardPruned.push(dv[(h * N + j) * D + i] === 0 ? 1 : 0);
                  if (j % m === 0) {
                    let lower = true;
                    for (let p = 0; p < m; p++) lower &&= (out[(h * N + i) * D + j + p] !== 0) === p < n;
                    if (lower) lowerKeysKept++;
                  }
                }
            // The scores are not exact ties: the rounding decides a good share of the groups otherwise.
            const groups = (H * N * N) / m;
            assert.ok(lowerKeysKept < 0.9 * groups, `${lowerKeysKept} of ${groups} groups kept their lower keys: no near ties`);
            const kept = forwardPruned.filter((x) => x === 0).length;
            assert.equal(kept, (H * N * N * n) / m, 'the forward keeps n of every m keys');
            assert.deepEqual(backwardPruned, forwardPruned, 'dv = P^T is zero exactly where the forward output is');
          } finally {
            for (const x of owned) x.dispose();
          }
        });
      }
});
