// `make bench`: DFSS attention against dense attention through the TypeScript API, on the backend `auto` picks
// (or --backend), fused and staged. On the CPU backend the default is N = 1024, the shape of issue 4's target 6
// (CPU DFSS 2:4 at least 1.3x faster than the CPU dense path), and the verdict is printed. Times include one
// device synchronization per run; on the CPU the variants are timed in turns (interleavedTimes). The
// side-by-side comparison with PyTorch on a GPU is bench/python/bench_attention.py (bench/README.md).
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { attention, compressedSoftmax, resolveBackend, sddmmPrune, spmm, Tensor } from '../src/index.js';
import type { BackendName } from '../src/backend.js';
import { cudaStatus } from '../src/cuda/runtime.js';
import { SeededRandom } from '../src/random.js';
import { median, medianMs } from '../src/timing.js';
import { formatTable } from './summary.js';

const CPU_TARGET = { seq: 1024, speedup: 1.3 };

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'auto' },
    seq: { type: 'string' },
    dim: { type: 'string', default: '64' },
    heads: { type: 'string', default: '16' },
    repeats: { type: 'string' },
  },
});

const backend = resolveBackend(args.backend as 'auto' | 'cpu' | 'cuda');
const onGpu = backend === 'cuda';
const seqs = (args.seq ?? (onGpu ? '1024,4096' : String(CPU_TARGET.seq))).split(',').map(Number);
const headDim = Number(args.dim);
const heads = onGpu ? Number(args.heads) : Math.min(Number(args.heads), 2);
const repeats = Number(args.repeats ?? (onGpu ? 20 : 11)); // CPU: ~2 s a round of all variants; others share it

const VARIANTS = [
  ['fused dense', 'dense', false],
  ['fused 2:4', '2:4', false],
  ['fused 1:2', '1:2', false],
  ['staged dense', 'dense', true],
  ['staged 2:4', '2:4', true],
] as const;

type Run = () => Promise<void>;

/** Median ms of each run, one variant after the other (medianMs: a warm-up, then `repeats` synchronized runs). */
async function sequentialMedians(runs: Run[], repeats: number): Promise<number[]> {
  const medians: number[] = [];
  for (const run of runs) medians.push(await medianMs(run, repeats));
  return medians;
}

/**
 * ms of each run, taken in turns: a warm-up of each, then `repeats` rounds of one run of each; times[run][round].
 * On a CPU that others share, load that comes and goes then falls on every variant alike rather than on whichever
 * ran at the time, which matters for the ratios (target 6).
 */
async function interleavedTimes(runs: Run[], repeats: number): Promise<number[][]> {
  for (const run of runs) await run();
  const times = runs.map(() => [] as number[]);
  for (let round = 0; round < repeats; round++) {
    for (let v = 0; v < runs.length; v++) {
      const start = performance.now();
      await runs[v]();
      times[v].push(performance.now() - start);
    }
  }
  return times;
}

async function main(): Promise<void> {
  const device = onGpu ? cudaStatus().devices[0].name : 'CPU';
  console.log(`dfss bench: backend ${backend} (${device}), float16, H=${heads}, D=${headDim}, median of ${repeats}`);
  const rows: string[][] = [['N', 'B', 'variant', 'ms', 'TFLOP/s (dense-equivalent)', 'vs fused dense']];
  const verdicts: string[] = [];
  const random = new SeededRandom(1);
  for (const n of seqs) {
    const batch = onGpu ? Math.max(1, Math.floor(16384 / n)) : 1;
    const shape = [batch, heads, n, headDim];
    const count = shape.reduce((a, b) => a * b, 1);
    const host = [0, 1, 2].map(() => Tensor.fromArray(random.normals(count), shape, { dtype: 'float16' }));
    const [q, k, v] = onGpu ? await Promise.all(host.map((t) => t.to('cuda'))) : host;
    if (onGpu) for (const t of host) t.dispose();
    const flops = 4 * batch * heads * n * n * headDim;
    const runs = VARIANTS.map(([, pattern, staged]) => async () => {
      const options = { pattern, backend: backend as BackendName };
      if (!staged) return (await attention(q, k, v, options)).dispose();
      const scores = await sddmmPrune(q, k, options);
      const probs = await compressedSoftmax(scores, { backend: options.backend });
      scores.dispose();
      (await spmm(probs, v, { backend: options.backend })).dispose();
      probs.dispose();
    });
    const cpuTimes = onGpu ? null : await interleavedTimes(runs, repeats);
    const medians = cpuTimes ? cpuTimes.map(median) : await sequentialMedians(runs, repeats);
    const ms = new Map(VARIANTS.map(([variant], i) => [variant, medians[i]]));
    for (const [variant] of VARIANTS) {
      const time = ms.get(variant)!;
      const speedup = ms.get('fused dense')! / time;
      rows.push([String(n), String(batch), variant, time.toFixed(3), (flops / time / 1e9).toPrecision(3), speedup.toFixed(2) + 'x']);
    }
    for (const t of [q, k, v]) t.dispose();
    if (cpuTimes && n === CPU_TARGET.seq) {
      const speedup = ms.get('fused dense')! / ms.get('fused 2:4')!;
      const [dense, sparse] = ['fused dense', 'fused 2:4'].map((name) => cpuTimes[VARIANTS.findIndex(([variant]) => variant === name)]);
      const perRound = median(dense.map((t, round) => t / sparse[round]));
      const met = speedup >= CPU_TARGET.speedup ? 'met' : 'MISSED';
      verdicts.push(
        `target 6: CPU fused 2:4 is ${speedup.toFixed(2)}x the speed of CPU fused dense at N = ${n} (>= ${CPU_TARGET.speedup}x: ${met}; ` +
          `median of the per-round ratios ${perRound.toFixed(2)}x)`,
      );
    }
  }
  console.log(formatTable(rows));
  for (const line of verdicts) console.log(line);
}

await main();
