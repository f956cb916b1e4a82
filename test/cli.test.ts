import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor, attention, attentionWithLse, backendInfo } from '../src/index.js';
import { encodeFloat16 } from '../src/dtype.js';
import { SeededRandom } from '../src/random.js';
import { parseArgs, parseChoice, parseFiniteNumber, parseInteger, parsePatternFlag, UsageError } from '../src/cli/args.js';
import { encodeNpyFloat32, readNpy, writeNpyFloat32 } from '../src/cli/npy.js';
import { assertFails, runCli, withTempDir } from './support/cli.js';

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A float16 .npy file of the given values (rounded to float16), written by hand as NumPy would. */
function float16Npy(values: Float32Array, shape: number[]): Uint8Array {
  const dict = `{'descr': '<f2', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`;
  const headerLength = Math.ceil((10 + dict.length + 1) / 64) * 64 - 10;
  const header = dict.padEnd(headerLength - 1) + '\n';
  const data = encodeFloat16(values);
  const bytes = new Uint8Array(10 + headerLength + data.byteLength);
  bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, headerLength & 0xff, headerLength >> 8]);
  bytes.set(new TextEncoder().encode(header), 10);
  bytes.set(new Uint8Array(data.buffer), 10 + headerLength);
  return bytes;
}

interface Inputs {
  q: string;
  k: string;
  v: string;
  data: { q: Float32Array; k: Float32Array; v: Float32Array };
  shapes: { q: number[]; k: number[]; v: number[] };
}

/** Writes random float32 q, k, v .npy files of the given shapes into dir. */
async function writeInputs(dir: string, shapes: Inputs['shapes'], seed: number): Promise<Inputs> {
  const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
  const all = new SeededRandom(seed).normals(size(shapes.q) + size(shapes.k) + size(shapes.v));
  const q = all.subarray(0, size(shapes.q));
  const k = all.subarray(q.length, q.length + size(shapes.k));
  const v = all.subarray(q.length + k.length);
  const paths = { q: join(dir, 'q.npy'), k: join(dir, 'k.npy'), v: join(dir, 'v.npy') };
  await writeNpyFloat32(paths.q, q, shapes.q);
  await writeNpyFloat32(paths.k, k, shapes.k);
  await writeNpyFloat32(paths.v, v, shapes.v);
  return { ...paths, data: { q, k, v }, shapes };
}

function tensors(inputs: Inputs, dtype: 'float16' | 'bfloat16' | 'float32'): [Tensor, Tensor, Tensor] {
  return [
    Tensor.fromArray(inputs.data.q, inputs.shapes.q, { dtype }),
    Tensor.fromArray(inputs.data.k, inputs.shapes.k, { dtype }),
    Tensor.fromArray(inputs.data.v, inputs.shapes.v, { dtype }),
  ];
}

const CUDA_AVAILABLE = backendInfo().cuda.available;

// ----- the flag parser ------------------------------------------------------------------------------------

test('parseArgs reads --flag value, --flag=value, short aliases, booleans and --', () => {
  const specs = { output: { kind: 'string', short: 'o' }, scale: { kind: 'string' }, causal: { kind: 'boolean' } } as const;
  const parsed = parseArgs(['a', '--scale', '-0.5', '-o', 'out.npy', 'b', '--causal', '--', '--c'], specs);
  assert.deepEqual(parsed.flags, { scale: '-0.5', output: 'out.npy', causal: true });
  assert.deepEqual(parsed.positionals, ['a', 'b', '--c']);
  assert.deepEqual(parseArgs(['--output=x=y.npy', '-5'], specs), { flags: { output: 'x=y.npy' }, positionals: ['-5'] });
  assert.deepEqual(parseArgs([], specs), { flags: {}, positionals: [] });
});

test('parseArgs rejects unknown flags, missing values, values of booleans and repeated flags', () => {
  const specs = { output: { kind: 'string', short: 'o' }, causal: { kind: 'boolean' } } as const;
  const cases: [string[], RegExp][] = [
    [['--nope'], /^unknown flag --nope$/],
    [['--nope=3'], /^unknown flag --nope$/],
    [['-x'], /^unknown flag -x$/],
    [['--output'], /^--output needs a value$/],
    [['--output='], /^--output needs a value$/],
    [['-o'], /^-o needs a value$/],
    [['-o', '--causal'], /^-o needs a value$/],
    [['--causal=yes'], /^--causal takes no value, got "yes"$/],
    [['--causal', '--causal'], /^--causal is given more than once$/],
    [['-o', 'a', '--output', 'b'], /^--output is given more than once$/],
    [['--constructor'], /^unknown flag --constructor$/],
  ];
  for (const [argv, pattern] of cases) {
    assert.throws(() => parseArgs(argv, specs), (error: unknown) => {
      assert.ok(error instanceof UsageError, String(error));
      assert.match(error.message, pattern, argv.join(' '));
      return true;
    });
  }
});

test('flag values are checked: choices, integers, finite numbers and patterns', () => {
  assert.equal(parseChoice('dtype', 'float32', ['float16', 'float32']), 'float32');
  assert.throws(() => parseChoice('dtype', 'int8', ['float16', 'float32']), /^UsageError: --dtype: expected one of float16, float32, got "int8"$/);
  assert.equal(parseInteger('seq', '128', 1), 128);
  for (const bad of ['0', '-3', '1.5', 'abc', '', '1e3', '99999999999999999999']) {
    assert.throws(() => parseInteger('seq', bad, 1), /--seq: expected an integer >= 1/, bad);
  }
  assert.equal(parseFiniteNumber('scale', '-1.5e-2'), -0.015);
  assert.equal(parseFiniteNumber('scale', '.5'), 0.5);
  for (const bad of ['', 'abc', 'inf', 'Infinity', 'NaN', '1e999', '0x10', '1,5']) {
    assert.throws(() => parseFiniteNumber('scale', bad), /--scale: expected a finite number/, bad);
  }
  assert.equal(parsePatternFlag('pattern', 'dense'), null);
  assert.deepEqual({ ...parsePatternFlag('pattern', '2:4') }, { n: 2, m: 4 });
  assert.deepEqual({ ...parsePatternFlag('pattern', '3:8') }, { n: 3, m: 8 });
  for (const bad of ['foo', '4:4', '0:2', '2:9', '2/4', '']) {
    assert.throws(() => parsePatternFlag('pattern', bad), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, /^--pattern: expected dense or N:M with integers 1 <= N < M <= 8 \(e\.g\. 2:4\), got /);
      return true;
    });
  }
});

// ----- dfss attention ---------------------------------------------------------------------------------------

test('dfss attention writes the output the library computes (defaults: 2:4, float16)', async () => {
  await withTempDir(async (dir) => {
    const inputs = await writeInputs(dir, { q: [2, 2, 9, 8], k: [2, 2, 13, 8], v: [2, 2, 13, 8] }, 11);
    const out = join(dir, 'out.npy');
    const result = await runCli(['attention', inputs.q, inputs.k, inputs.v, '-o', out, '--backend', 'cpu']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const written = await readNpy(out);
    assert.equal(written.dtype, 'float32');
    assert.deepEqual(written.shape, [2, 2, 9, 8]);
    const expected = await attention(...tensors(inputs, 'float16'), { pattern: '2:4', backend: 'cpu' });
    assert.deepEqual(written.data, await expected.toFloat32Array());
    // The pattern matters: dense attention of the same inputs differs.
    const dense = await attention(...tensors(inputs, 'float16'), { pattern: null, backend: 'cpu' });
    assert.notDeepEqual(written.data, await dense.toFloat32Array());
  });
});

test('dfss attention with GQA, causal, scale, 1:2, bfloat16 and --lse', async () => {
  await withTempDir(async (dir) => {
    const inputs = await writeInputs(dir, { q: [1, 4, 7, 6], k: [1, 2, 10, 6], v: [1, 2, 10, 5] }, 12);
    const out = join(dir, 'out.npy');
    const lse = join(dir, 'lse.npy');
    const args = ['attention', inputs.q, inputs.k, inputs.v, `--output=${out}`, '--pattern', '1:2', '--dtype', 'bfloat16'];
    const result = await runCli([...args, '--causal', '--scale', '0.3', '--lse', lse, '--backend=cpu']);
    assert.equal(result.code, 0, result.stderr);
    const expected = await attentionWithLse(...tensors(inputs, 'bfloat16'), {
      pattern: { n: 1, m: 2 },
      causal: true,
      scale: 0.3,
      backend: 'cpu',
    });
    const writtenOut = await readNpy(out);
    const writtenLse = await readNpy(lse);
    assert.deepEqual(writtenOut.shape, [1, 4, 7, 5]);
    assert.deepEqual(writtenOut.data, await expected.out.toFloat32Array());
    assert.deepEqual(writtenLse.shape, [1, 4, 7]);
    assert.equal(writtenLse.dtype, 'float32');
    assert.deepEqual(writtenLse.data, await expected.lse.toFloat32Array());
  });
});

test('dfss attention --pipeline staged writes what the staged pipeline computes, out and lse', async () => {
  await withTempDir(async (dir) => {
    const inputs = await writeInputs(dir, { q: [1, 2, 17, 8], k: [1, 2, 19, 8], v: [1, 2, 19, 8] }, 13);
    const out = join(dir, 'out.npy');
    const lse = join(dir, 'lse.npy');
    const args = ['attention', inputs.q, inputs.k, inputs.v, '-o', out, '--lse', lse, '--dtype', 'bfloat16'];
    const result = await runCli([...args, '--pipeline', 'staged', '--backend', 'cpu']);
    assert.equal(result.code, 0, result.stderr);
    const options = { pattern: '2:4', backend: 'cpu' } as const;
    const staged = await attentionWithLse(...tensors(inputs, 'bfloat16'), { ...options, pipeline: 'staged' });
    assert.deepEqual((await readNpy(out)).data, await staged.out.toFloat32Array());
    assert.deepEqual((await readNpy(lse)).data, await staged.lse.toFloat32Array());
    // The flag reaches the library: the fused pass keeps the scores in float32, so its lse differs.
    const fused = await attentionWithLse(...tensors(inputs, 'bfloat16'), options);
    assert.notDeepEqual((await readNpy(lse)).data, await fused.lse.toFloat32Array());
  });
});

test('dfss attention reads float16 .npy inputs and computes in float32 when asked', async () => {
  await withTempDir(async (dir) => {
    const shape = [1, 2, 5, 4];
    const values = new SeededRandom(13).normals(3 * 40);
    const paths = ['q', 'k', 'v'].map((name) => join(dir, `${name}16.npy`));
    const parts = [0, 1, 2].map((i) => values.subarray(i * 40, (i + 1) * 40));
    for (const [i, path] of paths.entries()) await writeFile(path, float16Npy(parts[i], shape));
    const out = join(dir, 'out.npy');
    const result = await runCli(['attention', ...paths, '-o', out, '--pattern', 'dense', '--dtype', 'float32', '--backend', 'cpu']);
    assert.equal(result.code, 0, result.stderr);
    // The float16 file holds the values rounded to float16; in float32 they are taken as they are.
    const rounded = parts.map((part) => Tensor.fromArray(part, shape, { dtype: 'float16' }));
    const exact = await Promise.all(rounded.map((t) => t.toFloat32Array()));
    const [q, k, v] = exact.map((data) => Tensor.fromArray(data, shape, { dtype: 'float32' }));
    const expected = await attention(q, k, v, { pattern: null, backend: 'cpu' });
    assert.deepEqual((await readNpy(out)).data, await expected.toFloat32Array());
  });
});

test('dfss attention: bad files and shapes give one line and exit status 1, and write nothing', async () => {
  await withTempDir(async (dir) => {
    const good = await writeInputs(dir, { q: [1, 2, 4, 8], k: [1, 2, 4, 8], v: [1, 2, 4, 8] }, 14);
    const out = join(dir, 'out.npy');
    const write = async (name: string, bytes: Uint8Array): Promise<string> => {
      const path = join(dir, name);
      await writeFile(path, bytes);
      return path;
    };
    const npy = (shape: number[]): Uint8Array =>
      encodeNpyFloat32(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
    // 10 preamble bytes (header length 118 = 'v') and the header: 128 bytes, then one int32.
    const intHeader = "\x93NUMPY\x01\x00v\x00{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1, 1, 1), }";
    const intNpy = Uint8Array.from(intHeader.padEnd(127) + '\n', (char) => char.charCodeAt(0));
    const cases: [string[], RegExp][] = [
      [[join(dir, 'missing.npy'), good.k, good.v], /missing\.npy: cannot read the file \(no such file or directory\)/],
      [[await write('text.npy', new TextEncoder().encode('not an array')), good.k, good.v], /text\.npy: not a NumPy \.npy file/],
      [[good.q, await write('int.npy', new Uint8Array([...intNpy, 0, 0, 0, 0])), good.v], /int\.npy: unsupported dtype "<i4"/],
      [[good.q, good.k, await write('short.npy', npy([1, 2, 4, 8]).subarray(0, 100))], /short\.npy: truncated/],
      [[await write('q3.npy', npy([2, 4, 8])), good.k, good.v], /q3\.npy: q must have 4 dimensions \[B, H, N, D\], got shape \[2, 4, 8\]/],
      [[good.q, await write('k5.npy', npy([1, 1, 2, 4, 8])), good.v], /k5\.npy: k must have 4 dimensions/],
      [[await write('q0.npy', npy([1, 0, 4, 8])), good.k, good.v], /q0\.npy: q: .*\[1, 0, 4, 8\]/],
      // Shapes that do not fit together: the library's message names the tensor, the dimension and the value.
      [[good.q, await write('kd.npy', npy([1, 2, 4, 6])), await write('vd.npy', npy([1, 2, 4, 6]))], /k\.shape\[3\]: .*got 6/],
      [[good.q, good.k, await write('vh.npy', npy([1, 1, 4, 8]))], /v\.shape\[1\]: .*got 1/],
      [[good.q, good.k, await write('vn.npy', npy([1, 2, 5, 8]))], /v\.shape\[2\]: .*got 5/],
      [[await write('q3h.npy', npy([1, 3, 4, 8])), good.k, good.v], /k\.shape\[1\]: expected a divisor of the 3 query heads.*got 2/],
      [[good.q, await write('kb.npy', npy([2, 2, 4, 8])), good.v], /k\.shape\[0\]: .*got 2/],
    ];
    for (const [files, pattern] of cases) {
      const result = await runCli(['attention', ...files, '-o', out, '--backend', 'cpu']);
      assertFails(result, 1, pattern);
      assert.ok(!existsSync(out), `no output for ${files.join(' ')}`);
    }
  });
});

test('dfss attention: bad flags give one line, exit status 2, and read no file', async () => {
  // The input files do not exist: a usage error must be reported before any file is opened.
  const files = ['q.npy', 'k.npy', 'v.npy'];
  const cases: [string[], RegExp][] = [
    [[...files, '-o', 'o.npy', '--pattern', '3:3'], /--pattern: expected dense or N:M .*got "3:3"/],
    [[...files, '-o', 'o.npy', '--pattern', 'sparse'], /--pattern: expected dense or N:M .*got "sparse"/],
    [[...files, '-o', 'o.npy', '--pattern', '2:16'], /--pattern: .*got "2:16"/],
    [[...files, '-o', 'o.npy', '--dtype', 'float64'], /--dtype: expected one of float16, bfloat16, float32, got "float64"/],
    [[...files, '-o', 'o.npy', '--scale', 'big'], /--scale: expected a finite number, got "big"/],
    [[...files, '-o', 'o.npy', '--scale', 'NaN'], /--scale: expected a finite number, got "NaN"/],
    [[...files, '-o', 'o.npy', '--backend', 'gpu'], /--backend: expected one of auto, cpu, cuda, got "gpu"/],
    [[...files, '-o', 'o.npy', '--pipeline', 'paper'], /--pipeline: expected one of fused, staged, got "paper"/],
    [[...files, '-o', 'o.npy', '--fast'], /unknown flag --fast/],
    [[...files, '-o', 'o.npy', '--causal=1'], /--causal takes no value/],
    [[...files], /-o\/--output is required/],
    [[...files, '-o'], /-o needs a value/],
    [[...files, '--lse'], /--lse needs a value/],
    [['q.npy', 'k.npy', '-o', 'o.npy'], /expected three input files q\.npy k\.npy v\.npy, got 2/],
    [[...files, 'w.npy', '-o', 'o.npy'], /expected three input files .*got 4/],
  ];
  for (const [args, pattern] of cases) {
    const result = await runCli(['attention', ...args]);
    assertFails(result, 2, pattern);
    assert.match(result.stderr, /\(see 'dfss attention --help'\)\n$/);
  }
});

test('dfss attention --backend cuda without a usable GPU is an error, not a CPU run', { skip: CUDA_AVAILABLE && 'a CUDA device is available here' }, async () => {
  await withTempDir(async (dir) => {
    const inputs = await writeInputs(dir, { q: [1, 1, 4, 8], k: [1, 1, 4, 8], v: [1, 1, 4, 8] }, 15);
    const out = join(dir, 'out.npy');
    const result = await runCli(['attention', inputs.q, inputs.k, inputs.v, '-o', out, '--backend', 'cuda']);
    assertFails(result, 3, /cuda|CUDA|device|GPU/);
    assert.match(result.stderr, /\(use --backend auto or cpu to run on the cpu; 'dfss info' shows what was found\)\n$/);
    assert.ok(!existsSync(out));
  });
});

// ----- dfss demo ------------------------------------------------------------------------------------------------

test('dfss demo --backend cpu runs with its defaults and prints the report', async () => {
  const result = await runCli(['demo', '--backend', 'cpu']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, '');
  const out = result.stdout;
  assert.match(out, /^backend +cpu\b/m);
  assert.match(out, /^shapes +q, k, v \[1, 4, 512, 64\] -> out \[1, 4, 512, 64\]$/m);
  assert.match(out, /^inputs +float16, non-causal/m);
  assert.match(out, /^kept +50\.00% of the scores \(131072 of 262144,/m);
  const error = /^error +dfss 2:4 against dense: relative Frobenius (\S+), max abs (\S+)$/m.exec(out);
  assert.ok(error, out);
  const relative = Number(error[1]);
  assert.ok(relative > 0 && relative < 1, `relative error ${error[1]}`);
  assert.ok(Number(error[2]) > 0);
  assert.match(out, /^dense +\d+\.\d{3} ms +\d+\.\d +1\.00x$/m);
  assert.match(out, /^dfss 2:4 +\d+\.\d{3} ms +\d+\.\d +\d+\.\d\dx$/m);
});

test('dfss demo measures the kept fraction: causal 2:4 keeps more than half of the allowed scores', async () => {
  // seq 8, causal: row i may see i + 1 keys (36 in all); 2:4 keeps min(2, allowed) of each group: 22.
  const result = await runCli(['demo', '--backend', 'cpu', '--seq', '8', '--heads', '2', '--dim', '4', '--causal', '--runs', '1']);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^kept +61\.11% of the scores \(22 of 36,/m);
  assert.match(result.stdout, /^shapes +q, k, v \[1, 2, 8, 4\]/m);
  const dense = await runCli(['demo', '--backend', 'cpu', '--seq', '6', '--pattern', 'dense', '--runs', '1', '--dtype', 'float32']);
  assert.equal(dense.code, 0, dense.stderr);
  assert.match(dense.stdout, /^kept +100\.00% of the scores \(36 of 36,/m);
  assert.match(dense.stdout, /relative Frobenius 0\.000e\+0, max abs 0\.000e\+0/);
});

test('dfss demo: bad flags give one line and exit status 2', async () => {
  const cases: [string[], RegExp][] = [
    [['--seq', '0'], /--seq: expected an integer >= 1, got "0"/],
    [['--heads', 'many'], /--heads: expected an integer >= 1, got "many"/],
    [['--pattern', '5:4'], /--pattern: expected dense or N:M/],
    [['--dtype', 'half'], /--dtype: expected one of/],
    [['--backend', 'tpu'], /--backend: expected one of auto, cpu, cuda/],
    [['--verbose'], /unknown flag --verbose/],
    [['extra'], /unexpected argument "extra"/],
  ];
  for (const [args, pattern] of cases) {
    const result = await runCli(['demo', ...args]);
    assertFails(result, 2, pattern);
    assert.match(result.stderr, /\(see 'dfss demo --help'\)\n$/);
  }
});

test('dfss demo --backend cuda without a usable GPU is an error', { skip: CUDA_AVAILABLE && 'a CUDA device is available here' }, async () => {
  assertFails(await runCli(['demo', '--backend', 'cuda']), 3, /cuda|CUDA|device|GPU/);
});

// ----- help, version, dispatch -----------------------------------------------------------------------------

test('--help, <command> --help and --version', async () => {
  const main = await runCli(['--help']);
  assert.equal(main.code, 0);
  assert.match(main.stdout, /dfss demo/);
  assert.match(main.stdout, /dfss attention q\.npy k\.npy v\.npy -o out\.npy/);
  // The exit statuses are documented where every user looks first.
  for (const status of ['0  success', '1  failure', '2  usage error', '3  no usable GPU']) assert.ok(main.stdout.includes(status), status);
  for (const command of ['info', 'check', 'bench', 'demo', 'attention']) {
    assert.match(main.stdout, new RegExp(`^  dfss ${command} `, 'm'));
    for (const flag of ['--help', '-h']) {
      const result = await runCli([command, flag]);
      assert.equal(result.code, 0);
      assert.equal(result.stderr, '');
      assert.match(result.stdout, new RegExp(`^Usage: dfss ${command}`));
    }
  }
  const attentionHelp = (await runCli(['attention', '--help'])).stdout;
  for (const flag of ['--output', '--pattern', '--dtype', '--causal', '--scale', '--backend', '--pipeline', '--lse']) {
    assert.ok(attentionHelp.includes(flag), flag);
  }
  const version = await runCli(['--version']);
  const manifest = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(version.code, 0);
  assert.equal(version.stdout, `dfss ${manifest.version}\n`);
});

test('no command, an unknown command or an unknown top-level flag: exit status 2', async () => {
  assertFails(await runCli([]), 2, /no command given/);
  assertFails(await runCli(['train']), 2, /unknown command train/);
  assertFails(await runCli(['--verbose']), 2, /unknown flag --verbose/);
});
