// The host cost of each piece of one attention() call on the CUDA backend, on any machine where libdfss is built
// (no GPU needed): what bench/call-overhead.bench.ts measures as a whole on a GPU host (issue 4, target 5), taken
// apart so that each piece can be predicted and checked where there is no GPU.
//
// Every piece is the product's own code on the call's shapes (fp16 2:4, B = H = 1, N = 128, D = 64 by default):
//   validation            the option and operand checks and the problem of attention() (src/validate.ts), on
//                         host tensors of the call's shapes (the checks never look at the device)
//   descriptor, object    what the bindings did before: dfss_attention_desc_init into an object, the overrides
//   descriptor, native    NativeAttentionDesc.write (ffi/attention-desc.ts), what the CUDA backend does now
//   call, object desc     a sync dfss_attention_forward with the object: koffi marshals the struct
//   call, native desc     the same call given the native descriptor's pointer
// The calls go into the real library on made-up device addresses: without a GPU it checks the whole descriptor
// and every pointer, then answers DFSS_ERROR_NO_DEVICE (cuda/src/validate.cpp, validate_attention_call); with one
// it refuses the addresses in cudaPointerGetAttributes. Either way koffi marshals the full call.
//   worker round trip     await lib.async.dfss_compressed_row_size(...) against the same call sync: koffi's
//                         worker-thread hop (a call that succeeds without a GPU, so nothing is repeated)
//   block cache hit       DeviceBlockCache.acquire + release of the output's size class (src/cuda/block-cache.ts);
//                         the blocks are numbers here, as the cache never touches the memory
//   output tensor         a Tensor of the output's shape over an existing storage (the wrapper made per call)
// Each piece: the median over `loops` loops of `calls` calls, per call, after a warm-up loop.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { NativeAttentionDesc } from '../ffi/attention-desc.js';
import { type AttentionDesc, DFSS_DTYPE_FLOAT16, DFSS_PATTERN_2_4, type DfssLibrary, loadDfss } from '../ffi/dfss.js';
import { DeviceBlockCache } from '../src/cuda/block-cache.js';
import { InvalidArgumentError, LibraryNotFoundError } from '../src/errors.js';
import { Tensor } from '../src/tensor.js';
import { attentionProblem, checkOperand, checkOptions, sameDevice } from '../src/validate.js';
import { formatTable, median } from './summary.js';

const { values: args } = parseArgs({
  options: {
    seq: { type: 'string', default: '128' },
    dim: { type: 'string', default: '64' },
    calls: { type: 'string', default: '2000' },
    loops: { type: 'string', default: '21' },
  },
});

function positive(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError(`--${name}`, 'an integer >= 1', text);
  return value;
}
const [seq, dim, calls, loops] = (['seq', 'dim', 'calls', 'loops'] as const).map((name) => positive(name, args[name]!));

/** Median microseconds per call of `call`, sync or async (an async call is awaited before the next). */
async function perCallUs(call: () => unknown): Promise<number> {
  const times: number[] = [];
  for (let loop = -1; loop < loops; loop++) {
    const start = performance.now();
    for (let c = 0; c < calls; c++) {
      const pending = call();
      if (pending instanceof Promise) await pending;
    }
    if (loop >= 0) times.push(((performance.now() - start) * 1e3) / calls);
  }
  return median(times);
}

function library(): DfssLibrary | null {
  try {
    return loadDfss();
  } catch (error) {
    if (error instanceof LibraryNotFoundError) {
      console.log(`call-pieces bench skipped: ${error.message}`);
      return null;
    }
    throw error;
  }
}

async function main(): Promise<void> {
  const lib = library();
  if (lib === null) return;
  const shape = [1, 1, seq, dim];
  const [q, k, v] = [0, 1, 2].map(() => Tensor.empty(shape, 'float16'));
  const options = { pattern: '2:4', backend: 'cuda' };
  const validate = () => {
    const o = checkOptions(options);
    const tq = checkOperand(q, 'q', '[B, Hq, Nq, D]');
    const tk = checkOperand(k, 'k', '[B, Hk, Nk, D]');
    const tv = checkOperand(v, 'v', '[B, Hk, Nk, Dv]');
    sameDevice({ q: tq, k: tk, v: tv });
    return attentionProblem(tq, tk, tv, o);
  };
  const problem = validate();

  const objectDesc = (): AttentionDesc => {
    const desc: Partial<AttentionDesc> = {};
    const p = problem;
    lib.check(lib.dfss_attention_desc_init(desc, DFSS_DTYPE_FLOAT16, DFSS_PATTERN_2_4, p.batch, p.headsQ, p.headsKv, p.seqQ, p.seqK, p.headDim, p.headDimV), 'init');
    return {
      ...(desc as AttentionDesc),
      causal: p.causal ? 1 : 0,
      scale: p.scale,
      q_strides: p.qStrides,
      k_strides: p.kStrides,
      v_strides: p.vStrides,
      out_strides: p.outStrides,
      seqlens_q: p.seqlensQ,
      seqlens_k: p.seqlensK,
    };
  };
  const native = new NativeAttentionDesc(lib);
  const pointer = native.write(DFSS_DTYPE_FLOAT16, DFSS_PATTERN_2_4, problem);
  const made = objectDesc();
  const [qa, ka, va, outa] = [0x10000n, 0x20000n, 0x30000n, 0x40000n];
  const status = lib.dfss_attention_forward(pointer, qa, ka, va, outa, null);
  const answer = `${lib.statusName(status)}: ${lib.dfss_last_error_message()}`;
  const [values, words] = [new BigInt64Array(1), new BigInt64Array(1)];

  const outBytes = seq * dim * 2;
  let next = 0n;
  const cache = new DeviceBlockCache({ malloc: () => (next += 1n << 20n), free: () => {} });
  const outStorage = Tensor.empty(shape, 'float16').storage;

  const rows: [string, number][] = [
    ['validation', await perCallUs(validate)],
    ['descriptor, object (before)', await perCallUs(objectDesc)],
    ['descriptor, native (now)', await perCallUs(() => native.write(DFSS_DTYPE_FLOAT16, DFSS_PATTERN_2_4, problem))],
    ['call, object desc (before)', await perCallUs(() => lib.dfss_attention_forward(made, qa, ka, va, outa, null))],
    ['call, native desc (now)', await perCallUs(() => lib.dfss_attention_forward(pointer, qa, ka, va, outa, null))],
    ['dfss_compressed_row_size sync', await perCallUs(() => lib.dfss_compressed_row_size(pointer, values, words))],
    ['dfss_compressed_row_size async (before)', await perCallUs(() => lib.async.dfss_compressed_row_size(pointer, values, words))],
    ['block cache hit (now)', await perCallUs(() => cache.acquire(outBytes).release())],
    ['output tensor wrapper', await perCallUs(() => new Tensor(outStorage, shape))],
  ];
  for (const t of [q, k, v]) t.dispose();

  console.log(`attention() pieces, host time per call: fp16 2:4 B=1 H=1 N=${seq} D=${dim}, median of ${loops} loops of ${calls} calls`);
  console.log(`the library's answer to the calls: ${answer}`);
  console.log(formatTable([['piece', 'us per call'], ...rows.map(([name, us]) => [name, us.toFixed(3)])]));
}

await main();
