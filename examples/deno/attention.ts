// dfss from Deno: `deno run --allow-read --allow-env --allow-ffi examples/deno/attention.ts` in a checkout, after
// `make` (koffi, from node_modules, loads libdfss). Deno has Float16Array: float16 tensors are made from one and give one back.
import { Tensor, attention, backendInfo } from 'dfss';

const [B, H, N, D] = [1, 4, 256, 64];
const count = B * H * N * D;
// Multiples of 1/8 in [-1, 1] (exact in float16); the other examples use the same inputs.
const input = (seed: number) => Float16Array.from({ length: count }, (_, i) => (((i * 37 + seed) % 17) - 8) / 8);

// `using` disposes each tensor (its host or GPU memory) at the end of the scope.
using q = Tensor.fromArray(input(1), [B, H, N, D]); // float16, from the Float16Array
using k = Tensor.fromArray(input(2), [B, H, N, D]);
using v = Tensor.fromArray(input(3), [B, H, N, D]);

// 2:4 pattern, causal; on the GPU where there is one (backend 'auto'), else on the CPU.
using out = await attention(q, k, v, { pattern: '2:4', causal: true });
const values = (await out.toTypedArray()) as Float16Array; // row-major [B, H, N, D]

const last = [...values.subarray((N - 1) * D, (N - 1) * D + 4)].map((x) => x.toFixed(4)).join(' ');
console.log(`backend ${backendInfo().auto}`);
console.log(`out [${out.shape.join(', ')}], out[0, 0, ${N - 1}, :4] = ${last}`);
console.log(`mean |out| ${(values.reduce((sum, x) => sum + Math.abs(x), 0) / count).toFixed(6)}`);
