// Every CUDA entry point against the CPU backend: fused and staged forward (with lse) and the three staged steps,
// for every dtype, pattern and mask, at odd sizes, on fresh random inputs and on exact-score inputs whose pruning
// must agree bit for bit. Device outputs are poisoned (NaN) before each run so an unwritten element shows. The
// cases and comparisons are those of `dfss check` (src/check/), plus the shapes of the float32 tensor-core kernels.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { attentionWithLse, compressedSoftmax, sddmmPrune } from '../src/attention.js';
import { type Case, caseName, checkCases, freshSeed, operand, tolerance } from '../src/check/cases.js';
import { compareBits, compareClose } from '../src/check/compare.js';
import { checkCase, withPoisonedDeviceMemory } from '../src/check/entry-points.js';
import { cudaStatus } from '../src/cuda/runtime.js';
import { SeededRandom } from '../src/random.js';
import { selectedCases } from './support/case-filter.js';
import { nanKeyCases } from './support/nan-key-cases.js';

const cuda = cudaStatus();
const skip = cuda.available ? false : `no CUDA device (${cuda.reason})`;
if (skip) console.log(`# GPU kernel tests skipped: ${skip}`);

const seed = freshSeed();
console.log(`# gpu-kernels seed ${seed} (DFSS_TEST_SEED=${seed} replays it)`);

// DFSS_GPU_TESTS=small leaves the larger rows out, for the slowest compute-sanitizer tools.
const large = process.env.DFSS_GPU_TESTS !== 'small';

/**
 * The shapes the float32 tensor-core kernels take (3xTF32): the fused forward for dense and 1:2 at D = Dv in
 * {32, 64, 96, 128}, the staged sddmm_prune for dense and 1:2 and spmm for 1:2 at D = Dv in {16, 32, 64, 96, 128}, at
 * odd sizes around their tiles, with masks, exact scores, lengths, grouped-query heads and strided layouts spread
 * over the cases. (float32 2:4 is refused by the library before any kernel runs.)
 */
function float32TensorCoreCases(): Case[] {
  const out: Case[] = [];
  const shapes: [number, number][] = [[1, 1], [3, 3], [17, 17], [17, 200], [130, 67], [1000, 1000]];
  let n = 0;
  for (const pattern of ['dense', '1:2'])
    for (const headDim of [32, 64, 128])
      for (const [seqQ, seqK] of shapes) {
        if (!large && seqQ * seqK > 100000) continue;
        n++;
        const big = seqQ * seqK > 100000;
        out.push({
          dtype: 'float32', pattern, seqQ, seqK, headDim, headDimV: headDim,
          causal: n % 2 === 0,
          exact: n % 3 === 0,
          batch: big ? 1 : 1 + (n % 2),
          headsQ: big ? 2 : 4,
          headsKv: n % 4 === 1 ? 1 : 2,
          bnhd: n % 5 === 1,
          lengths: n % 7 < 3,
        });
      }
  // D = 16 (the staged kernels only: the fused forward declines it) and 96, at fewer shapes.
  for (const pattern of ['dense', '1:2'])
    for (const headDim of [16, 96])
      for (const [seqQ, seqK, causal, exact] of [[17, 33, false, true], [130, 67, true, false]] as const)
        out.push({
          dtype: 'float32', pattern, seqQ, seqK, headDim, headDimV: headDim, causal, exact,
          batch: 2, headsQ: 4, headsKv: 2, bnhd: causal, lengths: !causal,
        });
  return out;
}

/**
 * Padded batches (NaN padding, key lengths drawn inside a tile) at the Hopper kernels' head dims, with key counts that
 * tensor maps take (multiples of 4): under DFSS_FUSED_WARP_SPECIALIZED=1 the warp-specialized forward runs them, and
 * must clear the padding that its whole-tile copies bring.
 */
function paddedCases(): Case[] {
  const base = { batch: 3, headsQ: 4, headsKv: 2, causal: false, exact: false, bnhd: false, lengths: true };
  return [
    { ...base, dtype: 'float16', pattern: '2:4', seqQ: 130, seqK: 200, headDim: 128, headDimV: 128 },
    { ...base, dtype: 'bfloat16', pattern: 'dense', seqQ: 65, seqK: 1000, headDim: 64, headDimV: 64 },
    { ...base, dtype: 'float16', pattern: '1:2', seqQ: 200, seqK: 300, headDim: 128, headDimV: 128, bnhd: true },
    { ...base, dtype: 'bfloat16', pattern: '2:4', seqQ: 17, seqK: 260, headDim: 64, headDimV: 64, causal: true },
  ];
}

const cases = selectedCases([...checkCases({ large }), ...float32TensorCoreCases(), ...nanKeyCases(), ...paddedCases()], 'gpu-kernels');

test('CUDA entry points agree with the CPU backend', { skip }, async (t) => {
  const random = new SeededRandom(seed);
  await withPoisonedDeviceMemory(async () => {
    for (const c of cases) {
      await t.test(caseName(c), async () => {
        const checks = await checkCase(c, random);
        // Every comparison of the case is reported, not only the first that fails.
        const failed = checks.filter((check) => check.failures > 0).map((check) => `${check.name}: ${check.detail}`);
        assert.deepEqual(failed, []);
        assert.ok(checks.length >= 10, `${checks.length} comparisons made, expected every entry point's`);
      });
    }
  });
});

/**
 * compressed_softmax on rows of every length its kernels split by (compressed_softmax_fast.cu): 8 and 16 threads a
 * row holding it in registers (up to 64 vectors of 16 bytes), a warp reading it twice (longer rows; 8800 rows of
 * more than 1024 values, enough to fill the GPU, take it too) and a block a row (few rows of more than 1024 values),
 * at row lengths that leave rows unaligned to 16 bytes. Each on the GPU's own scores against the CPU's softmax of the
 * same scores.
 */
test('compressed softmax: every row length its kernels split by', { skip }, async (t) => {
  const random = new SeededRandom(seed + 1);
  const shapes = [
    // [dtype, pattern, heads, seqQ, seqK]: C values a row = seqK, seqK / 2 (1:2, 2:4)
    ['float16', '2:4', 2, 40, 100],
    ['bfloat16', 'dense', 2, 40, 500],
    ['float16', '1:2', 2, 40, 2000],
    ['float32', 'dense', 2, 40, 201],
    ['float16', 'dense', 4, 2200, 1100],
    ['bfloat16', '2:4', 2, 64, 4100],
  ] as const;
  await withPoisonedDeviceMemory(async () => {
    for (const [dtype, pattern, heads, seqQ, seqK] of shapes) {
      await t.test(`${dtype} ${pattern} H${heads} Nq${seqQ} Nk${seqK}`, async () => {
        const headDim = 16;
        const q = await operand(random.normals(heads * seqQ * headDim), [1, heads, seqQ, headDim], dtype, false).to('cuda');
        const k = await operand(random.normals(heads * seqK * headDim), [1, heads, seqK, headDim], dtype, false).to('cuda');
        const scores = await sddmmPrune(q, k, { pattern, backend: 'cuda' });
        const gpu = await compressedSoftmax(scores, { backend: 'cuda' });
        const cpu = await compressedSoftmax(scores, { backend: 'cpu' });
        try {
          const { atol, rtol } = tolerance(dtype);
          const slots = scores.values.shape[3];
          const probs = compareClose(await gpu.values.toFloat32Array(), await cpu.values.toFloat32Array(), slots, atol / 4, rtol);
          assert.equal(probs.count, 0, `probs: ${probs.count} elements differ; first: ${probs.first}`);
          const lse = compareClose(await gpu.lse!.toFloat32Array(), await cpu.lse!.toFloat32Array(), 1, 1e-5, 1e-5);
          assert.equal(lse.count, 0, `lse: ${lse.count} elements differ; first: ${lse.first}`);
        } finally {
          for (const x of [q, k, scores, gpu, cpu]) x.dispose();
        }
      });
    }
  });
});

/**
 * dfss_attention_staged runs short rows in one kernel (the compressed scores kept in shared memory) and longer ones in
 * two; both do the same arithmetic in the same order. The same rows through each: keys 0 .. 299 as they are (one
 * kernel), and the same keys followed by 1800 more behind per-batch key lengths of 300 (two kernels: the masked keys
 * add p = 0 and zero rows of v, exactly nothing). out and lse must agree bit for bit.
 */
test('staged one call: on chip and in two kernels, bit for bit', { skip }, async (t) => {
  const random = new SeededRandom(seed + 2);
  const [batch, headsQ, headsKv, seqQ, seqK, padded] = [2, 4, 2, 130, 300, 2100];
  await withPoisonedDeviceMemory(async () => {
    for (const dtype of ['float16', 'bfloat16'] as const)
      for (const pattern of ['2:4', '1:2'] as const)
        for (const headDim of [64, 128]) {
          await t.test(`${dtype} ${pattern} D${headDim}`, async () => {
            const keys = random.normals(batch * headsKv * padded * headDim);
            const values = random.normals(batch * headsKv * padded * headDim);
            // The first seqK keys of each (batch, head) of the padded rows.
            const prefix = (all: Float32Array) => {
              const out = new Float32Array(batch * headsKv * seqK * headDim);
              for (let h = 0; h < batch * headsKv; h++) out.set(all.subarray(h * padded * headDim, (h * padded + seqK) * headDim), h * seqK * headDim);
              return out;
            };
            const q = await operand(random.normals(batch * headsQ * seqQ * headDim), [batch, headsQ, seqQ, headDim], dtype, false).to('cuda');
            const kShort = await operand(prefix(keys), [batch, headsKv, seqK, headDim], dtype, false).to('cuda');
            const vShort = await operand(prefix(values), [batch, headsKv, seqK, headDim], dtype, false).to('cuda');
            const kLong = await operand(keys, [batch, headsKv, padded, headDim], dtype, false).to('cuda');
            const vLong = await operand(values, [batch, headsKv, padded, headDim], dtype, false).to('cuda');
            const options = { pattern, pipeline: 'staged', backend: 'cuda' } as const;
            const onChip = await attentionWithLse(q, kShort, vShort, options);
            const twoKernels = await attentionWithLse(q, kLong, vLong, { ...options, seqlensK: [seqK, seqK] });
            try {
              const out = compareBits(await onChip.out.toFloat32Array(), await twoKernels.out.toFloat32Array(), headDim);
              assert.equal(out.count, 0, `out: ${out.count} elements differ; first: ${out.first}`);
              const lse = compareBits(await onChip.lse.toFloat32Array(), await twoKernels.lse.toFloat32Array(), 1);
              assert.equal(lse.count, 0, `lse: ${lse.count} elements differ; first: ${lse.first}`);
            } finally {
              for (const x of [q, kShort, vShort, kLong, vLong, onChip.out, onChip.lse, twoKernels.out, twoKernels.lse]) x.dispose();
            }
          });
        }
  });
});
