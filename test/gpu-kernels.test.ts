// Every CUDA entry point against the CPU backend: fused forward (with lse) and the three staged steps, for every
// dtype, pattern and mask, at odd sizes, on fresh random inputs and on exact-score inputs whose pruning must
// agree bit for bit. Device outputs are poisoned (NaN) before each run so an unwritten element shows.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { attentionWithLse, compressedSoftmax, CompressedRows, sddmmPrune, spmm } from '../src/attention.js';
import { cudaStatus, poisonDeviceAllocations } from '../src/cuda/runtime.js';
import { SeededRandom } from '../src/random.js';
import type { Tensor } from '../src/tensor.js';
import { type Case, caseName, freshSeed, makeInputs, tolerance } from './support/cases.js';
import { nearTieRows } from './support/near-ties.js';

const cuda = cudaStatus();
const skip = cuda.available ? false : `no CUDA device (${cuda.reason})`;
if (skip) console.log(`# GPU kernel tests skipped: ${skip}`);

const seed = freshSeed();
console.log(`# gpu-kernels seed ${seed}`);

function cases(): Case[] {
  const out: Case[] = [];
  const patterns: Record<string, string[]> = { float16: ['dense', '1:2', '2:4'], bfloat16: ['dense', '1:2', '2:4'], float32: ['dense', '1:2'] };
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
  // The shapes the tensor-core kernels take (fp16/bf16, D = Dv in {64, 128}): odd sizes around their tiles,
  // with masks, lengths, grouped-query heads and strided layouts spread over the cases.
  const tensorCoreShapes: [number, number][] = [[1, 1], [3, 3], [17, 17], [17, 200], [130, 67], [1000, 1000]];
  for (const dtype of ['float16', 'bfloat16'] as const)
    for (const pattern of ['dense', '1:2', '2:4'])
      for (const headDim of [64, 128])
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
  // Larger rows: many groups, several warps' worth of keys, head dims of the fast kernels. DFSS_GPU_TESTS=small
  // leaves them out, for the slowest compute-sanitizer tools.
  if (process.env.DFSS_GPU_TESTS === 'small') return out;
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

interface Mismatch {
  count: number;
  first: string;
}

/** Elements where |got - want| > atol + rtol |want| (NaN in got always counts), over the rows `use` keeps. */
function compare(got: Float32Array, want: Float32Array, rowLength: number, atol: number, rtol: number, use?: (row: number) => boolean): Mismatch {
  assert.equal(got.length, want.length, 'length');
  let count = 0;
  let first = '';
  for (let i = 0; i < got.length; i++) {
    if (use && !use(Math.floor(i / rowLength))) continue;
    const g = got[i];
    const w = want[i];
    const ok = g === w || Math.abs(g - w) <= atol + rtol * Math.abs(w);
    if (!ok) {
      if (count === 0) first = `element ${i} (row ${Math.floor(i / rowLength)}): got ${g}, expected ${w}`;
      count++;
    }
  }
  return { count, first };
}

function assertClose(what: string, got: Float32Array, want: Float32Array, rowLength: number, atol: number, rtol: number, use?: (row: number) => boolean) {
  const m = compare(got, want, rowLength, atol, rtol, use);
  assert.equal(m.count, 0, `${what}: ${m.count} elements differ; first: ${m.first}`);
}

function assertBitEqual(what: string, got: ArrayLike<number>, want: ArrayLike<number>, rowLength: number, use?: (row: number) => boolean) {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    if (use && !use(Math.floor(i / rowLength))) continue;
    if (got[i] !== want[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i])))
      assert.fail(`${what}: element ${i} (row ${Math.floor(i / rowLength)}) is ${got[i]}, expected ${want[i]} (bit-exact)`);
  }
}

/** One unit in the last place of the dtype, relative: the difference one rounding of a score can make. */
function ulp(dtype: Case['dtype']): number {
  return dtype === 'float16' ? 2 ** -10 : dtype === 'bfloat16' ? 2 ** -7 : 2 ** -20;
}

async function host(t: Tensor): Promise<Float32Array> {
  return t.toFloat32Array();
}

async function raw(t: Tensor): Promise<ArrayLike<number>> {
  return t.toRawArray();
}

/** A copy of host compressed rows on the GPU. */
async function upload(rows: CompressedRows): Promise<CompressedRows> {
  const values = await rows.values.to('cuda');
  const metadata = rows.metadata && (await rows.metadata.to('cuda'));
  return new CompressedRows(values, metadata, rows.pattern, rows.seqK);
}

test('CUDA entry points agree with the CPU backend', { skip }, async (t) => {
  const random = new SeededRandom(seed);
  poisonDeviceAllocations(0xff);
  try {
    for (const c of cases()) {
      await t.test(caseName(c), async () => {
        const { q, k, v, options } = makeInputs(c, random);
        const [dq, dk, dv] = [await q.to('cuda'), await k.to('cuda'), await v.to('cuda')];
        const { atol, rtol } = tolerance(c.dtype);
        try {
          const ties = c.exact ? new Uint8Array(q.shape[0] * q.shape[1] * q.shape[2]) : await nearTieRows(q, k, options);
          const tied = ties.reduce((a, b) => a + b, 0);
          assert.ok(tied <= 0.25 * ties.length, `${tied} of ${ties.length} rows have near ties: too few left to compare`);
          const decided = (row: number) => ties[row] === 0;

          // Fused forward.
          const cpu = await attentionWithLse(q, k, v, { ...options, backend: 'cpu' });
          const gpu = await attentionWithLse(dq, dk, dv, { ...options, backend: 'cuda' });
          assert.equal(gpu.out.device, 'cuda');
          assertClose('out', await host(gpu.out), await host(cpu.out), c.headDimV, atol, rtol, decided);
          assertClose('lse', await host(gpu.lse), await host(cpu.lse), 1, 1e-5, 1e-5, decided);

          // Staged. Exact scores: values and metadata agree bit for bit. Random inputs: the scores within the
          // rounding of a differently ordered dot product, the metadata bit for bit wherever no near tie decides.
          const cpuScores = await sddmmPrune(q, k, { ...options, backend: 'cpu' });
          const gpuScores = await sddmmPrune(dq, dk, { ...options, backend: 'cuda' });
          const slots = cpuScores.values.shape[3];
          if (c.exact) assertBitEqual('sddmm values', await raw(gpuScores.values), await raw(cpuScores.values), slots);
          else assertClose('sddmm values', await host(gpuScores.values), await host(cpuScores.values), slots, 1e-5, 2 * ulp(c.dtype), decided);
          if (cpuScores.metadata) {
            const words = cpuScores.metadata.shape[3];
            assertBitEqual('sddmm metadata', await raw(gpuScores.metadata!), await raw(cpuScores.metadata), words, c.exact ? undefined : decided);
          } else assert.equal(gpuScores.metadata, null);

          // Each later step on the same input as the CPU's (the CPU's output of the step before, uploaded): the
          // GPU reads the compressed layout the CPU wrote and agrees within one rounding.
          const cpuProbs = await compressedSoftmax(cpuScores, { backend: 'cpu' });
          const cpuOut = await spmm(cpuProbs, v, { backend: 'cpu' });
          const sameScores = await upload(cpuScores);
          const sameProbs = await compressedSoftmax(sameScores, { backend: 'cuda' });
          assertClose('softmax probs', await host(sameProbs.values), await host(cpuProbs.values), slots, atol / 4, rtol);
          assertClose('softmax lse', await host(sameProbs.lse!), await host(cpuProbs.lse!), 1, 1e-5, 1e-5);
          const uploadedProbs = await upload(cpuProbs);
          const crossOut = await spmm(uploadedProbs, dv, { backend: 'cuda' });
          assertClose('spmm out', await host(crossOut), await host(cpuOut), c.headDimV, atol / 4, rtol / 4);

          // The whole staged pipeline on the GPU.
          const gpuProbs = await compressedSoftmax(gpuScores, { backend: 'cuda' });
          const gpuOut = await spmm(gpuProbs, dv, { backend: 'cuda' });
          assertClose('staged pipeline out', await host(gpuOut), await host(cpuOut), c.headDimV, atol, rtol, decided);

          for (const x of [cpu.out, cpu.lse, gpu.out, gpu.lse, cpuOut, gpuOut, crossOut]) x.dispose();
          for (const x of [cpuScores, gpuScores, cpuProbs, gpuProbs, sameScores, sameProbs, uploadedProbs]) x.dispose();
        } finally {
          for (const x of [dq, dk, dv]) x.dispose();
        }
      });
    }
  } finally {
    poisonDeviceAllocations(null);
  }
});
