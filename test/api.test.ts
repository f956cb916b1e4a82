// The public TypeScript API: tensors, backend choice, every validation error path, and the staged pipeline
// through the public functions. Runs everywhere (the CPU backend); the CUDA paths are covered by gpu-*.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  attention,
  attentionBackward,
  attentionWithLse,
  backendInfo,
  compressedSoftmax,
  CompressedRows,
  DisposedTensorError,
  InvalidArgumentError,
  NoDeviceError,
  resolveBackend,
  sddmmPrune,
  spmm,
  Tensor,
  UnsupportedError,
} from '../src/index.js';
import { SeededRandom } from '../src/random.js';

const random = new SeededRandom(7);

function tensor(shape: number[], dtype: 'float16' | 'bfloat16' | 'float32' = 'float16'): Tensor {
  return Tensor.fromArray(random.normals(shape.reduce((a, b) => a * b, 1)), shape, { dtype });
}

function throwsArgument(fn: () => unknown, argument: string): void {
  assert.throws(fn, (e: unknown) => e instanceof InvalidArgumentError && e.argument === argument && e.message.startsWith(`${argument}: expected`));
}

async function rejectsArgument(promise: Promise<unknown>, argument: string): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, `expected an InvalidArgumentError, got ${String(e)}`);
    assert.equal(e.argument, argument, e.message);
    return true;
  });
}

test('Tensor.fromArray rounds numbers to the dtype and keeps the data private', async () => {
  const data = new Float32Array([1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, -0, 1e-8]);
  const t = Tensor.fromArray(data, [2, 3], { dtype: 'float16' });
  assert.deepEqual([...(await t.toFloat32Array())], [1, 1, 1 + 4 * 2 ** -11, Infinity, -0, 0]);
  data[0] = 5;
  assert.equal((await t.toFloat32Array())[0], 1, 'the tensor copied its data');
  const bits = await t.toRawArray();
  assert.ok(bits instanceof Uint16Array);
  assert.equal(bits[0], 0x3c00);
  const bf = Tensor.fromArray([1 + 2 ** -8], [1], { dtype: 'bfloat16' });
  assert.deepEqual([...(await bf.toFloat32Array())], [1]);
  const raw = Tensor.fromArray(new Uint16Array([0x3f80]), [1], { dtype: 'bfloat16' });
  assert.deepEqual([...(await raw.toFloat32Array())], [1]);
  assert.equal(Tensor.fromArray(new Float32Array(4), [4]).dtype, 'float32');
});

test('Tensor errors name the argument', () => {
  throwsArgument(() => Tensor.fromArray(new Float32Array(5), [2, 3]), 'data');
  throwsArgument(() => Tensor.fromArray(new Float32Array(6), [2, 0, 3]), 'shape');
  throwsArgument(() => Tensor.fromArray(new Float32Array(6), []), 'shape');
  throwsArgument(() => Tensor.fromArray(new Uint16Array(6), [6], { dtype: 'float32' }), 'options.dtype');
  throwsArgument(() => Tensor.fromArray(new Float32Array(6), [6], { dtype: 'int8' as never }), 'options.dtype');
  throwsArgument(() => Tensor.fromArray('abc' as never, [3]), 'data');
  throwsArgument(() => tensor([2, 3]).transpose(0, 2), 'b');
});

test('transpose views the same storage with swapped strides', async () => {
  const t = Tensor.fromArray([0, 1, 2, 3, 4, 5], [2, 3], { dtype: 'float32' });
  const v = t.transpose(0, 1);
  assert.deepEqual(v.shape, [3, 2]);
  assert.deepEqual(v.strides, [1, 3]);
  assert.deepEqual([...(await v.toFloat32Array())], [0, 3, 1, 4, 2, 5]);
  v.dispose();
  assert.ok(t.disposed, 'disposing a view frees the storage of every view');
});

test('disposed and foreign tensors are refused', async () => {
  const q = tensor([1, 1, 4, 8]);
  const k = tensor([1, 1, 4, 8]);
  const v = tensor([1, 1, 4, 8]);
  k.dispose();
  k.dispose(); // a second dispose does nothing
  await assert.rejects(attention(q, k, v), DisposedTensorError);
  await assert.rejects(k.toFloat32Array(), DisposedTensorError);
  const kFresh = tensor([1, 1, 4, 8]);
  {
    using scoped = tensor([1, 1, 4, 8]);
    assert.equal(scoped.disposed, false);
    await attention(q, kFresh, scoped);
    assert.ok(scoped.device === 'cpu');
  }
  const foreign = { shape: [1, 1, 4, 8], strides: [32, 32, 8, 1], dtype: 'float16', device: 'cpu' };
  await rejectsArgument(attention(q, kFresh, foreign as never), 'v');
  const posing = Object.create(Tensor.prototype);
  await rejectsArgument(attention(posing, kFresh, v), 'q');
});

test('attention validates shapes, dtypes and options', async () => {
  const q = tensor([2, 4, 5, 8]);
  const k = tensor([2, 2, 6, 8]);
  const v = tensor([2, 2, 6, 3]);
  await rejectsArgument(attention(tensor([4, 5, 8]), k, v), 'q.shape');
  await rejectsArgument(attention(q, tensor([1, 2, 6, 8]), v), 'k.shape[0]');
  await rejectsArgument(attention(q, tensor([2, 2, 6, 4]), v), 'k.shape[3]');
  await rejectsArgument(attention(q, tensor([2, 3, 6, 8]), tensor([2, 3, 6, 3])), 'k.shape[1]');
  await rejectsArgument(attention(q, k, tensor([2, 1, 6, 3])), 'v.shape[1]');
  await rejectsArgument(attention(q, k, tensor([2, 2, 7, 3])), 'v.shape[2]');
  await rejectsArgument(attention(q, k, tensor([2, 2, 6, 3], 'bfloat16')), 'v.dtype');
  await rejectsArgument(attention(q, k, v, { pattern: '4:4' }), 'options.pattern');
  await rejectsArgument(attention(q, k, v, { pattern: '2:16' }), 'options.pattern');
  await rejectsArgument(attention(q, k, v, { pattern: 'sparse' }), 'options.pattern');
  await rejectsArgument(attention(q, k, v, { causal: 1 as never }), 'options.causal');
  await rejectsArgument(attention(q, k, v, { scale: Number.NaN }), 'options.scale');
  await rejectsArgument(attention(q, k, v, { backend: 'gpu' as never }), 'options.backend');
  await rejectsArgument(attention(q, k, v, { seqlensK: [6] }), 'options.seqlensK');
  await rejectsArgument(attention(q, k, v, { seqlensK: [6, 7] }), 'options.seqlensK[1]');
  await rejectsArgument(attention(q, k, v, { seqlensQ: [1.5, 2] }), 'options.seqlensQ[0]');
  await rejectsArgument(attention(q, k, v, { causl: true } as never), 'options.causl');
  await rejectsArgument(attention(q, k, v, { pipeline: 'paper' as never }), 'options.pipeline');
  await assert.rejects(attentionWithLse(q, k, v, { pipeline: 'Staged' as never }), (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError);
    assert.match(e.message, /^options\.pipeline: expected 'fused' or 'staged', got /);
    return true;
  });
  await rejectsArgument(attention(q, k, v, 'dense' as never), 'options');
  const meta = Tensor.fromArray(new Uint32Array(2 * 4 * 5 * 8), [2, 4, 5, 8], { dtype: 'uint32' });
  await rejectsArgument(attention(meta, k, v), 'q.dtype');
  const padded = Tensor.fromArray(new Float32Array(2 * 6 * 2 * 16), [2, 6, 2, 16], { dtype: 'float16' });
  // Every other element of the last dimension: a view whose rows are not contiguous.
  const strided = new Tensor(padded.storage, [2, 2, 6, 8], [192, 16, 32, 2]);
  await rejectsArgument(attention(q, strided, v), 'k.strides[3]');
});

test('backend choice: auto runs where it can, cuda where it cannot is an error', async () => {
  const info = backendInfo();
  const q = tensor([1, 2, 5, 8]);
  const k = tensor([1, 2, 5, 8]);
  const v = tensor([1, 2, 5, 8]);
  assert.equal(resolveBackend('cpu'), 'cpu');
  if (!info.cuda.available) {
    assert.equal(info.auto, 'cpu');
    assert.equal(resolveBackend('auto'), 'cpu');
    assert.throws(() => resolveBackend('cuda'), NoDeviceError);
    await assert.rejects(attention(q, k, v, { backend: 'cuda' }), (e: unknown) => e instanceof NoDeviceError && /cannot run here/.test(e.message));
  } else {
    assert.equal(info.auto, 'cuda');
    // A pattern libdfss does not implement runs on the CPU under auto, and is refused under cuda.
    const out = await attention(q, k, v, { pattern: '3:8' });
    assert.equal(out.device, 'cpu');
    await assert.rejects(attention(q, k, v, { pattern: '3:8', backend: 'cuda' }), UnsupportedError);
  }
  const out = await attention(q, k, v, { pattern: '2:4' });
  assert.deepEqual(out.shape, [1, 2, 5, 8]);
  assert.equal(out.dtype, 'float16');
  assert.equal(out.device, 'cpu', 'results come back to the device of the inputs');
});

test('the staged pipeline through the public API equals fused attention with the staged rounding', async () => {
  for (const pattern of ['2:4', '1:2', '3:8', 'dense']) {
    const q = tensor([2, 4, 9, 16], 'float32');
    const k = tensor([2, 2, 11, 16], 'float32');
    // Keys 7 .. 10 of batch entry 1 are padding (seqlensK): NaN in v there must reach neither path.
    const values = await tensor([2, 2, 11, 5], 'float32').toFloat32Array();
    for (let h = 0; h < 2; h++) values.fill(Number.NaN, ((2 + h) * 11 + 7) * 5, (2 + h + 1) * 11 * 5);
    const v = Tensor.fromArray(values, [2, 2, 11, 5], { dtype: 'float32' });
    const options = { pattern, causal: true, seqlensK: [11, 7] };
    const fused = await attentionWithLse(q, k, v, options);
    const scores = await sddmmPrune(q, k, options);
    assert.ok(scores instanceof CompressedRows);
    assert.equal(scores.lse, null);
    assert.deepEqual([...scores.seqlensK!], [11, 7], 'the rows carry their key lengths');
    const probs = await compressedSoftmax(scores);
    assert.deepEqual([...probs.seqlensK!], [11, 7]);
    const out = await spmm(probs, v);
    // float32 everywhere: the staged scores are not rounded, so the two paths agree to float32 rounding.
    const a = await out.toFloat32Array();
    const b = await fused.out.toFloat32Array();
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-6 + 1e-5 * Math.abs(b[i]), `${pattern} out[${i}]: ${a[i]} vs ${b[i]}`);
    const la = await probs.lse!.toFloat32Array();
    const lb = await fused.lse.toFloat32Array();
    for (let i = 0; i < la.length; i++) assert.ok(la[i] === lb[i] || Math.abs(la[i] - lb[i]) <= 1e-5 * Math.max(1, Math.abs(lb[i])), `${pattern} lse[${i}]`);
    scores.dispose();
    assert.ok(scores.values.disposed);
  }
});

test("options.pipeline 'staged' on the CPU: the three staged steps, the fused results within a rounding", async () => {
  const q = tensor([2, 4, 9, 16]);
  const k = tensor([2, 2, 11, 16]);
  const v = tensor([2, 2, 11, 5]);
  const dout = tensor([2, 4, 9, 5]);
  for (const pattern of ['2:4', '1:2', '3:8', 'dense']) {
    const options = { pattern, causal: true, seqlensK: [11, 7], backend: 'cpu' as const };
    const fused = await attentionWithLse(q, k, v, options);
    const staged = await attentionWithLse(q, k, v, { ...options, pipeline: 'staged' });
    const scores = await sddmmPrune(q, k, options);
    const probs = await compressedSoftmax(scores, { backend: 'cpu' });
    const steps = await spmm(probs, v, { backend: 'cpu' });
    assert.deepEqual(await staged.out.toRawArray(), await steps.toRawArray(), `${pattern}: the staged steps' out`);
    assert.deepEqual(await staged.lse.toFloat32Array(), await probs.lse!.toFloat32Array(), `${pattern}: their lse`);
    const explicitlyFused = await attention(q, k, v, { ...options, pipeline: 'fused' });
    assert.deepEqual(await explicitlyFused.toRawArray(), await fused.out.toRawArray(), `${pattern}: the default`);

    // The staged scores are rounded to float16 (half an ulp, 2^-11 relative) before the softmax: lse moves by at
    // most that much of the largest score, out by about one float16 rounding.
    const kept = (await scores.values.toFloat32Array()).filter(Number.isFinite);
    const lseBound = 2 ** -11 * Math.max(...kept.map(Math.abs)) + 1e-5;
    const [a, b] = [await staged.out.toFloat32Array(), await fused.out.toFloat32Array()];
    for (let i = 0; i < a.length; i++) {
      assert.ok(Math.abs(a[i] - b[i]) <= 2e-3 + 4e-3 * Math.abs(b[i]), `${pattern} out[${i}]: ${a[i]} vs ${b[i]}`);
    }
    const [la, lb] = [await staged.lse.toFloat32Array(), await fused.lse.toFloat32Array()];
    for (let i = 0; i < la.length; i++) {
      assert.ok(la[i] === lb[i] || Math.abs(la[i] - lb[i]) <= lseBound, `${pattern} lse[${i}]: ${la[i]} vs ${lb[i]}`);
    }

    // The backward takes the forward's options, pipeline included: both pipelines share the fused backward.
    const backward = (pipeline: unknown) =>
      attentionBackward(q, k, v, fused.out, dout, fused.lse, { ...options, pipeline: pipeline as 'staged' });
    const [want, got] = [await backward(undefined), await backward('staged')];
    for (const name of ['dq', 'dk', 'dv'] as const) {
      assert.deepEqual(await got[name].toRawArray(), await want[name].toRawArray(), `${pattern}: ${name}`);
    }
    await rejectsArgument(backward(''), 'options.pipeline');
  }
});

test('staged functions validate what they are given', async () => {
  const q = tensor([1, 2, 4, 8]);
  const k = tensor([1, 2, 8, 8]);
  const scores = await sddmmPrune(q, k, { pattern: '2:4' });
  await rejectsArgument(compressedSoftmax({} as never), 'scores');
  await rejectsArgument(compressedSoftmax(scores, { pattern: '2:4' } as never), 'options.pattern');
  const probs = await compressedSoftmax(scores);
  await rejectsArgument(spmm(probs, tensor([1, 2, 9, 8])), 'v.shape[2]');
  await rejectsArgument(spmm(probs, tensor([2, 2, 8, 8])), 'v.shape[0]');
  await rejectsArgument(spmm(probs, tensor([1, 3, 8, 8])), 'v.shape[1]');
  await rejectsArgument(spmm(probs, tensor([1, 2, 8, 8], 'float32')), 'v.dtype');
  const tooLong = new CompressedRows(probs.values, probs.metadata, probs.pattern, probs.seqK, null, Int32Array.from([9]));
  await rejectsArgument(spmm(tooLong, tensor([1, 2, 8, 8])), 'probs.seqlensK[0]');
  probs.metadata!.dispose();
  await assert.rejects(spmm(probs, tensor([1, 2, 8, 8])), DisposedTensorError);
});

test('options are checked on every call: a pattern accepted before lets no bad one through, a new one takes effect', async () => {
  const q = tensor([1, 2, 6, 8], 'float32');
  const k = tensor([1, 2, 8, 8], 'float32');
  const v = tensor([1, 2, 8, 4], 'float32');
  const run = async (pattern: string) => [...(await (await attention(q, k, v, { pattern })).toFloat32Array())];
  const twoFour = await run('2:4');
  await rejectsArgument(attention(q, k, v, { pattern: '2:4x' }), 'options.pattern');
  const oneTwo = await run('1:2');
  assert.notDeepEqual(oneTwo, twoFour, '1:2 keeps other keys than 2:4');
  assert.deepEqual(await run(' 2:4 '), twoFour);
  assert.deepEqual(await run('2:4'), twoFour);
  await rejectsArgument(attention(q, k, v, { pattern: '2:4x' }), 'options.pattern');
  await rejectsArgument(attention(q, k, v, { pattern: 7 as never }), 'options.pattern');
});

test('operands in [B, N, H, D] buffers (transposed views) give what contiguous copies give', async () => {
  const [B, N, H, D] = [2, 6, 3, 4];
  const views = ['q', 'k', 'v'].map(() => tensor([B, N, H, D], 'float32').transpose(1, 2));
  const copies = await Promise.all(views.map(async (t) => Tensor.fromArray(await t.toFloat32Array(), t.shape, { dtype: 'float32' })));
  const options = { pattern: '2:4', causal: true };
  const fromViews = await attention(views[0], views[1], views[2], options);
  const fromCopies = await attention(copies[0], copies[1], copies[2], options);
  assert.deepEqual([...(await fromViews.toFloat32Array())], [...(await fromCopies.toFloat32Array())]);
  assert.deepEqual(views[0].strides, [N * H * D, D, H * D, 1], 'the caller\'s view keeps its strides');
});
