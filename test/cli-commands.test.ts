// dfss info, dfss check and dfss bench: what they print, their JSON, the chart, and their exit statuses. The
// commands run in the runtime that runs the tests.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import type { Case } from '../src/check/cases.js';
import { type Check, ENTRY_POINTS } from '../src/check/entry-points.js';
import { backendInfo, type BackendInfo } from '../src/index.js';
import { checkReportJson, formatCheckReport, type CaseOutcome } from '../src/cli/check-command.js';
import { formatInfo, installationInfo } from '../src/cli/info-command.js';
import { currentRuntime } from '../src/cli/runtime.js';
import { ProgressBar } from '../src/cli/progress.js';
import { renderLineChart } from '../src/cli/svg-chart.js';
import { assertFails, runCli, withTempDir } from './support/cli.js';

const CUDA = backendInfo().cuda;
const noGpuHere = CUDA.available ? 'a CUDA device is available here' : false;

// ----- dfss info -------------------------------------------------------------------------------------------------

test('dfss info names the runtime, the library and the backend auto picks, as text and as JSON', async () => {
  const runtime = currentRuntime();
  const text = await runCli(['info']);
  assert.equal(text.code, 0, text.stderr);
  assert.equal(text.stderr, '');
  assert.match(text.stdout, new RegExp(`^runtime +${runtime.name} ${runtime.version.replaceAll('.', '\\.')} \\(Float16Array: ${runtime.float16Array ? 'yes' : 'no'}`, 'm'));
  assert.match(text.stdout, /^dfss +\d+\.\d+\.\d+ \(/m);
  assert.match(text.stdout, new RegExp(`^auto +${backendInfo().auto}: `, 'm'));

  const json = await runCli(['info', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const info = JSON.parse(json.stdout);
  assert.deepEqual(info.runtime, runtime);
  assert.equal(info.library.path, CUDA.libraryPath);
  assert.equal(info.library.found, CUDA.libraryPath !== null);
  assert.equal(info.cuda.available, CUDA.available);
  assert.equal(info.devices.length, CUDA.devices.length);
  assert.equal(info.auto.backend, backendInfo().auto);
  if (CUDA.libraryPath !== null) assert.ok(text.stdout.includes(CUDA.libraryPath), 'the library path is printed');
});

test('dfss info without the library: auto picks the cpu and says which path was tried', async () => {
  const missing = join(import.meta.dirname, 'no-such-dir', 'libdfss.so');
  const result = await runCli(['info', '--json'], { DFSS_LIBRARY: missing });
  assert.equal(result.code, 0, result.stderr);
  const info = JSON.parse(result.stdout);
  assert.equal(info.library.found, false);
  assert.equal(info.auto.backend, 'cpu');
  assert.ok(info.auto.reason.includes(missing), info.auto.reason);
  assert.match(info.auto.reason, /^libdfss\.so is not loaded/);
  const text = await runCli(['info'], { DFSS_LIBRARY: missing });
  assert.match(text.stdout, /^library +not loaded/m);
  assert.match(text.stdout, /^auto +cpu: libdfss\.so is not loaded/m);
});

test('dfss info on a GPU: each device with compute capability, memory and sparse tensor cores, and why auto is cuda', () => {
  // The report of a machine with two GPUs, made from the information libdfss gives.
  const gpus: BackendInfo = {
    auto: 'cuda',
    cuda: {
      available: true,
      reason: 'libdfss 0.3.0 found 2 device(s)',
      libraryPath: '/opt/dfss/libdfss.so',
      libraryVersion: '0.3.0',
      devices: [
        { index: 0, name: 'NVIDIA H100 80GB HBM3', computeCapability: '9.0', multiprocessors: 132, sparseTensorCores: true, totalMemoryBytes: 85 * 2 ** 30 },
        { index: 1, name: 'Tesla T4', computeCapability: '7.5', multiprocessors: 40, sparseTensorCores: false, totalMemoryBytes: 15 * 2 ** 30 },
      ],
    },
  };
  const info = installationInfo(gpus);
  assert.equal(info.devices.length, 2);
  const text = formatInfo(info);
  assert.match(text, /^library +\/opt\/dfss\/libdfss\.so \(libdfss 0\.3\.0\)$/m);
  assert.match(text, /^GPU 0 +NVIDIA H100 80GB HBM3: compute capability 9\.0, 85\.0 GiB, 132 SMs, sparse tensor cores$/m);
  assert.match(text, /^GPU 1 +Tesla T4: compute capability 7\.5, 15\.0 GiB, 40 SMs, no sparse tensor cores$/m);
  assert.match(text, /^auto +cuda: libdfss 0\.3\.0 found 2 GPU\(s\); it runs float16 dense, 1:2, 2:4; bfloat16 dense, 1:2, 2:4; float32 dense, 1:2 - any other N:M runs on the cpu$/m);
});

test('dfss info: bad arguments exit with status 2', async () => {
  assertFails(await runCli(['info', '--verbose']), 2, /unknown flag --verbose \(see 'dfss info --help'\)/);
  assertFails(await runCli(['info', 'gpus']), 2, /unexpected argument "gpus"/);
});

// ----- dfss check ------------------------------------------------------------------------------------------------

test('dfss check without a GPU says so in one line and exits with status 3', { skip: noGpuHere }, async () => {
  const result = await runCli(['check']);
  assertFails(result, 3, /^dfss: dfss check compares libdfss on a GPU with the CPU backend, and no GPU can be used here: /);
  assert.match(result.stderr, /\('dfss info' shows what was found\)\n$/);
});

test('dfss check: bad arguments exit with status 2 before anything runs', async () => {
  const cases: [string[], RegExp][] = [
    [['--grid', 'huge'], /--grid: expected one of small, full, got "huge"/],
    [['--dtype', 'half'], /--dtype: expected one of float16, bfloat16, float32, got "half"/],
    [['--pattern', '2:3'], /--pattern: expected one of dense, 1:2, 2:4, got "2:3"/],
    [['--dtype', 'float32', '--pattern', '2:4'], /no case of the grid has these --dtype and --pattern/],
    [['--seed', '-1'], /--seed: expected an integer >= 0/],
    [['now'], /unexpected argument "now"/],
  ];
  for (const [args, pattern] of cases) {
    const result = await runCli(['check', ...args]);
    assertFails(result, 2, pattern);
    assert.match(result.stderr, /\(see 'dfss check --help'\)\n$/);
  }
});

test('dfss check on a GPU: float16 2:4 passes, with its table', { skip: CUDA.available ? false : 'no CUDA device here' }, async () => {
  const result = await runCli(['check', '--dtype', 'float16', '--pattern', '2:4', '--seed', '7']);
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /^float16 +2:4 +\d+ +pass +pass +pass +pass +pass +pass$/m);
  assert.match(result.stdout, /^all \d+ cases passed \(\d+ comparisons with the CPU backend, seed 7\)$/m);
});

function fakeCase(dtype: Case['dtype'], pattern: string, seqQ: number): Case {
  return { dtype, pattern, causal: false, batch: 1, headsQ: 2, headsKv: 1, seqQ, seqK: 17, headDim: 16, headDimV: 16, bnhd: false, lengths: false, exact: false };
}

function passing(): Check[] {
  return ENTRY_POINTS.map((entryPoint) => ({
    entryPoint,
    name: entryPoint,
    failures: 0,
    detail: '',
  }));
}

test('the check report: one row per dtype and pattern, FAIL k/n under the failing entry point, each failure listed', () => {
  const metadataFailure: Check = { entryPoint: 'sddmm_prune', name: 'sddmm metadata', failures: 3, detail: 'element 5 (row 1) is 6, expected 9 (bit-exact)' };
  const outcomes: CaseOutcome[] = [
    { case: fakeCase('float16', '2:4', 3), checks: passing(), error: null },
    { case: fakeCase('float16', '2:4', 5), checks: [...passing(), metadataFailure], error: null },
    { case: fakeCase('bfloat16', 'dense', 3), checks: passing(), error: null },
    { case: fakeCase('float32', '1:2', 3), checks: [], error: 'NativeError: DFSS_ERROR_CUDA: an illegal memory access' },
  ];
  const lines = formatCheckReport(outcomes, 42).split('\n');
  assert.match(
    lines[0],
    /^dtype +pattern +cases +attention_forward +staged_attention +sddmm_prune +compressed_softmax +spmm +staged_pipeline$/,
  );
  assert.match(lines[1], /^float16 +2:4 +2 +pass +pass +FAIL 1\/2 +pass +pass +pass$/);
  assert.match(lines[2], /^bfloat16 +dense +1 +pass +pass +pass +pass +pass +pass$/);
  // A case stopped by an error compared nothing: every entry point fails.
  assert.match(lines[3], /^float32 +1:2 +1 +FAIL 1\/1 +FAIL 1\/1 +FAIL 1\/1 +FAIL 1\/1 +FAIL 1\/1 +FAIL 1\/1$/);
  const text = lines.join('\n');
  assert.ok(text.includes('float16 2:4 B1 H2/1 Nq5 Nk17 D16/16: sddmm metadata: element 5 (row 1) is 6, expected 9 (bit-exact)'));
  assert.ok(text.includes('float32 1:2 B1 H2/1 Nq3 Nk17 D16/16: error: NativeError: DFSS_ERROR_CUDA'));
  assert.match(text, /^2 of 4 cases FAILED \(seed 42: rerun with --seed 42 to replay them\)$/m);

  const json = checkReportJson(outcomes, 42, 'NVIDIA H100');
  assert.deepEqual([json.cases, json.passed, json.failed, json.seed], [4, 2, 2, 42]);
  assert.deepEqual(json.results[1].failures, ['sddmm metadata: element 5 (row 1) is 6, expected 9 (bit-exact)']);

  const allPass = formatCheckReport(outcomes.slice(0, 1), 1);
  assert.match(allPass, /^all 1 cases passed \(6 comparisons with the CPU backend, seed 1\)$/m);
  assert.ok(!allPass.includes('failures:'));
});

// ----- dfss bench ------------------------------------------------------------------------------------------------

const SMALL_BENCH = ['--backend', 'cpu', '--seq', '16,8', '--heads', '1', '--dim', '8', '--runs', '1'];

test('dfss bench: progress on stderr, a table per dtype, N and variant on stdout, and the SVG chart', async () => {
  await withTempDir(async (dir) => {
    const svg = join(dir, 'chart.svg');
    const result = await runCli(['bench', ...SMALL_BENCH, '--dtype', 'float16,bfloat16', '--svg', svg]);
    assert.equal(result.code, 0, result.stderr);
    // Not a terminal: a progress line at every tenth, the last at 100%, then where the chart went.
    const progress = result.stderr.trimEnd().split('\n');
    assert.match(progress[0], /^dfss bench +\d+% 1\/12 float16 dense N=8: \d+\.\d{3} ms$/);
    assert.match(progress[progress.length - 2], /^dfss bench 100% 12\/12 bfloat16 2:4 N=16: /);
    assert.equal(progress[progress.length - 1], `dfss bench: chart written to ${svg}`);

    const rows = result.stdout.split('\n').filter((line) => /^(float16|bfloat16) /.test(line));
    assert.equal(rows.length, 12, result.stdout);
    assert.match(result.stdout, /^dtype +N +B +variant +median ms +TFLOP\/s\* +vs dense$/m);
    assert.match(result.stdout, /^float16 +8 +1 +dense +\d+\.\d{3} +\S+ +1\.00x$/m);
    assert.match(result.stdout, /^bfloat16 +16 +1 +2:4 +\d+\.\d{3} +\S+ +\d+\.\d\dx$/m);
    assert.match(result.stdout, /^dfss bench: backend cpu \(the pure TypeScript reference\), .*, non-causal, fused pipeline$/m);

    const chart = readFileSync(svg, 'utf8');
    assert.match(chart, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(chart, /<\/svg>\n$/);
    const series = [...chart.matchAll(/<g class="series" data-label="([^"]+)">\n<polyline [^>]*points="([^"]+)"/g)];
    assert.deepEqual(
      series.map((s) => s[1]),
      ['dense float16', '1:2 float16', '2:4 float16', 'dense bfloat16', '1:2 bfloat16', '2:4 bfloat16'],
    );
    for (const [, , points] of series) assert.equal(points.split(' ').length, 2, 'one point per N');
    assert.ok(!chart.includes('NaN'));
    // Solid lines for float16, dashed for bfloat16; a color per variant.
    assert.match(chart, /data-label="dense float16">\n<polyline fill="none" stroke="#4c72b0" stroke-width="2" points/);
    assert.match(chart, /data-label="dense bfloat16">\n<polyline fill="none" stroke="#4c72b0" stroke-width="2" stroke-dasharray="7 4"/);
  });
});

test('dfss bench --json: every measurement with its rate, and the configuration', async () => {
  const result = await runCli(['bench', ...SMALL_BENCH, '--pattern', '2:4,dense', '--json', '--causal', '--pipeline', 'staged']);
  assert.equal(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  assert.equal(report.backend, 'cpu');
  assert.equal(report.runtime, `${currentRuntime().name} ${currentRuntime().version}`);
  assert.deepEqual(report.config.seqs, [8, 16]);
  assert.deepEqual(report.config.patterns, ['2:4', 'dense']);
  assert.equal(report.config.causal, true);
  assert.equal(report.config.pipeline, 'staged');
  assert.deepEqual(
    report.results.map((r: { seq: number; variant: string }) => `${r.seq} ${r.variant}`),
    ['8 2:4', '8 dense', '16 2:4', '16 dense'],
  );
  for (const r of report.results) {
    assert.ok(r.medianMs > 0 && r.tflops > 0, JSON.stringify(r));
    // Causal, N queries and keys: N (N + 1) / 2 allowed pairs, 4 D flops each.
    assert.ok(Math.abs(r.tflops - (4 * 8 * ((r.seq * (r.seq + 1)) / 2)) / (r.medianMs / 1e3) / 1e12) < 1e-9 * r.tflops + 1e-15);
    if (r.variant === 'dense') assert.equal(r.speedup, 1);
  }
  assert.deepEqual(report.skipped, []);
});

test('dfss bench: bad arguments exit with status 2 before anything runs', async () => {
  const cases: [string[], RegExp][] = [
    [['--seq', '0'], /--seq: expected an integer >= 1, got "0"/],
    [['--seq', '64,,128'], /--seq: expected a comma-separated list, got "64,,128"/],
    [['--dtype', 'half'], /--dtype: expected one of float16, bfloat16, float32/],
    [['--pattern', '4:4'], /--pattern: expected dense or N:M/],
    [['--svg', join(import.meta.dirname, 'no-such-dir', 'chart.svg')], /--svg: cannot write .*chart\.svg: the directory .*no-such-dir does not exist or is not writable/],
    [['--backend', 'tpu'], /--backend: expected one of auto, cpu, cuda/],
    [['--pipeline', 'flash'], /--pipeline: expected one of fused, staged/],
  ];
  for (const [args, pattern] of cases) {
    const result = await runCli(['bench', ...args]);
    assertFails(result, 2, pattern);
    assert.match(result.stderr, /\(see 'dfss bench --help'\)\n$/);
  }
});

test('dfss bench --backend cuda without a GPU exits with status 3', { skip: noGpuHere }, async () => {
  assertFails(await runCli(['bench', '--backend', 'cuda']), 3, /CUDA backend cannot run here/);
});

test('the SVG chart escapes its text and copes with one length and zero rates', () => {
  const chart = renderLineChart({
    title: 'a <b> & "c"',
    xLabel: 'N',
    yLabel: 'TFLOP/s',
    series: [{ label: "x'y", points: [{ x: 64, y: 0 }], color: '#000', dash: '' }],
  });
  assert.ok(chart.includes('a &lt;b&gt; &amp; &quot;c&quot;'));
  assert.ok(chart.includes('x&apos;y'));
  assert.ok(!chart.includes('NaN') && !chart.includes('Infinity'));
  assert.ok(!existsSync(join(import.meta.dirname, 'no-such-dir')));
});

test('the progress bar: redrawn in place on a terminal and cleared at the end; a line per tenth elsewhere', () => {
  const terminal = { text: '', isTTY: true, columns: 0, write(s: string) { this.text += s; } };
  const bar = new ProgressBar('dfss x', 4, terminal);
  bar.show('first');
  bar.tick('first done');
  bar.finish();
  // Where the terminal does not tell its width (columns 0), 80 columns are assumed.
  assert.equal(terminal.text, '\r\x1b[Kdfss x [------------------------] 0/4 first\r\x1b[Kdfss x [######------------------] 1/4 first done\r\x1b[K');

  const log = { text: '', write(s: string) { this.text += s; } };
  const long = new ProgressBar('dfss y', 20, log);
  for (let i = 1; i <= 20; i++) long.tick(`step ${i}`);
  long.show('not shown in a log');
  long.finish();
  const lines = log.text.trimEnd().split('\n');
  assert.equal(lines.length, 11, log.text); // 5%, then every tenth up to 100%
  assert.equal(lines[0], 'dfss y   5% 1/20 step 1');
  assert.equal(lines[10], 'dfss y 100% 20/20 step 20');
});
