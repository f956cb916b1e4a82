// Every CUDA entry point against the CPU backend on one case: the fused forward (with lse), the three staged steps,
// and the staged pipeline in one call. Exact-score cases must agree bit for bit in the pruning (values and metadata);
// random ones within one rounding, leaving out the rows whose N:M choice hangs on a near tie. Used by `dfss check`
// and the GPU tests.
import { attentionWithLse, compressedSoftmax, CompressedRows, sddmmPrune, spmm } from '../attention.js';
import { poisonDeviceAllocations } from '../cuda/runtime.js';
import type { SeededRandom } from '../random.js';
import type { Tensor } from '../tensor.js';
import { type Case, makeInputs, tolerance } from './cases.js';
import { compareBits, compareClose, type Mismatch, ulp } from './compare.js';
import { nearTies } from './near-ties.js';

/** What a check exercises: one of the library's GPU entry points, or the inputs the case drew. */
export const ENTRY_POINTS = [
  'attention_forward',
  'staged_attention',
  'sddmm_prune',
  'compressed_softmax',
  'spmm',
  'staged_pipeline',
] as const;
export type EntryPoint = (typeof ENTRY_POINTS)[number] | 'inputs';

export interface Check {
  readonly entryPoint: EntryPoint;
  /** What was compared, e.g. "sddmm metadata". */
  readonly name: string;
  /** Elements (or conditions) that failed; 0 when the check passed. */
  readonly failures: number;
  /** Why it failed, in one line; empty when it passed. */
  readonly detail: string;
}

/** The outputs of attentionWithLse. */
interface Forward {
  readonly out: Tensor;
  readonly lse: Tensor;
}

function fromMismatch(entryPoint: EntryPoint, name: string, m: Mismatch, bitExact = false): Check {
  const detail = m.count === 0 ? '' : bitExact ? m.first : `${m.count} elements differ; first: ${m.first}`;
  return { entryPoint, name, failures: m.count, detail };
}

function condition(entryPoint: EntryPoint, name: string, holds: boolean, detail: string): Check {
  return { entryPoint, name, failures: holds ? 0 : 1, detail: holds ? '' : detail };
}

/** A copy of host compressed rows on the GPU. */
async function upload(rows: CompressedRows): Promise<CompressedRows> {
  const values = await rows.values.to('cuda');
  const metadata = rows.metadata && (await rows.metadata.to('cuda'));
  return new CompressedRows(values, metadata, rows.pattern, rows.seqK, null, rows.seqlensK);
}

/**
 * Runs every entry point of the case on the GPU and on the CPU from the same inputs (drawn from `random`) and
 * returns each comparison. Needs a CUDA device; call inside withPoisonedDeviceMemory so that an output element a
 * kernel leaves unwritten shows as NaN.
 */
export async function checkCase(c: Case, random: SeededRandom): Promise<Check[]> {
  const { q, k, v, options } = makeInputs(c, random);
  const owned: { dispose(): void }[] = [q, k, v];
  const keep = <T extends { dispose(): void }>(x: T): T => {
    owned.push(x);
    return x;
  };
  const host = (t: Tensor) => t.toFloat32Array();
  const raw = (t: Tensor) => t.toRawArray();
  const { atol, rtol } = tolerance(c.dtype);
  const checks: Check[] = [];
  try {
    const [dq, dk, dv] = [keep(await q.to('cuda')), keep(await k.to('cuda')), keep(await v.to('cuda'))];
    const ties = c.exact ? new Uint8Array(q.shape[0] * q.shape[1] * q.shape[2]) : (await nearTies(q, k, options)).rows;
    const tied = ties.reduce((a, b) => a + b, 0);
    checks.push(condition('inputs', 'near ties', tied <= 0.25 * ties.length, `${tied} of ${ties.length} rows have near ties: too few left to compare`));
    const decided = (row: number) => ties[row] === 0;

    // A forward's out (left on the GPU) and lse against the CPU's (lse within lseTol, absolute and relative); `label`
    // starts the names of the comparisons.
    const forwardChecks = async (entryPoint: EntryPoint, label: string, gpu: Forward, cpu: Forward, lseTol: number) => {
      const [gotOut, wantOut] = [await host(gpu.out), await host(cpu.out)];
      const [gotLse, wantLse] = [await host(gpu.lse), await host(cpu.lse)];
      const onDevice = gpu.out.device === 'cuda';
      return [
        condition(entryPoint, `${label}out device`, onDevice, `out is on ${gpu.out.device}, expected cuda`),
        fromMismatch(entryPoint, `${label}out`, compareClose(gotOut, wantOut, c.headDimV, atol, rtol, decided)),
        fromMismatch(entryPoint, `${label}lse`, compareClose(gotLse, wantLse, 1, lseTol, lseTol, decided)),
      ];
    };

    // Fused forward.
    const cpu = await attentionWithLse(q, k, v, { ...options, backend: 'cpu' });
    keep(cpu.out);
    keep(cpu.lse);
    const gpu = await attentionWithLse(dq, dk, dv, { ...options, backend: 'cuda' });
    keep(gpu.out);
    keep(gpu.lse);
    checks.push(...(await forwardChecks('attention_forward', '', gpu, cpu, 1e-5)));

    // Staged. Exact scores: values and metadata agree bit for bit. Random inputs: the scores within the rounding
    // of a differently ordered dot product, the metadata bit for bit wherever no near tie decides.
    const cpuScores = keep(await sddmmPrune(q, k, { ...options, backend: 'cpu' }));
    const gpuScores = keep(await sddmmPrune(dq, dk, { ...options, backend: 'cuda' }));
    const slots = cpuScores.values.shape[3];
    checks.push(
      c.exact
        ? fromMismatch('sddmm_prune', 'sddmm values', compareBits(await raw(gpuScores.values), await raw(cpuScores.values), slots), true)
        : fromMismatch('sddmm_prune', 'sddmm values', compareClose(await host(gpuScores.values), await host(cpuScores.values), slots, 1e-5, 2 * ulp(c.dtype), decided)),
    );
    if (cpuScores.metadata) {
      const words = cpuScores.metadata.shape[3];
      const gpuMetadata = gpuScores.metadata ? await raw(gpuScores.metadata) : new Uint32Array(0);
      checks.push(fromMismatch('sddmm_prune', 'sddmm metadata', compareBits(gpuMetadata, await raw(cpuScores.metadata), words, c.exact ? undefined : decided), true));
    } else {
      checks.push(condition('sddmm_prune', 'sddmm metadata', gpuScores.metadata === null, 'dense scores came with metadata, expected none'));
    }

    // Each later step on the same input as the CPU's (the CPU's output of the step before, uploaded): the GPU reads
    // the compressed layout the CPU wrote and agrees within one rounding.
    const cpuProbs = keep(await compressedSoftmax(cpuScores, { backend: 'cpu' }));
    const cpuOut = keep(await spmm(cpuProbs, v, { backend: 'cpu' }));
    const sameScores = keep(await upload(cpuScores));
    const sameProbs = keep(await compressedSoftmax(sameScores, { backend: 'cuda' }));
    checks.push(fromMismatch('compressed_softmax', 'softmax probs', compareClose(await host(sameProbs.values), await host(cpuProbs.values), slots, atol / 4, rtol)));
    checks.push(fromMismatch('compressed_softmax', 'softmax lse', compareClose(await host(sameProbs.lse!), await host(cpuProbs.lse!), 1, 1e-5, 1e-5)));
    const uploadedProbs = keep(await upload(cpuProbs));
    const crossOut = keep(await spmm(uploadedProbs, dv, { backend: 'cuda' }));
    // 16-bit outputs: one rounding to the dtype dominates. float32 runs 3xTF32 on tensor cores, summing a row's
    // products in float32 (a 1000-key row measured 9.3e-6 off, seed 599169377): the dtype's whole tolerance.
    const spmmShare = c.dtype === 'float32' ? 1 : 4;
    checks.push(fromMismatch('spmm', 'spmm out', compareClose(await host(crossOut), await host(cpuOut), c.headDimV, atol / spmmShare, rtol / spmmShare)));

    // The whole staged pipeline on the GPU.
    const gpuProbs = keep(await compressedSoftmax(gpuScores, { backend: 'cuda' }));
    const gpuOut = keep(await spmm(gpuProbs, dv, { backend: 'cuda' }));
    checks.push(fromMismatch('staged_pipeline', 'staged pipeline out', compareClose(await host(gpuOut), await host(cpuOut), c.headDimV, atol, rtol, decided)));

    // The staged pipeline in one call, against the CPU's three steps above (the fused lse is up to 1e-2 away: the
    // compressed scores pass through memory rounded to the dtype). A score that the GPU sums in another order may round
    // to the neighbouring value of the dtype, which moves its row's lse by up to an ulp of the dtype times |lse| + 1.
    const staged = await attentionWithLse(dq, dk, dv, { ...options, backend: 'cuda', pipeline: 'staged' });
    keep(staged.out);
    keep(staged.lse);
    const stagedCpu = { out: cpuOut, lse: cpuProbs.lse! };
    const stagedLseTolerance = Math.max(1e-5, ulp(c.dtype));
    checks.push(...(await forwardChecks('staged_attention', 'staged ', staged, stagedCpu, stagedLseTolerance)));
    return checks;
  } finally {
    for (const x of owned) x.dispose();
  }
}

/** Runs `work` with every device allocation filled with 0xff (NaN in every float dtype) until it settles. */
export async function withPoisonedDeviceMemory<T>(work: () => Promise<T>): Promise<T> {
  poisonDeviceAllocations(0xff);
  try {
    return await work();
  } finally {
    poisonDeviceAllocations(null);
  }
}
