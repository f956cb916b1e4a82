// The host cost of one attention call from TypeScript, against the same call made from C (issue 4, target 5:
// the overhead of the TypeScript layer stays under 10 us per attention call).
//
// A problem so small that the call's own cost dominates (float16, B = H = 1, N = 128, D = 64). Each loop makes
// `calls` calls back to back and is timed on the host without synchronizing inside it (what is measured is
// validating and enqueueing, not the GPU's work; a loop is short enough that the GPU's queue never fills);
// the median over `loops` loops is reported per call. The ways in:
//   koffi sync, object desc   lib.dfss_attention_forward(desc object, ...): koffi marshals the struct per call
//   koffi sync, native desc   the same given a NativeAttentionDesc's pointer (ffi/attention-desc.ts): the floor
//                             of the path attention() takes
//   koffi async               await lib.async.dfss_attention_forward(...): koffi's worker-thread call (the way
//                             attention() called the library in v1 of bench/NOTES.md)
//   attention()               await attention(q, k, v, { pattern, backend: 'cuda' }): the public API (validation,
//                             the output from the block cache, the descriptor, the sync enqueue); outputs disposed
//                             after the loop, so the warm-up loop fills the cache and the timed loops reuse it
//   attention()+dispose       the same, disposing each output at once (its block goes back to the cache)
// With --c-program (bench/c/call_overhead.c, built against the same libdfss.so), the C call is timed the same
// way and the overhead over C is printed. Skips, saying why, where CUDA cannot run.
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { NativeAttentionDesc } from '../ffi/attention-desc.js';
import { DFSS_DTYPE_FLOAT16, DFSS_PATTERN_1_2, DFSS_PATTERN_2_4, DFSS_PATTERN_DENSE, type AttentionDesc, loadDfss } from '../ffi/dfss.js';
import { attention, Tensor } from '../src/index.js';
import { cudaStatus, deviceCacheStats, synchronize } from '../src/cuda/runtime.js';
import { InvalidArgumentError } from '../src/errors.js';
import { formatTable, median } from './summary.js';

const TARGET_US = 10;
const PATTERNS: Record<string, number> = { dense: DFSS_PATTERN_DENSE, '1:2': DFSS_PATTERN_1_2, '2:4': DFSS_PATTERN_2_4 };

const { values: args } = parseArgs({
  options: {
    pattern: { type: 'string', default: '2:4' },
    seq: { type: 'string', default: '128' },
    dim: { type: 'string', default: '64' },
    calls: { type: 'string', default: '200' },
    loops: { type: 'string', default: '20' },
    'c-program': { type: 'string' },
  },
});

function positive(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError(`--${name}`, 'an integer >= 1', text);
  return value;
}

const pattern = args.pattern!;
if (!(pattern in PATTERNS)) throw new InvalidArgumentError('--pattern', "'dense', '1:2' or '2:4'", pattern);
const [seq, dim, calls, loops] = (['seq', 'dim', 'calls', 'loops'] as const).map((name) => positive(name, args[name]!));

/** Median host microseconds per call of `loops` loops of `calls` calls (after one warm-up loop). */
async function perCallUs(call: () => unknown, afterLoop: () => void = () => {}): Promise<number> {
  const times: number[] = [];
  for (let loop = -1; loop < loops; loop++) {
    const start = performance.now();
    for (let c = 0; c < calls; c++) {
      const pending = call();
      if (pending instanceof Promise) await pending; // a sync call is not awaited: that would add a tick
    }
    const elapsed = performance.now() - start;
    await synchronize();
    afterLoop();
    if (loop >= 0) times.push((elapsed * 1e3) / calls);
  }
  return median(times);
}

/** The C program's time per call, from its `per_call_us=` line, or why there is none. */
function cProgramUs(program: string): number | string {
  const run = spawnSync(program, ['--pattern', pattern, '--seq', String(seq), '--dim', String(dim), '--calls', String(calls), '--loops', String(loops)], { encoding: 'utf8' });
  const found = /per_call_us=([0-9.]+)/.exec(run.stdout ?? '');
  if (found) return Number(found[1]);
  return `${program} gave no time (exit ${run.status}): ${(run.stdout + run.stderr).trim() || run.error?.message}`;
}

async function main(): Promise<void> {
  const status = cudaStatus();
  if (!status.available) {
    console.log(`call-overhead bench skipped: ${status.reason}`);
    return;
  }
  const lib = loadDfss();
  const shape = [1, 1, seq, dim];
  const host = Tensor.fromArray(new Float32Array(seq * dim), shape, { dtype: 'float16' });
  const [q, k, v] = [await host.to('cuda'), await host.to('cuda'), await host.to('cuda')];
  host.dispose();
  const out = Tensor.empty(shape, 'float16', 'cuda');
  const address = (t: Tensor, name: string) => t.storage.deviceBuffer(name).address;
  const [qa, ka, va, outa] = [address(q, 'q'), address(k, 'k'), address(v, 'v'), address(out, 'out')];
  const desc: Partial<AttentionDesc> = {};
  lib.check(lib.dfss_attention_desc_init(desc, DFSS_DTYPE_FLOAT16, PATTERNS[pattern], 1, 1, 1, seq, seq, dim, dim), 'dfss_attention_desc_init');
  const contiguous = [seq * dim, seq * dim, dim, 1];
  const native = new NativeAttentionDesc(lib).write(DFSS_DTYPE_FLOAT16, PATTERNS[pattern], {
    causal: false,
    batch: 1,
    headsQ: 1,
    headsKv: 1,
    seqQ: seq,
    seqK: seq,
    headDim: dim,
    headDimV: dim,
    scale: desc.scale!,
    qStrides: contiguous,
    kStrides: contiguous,
    vStrides: contiguous,
    outStrides: contiguous,
    seqlensQ: null,
    seqlensK: null,
  });
  const options = { pattern, backend: 'cuda' as const };

  const kept: Tensor[] = [];
  const disposeKept = () => kept.splice(0).forEach((t) => t.dispose());
  const measured: [string, number][] = [
    ['koffi sync, object desc', await perCallUs(() => lib.check(lib.dfss_attention_forward(desc as AttentionDesc, qa, ka, va, outa, null), 'dfss_attention_forward'))],
    ['koffi sync, native desc', await perCallUs(() => lib.check(lib.dfss_attention_forward(native, qa, ka, va, outa, null), 'dfss_attention_forward'))],
    ['koffi async', await perCallUs(() => lib.async.dfss_attention_forward(desc as AttentionDesc, qa, ka, va, outa, null))],
    ['attention()', await perCallUs(async () => kept.push(await attention(q, k, v, options)), disposeKept)],
    ['attention()+dispose', await perCallUs(async () => (await attention(q, k, v, options)).dispose())],
  ];
  const cache = deviceCacheStats();
  for (const t of [q, k, v, out]) t.dispose();

  const c = args['c-program'] === undefined ? 'not measured (pass --c-program, see bench/README.md)' : cProgramUs(args['c-program']);
  const rows = [['way in', 'us per call', 'over C (us)']];
  if (typeof c === 'number') rows.push(['C (bench/c/call_overhead.c)', c.toFixed(2), '0']);
  for (const [name, us] of measured) rows.push([name, us.toFixed(2), typeof c === 'number' ? (us - c).toFixed(2) : '-']);

  console.log(`call overhead on ${status.devices[0].name}: dfss_attention_forward ${pattern} float16 B=1 H=1 N=${seq} D=${dim}, host time per call, median of ${loops} loops of ${calls} calls`);
  console.log(formatTable(rows));
  console.log(`device block cache after the runs: ${cache.cachedBlocks} blocks, ${cache.cachedBytes} bytes kept for reuse`);
  const api = measured.find(([name]) => name === 'attention()')![1];
  if (typeof c === 'number') {
    const overhead = api - c;
    console.log(`target 5: attention() costs ${overhead.toFixed(2)} us per call over the C call (< ${TARGET_US} us: ${overhead < TARGET_US ? 'met' : 'MISSED'})`);
  } else {
    console.log(`target 5: C call ${c}; attention() alone costs ${api.toFixed(2)} us per call`);
  }
}

await main();
