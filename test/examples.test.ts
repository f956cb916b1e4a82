// The examples of the README (examples/): each is shown in the README as it is in its file, and each runs and
// computes what the CPU backend computes from the same inputs. The JavaScript ones run under their own runtime
// (`make test` runs this file under Node.js, Bun and Deno), with their types checked as a user's project would
// check them; the C one is compiled against dfss.h and linked to libdfss.so; the Python one runs where python3
// exists. Without a GPU, the C and Python examples must stop on the library's clean "no device" answer.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { DFSS_STRUCTS } from '../ffi/dfss-header.js';
import { locateLibrary } from '../ffi/library-path.js';
import { tolerance } from '../src/check/cases.js';
import { currentRuntime, type RuntimeName } from '../src/cli/runtime.js';
import { attention, backendInfo, Tensor } from '../src/index.js';
import { withTempDir } from './support/cli.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLES = join(ROOT, 'examples');
const here = existsSync(EXAMPLES) ? false : 'examples/ is not here (a bundle without them)';
const runtime = currentRuntime().name;
const library = locateLibrary().chosen;
const cuda = backendInfo().cuda;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: options.cwd ?? ROOT, encoding: 'utf8', env: { ...process.env, ...options.env } }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Whether `command --version` runs here. */
async function available(command: string): Promise<boolean> {
  return (await run(command, ['--version'])).code === 0;
}

// ----- what every example computes ----------------------------------------------------------------------------

const [B, H, N, D] = [1, 4, 256, 64];

/** The output row and mean every example prints, from the CPU backend on the examples' inputs. */
async function reference(): Promise<{ row: number[]; meanAbs: number }> {
  const count = B * H * N * D;
  const input = (seed: number) => Float32Array.from({ length: count }, (_, i) => (((i * 37 + seed) % 17) - 8) / 8);
  const [q, k, v] = [1, 2, 3].map((seed) => Tensor.fromArray(input(seed), [B, H, N, D], { dtype: 'float16' }));
  const out = await attention(q, k, v, { pattern: '2:4', causal: true, backend: 'cpu' });
  const values = await out.toFloat32Array();
  for (const t of [q, k, v, out]) t.dispose();
  const start = (N - 1) * D;
  return { row: Array.from(values.subarray(start, start + 4)), meanAbs: values.reduce((sum, x) => sum + Math.abs(x), 0) / count };
}

/** Asserts that an example's output shows the reference result: exactly (to the digits printed) on the CPU. */
async function assertComputes(output: string, onGpu: boolean): Promise<void> {
  const want = await reference();
  const row = new RegExp(`^out \\[${B}, ${H}, ${N}, ${D}\\], out\\[0, 0, ${N - 1}, :4\\] = (\\S+) (\\S+) (\\S+) (\\S+)$`, 'm').exec(output);
  const mean = /^mean \|out\| (\S+)$/m.exec(output);
  assert.ok(row && mean, `the example printed no result:\n${output}`);
  // float16 output on the GPU: within one rounding of P and of the output; on the CPU the same numbers.
  const { atol, rtol } = onGpu ? tolerance('float16') : { atol: 0, rtol: 0 };
  for (let i = 0; i < 4; i++) {
    const got = Number(row[i + 1]);
    assert.ok(Math.abs(got - want.row[i]) <= 5e-5 + atol + rtol * Math.abs(want.row[i]), `out[0, 0, ${N - 1}, ${i}] = ${got}, expected ${want.row[i]}`);
  }
  assert.ok(Math.abs(Number(mean[1]) - want.meanAbs) <= 5e-7 + atol, `mean |out| ${mean[1]}, expected ${want.meanAbs}`);
}

// ----- the README -------------------------------------------------------------------------------------------

const EXAMPLE_FILES = ['node/attention.mjs', 'bun/attention.ts', 'deno/attention.ts', 'c/attention.c', 'python/attention.py'];

test('the README shows every example as it is in examples/', { skip: here }, () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const file of EXAMPLE_FILES) {
    const source = readFileSync(join(EXAMPLES, file), 'utf8').trimEnd();
    assert.ok(readme.includes(`\n${source}\n\`\`\``), `README.md does not show examples/${file} as it is`);
  }
});

// ----- JavaScript runtimes ----------------------------------------------------------------------------------

const JS_EXAMPLES: Record<RuntimeName, { file: string; args: string[] }> = {
  'Node.js': { file: 'examples/node/attention.mjs', args: [] },
  Bun: { file: 'examples/bun/attention.ts', args: [] },
  Deno: { file: 'examples/deno/attention.ts', args: ['run', '--allow-read', '--allow-env', '--allow-ffi'] },
};

for (const [name, example] of Object.entries(JS_EXAMPLES) as [RuntimeName, (typeof JS_EXAMPLES)[RuntimeName]][]) {
  const skip = here || (name !== runtime && `runs under ${name} (make test runs every runtime)`);
  test(`the ${name} example computes what the CPU backend computes`, { skip }, async () => {
    const result = await run(process.execPath, [...example.args, example.file]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^backend ${backendInfo().auto}$`, 'm'));
    await assertComputes(result.stdout, backendInfo().auto === 'cuda');
  });
}

test('the Bun example type-checks with bun-types, importing dfss by name', { skip: here || (runtime !== 'Bun' && 'runs under Bun') }, async () => {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'lib', 'tsc.js');
  const result = await run(process.execPath, [tsc, '-p', join(EXAMPLES, 'bun', 'tsconfig.json')]);
  assert.equal(result.code, 0, result.stdout + result.stderr);
});

test('the Deno example type-checks in a Deno project that depends on dfss', { skip: here || (runtime !== 'Deno' && 'runs under Deno') }, async () => {
  // A project with dfss installed in node_modules as npm installs it (a copy: Deno reads the types of packages in
  // node_modules, not of files reached through a link), and dfss' own dependencies linked from this checkout.
  await withTempDir(async (project) => {
    const modules = join(project, 'node_modules');
    const dfss = join(modules, 'dfss');
    mkdirSync(join(dfss, 'dist'), { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(dfss, 'package.json'));
    for (const part of ['src', 'ffi']) cpSync(join(ROOT, 'dist', part), join(dfss, 'dist', part), { recursive: true });
    for (const dependency of ['koffi', '@types/node', 'undici-types']) {
      mkdirSync(dirname(join(modules, dependency)), { recursive: true });
      symlinkSync(join(ROOT, 'node_modules', dependency), join(modules, dependency));
    }
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'deno-project', private: true, type: 'module', dependencies: { dfss: '*' } }));
    cpSync(join(EXAMPLES, 'deno', 'attention.ts'), join(project, 'attention.ts'));
    const result = await run(process.execPath, ['check', 'attention.ts'], { cwd: project, env: { NO_COLOR: '1' } });
    assert.equal(result.code, 0, result.stdout + result.stderr);
  });
});

// ----- C and Python -----------------------------------------------------------------------------------------

/** Asserts the run of a C or Python example: the result with a GPU, else exit status 3 on DFSS_ERROR_NO_DEVICE. */
async function assertNativeExample(result: Run): Promise<void> {
  assert.match(result.stdout, /^libdfss \d+\.\d+\.\d+$/m, result.stdout + result.stderr);
  if (cuda.available) {
    assert.equal(result.code, 0, result.stderr);
    await assertComputes(result.stdout, true);
    return;
  }
  assert.equal(result.code, 3, `exit status (stderr: ${result.stderr})`);
  assert.match(result.stderr, /^dfss_malloc.* failed: .*\S/, 'the first device call fails with the library message');
  assert.doesNotMatch(result.stdout, /^out /m);
}

const noLibrary = library === null ? 'libdfss.so is not built here' : false;

test('the C example compiles against dfss.h, links to libdfss.so and runs', { skip: here || noLibrary }, async (t) => {
  if (!(await available('cc'))) return t.skip('no C compiler (cc) here');
  await withTempDir(async (dir) => {
    const program = join(dir, 'attention');
    const build = await run('cc', ['-std=c11', '-Wall', '-Wextra', '-Werror', `-I${join(ROOT, 'cuda', 'include')}`, join(EXAMPLES, 'c', 'attention.c'), library!, `-Wl,-rpath,${dirname(library!)}`, '-o', program]);
    assert.equal(build.code, 0, build.stderr);
    await assertNativeExample(await run(program, []));
  });
});

test('the Python example runs through ctypes', { skip: here || noLibrary }, async (t) => {
  if (!(await available('python3'))) return t.skip('no python3 here');
  await assertNativeExample(await run('python3', [join(EXAMPLES, 'python', 'attention.py')], { env: { DFSS_LIBRARY: library! } }));
});

test("the Python example's dfss_attention_desc is dfss.h's, for dfss.h's ABI version", { skip: here }, () => {
  const python = readFileSync(join(EXAMPLES, 'python', 'attention.py'), 'utf8');
  const cTypes: Record<string, string> = {
    'ctypes.c_uint32': 'uint32_t',
    i32: 'int32_t',
    i64: 'int64_t',
    'i64 * 4': 'int64_t[4]',
    'ctypes.c_float': 'float',
    'ctypes.POINTER(i32)': 'const int32_t *',
    ptr: 'dfss_stream',
  };
  const block = /class AttentionDesc\(ctypes\.Structure\):\n {4}_fields_ = \[\n([\s\S]*?)\n {4}\]/.exec(python);
  assert.ok(block, 'the class AttentionDesc with its _fields_');
  const fields = block[1].split('\n').map((line) => {
    const field = /^ {8}\("(\w+)", (.+)\),$/.exec(line);
    assert.ok(field, `a field line: ${line}`);
    return [cTypes[field[2]] ?? field[2], field[1]];
  });
  assert.deepEqual(fields, DFSS_STRUCTS.dfss_attention_desc.map(([type, name]) => [type, name]));
  const header = readFileSync(join(ROOT, 'cuda', 'include', 'dfss.h'), 'utf8');
  const abi = /^#define DFSS_ABI_VERSION (\d+)$/m.exec(header);
  assert.ok(abi, 'dfss.h defines DFSS_ABI_VERSION');
  assert.match(python, new RegExp(`^ABI_VERSION = ${abi[1]}  #`, 'm'));
});
