// `dfss demo`: DFSS attention against full attention on the same seeded random inputs. Prints which backend
// ran, the shapes, the fraction of scores the pattern kept (measured), the error of DFSS against full
// attention and the median time of each.
import { Tensor, attention, sddmmPrune, resolveBackend, backendInfo } from '../index.js';
import { DTYPES, type DType } from '../dtype.js';
import { formatPattern, type Pattern } from '../pattern.js';
import { SeededRandom } from '../random.js';
import { medianMs } from '../timing.js';
import { BACKEND_CHOICES, parseArgs, parseChoice, parseInteger, parsePatternFlag, UsageError } from './args.js';
import { attentionFlops, allowedPairs } from './flops.js';
import { DEMO_HELP } from './help.js';
import { formatTable } from './table.js';

const FLAGS = {
  backend: { kind: 'string' },
  batch: { kind: 'string' },
  heads: { kind: 'string' },
  seq: { kind: 'string' },
  dim: { kind: 'string' },
  pattern: { kind: 'string' },
  dtype: { kind: 'string' },
  causal: { kind: 'boolean' },
  runs: { kind: 'string' },
  seed: { kind: 'string' },
  help: { kind: 'boolean', short: 'h' },
} as const;

type Backend = 'cpu' | 'cuda';

// Sizes that finish in a few seconds: the CPU backend is a plain reference, a GPU takes a real workload.
const DEFAULTS: Record<Backend, { batch: number; heads: number; seq: number; dim: number; runs: number }> = {
  cpu: { batch: 1, heads: 4, seq: 512, dim: 64, runs: 3 },
  cuda: { batch: 4, heads: 16, seq: 4096, dim: 64, runs: 10 },
};

interface DemoConfig {
  backend: Backend;
  batch: number;
  heads: number;
  seq: number;
  dim: number;
  pattern: Pattern | null;
  dtype: DType;
  causal: boolean;
  runs: number;
  seed: number;
}

export async function runDemo(argv: readonly string[]): Promise<void> {
  const { flags, positionals } = parseArgs(argv, FLAGS);
  if (flags.help) {
    process.stdout.write(DEMO_HELP);
    return;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const pattern = parsePatternFlag('pattern', flags.pattern ?? '2:4');
  const dtype = parseChoice('dtype', flags.dtype ?? 'float16', DTYPES);
  const backendChoice = parseChoice('backend', flags.backend ?? 'auto', BACKEND_CHOICES);
  const optionalInteger = (name: 'batch' | 'heads' | 'seq' | 'dim' | 'runs' | 'seed', min: number): number | undefined => {
    const value = flags[name];
    return value === undefined ? undefined : parseInteger(name, value, min);
  };
  const batch = optionalInteger('batch', 1);
  const heads = optionalInteger('heads', 1);
  const seq = optionalInteger('seq', 1);
  const dim = optionalInteger('dim', 1);
  const runs = optionalInteger('runs', 1);
  const seed = optionalInteger('seed', 0) ?? 1;

  // The backend is resolved only once the command line is known to be valid: usage errors come first.
  const backend = resolveBackend(backendChoice, { device: 'cpu', dtype, pattern });
  const defaults = DEFAULTS[backend];
  const config: DemoConfig = {
    backend,
    batch: batch ?? defaults.batch,
    heads: heads ?? defaults.heads,
    seq: seq ?? defaults.seq,
    dim: dim ?? defaults.dim,
    pattern,
    dtype,
    causal: flags.causal === true,
    runs: runs ?? defaults.runs,
    seed,
  };
  process.stdout.write(await demo(config));
}

async function demo(config: DemoConfig): Promise<string> {
  const { backend, batch, heads, seq, dim, pattern, dtype, causal, runs, seed } = config;
  const shape = [batch, heads, seq, dim];
  const count = batch * heads * seq * dim;
  const random = new SeededRandom(seed).normals(3 * count);
  const inputs = [0, 1, 2].map((i) => random.subarray(i * count, (i + 1) * count));
  const owned: Tensor[] = [];
  try {
    // The inputs go to the backend's device once, so the timed runs measure attention, not copies.
    for (const data of inputs) owned.push(await onDevice(Tensor.fromArray(data, shape, { dtype }), backend));
    const [q, k, v] = owned;
    const common = { causal, backend } as const;
    const dense = await timeAttention(() => attention(q, k, v, { ...common, pattern: null }), runs);
    const sparse = await timeAttention(() => attention(q, k, v, { ...common, pattern }), runs);
    const kept = await measureKeptFraction(inputs[0], inputs[1], config);
    const error = compare(sparse.output, dense.output);

    const name = `dfss ${formatPattern(pattern)}`;
    const flops = attentionFlops(batch, heads, seq, seq, dim, causal);
    const unit = backend === 'cuda' ? { name: 'TFLOP/s', scale: 1e12 } : { name: 'GFLOP/s', scale: 1e9 };
    const rate = (ms: number): string => (flops / (ms / 1e3) / unit.scale).toFixed(1);
    const rows: string[][] = [
      ['attention', 'median time', unit.name + '*', 'speed-up'],
      ['dense', `${dense.medianMs.toFixed(3)} ms`, rate(dense.medianMs), '1.00x'],
      [name, `${sparse.medianMs.toFixed(3)} ms`, rate(sparse.medianMs), `${(dense.medianMs / sparse.medianMs).toFixed(2)}x`],
    ];
    return [
      `dfss demo: DFSS ${formatPattern(pattern)} attention against full attention`,
      '',
      `backend    ${describeBackend(backend)}`,
      `shapes     q, k, v [${shape.join(', ')}] -> out [${shape.join(', ')}]`,
      `inputs     ${dtype}, ${causal ? 'causal' : 'non-causal'}, scale 1/sqrt(${dim}), normal random (seed ${seed})`,
      `kept       ${(100 * kept.fraction).toFixed(2)}% of the scores (${kept.kept} of ${kept.allowed}, measured with sddmmPrune on batch 0, head 0)`,
      `error      ${name} against dense: relative Frobenius ${error.relativeFrobenius.toExponential(3)}, max abs ${error.maxAbs.toExponential(3)}`,
      '',
      ...formatTable(rows),
      `* dense-equivalent rate, 4*B*H*N*N*D over the time; median of ${runs} run${runs === 1 ? '' : 's'} after a warm-up run`,
      '',
    ].join('\n');
  } finally {
    for (const tensor of owned) tensor.dispose();
  }
}

/** `host` moved to `backend`'s device (host is disposed once copied). */
async function onDevice(host: Tensor, backend: Backend): Promise<Tensor> {
  if (backend === 'cpu') return host;
  try {
    return await host.to('cuda');
  } finally {
    host.dispose();
  }
}

function describeBackend(backend: Backend): string {
  if (backend === 'cpu') return 'cpu (pure TypeScript reference)';
  const devices = backendInfo().cuda.devices;
  const device = devices[0];
  if (device === undefined) return 'cuda';
  const sparse = device.sparseTensorCores ? 'sparse tensor cores' : 'no sparse tensor cores';
  return `cuda on ${device.name} (compute capability ${device.computeCapability}, ${sparse})`;
}

/** The median time of `run` (after a warm-up run) and its last output on the host. */
async function timeAttention(run: () => Promise<Tensor>, runs: number): Promise<{ medianMs: number; output: Float32Array }> {
  let last: Tensor | undefined;
  const ms = await medianMs(async () => {
    last?.dispose();
    last = await run();
  }, runs);
  const output = await last!.toFloat32Array();
  last!.dispose();
  return { medianMs: ms, output };
}

/**
 * The fraction of the unmasked scores that survive pruning, counted on the compressed scores sddmmPrune
 * returns for batch 0, head 0 (one head keeps the host copy small at any size; every head has the same
 * structure).
 */
async function measureKeptFraction(
  qData: Float32Array,
  kData: Float32Array,
  config: DemoConfig,
): Promise<{ kept: number; allowed: number; fraction: number }> {
  const { backend, seq, dim, dtype, pattern, causal } = config;
  const headShape = [1, 1, seq, dim];
  const q = Tensor.fromArray(qData.subarray(0, seq * dim), headShape, { dtype });
  const k = Tensor.fromArray(kData.subarray(0, seq * dim), headShape, { dtype });
  try {
    const scores = await sddmmPrune(q, k, { pattern, causal, backend });
    try {
      let kept = 0;
      for (const score of await scores.values.toFloat32Array()) if (Number.isFinite(score)) kept++;
      const allowed = allowedPairs(seq, seq, causal);
      return { kept, allowed, fraction: kept / allowed };
    } finally {
      scores.dispose();
    }
  } finally {
    q.dispose();
    k.dispose();
  }
}

function compare(actual: Float32Array, expected: Float32Array): { relativeFrobenius: number; maxAbs: number } {
  let differenceSquares = 0;
  let expectedSquares = 0;
  let maxAbs = 0;
  for (let i = 0; i < expected.length; i++) {
    const difference = actual[i] - expected[i];
    differenceSquares += difference * difference;
    expectedSquares += expected[i] * expected[i];
    maxAbs = Math.max(maxAbs, Math.abs(difference));
  }
  const relativeFrobenius = expectedSquares === 0 ? Math.sqrt(differenceSquares) : Math.sqrt(differenceSquares / expectedSquares);
  return { relativeFrobenius, maxAbs };
}
