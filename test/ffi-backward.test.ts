// dfss_attention_backward and its workspace size through ffi/, on any machine: the strides struct and every
// argument reach the library as the header lays them out (a bad field is named in the error, sync and async),
// and a valid call gets past every host check (NO_DEVICE without a GPU). Skipped where libdfss was not built.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  type AttentionDesc,
  type BackwardStrides,
  DFSS_DTYPE_BFLOAT16,
  DFSS_PATTERN_2_4,
  DFSS_SUCCESS,
  type DfssLibrary,
} from '../ffi/dfss.js';
import { NativeError } from '../src/errors.js';
import { lib, notBuilt } from './support/library.js';


/** bfloat16 2:4, B = 2, Hq = 4, Hk = 2, Nq = 5, Nk = 9, D = 16, Dv = 8, packed strides. */
function initDesc(): AttentionDesc {
  const desc: Partial<AttentionDesc> = {};
  lib!.check(lib!.dfss_attention_desc_init(desc, DFSS_DTYPE_BFLOAT16, DFSS_PATTERN_2_4, 2, 4, 2, 5, 9, 16, 8), 'init');
  return desc as AttentionDesc;
}

function stridesOf(desc: AttentionDesc): BackwardStrides {
  return { dout_strides: desc.out_strides, dq_strides: desc.q_strides, dk_strides: desc.k_strides, dv_strides: desc.v_strides };
}

function workspaceBytes(desc: AttentionDesc): number {
  const bytes: [number] = [0];
  lib!.check(lib!.dfss_attention_backward_workspace_size(desc, bytes), 'dfss_attention_backward_workspace_size');
  return Number(bytes[0]);
}

// q, k, v, out, dout, lse, dq, dk, dv, workspace: distinct, aligned, made-up device addresses
const addresses = Array.from({ length: 10 }, (_, i) => BigInt(0x100000 + i * 0x10000));

function backward(desc: AttentionDesc, strides: BackwardStrides | null, bytes: number) {
  return [desc, strides, ...addresses, bytes] as Parameters<DfssLibrary['dfss_attention_backward']>;
}

function rejectsWith(status: string, mention: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof NativeError, `expected a NativeError, got ${String(error)}`);
    assert.equal(error.status, status);
    assert.match(error.message, mention);
    return true;
  };
}

describe('dfss_attention_backward through ffi/', { skip: notBuilt }, () => {
  test('the workspace size is positive and grows with the query rows', () => {
    const desc = initDesc();
    const bytes = workspaceBytes(desc);
    assert.ok(bytes > 0);
    assert.ok(workspaceBytes({ ...desc, seq_q: 500 }) >= bytes + 4 * 2 * 4 * (500 - 5));
  });

  test('a bad field of the strides struct is named, sync and async', async () => {
    const desc = initDesc();
    const bytes = workspaceBytes(desc);
    const cases: [keyof BackwardStrides, number, RegExp][] = [
      ['dout_strides', 3, /strides->dout_strides\[3\]: expected 1/],
      ['dq_strides', 0, /strides->dq_strides\[0\]: expected a value >= 0/],
      ['dk_strides', 2, /strides->dk_strides: expected strides that give every element of dk/],
      ['dv_strides', 1, /strides->dv_strides: expected strides that give every element of dv/],
    ];
    for (const [field, axis, mention] of cases) {
      const strides = stridesOf(desc);
      const spoiled = [...(strides[field] as BigInt64Array)].map(Number);
      spoiled[axis] = axis === 3 ? 2 : axis === 0 ? -1 : 0;
      strides[field] = spoiled;
      const invalid = rejectsWith('DFSS_ERROR_INVALID_ARGUMENT', mention);
      assert.throws(() => lib!.check(lib!.dfss_attention_backward(...backward(desc, strides, bytes)), field), invalid);
      await assert.rejects(lib!.async.dfss_attention_backward(...backward(desc, strides, bytes)), invalid);
    }
  });

  test('a workspace smaller than the size query said is refused, naming the query', () => {
    const desc = initDesc();
    const bytes = workspaceBytes(desc);
    assert.throws(
      () => lib!.check(lib!.dfss_attention_backward(...backward(desc, null, bytes - 1)), 'backward'),
      rejectsWith('DFSS_ERROR_INVALID_ARGUMENT', /workspace_bytes: expected at least \d+ \(dfss_attention_backward_workspace_size\)/),
    );
  });

  test('valid arguments, with or without the strides struct, pass every host check', () => {
    const desc = initDesc();
    const bytes = workspaceBytes(desc);
    const strides = stridesOf(desc);
    strides.dq_strides = [5 * 4 * 16, 16, 4 * 16, 1]; // dq as [B, N, H, D]
    for (const given of [null, strides]) {
      const status = lib!.dfss_attention_backward(...backward(desc, given, bytes));
      assert.notEqual(status, DFSS_SUCCESS, 'the made-up addresses cannot succeed');
      // Without a GPU: NO_DEVICE; with one: the first made-up address is not device memory.
      assert.match(lib!.dfss_last_error_message(), /no CUDA device|q: expected device memory/);
    }
  });
});
