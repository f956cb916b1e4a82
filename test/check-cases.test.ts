// The GPU tests' seed: fresh for each run unless DFSS_TEST_SEED replays one.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { freshSeed } from '../src/check/cases.js';

function withSeedVariable<T>(value: string | undefined, body: () => T): T {
  const saved = process.env.DFSS_TEST_SEED;
  if (value === undefined) delete process.env.DFSS_TEST_SEED;
  else process.env.DFSS_TEST_SEED = value;
  try {
    return body();
  } finally {
    if (saved === undefined) delete process.env.DFSS_TEST_SEED;
    else process.env.DFSS_TEST_SEED = saved;
  }
}

test('DFSS_TEST_SEED replays a seed', () => {
  assert.equal(withSeedVariable('12345', freshSeed), 12345);
  assert.equal(withSeedVariable('4294967295', freshSeed), 4294967295);
});

test('without DFSS_TEST_SEED the seed is a 32-bit unsigned integer', () => {
  const seed = withSeedVariable(undefined, freshSeed);
  assert.ok(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff, String(seed));
  assert.ok(Number.isInteger(withSeedVariable('', freshSeed)));
});

test('a DFSS_TEST_SEED that is no 32-bit unsigned integer is refused, naming the variable', () => {
  for (const bad of ['-1', '1.5', 'seven', '4294967296']) {
    assert.throws(() => withSeedVariable(bad, freshSeed), { name: 'RangeError', message: /^DFSS_TEST_SEED: expected an integer/ }, bad);
  }
});
