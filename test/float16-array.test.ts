// Float16Array where the runtime has one (Bun, Deno; Node.js from version 24): float16 tensors are made from one
// without a conversion and give one back. Under Bun and Deno the runtime must have it, so these tests never skip
// there; under a Node.js without it they are skipped, saying so.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { attention, Tensor } from '../src/index.js';
import { currentRuntime } from '../src/cli/runtime.js';

// The compiler's lib (ES2023) has no Float16Array type: the runtime's constructor, typed as much as used here.
interface Float16ArrayLike extends ArrayLike<number> {
  [index: number]: number;
  readonly buffer: ArrayBufferLike;
  readonly byteOffset: number;
  subarray(begin: number, end?: number): Float16ArrayLike;
}
type Float16ArrayConstructor = new (values: ArrayLike<number>) => Float16ArrayLike;
const Float16Array = (globalThis as { Float16Array?: Float16ArrayConstructor }).Float16Array!;
/** A Float16Array where Tensor.fromArray takes one. */
const data = (array: Float16ArrayLike) => array as unknown as Parameters<typeof Tensor.fromArray>[0];
const bitsOf = (array: unknown) => {
  const { buffer, byteOffset, length } = array as Float16ArrayLike;
  return Array.from(new Uint16Array(buffer, byteOffset, length));
};
const runtime = currentRuntime();
const skip = typeof Float16Array !== 'function' && runtime.name === 'Node.js' ? `${runtime.name} ${runtime.version} has no Float16Array` : false;

test('Bun and Deno have Float16Array', { skip: runtime.name === 'Node.js' ? 'runs under Bun and Deno' : false }, () => {
  assert.equal(typeof Float16Array, 'function', `${runtime.name} ${runtime.version}`);
});

test('a Float16Array makes a float16 tensor with the same bits, copied', { skip }, async () => {
  const values = new Float16Array([1, -2.5, 65504, -0, Infinity, NaN, 2 ** -24, 0.1]);
  const bits = bitsOf(values);
  const tensor = Tensor.fromArray(data(values), [2, 4]);
  assert.equal(tensor.dtype, 'float16');
  values[0] = 7; // the tensor holds a copy
  assert.deepEqual(Array.from(await tensor.toRawArray()), bits);
  const back = await tensor.toTypedArray();
  assert.ok(back instanceof Float16Array, `toTypedArray gave ${back.constructor.name}`);
  assert.deepEqual(bitsOf(back), bits);
  tensor.dispose();
});

test('a Float16Array view with an offset, and a Float16Array rounded to bfloat16 or widened to float32', { skip }, async () => {
  const whole = new Float16Array([9, 1.5, 0.333, -3, 9]);
  const view = data(whole.subarray(1, 4));
  const f16 = Tensor.fromArray(view, [3]);
  assert.deepEqual(Array.from(await f16.toFloat32Array()), [1.5, Number(whole[2]), -3]);
  const bf16 = Tensor.fromArray(view, [3], { dtype: 'bfloat16' });
  assert.equal(bf16.dtype, 'bfloat16');
  // 0.333 in float16 is 0.3330078125, halfway between the bfloat16 neighbours 0.33203125 and 0.333984375:
  // rounding to nearest even takes the first.
  assert.deepEqual(Array.from(await bf16.toFloat32Array()), [1.5, 0.33203125, -3]);
  assert.ok(!((await bf16.toTypedArray()) instanceof Float16Array), 'bfloat16 comes back as Uint16Array bits');
  const f32 = Tensor.fromArray(view, [3], { dtype: 'float32' });
  assert.deepEqual(Array.from(await f32.toFloat32Array()), [1.5, Number(whole[2]), -3]);
  for (const t of [f16, bf16, f32]) t.dispose();
});

test('attention of tensors made from Float16Arrays gives a Float16Array back', { skip }, async () => {
  const n = 4 * 8;
  const values = (seed: number) => new Float16Array(Array.from({ length: n }, (_, i) => (((i * 5 + seed) % 9) - 4) / 4));
  const [q, k, v] = [1, 2, 3].map((seed) => Tensor.fromArray(data(values(seed)), [1, 1, 4, 8]));
  const out = await attention(q, k, v, { pattern: '2:4', backend: 'cpu' });
  const half = await out.toTypedArray();
  assert.ok(half instanceof Float16Array);
  assert.deepEqual(Array.from(half), Array.from(await out.toFloat32Array()));
  // The same problem from float32 numbers: the same result.
  const [q32, k32, v32] = [1, 2, 3].map((seed) => Tensor.fromArray(Float32Array.from(values(seed)), [1, 1, 4, 8], { dtype: 'float16' }));
  const out32 = await attention(q32, k32, v32, { pattern: '2:4', backend: 'cpu' });
  assert.deepEqual(Array.from(await out32.toRawArray()), Array.from(await out.toRawArray()));
  for (const t of [q, k, v, out, q32, k32, v32, out32]) t.dispose();
});
