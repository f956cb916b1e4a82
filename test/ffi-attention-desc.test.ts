// NativeAttentionDesc (ffi/attention-desc.ts): the descriptor the CUDA backend writes in native memory and passes
// as a pointer. It must read back, field for field, as koffi lays out the header's struct, carry the per-batch
// lengths, and get from the library exactly the answers that the same descriptor passed as an object gets.
// Skipped where libdfss was not built.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import koffi from 'koffi';

import { type AttentionDescShape, NativeAttentionDesc } from '../ffi/attention-desc.js';
import {
  type AttentionDesc,
  type AttentionDescArgument,
  DFSS_DTYPE_BFLOAT16,
  DFSS_ERROR_NO_DEVICE,
  DFSS_PATTERN_1_2,
  DFSS_SUCCESS,
} from '../ffi/dfss.js';
import { InvalidArgumentError } from '../src/errors.js';
import { lib, notBuilt } from './support/library.js';

/** bfloat16 1:2 causal, B = 2, Hq = 4, Hk = 2, Nq = 5, Nk = 7, D = 16, Dv = 8; out laid out [B, Nq, Hq, Dv]. */
const SHAPE: AttentionDescShape = {
  causal: true,
  batch: 2,
  headsQ: 4,
  headsKv: 2,
  seqQ: 5,
  seqK: 7,
  headDim: 16,
  headDimV: 8,
  scale: 0.3,
  qStrides: [320, 80, 16, 1],
  kStrides: [224, 112, 16, 1],
  vStrides: [112, 56, 8, 1],
  outStrides: [160, 8, 32, 1],
  seqlensQ: null,
  seqlensK: null,
};

/** The same descriptor as the object koffi marshals. */
function objectDesc(shape: AttentionDescShape, dtype = DFSS_DTYPE_BFLOAT16, pattern = DFSS_PATTERN_1_2): AttentionDesc {
  return {
    struct_size: koffi.sizeof(lib!.types.dfss_attention_desc),
    dtype,
    pattern,
    causal: shape.causal ? 1 : 0,
    batch: shape.batch,
    heads_q: shape.headsQ,
    heads_kv: shape.headsKv,
    seq_q: shape.seqQ,
    seq_k: shape.seqK,
    head_dim: shape.headDim,
    head_dim_v: shape.headDimV,
    q_strides: Array.from(shape.qStrides),
    k_strides: Array.from(shape.kStrides),
    v_strides: Array.from(shape.vStrides),
    out_strides: Array.from(shape.outStrides),
    scale: shape.scale,
    reserved0: 0,
    seqlens_q: shape.seqlensQ,
    seqlens_k: shape.seqlensK,
    stream: null,
  };
}

/** The struct behind `pointer` as koffi decodes it, int64 fields as numbers, lengths read through their pointers. */
function readBack(pointer: unknown) {
  const raw = koffi.decode(pointer, lib!.types.dfss_attention_desc) as Record<string, unknown>;
  const lengths = (address: unknown, count: number) => (address === null ? null : [...(koffi.decode(address, 'int32_t', count) as Int32Array)]);
  const batch = Number(raw.batch);
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (name.endsWith('_strides')) fields[name] = Array.from(value as ArrayLike<number | bigint>, Number);
    else if (typeof value === 'bigint') fields[name] = Number(value);
    else fields[name] = value;
  }
  fields.seqlens_q = lengths(raw.seqlens_q, batch);
  fields.seqlens_k = lengths(raw.seqlens_k, batch);
  return fields;
}

function expected(shape: AttentionDescShape): Record<string, unknown> {
  const desc = objectDesc(shape);
  return {
    ...desc,
    scale: Math.fround(shape.scale),
    seqlens_q: shape.seqlensQ && [...shape.seqlensQ],
    seqlens_k: shape.seqlensK && [...shape.seqlensK],
  };
}

/** dfss_compressed_row_size's status, message and sizes for a descriptor. */
function rowSize(desc: AttentionDescArgument) {
  const values = new BigInt64Array(1);
  const words = new BigInt64Array(1);
  const status = lib!.dfss_compressed_row_size(desc, values, words);
  return { status, message: lib!.dfss_last_error_message(), values: values[0], words: words[0] };
}

/** dfss_attention_staged_workspace_size's status, message and bytes for a descriptor. */
function stagedWorkspaceSize(desc: AttentionDescArgument) {
  const bytes = new BigUint64Array(1);
  const status = lib!.dfss_attention_staged_workspace_size(desc, bytes);
  return { status, message: lib!.dfss_last_error_message(), bytes: bytes[0] };
}

/** dfss_attention_forward's status and message for a descriptor, on made-up device addresses. */
function forward(desc: AttentionDescArgument) {
  const status = lib!.dfss_attention_forward(desc, 0x10000n, 0x20000n, 0x30000n, 0x40000n, null);
  return { status, message: lib!.dfss_last_error_message() };
}

function deviceCount(): number {
  const count: [number] = [-1];
  return lib!.dfss_device_count(count) === DFSS_SUCCESS ? count[0] : 0;
}

describe('NativeAttentionDesc', { skip: notBuilt }, () => {
  test('reads back field for field as koffi lays out dfss_attention_desc', () => {
    const native = new NativeAttentionDesc(lib!);
    const pointer = native.write(DFSS_DTYPE_BFLOAT16, DFSS_PATTERN_1_2, SHAPE);
    assert.equal(pointer, native.pointer);
    assert.deepEqual(readBack(pointer), expected(SHAPE));
  });

  test('int64 fields past 32 bits and negative ones are written exactly; every write replaces every field', () => {
    const native = new NativeAttentionDesc(lib!);
    const big: AttentionDescShape = {
      ...SHAPE,
      causal: false,
      seqK: 2 ** 32 + 3,
      headDim: -5,
      qStrides: [2 ** 53 - 1, 2 ** 40 + 7, 2 ** 32, 1],
      kStrides: [-(2 ** 33) - 1, -1, 0, 1],
    };
    native.write(DFSS_DTYPE_BFLOAT16, DFSS_PATTERN_1_2, { ...SHAPE, seqlensQ: new Int32Array([1, 2]) });
    assert.deepEqual(readBack(native.write(DFSS_DTYPE_BFLOAT16, DFSS_PATTERN_1_2, big)), expected(big));
  });

  test('per-batch lengths are copied behind the struct, the caller\'s arrays left alone; a larger batch makes room', () => {
    const native = new NativeAttentionDesc(lib!);
    const seqlensQ = new Int32Array([5, 3]);
    const seqlensK = new Int32Array([7, 0]);
    const withLengths = { ...SHAPE, seqlensQ, seqlensK };
    assert.deepEqual(readBack(native.write(DFSS_DTYPE_BFLOAT16, DFSS_PATTERN_1_2, withLengths)), expected(withLengths));
    assert.deepEqual([...seqlensQ, ...seqlensK], [5, 3, 7, 0]);
    const batch = 1000;
    const many = {
      ...SHAPE,
      batch,
      seqlensQ: Int32Array.from({ length: batch }, (_, b) => b % 6),
      seqlensK: Int32Array.from({ length: batch }, (_, b) => (b * 3) % 8),
    };
    assert.deepEqual(readBack(native.write(DFSS_DTYPE_BFLOAT16, DFSS_PATTERN_1_2, many)), expected(many));
    const onlyK = { ...SHAPE, seqlensK };
    assert.deepEqual(readBack(native.write(DFSS_DTYPE_BFLOAT16, DFSS_PATTERN_1_2, onlyK)), expected(onlyK));
  });

  test('the library gives the native descriptor the answers it gives the object, good and bad', () => {
    const native = new NativeAttentionDesc(lib!);
    // [case, whether the descriptor is valid, what the forward's message names where it is not]
    const cases: [string, AttentionDescShape, RegExp | null][] = [
      ['valid', SHAPE, null],
      ['valid with lengths', { ...SHAPE, seqlensQ: new Int32Array([5, 0]), seqlensK: new Int32Array([1, 7]) }, null],
      ['head_dim 0', { ...SHAPE, headDim: 0 }, /\bhead_dim\b/],
      ['heads_kv 3', { ...SHAPE, headsKv: 3 }, /\bheads_kv\b/],
      ['a key length past seq_k', { ...SHAPE, seqlensK: new Int32Array([7, 8]) }, /seqlens_k\[1\]/],
      ['column stride 2', { ...SHAPE, vStrides: [112, 56, 8, 2] }, /\bv_strides\b/],
    ];
    for (const [name, shape, names] of cases) {
      const object = objectDesc(shape);
      const fromObject = { rowSize: rowSize(object), staged: stagedWorkspaceSize(object), forward: forward(object) };
      const fromNative = {
        rowSize: rowSize(native.write(DFSS_DTYPE_BFLOAT16, DFSS_PATTERN_1_2, shape)),
        staged: stagedWorkspaceSize(native.pointer),
        forward: forward(native.pointer),
      };
      assert.deepEqual(fromNative, fromObject, name);
      if (names === null) assert.equal(fromObject.rowSize.status, DFSS_SUCCESS, `${name}: ${fromObject.rowSize.message}`);
      else assert.match(fromObject.forward.message, names, name);
    }
    // Nk = 7 keys in 4 groups of 2, one kept per group, 1 bit of metadata each: 4 values in 1 word.
    const sizes = rowSize(native.write(DFSS_DTYPE_BFLOAT16, DFSS_PATTERN_1_2, SHAPE));
    assert.deepEqual([sizes.values, sizes.words], [4n, 1n]);
  });

  test('without a GPU, a valid descriptor gets past every host check of the forwards to NO_DEVICE', { skip: deviceCount() > 0 && 'a GPU is present' }, () => {
    const native = new NativeAttentionDesc(lib!);
    const pointer = native.write(DFSS_DTYPE_BFLOAT16, DFSS_PATTERN_1_2, { ...SHAPE, seqlensQ: new Int32Array([5, 2]) });
    const status = lib!.dfss_attention_forward(pointer, 0x10000n, 0x20000n, 0x30000n, 0x40000n, null);
    assert.equal(status, DFSS_ERROR_NO_DEVICE, lib!.dfss_last_error_message());
    const { bytes } = stagedWorkspaceSize(pointer);
    const staged = lib!.dfss_attention_staged(pointer, 0x10000n, 0x20000n, 0x30000n, 0x40000n, null, 0x50000n, bytes);
    assert.equal(staged, DFSS_ERROR_NO_DEVICE, lib!.dfss_last_error_message());
    // The same call with a NULL q is refused before the device is looked for, naming q.
    const refused = lib!.dfss_attention_forward(pointer, null, 0x20000n, 0x30000n, 0x40000n, null);
    assert.notEqual(refused, DFSS_ERROR_NO_DEVICE);
    assert.match(lib!.dfss_last_error_message(), /\bq\b/);
  });

  test('without a GPU, dfss_spmm checks the key lengths it reads: one past seq_k is refused, naming it', { skip: deviceCount() > 0 && 'a GPU is present' }, () => {
    const native = new NativeAttentionDesc(lib!);
    const spmm = (seqlensK: Int32Array) => {
      const pointer = native.write(DFSS_DTYPE_BFLOAT16, DFSS_PATTERN_1_2, { ...SHAPE, seqlensK });
      return { status: lib!.dfss_spmm(pointer, 0x10000n, 0x20000n, 0x30000n, 0x40000n), message: lib!.dfss_last_error_message() };
    };
    const refused = spmm(new Int32Array([7, 8]));
    assert.notEqual(refused.status, DFSS_ERROR_NO_DEVICE);
    assert.match(refused.message, /seqlens_k\[1\]/);
    const valid = spmm(new Int32Array([7, 3]));
    assert.equal(valid.status, DFSS_ERROR_NO_DEVICE, valid.message);
  });

  test('sizes that are not safe integers, and strides that are not four, are refused naming the field', () => {
    const native = new NativeAttentionDesc(lib!);
    const refused = (shape: AttentionDescShape, argument: string) =>
      assert.throws(
        () => native.write(DFSS_DTYPE_BFLOAT16, DFSS_PATTERN_1_2, shape),
        (e: unknown) => e instanceof InvalidArgumentError && e.argument === argument,
        argument,
      );
    refused({ ...SHAPE, seqQ: 1.5 }, 'desc.seq_q');
    refused({ ...SHAPE, batch: 2 ** 53 }, 'desc.batch');
    refused({ ...SHAPE, headDimV: Number.NaN }, 'desc.head_dim_v');
    refused({ ...SHAPE, outStrides: [1, 2, 3] }, 'desc.out_strides');
    refused({ ...SHAPE, kStrides: [1, 2, 0.5, 1] }, 'desc.k_strides');
  });
});
