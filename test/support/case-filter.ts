// DFSS_GPU_CASES=<text> keeps the GPU test cases whose names contain the text, e.g. DFSS_GPU_CASES=float32 for a
// compute-sanitizer run over the float32 kernels alone.
import { type Case, caseName } from '../../src/check/cases.js';

export function selectedCases(cases: Case[], file: string): Case[] {
  const text = process.env.DFSS_GPU_CASES;
  if (text === undefined || text === '') return cases;
  const kept = cases.filter((c) => caseName(c).includes(text));
  console.log(`# ${file}: ${kept.length} of ${cases.length} cases (DFSS_GPU_CASES=${text})`);
  return kept;
}
