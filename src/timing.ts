// Wall-clock timing of GPU or CPU work for the demo and the benchmarks: a warm-up run, then the median of
// `runs` runs, each bracketed by a device synchronization so that queued GPU work is counted.
import { performance } from 'node:perf_hooks';

import { synchronize } from './cuda/runtime.js';

export async function medianMs(run: () => Promise<void>, runs: number): Promise<number> {
  await run();
  await synchronize();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await run();
    await synchronize();
    times.push(performance.now() - start);
  }
  return median(times);
}

/** The median of a non-empty list of numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
