// The backward cases that the fused tensor-core backward takes (float16 / bfloat16, D = Dv in {32, 64, 96, 128}),
// beyond those of the shared GPU case grid (src/check/cases.ts): every dtype x pattern x head dim x causal, each
// once with per-batch lengths and grouped-query heads and once without, at odd sizes around the 64-row tiles,
// plus rows of 1000 for every dtype x pattern. Every fourth case is exact (integer q and k, scale 1/4).
import type { Case } from '../../src/check/cases.js';

const SIZES: [number, number][] = [
  [1, 1],
  [3, 3],
  [17, 17],
  [17, 200],
  [200, 17],
  [130, 67],
];

export function tensorCoreBackwardCases(options: { large: boolean }): Case[] {
  const out: Case[] = [];
  let n = 0;
  for (const dtype of ['float16', 'bfloat16'] as const)
    for (const pattern of ['dense', '1:2', '2:4'])
      for (const headDim of [32, 64, 96, 128])
        for (const causal of [false, true])
          for (const grouped of [false, true]) {
            n++;
            const [seqQ, seqK] = SIZES[n % SIZES.length];
            out.push({
              dtype, pattern, causal, seqQ, seqK, headDim, headDimV: headDim,
              exact: n % 4 === 0,
              batch: grouped ? 2 : 1,
              headsQ: grouped ? 4 : 2,
              headsKv: grouped ? 2 : 2,
              bnhd: n % 3 === 0,
              lengths: grouped,
            });
          }
  if (!options.large) return out;
  for (const dtype of ['float16', 'bfloat16'] as const)
    for (const pattern of ['dense', '1:2', '2:4']) {
      n++;
      out.push({
        dtype, pattern, causal: n % 2 === 0, seqQ: 1000, seqK: 1000, headDim: n % 2 ? 64 : 128, headDimV: n % 2 ? 64 : 128,
        exact: false, batch: 2, headsQ: 2, headsKv: 1, bnhd: false, lengths: true,
      });
    }
  return out;
}
