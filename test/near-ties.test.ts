// nearTies (src/check/near-ties.ts): the rows and keys whose N:M choice hangs on a near tie, which the GPU checks
// leave out of their comparisons. Runs on the CPU.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { nearTies } from '../src/check/near-ties.js';
import { Tensor } from '../src/tensor.js';

test('nearTies flags the rows with a near tie and the keys of the group it is in, per kv head', async () => {
  // D = 2: query head 0 reads column 0 of k, query head 1 column 1 (both heads share the one kv head). In column 0
  // the group of keys 0-3 has its 2nd and 3rd scores 2^-20 apart; every other group has no tie.
  const tie = 1 + 2 ** -20;
  const kValues = [
    [3, 4],
    [1, 3],
    [tie, 2],
    [0, 1],
    [8, 8],
    [6, 6],
    [4, 4],
    [2, 2],
  ].flat();
  const k = Tensor.fromArray(kValues, [1, 1, 8, 2], { dtype: 'float32' });
  const q = Tensor.fromArray([1, 0, 1, 0, 0, 1, 0, 1], [1, 2, 2, 2], { dtype: 'float32' });
  try {
    const found = await nearTies(q, k, { pattern: '2:4', scale: 1 });
    assert.deepEqual([...found.rows], [1, 1, 0, 0], 'rows [head 0: both, head 1: none]');
    assert.deepEqual([...found.keys], [1, 1, 1, 1, 0, 0, 0, 0], 'keys of the tied group');

    const dense = await nearTies(q, k, { pattern: 'dense', scale: 1 });
    assert.deepEqual([...dense.rows, ...dense.keys], new Array(12).fill(0), 'dense keeps every key: no tie matters');

    const strict = await nearTies(q, k, { pattern: '2:4', scale: 1 }, 2 ** -22);
    assert.deepEqual([...strict.rows], [0, 0, 0, 0], 'a gap wider than `relative` is no tie');
  } finally {
    q.dispose();
    k.dispose();
  }
});

test('nearTies ranks a NaN score lowest: it hides no near tie among the others', async () => {
  // One query (q = 1, scale 1) against 4 keys of D = 1: scores NaN, 3, 1 + 2^-20, 1. The 2nd and 3rd of the
  // numbers tie nearly; a sort that put NaN first compared 3 against 1 + 2^-20 and missed it.
  const k = Tensor.fromArray([Number.NaN, 3, 1 + 2 ** -20, 1], [1, 1, 4, 1], { dtype: 'float32' });
  const q = Tensor.fromArray([1], [1, 1, 1, 1], { dtype: 'float32' });
  try {
    const found = await nearTies(q, k, { pattern: '2:4', scale: 1 });
    assert.deepEqual([...found.rows], [1]);
    assert.deepEqual([...found.keys], [1, 1, 1, 1]);
  } finally {
    q.dispose();
    k.dispose();
  }
});
