// One long sequence through the fused forward, to show that no N x N buffer exists anywhere: B = 1, Hq = 16,
// N = 65,536, D = 128, fp16 (issue 3). Prints the time of dense and 2:4 and the device memory the process holds
// with its inputs and output alive; the scores alone would be 16 * N * N * 4 bytes = 256 GiB.
import { parseArgs } from 'node:util';

import { attention, Tensor } from '../src/index.js';
import { cudaStatus, deviceMemoryUse, synchronize } from '../src/cuda/runtime.js';
import { SeededRandom } from '../src/random.js';
import { medianMs } from '../src/timing.js';

const { values: args } = parseArgs({ options: { seq: { type: 'string', default: '65536' }, runs: { type: 'string', default: '3' } } });
const status = cudaStatus();
if (!status.available) {
  console.log(`long-sequence bench skipped: ${status.reason}`);
  process.exit(0);
}

const [batch, heads, seq, dim] = [1, 16, Number(args.seq), 128];
const shape = [batch, heads, seq, dim];
const count = batch * heads * seq * dim;
const before = deviceMemoryUse();
const random = new SeededRandom(3);
const inputs: Tensor[] = [];
for (let i = 0; i < 3; i++) {
  const host = Tensor.fromArray(random.normals(count), shape, { dtype: 'float16' });
  inputs.push(await host.to('cuda'));
}
const [q, k, v] = inputs;
const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(2);
console.log(`long sequence on ${status.devices[0].name}: B=${batch} Hq=${heads} N=${seq} D=${dim} float16, median of ${args.runs}`);
for (const pattern of ['dense', '2:4']) {
  let peakUsed = 0;
  const ms = await medianMs(async () => {
    const out = await attention(q, k, v, { pattern, backend: 'cuda' });
    await synchronize();
    peakUsed = Math.max(peakUsed, before.freeBytes - deviceMemoryUse().freeBytes);
    out.dispose();
  }, Number(args.runs));
  const tflops = (4 * batch * heads * seq * seq * dim) / (ms / 1e3) / 1e12;
  console.log(`${pattern.padStart(5)}  ${ms.toFixed(1)} ms  ${tflops.toFixed(1)} TFLOP/s  device memory held with inputs and output alive: ${gib(peakUsed)} GiB`);
}
for (const t of inputs) t.dispose();
