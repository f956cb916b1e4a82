// The built libdfss.so loaded through ffi/, as every TypeScript caller loads it: version, status strings,
// descriptor defaults and argument errors everywhere; on a machine without a GPU, the clean "no device"
// answers (sync and async). Skipped, saying why, where the library was not built.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import koffi from 'koffi';

import { DFSS_ENUMS, DFSS_PROTOTYPES } from '../ffi/dfss-header.js';
import { locateLibrary } from '../ffi/library-path.js';
import {
  DFSS_ABI_VERSION,
  DFSS_DTYPE_BFLOAT16,
  DFSS_DTYPE_FLOAT16,
  DFSS_ERROR_INVALID_ARGUMENT,
  DFSS_ERROR_NO_DEVICE,
  DFSS_PATTERN_2_4,
  DFSS_SUCCESS,
  DFSS_VERSION_MAJOR,
  DFSS_VERSION_MINOR,
  DFSS_VERSION_PATCH,
  type Address,
  type AttentionDesc,
  type DfssLibrary,
} from '../ffi/dfss.js';
import { NativeError } from '../src/errors.js';
import { lib, notBuilt } from './support/library.js';


function deviceCount(): number {
  const count: [number] = [-1];
  const status = lib!.dfss_device_count(count);
  return status === DFSS_SUCCESS ? count[0] : 0;
}
const gpus = lib === null ? 0 : deviceCount();
const gpuPresent = gpus > 0 ? `${gpus} GPU(s) present: the no-device answers cannot be observed here` : false;

/** A float16 2:4 descriptor [B=2, Hq=4, Hk=2, Nq=5, Nk=7, D=16, Dv=8] from dfss_attention_desc_init. */
function initDesc(): AttentionDesc {
  const desc: Partial<AttentionDesc> = {};
  lib!.check(lib!.dfss_attention_desc_init(desc, DFSS_DTYPE_FLOAT16, DFSS_PATTERN_2_4, 2, 4, 2, 5, 7, 16, 8), 'init');
  return desc as AttentionDesc;
}

/** dfss_attention_staged_workspace_size of a descriptor, checked. */
function stagedWorkspaceBytes(desc: AttentionDesc): number {
  const bytes: [number] = [0];
  lib!.check(lib!.dfss_attention_staged_workspace_size(desc, bytes), 'dfss_attention_staged_workspace_size');
  return Number(bytes[0]);
}

// q, k, v, out, lse, workspace of dfss_attention_staged: distinct, aligned, made-up device addresses
const [q, k, v, out, lse, workspace] = Array.from({ length: 6 }, (_, i) => BigInt(0x100000 + i * 0x10000));

/** Asserts that `error` is the NativeError of status `status` whose message mentions `mention`. */
function isNativeError(status: string, mention: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof NativeError, `expected a NativeError, got ${String(error)}`);
    assert.equal(error.status, status);
    assert.match(error.message, mention);
    return true;
  };
}

describe('libdfss through ffi/ (any machine)', { skip: notBuilt }, () => {
  test('loads from the place ffi/library-path.ts chose, with every function and its async variant', () => {
    assert.equal(lib!.path, locateLibrary().chosen);
    for (const [name, prototype] of Object.entries(DFSS_PROTOTYPES) as [keyof DfssLibrary, string][]) {
      assert.equal(typeof lib![name], 'function', name);
      const async = lib!.async as unknown as Record<string, unknown>;
      assert.equal(typeof async[name], prototype.startsWith('dfss_status ') ? 'function' : 'undefined', name);
    }
  });

  test('version and ABI version are the header macros', () => {
    assert.equal(lib!.dfss_version(), DFSS_VERSION_MAJOR * 10000 + DFSS_VERSION_MINOR * 100 + DFSS_VERSION_PATCH);
    assert.equal(lib!.dfss_abi_version(), DFSS_ABI_VERSION);
  });

  test('every status has a string that starts with its name; unknown ones still get a string', () => {
    for (const [name, value] of Object.entries(DFSS_ENUMS.dfss_status)) {
      assert.ok(lib!.dfss_status_string(value).startsWith(name), `${name}: ${lib!.dfss_status_string(value)}`);
      assert.equal(lib!.statusName(value), name);
    }
    assert.equal(typeof lib!.dfss_status_string(12345), 'string');
    assert.ok(lib!.dfss_status_string(12345).length > 0);
  });

  test('dfss_attention_desc_init fills the defaults of packed [B, H, N, D] tensors', () => {
    const desc = initDesc();
    assert.equal(desc.struct_size, koffi.sizeof(lib!.types.dfss_attention_desc));
    assert.deepEqual(
      { dtype: desc.dtype, pattern: desc.pattern, causal: desc.causal, reserved0: desc.reserved0 },
      { dtype: DFSS_DTYPE_FLOAT16, pattern: DFSS_PATTERN_2_4, causal: 0, reserved0: 0 },
    );
    assert.deepEqual(
      [desc.batch, desc.heads_q, desc.heads_kv, desc.seq_q, desc.seq_k, desc.head_dim, desc.head_dim_v],
      [2, 4, 2, 5, 7, 16, 8],
    );
    assert.deepEqual([...(desc.q_strides as BigInt64Array)], [4n * 5n * 16n, 5n * 16n, 16n, 1n]);
    assert.deepEqual([...(desc.k_strides as BigInt64Array)], [2n * 7n * 16n, 7n * 16n, 16n, 1n]);
    assert.deepEqual([...(desc.v_strides as BigInt64Array)], [2n * 7n * 8n, 7n * 8n, 8n, 1n]);
    assert.deepEqual([...(desc.out_strides as BigInt64Array)], [4n * 5n * 8n, 5n * 8n, 8n, 1n]);
    assert.equal(desc.scale, Math.fround(1 / Math.sqrt(16)));
    assert.deepEqual([desc.seqlens_q, desc.seqlens_k, desc.stream], [null, null, null]);
  });

  test('dfss_compressed_row_size of a valid descriptor: C = ceil(Nk / M) * N values, W words', () => {
    const values: [number] = [-1];
    const words: [number] = [-1];
    lib!.check(lib!.dfss_compressed_row_size(initDesc(), values, words), 'compressed_row_size');
    // Nk = 7 keys in 2 groups of 4, 2 kept per group, 2 bits of metadata each: 4 values in 1 word.
    assert.deepEqual([values[0], words[0]], [4, 1]);
  });

  test('dfss_attention_staged_workspace_size: > 0, from sizes, dtype and pattern, growing with the rows', () => {
    const desc = initDesc();
    const bytes = stagedWorkspaceBytes(desc);
    assert.ok(bytes > 0);
    assert.equal(stagedWorkspaceBytes({ ...desc, causal: 1, seqlens_k: new Int32Array([7, 3]) }), bytes);
    // At least, per query row: C = 4 values of 2 bytes, W = 1 metadata word and a float32.
    const larger = stagedWorkspaceBytes({ ...desc, seq_q: 500 });
    assert.ok(larger > bytes && larger >= 2 * 4 * 500 * (4 * 2 + 4 + 4), `${larger} bytes for 500 query rows`);
    const status = lib!.dfss_attention_staged_workspace_size(desc, null as never);
    assert.throws(
      () => lib!.check(status, 'staged_workspace_size'),
      isNativeError('DFSS_ERROR_INVALID_ARGUMENT', /bytes: expected a pointer to a uint64_t, got NULL/),
    );
  });

  test('dfss_attention_staged: a missing, misaligned or short workspace is named, sync and async', async () => {
    const desc = initDesc();
    const bytes = stagedWorkspaceBytes(desc);
    const cases: [Address, number, RegExp][] = [
      [null, bytes, /workspace: expected a device pointer, got NULL/],
      [workspace + 8n, bytes, /workspace: expected an address that is a multiple of 16 bytes/],
      [workspace, bytes - 1, /workspace_bytes: expected at least \d+ \(dfss_attention_staged_workspace_size\), got /],
    ];
    for (const [given, size, mention] of cases) {
      const invalid = isNativeError('DFSS_ERROR_INVALID_ARGUMENT', mention);
      const args = [desc, q, k, v, out, lse, given, size] as const;
      assert.throws(() => lib!.check(lib!.dfss_attention_staged(...args), 'staged'), invalid);
      await assert.rejects(lib!.async.dfss_attention_staged(...args), invalid);
    }
  });

  const invalid: [string, (desc: AttentionDesc) => void][] = [
    ['head_dim', (desc) => (desc.head_dim = 0)],
    ['heads_kv', (desc) => (desc.heads_kv = 3)],
    ['pattern', (desc) => (desc.pattern = 99)],
    ['struct_size', (desc) => (desc.struct_size = 8)],
  ];
  for (const [field, spoil] of invalid) {
    test(`an invalid ${field} gives INVALID_ARGUMENT naming the field, sync and async`, async () => {
      const desc = initDesc();
      spoil(desc);
      const mentions = new RegExp(`\\b${field}\\b`);
      const invalidArgument = isNativeError('DFSS_ERROR_INVALID_ARGUMENT', mentions);
      const status = lib!.dfss_compressed_row_size(desc, [0], [0]);
      assert.equal(status, DFSS_ERROR_INVALID_ARGUMENT);
      assert.match(lib!.dfss_last_error_message(), mentions);
      assert.throws(() => lib!.check(status, 'compressed_row_size'), invalidArgument);
      // The descriptor is checked before anything needs a device: the same answer with or without a GPU.
      assert.throws(() => lib!.check(lib!.dfss_attention_forward(desc, q, k, v, out, null), 'forward'), invalidArgument);
      const stagedSize = lib!.dfss_attention_staged_workspace_size(desc, [0]);
      assert.throws(() => lib!.check(stagedSize, 'staged_workspace_size'), invalidArgument);
      const staged = lib!.dfss_attention_staged(desc, q, k, v, out, null, workspace, 2 ** 40);
      assert.throws(() => lib!.check(staged, 'staged'), invalidArgument);
      // The async variant reports the failing call's own message, though it ran on another thread.
      await assert.rejects(lib!.async.dfss_attention_forward(desc, q, k, v, out, null), invalidArgument);
      await assert.rejects(lib!.async.dfss_compressed_row_size(desc, [0], [0]), invalidArgument);
    });
  }

  test('a failed call leaves the next successful one with an empty message', () => {
    lib!.dfss_compressed_row_size({ ...initDesc(), head_dim: 0 }, [0], [0]);
    assert.notEqual(lib!.dfss_last_error_message(), '');
    initDesc();
    assert.equal(lib!.dfss_last_error_message(), '');
  });

  test('dfss_attention_desc_init: the default scale is 1/sqrt(D) rounded to float32, for any D', () => {
    for (const headDim of [1, 3, 64, 100, 128]) {
      const desc: Partial<AttentionDesc> = {};
      lib!.check(lib!.dfss_attention_desc_init(desc, DFSS_DTYPE_BFLOAT16, DFSS_PATTERN_2_4, 1, 1, 1, 1, 1, headDim, 1), 'init');
      assert.equal(desc.scale, Math.fround(1 / Math.sqrt(headDim)), `D = ${headDim}`);
    }
  });
});

describe('libdfss on a machine without a GPU', { skip: notBuilt || gpuPresent }, () => {
  const noDevice = isNativeError('DFSS_ERROR_NO_DEVICE', /\S/);

  test('dfss_device_count: NO_DEVICE, count 0 and a message', () => {
    const count: [number] = [-1];
    const status = lib!.dfss_device_count(count);
    assert.equal(status, DFSS_ERROR_NO_DEVICE);
    assert.equal(count[0], 0);
    assert.notEqual(lib!.dfss_last_error_message(), '');
    assert.throws(() => lib!.check(status, 'device_count'), noDevice);
  });

  test('memory, streams and devices answer NO_DEVICE, sync and async', async () => {
    const pointer: [Address] = [null];
    assert.throws(() => lib!.check(lib!.dfss_malloc(pointer, 256), 'malloc'), noDevice);
    await assert.rejects(lib!.async.dfss_malloc([null], 256), noDevice);
    await assert.rejects(lib!.async.dfss_device_synchronize(), noDevice);
    await assert.rejects(lib!.async.dfss_stream_create([null]), noDevice);
    assert.throws(() => lib!.check(lib!.dfss_device_get_info(0, {}), 'device_get_info'), noDevice);
    assert.throws(() => lib!.check(lib!.dfss_device_set(0), 'device_set'), noDevice);
  });

  test('a host-to-device copy answers NO_DEVICE and leaves the host buffer as it was', async () => {
    const host = new Float32Array([1, 2, 3, 4]);
    await assert.rejects(lib!.async.dfss_memcpy(0x1000n, host, host.byteLength, 0, null), noDevice);
    assert.deepEqual([...host], [1, 2, 3, 4]);
  });

  test('attention, fused or staged, on a valid descriptor answers NO_DEVICE', async () => {
    const desc = initDesc();
    await assert.rejects(lib!.async.dfss_attention_forward(desc, q, k, v, out, null), noDevice);
    // The staged call checks its arguments first (the workspace above), then finds no device, with or without lse.
    const bytes = stagedWorkspaceBytes(desc);
    const withLse = lib!.dfss_attention_staged(desc, q, k, v, out, lse, workspace, bytes);
    assert.throws(() => lib!.check(withLse, 'staged'), noDevice);
    await assert.rejects(lib!.async.dfss_attention_staged(desc, q, k, v, out, null, workspace, bytes), noDevice);
  });
});
