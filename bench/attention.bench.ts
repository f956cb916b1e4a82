// `make bench`: DFSS attention against dense attention on the backend `auto` picks (or --backend), fused and
// staged, for a few sequence lengths. Prints a table and appends nothing: numbers worth keeping go to
// bench/RESULTS.md with the card, the date and this command.
import { parseArgs } from 'node:util';

import { attention, compressedSoftmax, resolveBackend, sddmmPrune, spmm, Tensor } from '../src/index.js';
import type { BackendName } from '../src/backend.js';
import { cudaStatus } from '../src/cuda/runtime.js';
import { SeededRandom } from '../src/random.js';
import { medianMs } from '../src/timing.js';

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
const seqs = (args.seq ?? (onGpu ? '1024,4096' : '256,1024')).split(',').map(Number);
const headDim = Number(args.dim);
const heads = onGpu ? Number(args.heads) : Math.min(Number(args.heads), 2);
const repeats = Number(args.repeats ?? (onGpu ? 20 : 3));

async function main(): Promise<void> {
  const device = onGpu ? cudaStatus().devices[0].name : 'CPU';
  console.log(`dfss bench: backend ${backend} (${device}), float16, H=${heads}, D=${headDim}, median of ${repeats}`);
  const rows: string[][] = [['N', 'B', 'variant', 'ms', 'TFLOP/s (dense-equivalent)', 'vs dense']];
  const random = new SeededRandom(1);
  for (const n of seqs) {
    const batch = onGpu ? Math.max(1, Math.floor(16384 / n)) : 1;
    const shape = [batch, heads, n, headDim];
    const count = shape.reduce((a, b) => a * b, 1);
    const host = [0, 1, 2].map(() => Tensor.fromArray(random.normals(count), shape, { dtype: 'float16' }));
    const [q, k, v] = onGpu ? await Promise.all(host.map((t) => t.to('cuda'))) : host;
    const flops = 4 * batch * heads * n * n * headDim;
    let denseMs = 0;
    for (const [variant, pattern, staged] of [
      ['fused dense', 'dense', false],
      ['fused 2:4', '2:4', false],
      ['fused 1:2', '1:2', false],
      ['staged dense', 'dense', true],
      ['staged 2:4', '2:4', true],
    ] as const) {
      const options = { pattern, backend: backend as BackendName };
      const ms = await medianMs(async () => {
        if (!staged) return (await attention(q, k, v, options)).dispose();
        const scores = await sddmmPrune(q, k, options);
        const probs = await compressedSoftmax(scores, { backend: options.backend });
        scores.dispose();
        (await spmm(probs, v, { backend: options.backend })).dispose();
        probs.dispose();
      }, repeats);
      if (variant === 'fused dense') denseMs = ms;
      rows.push([String(n), String(batch), variant, ms.toFixed(3), (flops / ms / 1e9).toPrecision(3), (denseMs / ms).toFixed(2) + 'x']);
    }
    for (const t of [q, k, v]) t.dispose();
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(r.map((cell, c) => cell.padStart(widths[c])).join('  '));
}

await main();
