// `dfss check`: every GPU entry point against the CPU backend on a grid of sizes, dtypes, patterns and masks
// (the cases and comparisons of the GPU tests, src/check/), with a pass/fail table at the end. It exits non-zero
// when any check fails, and with the no-device status where there is no GPU to check.
import { caseName, checkCases, freshSeed, type Case } from '../check/cases.js';
import { type Check, checkCase, ENTRY_POINTS, withPoisonedDeviceMemory } from '../check/entry-points.js';
import { cudaStatus } from '../cuda/runtime.js';
import { DTYPES, type DType } from '../dtype.js';
import { NoDeviceError } from '../errors.js';
import { SeededRandom } from '../random.js';
import { parseArgs, parseChoice, parseInteger, UsageError } from './args.js';
import { CommandFailedError } from './exit.js';
import { CHECK_HELP } from './help.js';
import { ProgressBar } from './progress.js';
import { formatTable } from './table.js';

const FLAGS = {
  grid: { kind: 'string' },
  dtype: { kind: 'string' },
  pattern: { kind: 'string' },
  seed: { kind: 'string' },
  verbose: { kind: 'boolean', short: 'v' },
  json: { kind: 'boolean' },
  help: { kind: 'boolean', short: 'h' },
} as const;

/** The outcome of one case: its checks, or the error that stopped it. */
export interface CaseOutcome {
  readonly case: Case;
  readonly checks: readonly Check[];
  readonly error: string | null;
}

export async function runCheckCommand(argv: readonly string[]): Promise<void> {
  const { flags, positionals } = parseArgs(argv, FLAGS);
  if (flags.help) {
    process.stdout.write(CHECK_HELP);
    return;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const grid = parseChoice('grid', flags.grid ?? 'small', ['small', 'full'] as const);
  const dtypes = flags.dtype === undefined ? DTYPES : flags.dtype.split(',').map((d) => parseChoice('dtype', d, DTYPES));
  // The patterns libdfss implements; the CPU's other N:M have no GPU counterpart to check.
  const patterns = flags.pattern === undefined ? null : flags.pattern.split(',').map((p) => parseChoice('pattern', p, ['dense', '1:2', '2:4']));
  const seed = flags.seed === undefined ? freshSeed() : parseInteger('seed', flags.seed, 0);
  const cases = checkCases({ large: grid === 'full' }).filter(
    (c) => dtypes.includes(c.dtype) && (patterns === null || patterns.includes(c.pattern)),
  );
  if (cases.length === 0) throw new UsageError('no case of the grid has these --dtype and --pattern (libdfss runs float32 dense and 1:2 only)');

  const cuda = cudaStatus();
  if (!cuda.available) {
    throw new NoDeviceError(`dfss check compares libdfss on a GPU with the CPU backend, and no GPU can be used here: ${cuda.reason}`);
  }
  const device = cuda.devices[0];
  const header = `dfss check: libdfss ${cuda.libraryVersion} on ${device.name} (compute capability ${device.computeCapability}), ${cases.length} cases, seed ${seed}`;
  if (!flags.json) process.stdout.write(`${header}\n\n`);

  const outcomes = await runCases(cases, seed, flags.verbose === true);
  const failed = outcomes.filter((o) => o.error !== null || o.checks.some((check) => check.failures > 0)).length;
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(checkReportJson(outcomes, seed, device.name), null, 2)}\n`);
  } else {
    process.stdout.write(formatCheckReport(outcomes, seed));
  }
  if (failed > 0) throw new CommandFailedError(`${failed} of ${outcomes.length} cases failed (replay them with --seed ${seed})`);
}

async function runCases(cases: readonly Case[], seed: number, verbose: boolean): Promise<CaseOutcome[]> {
  const random = new SeededRandom(seed);
  const progress = new ProgressBar('dfss check', cases.length);
  const outcomes: CaseOutcome[] = [];
  await withPoisonedDeviceMemory(async () => {
    for (const c of cases) {
      progress.show(caseName(c));
      let outcome: CaseOutcome;
      try {
        outcome = { case: c, checks: await checkCase(c, random), error: null };
      } catch (error) {
        outcome = { case: c, checks: [], error: error instanceof Error ? error.message : String(error) };
      }
      outcomes.push(outcome);
      progress.tick(caseName(c));
      if (verbose) {
        progress.finish();
        process.stdout.write(`${caseOutcomeLine(outcome)}\n`);
      }
    }
  });
  progress.finish();
  return outcomes;
}

function caseOutcomeLine(o: CaseOutcome): string {
  const failures = failureLines(o);
  return failures.length === 0 ? `pass  ${caseName(o.case)}` : `FAIL  ${caseName(o.case)}: ${failures.join('; ')}`;
}

function failureLines(o: CaseOutcome): string[] {
  if (o.error !== null) return [`error: ${o.error}`];
  return o.checks.filter((check) => check.failures > 0).map((check) => `${check.name}: ${check.detail}`);
}

/**
 * The table (one row per dtype and pattern, one column per entry point: "pass" or "FAIL k/n", k of the n cases
 * failing there), then every failure with its case, then the totals.
 */
export function formatCheckReport(outcomes: readonly CaseOutcome[], seed: number): string {
  const groups = new Map<string, CaseOutcome[]>();
  for (const o of outcomes) {
    const key = `${o.case.dtype}\t${o.case.pattern}`;
    groups.set(key, [...(groups.get(key) ?? []), o]);
  }
  const rows: string[][] = [['dtype', 'pattern', 'cases', ...ENTRY_POINTS]];
  for (const [key, group] of groups) {
    const [dtype, pattern] = key.split('\t');
    const cells = ENTRY_POINTS.map((entryPoint) => {
      // A case that stopped on an error fails every entry point: nothing after the error was compared.
      const failing = group.filter((o) => o.error !== null || o.checks.some((c) => c.entryPoint === entryPoint && c.failures > 0)).length;
      return failing === 0 ? 'pass' : `FAIL ${failing}/${group.length}`;
    });
    rows.push([dtype, pattern, String(group.length), ...cells]);
  }
  const lines = formatTable(rows, 'left');
  const failing = outcomes.filter((o) => failureLines(o).length > 0);
  if (failing.length > 0) {
    lines.push('', 'failures:');
    for (const o of failing) lines.push(`  ${caseName(o.case)}: ${failureLines(o).join('; ')}`);
  }
  const checks = outcomes.reduce((n, o) => n + o.checks.length, 0);
  lines.push(
    '',
    failing.length === 0
      ? `all ${outcomes.length} cases passed (${checks} comparisons with the CPU backend, seed ${seed})`
      : `${failing.length} of ${outcomes.length} cases FAILED (seed ${seed}: rerun with --seed ${seed} to replay them)`,
  );
  return `${lines.join('\n')}\n`;
}

/** The report for scripts: every case with its verdict, and the failures spelled out. */
export function checkReportJson(outcomes: readonly CaseOutcome[], seed: number, device: string) {
  return {
    device,
    seed,
    cases: outcomes.length,
    passed: outcomes.filter((o) => failureLines(o).length === 0).length,
    failed: outcomes.filter((o) => failureLines(o).length > 0).length,
    results: outcomes.map((o) => ({
      case: caseName(o.case),
      dtype: o.case.dtype as DType,
      pattern: o.case.pattern,
      passed: failureLines(o).length === 0,
      failures: failureLines(o),
    })),
  };
}
