// Every CUDA entry point against the CPU backend: fused forward (with lse) and the three staged steps, for every
// dtype, pattern and mask, at odd sizes, on fresh random inputs and on exact-score inputs whose pruning must
// agree bit for bit. Device outputs are poisoned (NaN) before each run so an unwritten element shows. The cases
// and comparisons are those of `dfss check` (src/check/).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { caseName, checkCases, freshSeed } from '../src/check/cases.js';
import { checkCase, withPoisonedDeviceMemory } from '../src/check/entry-points.js';
import { cudaStatus } from '../src/cuda/runtime.js';
import { SeededRandom } from '../src/random.js';

const cuda = cudaStatus();
const skip = cuda.available ? false : `no CUDA device (${cuda.reason})`;
if (skip) console.log(`# GPU kernel tests skipped: ${skip}`);

const seed = freshSeed();
console.log(`# gpu-kernels seed ${seed}`);

// DFSS_GPU_TESTS=small leaves the larger rows out, for the slowest compute-sanitizer tools.
const cases = checkCases({ large: process.env.DFSS_GPU_TESTS !== 'small' });

test('CUDA entry points agree with the CPU backend', { skip }, async (t) => {
  const random = new SeededRandom(seed);
  await withPoisonedDeviceMemory(async () => {
    for (const c of cases) {
      await t.test(caseName(c), async () => {
        const checks = await checkCase(c, random);
        // Every comparison of the case is reported, not only the first that fails.
        const failed = checks.filter((check) => check.failures > 0).map((check) => `${check.name}: ${check.detail}`);
        assert.deepEqual(failed, []);
        assert.ok(checks.length >= 10, `${checks.length} comparisons made, expected every entry point's`);
      });
    }
  });
});
