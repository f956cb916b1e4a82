// `make bench`: DFSS attention against dense attention through the TypeScript API, on the backend `auto` picks
// (or --backend), fused and staged. On the CPU backend the default is N = 1024, the shape of issue 4's target 6
// (CPU DFSS 2:4 at least 1.3x faster than the CPU dense path), and the verdict is printed. Times include one
// device synchronization per run. The side-by-side comparison with PyTorch on a GPU is
// bench/python/bench_attention.py (bench/README.md).
import { parseArgs } from 'node:util';

import { attention, compressedSoftmax, resolveBackend, sddmmPrune, spmm, Tensor } from '../src/index.js';
import type { BackendName } from '../src/backend.js';
import { cudaStatus } from '../src/cuda/runtime.js';
import { SeededRandom } from '../src/random.js';
import { medianMs } from '../src/timing.js';
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
const repeats = Number(args.repeats ?? (onGpu ? 20 : 5)); // CPU: ~1 s a run, on a machine others share

const VARIANTS = [
  ['fused dense', 'dense', false],
  ['fused 2:4', '2:4', false],
  ['fused 1:2', '1:2', false],
  ['staged dense', 'dense', true],
  ['staged 2:4', '2:4', true],
] as const;

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
    const ms = new Map<string, number>();
    for (const [variant, pattern, staged] of VARIANTS) {
      const options = { pattern, backend: backend as BackendName };
      const time = await medianMs(async () => {
        if (!staged) return (await attention(q, k, v, options)).dispose();
        const scores = await sddmmPrune(q, k, options);
        const probs = await compressedSoftmax(scores, { backend: options.backend });
        scores.dispose();
        (await spmm(probs, v, { backend: options.backend })).dispose();
        probs.dispose();
      }, repeats);
      ms.set(variant, time);
      const speedup = ms.get('fused dense')! / time;
      rows.push([String(n), String(batch), variant, time.toFixed(3), (flops / time / 1e9).toPrecision(3), speedup.toFixed(2) + 'x']);
    }
    for (const t of [q, k, v]) t.dispose();
    if (!onGpu && n === CPU_TARGET.seq) {
      const speedup = ms.get('fused dense')! / ms.get('fused 2:4')!;
      const met = speedup >= CPU_TARGET.speedup ? 'met' : 'MISSED';
      verdicts.push(`target 6: CPU fused 2:4 is ${speedup.toFixed(2)}x the speed of CPU fused dense at N = ${n} (>= ${CPU_TARGET.speedup}x: ${met})`);
    }
  }
  console.log(formatTable(rows));
  for (const line of verdicts) console.log(line);
}

await main();
