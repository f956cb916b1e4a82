// `dfss bench`: the time of DFSS attention for each variant (pattern) and dtype over sequence lengths. A progress
// bar on stderr while it runs, then a table (or, with --json, the results for scripts) on stdout, and with --svg
// a chart of TFLOP/s against N.
import { constants } from 'node:fs';
import { access, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

import { attention, backendInfo, cudaSupports, resolveBackend, Tensor } from '../index.js';
import { type BackendName, type Pipeline, PIPELINES } from '../backend.js';
import { DTYPES, type DType } from '../dtype.js';
import { formatPattern, type Pattern } from '../pattern.js';
import { SeededRandom } from '../random.js';
import { medianMs } from '../timing.js';
import { BACKEND_CHOICES, parseArgs, parseChoice, parseInteger, parsePatternFlag, UsageError } from './args.js';
import { CommandFailedError } from './exit.js';
import { attentionFlops } from './flops.js';
import { BENCH_HELP } from './help.js';
import { ProgressBar } from './progress.js';
import { currentRuntime } from './runtime.js';
import { renderLineChart, type ChartSeries } from './svg-chart.js';
import { formatTable } from './table.js';

const FLAGS = {
  backend: { kind: 'string' },
  seq: { kind: 'string' },
  dtype: { kind: 'string' },
  pattern: { kind: 'string' },
  batch: { kind: 'string' },
  heads: { kind: 'string' },
  dim: { kind: 'string' },
  causal: { kind: 'boolean' },
  pipeline: { kind: 'string' },
  runs: { kind: 'string' },
  seed: { kind: 'string' },
  json: { kind: 'boolean' },
  svg: { kind: 'string' },
  help: { kind: 'boolean', short: 'h' },
} as const;

// A GPU takes a real workload (B * N = 16384 tokens per length); the CPU backend is a plain reference, timed on
// sizes that finish in seconds.
const DEFAULTS: Record<BackendName, { seq: number[]; dtypes: DType[]; tokens: number; heads: number; dim: number; runs: number }> = {
  cuda: { seq: [1024, 2048, 4096, 8192], dtypes: ['float16', 'bfloat16'], tokens: 16384, heads: 16, dim: 64, runs: 10 },
  cpu: { seq: [64, 128, 256], dtypes: ['float16'], tokens: 1, heads: 2, dim: 32, runs: 2 },
};

export interface BenchConfig {
  readonly backend: BackendName;
  readonly seqs: readonly number[];
  readonly dtypes: readonly DType[];
  readonly patterns: readonly (Pattern | null)[];
  /** A fixed batch size, or null for max(1, tokens / N). */
  readonly batch: number | null;
  readonly tokens: number;
  readonly heads: number;
  readonly dim: number;
  readonly causal: boolean;
  readonly pipeline: Pipeline;
  readonly runs: number;
  readonly seed: number;
}

export interface BenchResult {
  readonly variant: string;
  readonly dtype: DType;
  readonly seq: number;
  readonly batch: number;
  readonly medianMs: number;
  /** Dense-equivalent rate: attentionFlops() over the median time, in 10^12 per second. */
  readonly tflops: number;
  /** Dense attention's time over this variant's, for the same dtype and N (null when dense was not run). */
  readonly speedup: number | null;
}

export interface BenchReport {
  readonly runtime: string;
  readonly backend: BackendName;
  readonly device: string;
  readonly config: Omit<BenchConfig, 'patterns'> & { readonly patterns: readonly string[] };
  readonly results: readonly BenchResult[];
  readonly skipped: readonly { readonly variant: string; readonly dtype: DType; readonly reason: string }[];
}

export async function runBenchCommand(argv: readonly string[]): Promise<void> {
  const { flags, positionals } = parseArgs(argv, FLAGS);
  if (flags.help) {
    process.stdout.write(BENCH_HELP);
    return;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const backendChoice = parseChoice('backend', flags.backend ?? 'auto', BACKEND_CHOICES);
  const list = (flag: string, value: string): string[] => {
    const items = value.split(',');
    if (items.some((item) => item === '')) throw new UsageError(`--${flag}: expected a comma-separated list, got ${JSON.stringify(value)}`);
    return items;
  };
  const seqs = flags.seq === undefined ? undefined : list('seq', flags.seq).map((s) => parseInteger('seq', s, 1));
  const dtypes = flags.dtype === undefined ? undefined : list('dtype', flags.dtype).map((d) => parseChoice('dtype', d, DTYPES));
  const patterns = list('pattern', flags.pattern ?? 'dense,1:2,2:4').map((p) => parsePatternFlag('pattern', p));
  const pipeline = parseChoice('pipeline', flags.pipeline ?? 'fused', PIPELINES);
  const integer = (name: 'batch' | 'heads' | 'dim' | 'runs' | 'seed', min: number): number | undefined =>
    flags[name] === undefined ? undefined : parseInteger(name, flags[name], min);
  const batch = integer('batch', 1);
  const heads = integer('heads', 1);
  const dim = integer('dim', 1);
  const runs = integer('runs', 1);
  const seed = integer('seed', 0) ?? 1;
  // A chart that cannot be written is found out now, not after the whole benchmark.
  if (flags.svg !== undefined) await checkWritable(flags.svg);

  const backend = resolveBackend(backendChoice);
  const defaults = DEFAULTS[backend];
  const config: BenchConfig = {
    backend,
    seqs: unique(seqs ?? defaults.seq).sort((a, b) => a - b),
    dtypes: unique(dtypes ?? defaults.dtypes),
    patterns: uniqueBy(patterns, formatPattern),
    batch: batch ?? (backend === 'cpu' ? 1 : null),
    tokens: defaults.tokens,
    heads: heads ?? defaults.heads,
    dim: dim ?? defaults.dim,
    causal: flags.causal === true,
    pipeline,
    runs: runs ?? defaults.runs,
    seed,
  };
  const report = await bench(config);
  process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatBenchReport(report));
  if (flags.svg !== undefined) {
    await writeChart(flags.svg, report);
    process.stderr.write(`dfss bench: chart written to ${flags.svg}\n`);
  }
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

function uniqueBy<T>(items: readonly T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => !seen.has(key(item)) && seen.add(key(item)));
}

async function checkWritable(file: string): Promise<void> {
  const directory = dirname(resolve(file));
  try {
    await access(directory, constants.W_OK);
  } catch {
    throw new UsageError(`--svg: cannot write ${file}: the directory ${directory} does not exist or is not writable`);
  }
}

function batchFor(config: BenchConfig, seq: number): number {
  return config.batch ?? Math.max(1, Math.floor(config.tokens / seq));
}

function describeDevice(backend: BackendName): string {
  if (backend === 'cpu') return 'the pure TypeScript reference';
  const device = backendInfo().cuda.devices[0];
  return device === undefined ? 'cuda' : `${device.name} (compute capability ${device.computeCapability})`;
}

async function bench(config: BenchConfig): Promise<BenchReport> {
  const { backend, seqs, dtypes, patterns, heads, dim, causal, pipeline, runs } = config;
  const skipped: BenchReport['skipped'][number][] = [];
  const plan: { dtype: DType; variants: (Pattern | null)[] }[] = [];
  for (const dtype of dtypes) {
    const variants = patterns.filter((pattern) => {
      if (backend !== 'cuda' || cudaSupports(dtype, pattern)) return true;
      skipped.push({ variant: formatPattern(pattern), dtype, reason: `libdfss does not implement ${dtype} ${formatPattern(pattern)}` });
      return false;
    });
    if (variants.length > 0) plan.push({ dtype, variants });
  }
  const steps = plan.reduce((n, p) => n + p.variants.length, 0) * seqs.length;
  const progress = new ProgressBar('dfss bench', steps);
  const random = new SeededRandom(config.seed);
  const results: BenchResult[] = [];
  try {
    for (const { dtype, variants } of plan) {
      for (const seq of seqs) {
        const batch = batchFor(config, seq);
        const shape = [batch, heads, seq, dim];
        const count = batch * heads * seq * dim;
        const tensors: Tensor[] = [];
        try {
          // The inputs go to the backend's device once, so the timed runs measure attention, not copies.
          for (let i = 0; i < 3; i++) {
            const host = Tensor.fromArray(random.normals(count), shape, { dtype });
            if (backend === 'cpu') tensors.push(host);
            else {
              try {
                tensors.push(await host.to('cuda'));
              } finally {
                host.dispose();
              }
            }
          }
          const [q, k, v] = tensors;
          let denseMs: number | null = null;
          for (const pattern of variants) {
            const variant = formatPattern(pattern);
            progress.show(`${dtype} ${variant} N=${seq}`);
            const ms = await medianMs(async () => (await attention(q, k, v, { pattern, causal, backend, pipeline })).dispose(), runs);
            if (pattern === null) denseMs = ms;
            const tflops = attentionFlops(batch, heads, seq, seq, dim, causal) / (ms / 1e3) / 1e12;
            results.push({ variant, dtype, seq, batch, medianMs: ms, tflops, speedup: null });
            progress.tick(`${dtype} ${variant} N=${seq}: ${ms.toFixed(3)} ms`);
          }
          // Speed-ups once dense is known (it may not be the first variant asked for).
          if (denseMs !== null)
            for (let i = results.length - variants.length; i < results.length; i++)
              results[i] = { ...results[i], speedup: denseMs / results[i].medianMs };
        } finally {
          for (const t of tensors) t.dispose();
        }
      }
    }
  } finally {
    progress.finish();
  }
  const runtime = currentRuntime();
  return {
    runtime: `${runtime.name} ${runtime.version}`,
    backend,
    device: describeDevice(backend),
    config: { ...config, patterns: config.patterns.map(formatPattern) },
    results,
    skipped,
  };
}

function describeShape(config: BenchReport['config']): string {
  const batch = config.batch === null ? `B=${config.tokens}/N` : `B=${config.batch}`;
  return `${batch}, H=${config.heads}, D=${config.dim}, ${config.causal ? 'causal' : 'non-causal'}, ${config.pipeline} pipeline`;
}

export function formatBenchReport(report: BenchReport): string {
  const { config } = report;
  const rows: string[][] = [['dtype', 'N', 'B', 'variant', 'median ms', 'TFLOP/s*', 'vs dense']];
  for (const r of report.results) {
    rows.push([
      r.dtype,
      String(r.seq),
      String(r.batch),
      r.variant,
      r.medianMs.toFixed(3),
      r.tflops.toPrecision(3),
      r.speedup === null ? '-' : `${r.speedup.toFixed(2)}x`,
    ]);
  }
  const lines = [
    `dfss bench: backend ${report.backend} (${report.device}), ${report.runtime}; ${describeShape(config)}`,
    '',
    ...formatTable(rows),
    `* dense-equivalent rate: 4*B*H*D per unmasked (query, key) pair over the median of ${config.runs} run${config.runs === 1 ? '' : 's'} after a warm-up run`,
  ];
  for (const s of report.skipped) lines.push(`skipped ${s.dtype} ${s.variant}: ${s.reason}`);
  return `${lines.join('\n')}\n`;
}

const COLORS = ['#4c72b0', '#dd8452', '#55a868', '#c44e52', '#8172b3', '#937860', '#da8bc3', '#8c8c8c'];
const DASHES: Record<DType, string> = { float16: '', bfloat16: '7 4', float32: '2 3' };

/** The chart: one line per variant and dtype (color: variant, dash: dtype), TFLOP/s against N. */
export function benchChart(report: BenchReport): string {
  const variants = report.config.patterns;
  const series: ChartSeries[] = [];
  for (const dtype of report.config.dtypes)
    for (const variant of variants) {
      const points = report.results.filter((r) => r.dtype === dtype && r.variant === variant).map((r) => ({ x: r.seq, y: r.tflops }));
      if (points.length === 0) continue;
      series.push({ label: `${variant} ${dtype}`, points, color: COLORS[variants.indexOf(variant) % COLORS.length], dash: DASHES[dtype] });
    }
  return renderLineChart({
    title: 'dfss attention: TFLOP/s against sequence length',
    subtitle: `backend ${report.backend} (${report.device}); ${describeShape(report.config)}`,
    xLabel: 'sequence length N (queries = keys)',
    yLabel: 'TFLOP/s (dense-equivalent)',
    series,
  });
}

async function writeChart(file: string, report: BenchReport): Promise<void> {
  try {
    await writeFile(file, benchChart(report));
  } catch (error) {
    throw new CommandFailedError(`cannot write the chart to ${file} (${(error as Error).message}); the results are printed above, and --svg needs a writable path`);
  }
}
