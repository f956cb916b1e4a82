#!/usr/bin/env zx
// Builds (scripts/build.mjs, with this script's build arguments), runs the C ABI test program through CTest where
// libdfss.so was built, then every test file under each JavaScript runtime: Node.js (node --test), Bun (bun test,
// which runs node:test suites) and Deno (deno test, likewise), with the binaries of Bun and Deno from their npm
// packages (scripts/runtimes.mjs). Ends with one line per runtime and the totals; exits non-zero when anything
// failed in any runtime, or when a runtime asked for is not installed.
//
//   zx scripts/test.mjs [build arguments, e.g. --arch 80] [--runtimes node,bun,deno]
//
// DFSS_RUNTIMES=node,bun (the same list) chooses runtimes through `make test`; the default is all three.
import { spawn } from 'node:child_process';

import { $, fs, glob, path } from 'zx';

import { findRuntimes, quietEnv } from './runtimes.mjs';

const root = path.resolve(import.meta.dirname, '..');
const nativeBuild = path.join(root, 'build', 'cuda');
const ALL_RUNTIMES = ['node', 'bun', 'deno'];
$.cwd = root;

const { buildArgs, runtimes } = parseArguments(process.argv.slice(2));

const build = await $({ stdio: 'inherit', nothrow: true })`node ${path.join(root, 'scripts', 'build.mjs')} ${buildArgs}`;
if (build.exitCode !== 0) process.exit(build.exitCode ?? 1);

const summary = [];
let failed = false;

if (await fs.pathExists(path.join(nativeBuild, 'lib', 'libdfss.so'))) {
  const ctest = await $({ stdio: 'inherit', nothrow: true })`ctest --test-dir ${nativeBuild} --output-on-failure`;
  failed ||= ctest.exitCode !== 0;
  summary.push(`ctest: ${ctest.exitCode === 0 ? 'passed' : 'FAILED'}`);
  // The Python binding of dfss.h (bench/python, test/python) against the header and the built library.
  const python = await $({ nothrow: true })`which python3`;
  if (python.exitCode === 0) {
    const check = await $({ stdio: 'inherit', nothrow: true })`python3 ${path.join(root, 'bench/python/check_dfss_ctypes.py')} ${path.join(nativeBuild, 'lib', 'libdfss.so')}`;
    failed ||= check.exitCode !== 0;
    summary.push(`python binding check: ${check.exitCode === 0 ? 'passed' : 'FAILED'}`);
  } else {
    console.log('dfss: python3 not found: the Python binding check is not run');
  }
} else {
  console.log('dfss: libdfss.so not built: the C ABI test program is not run');
}

// The compiled counterparts of test/*.test.ts, named one by one (Node 20's --test takes no glob); compiled
// tests whose source is gone are left out.
const sources = await glob('test/*.test.ts', { cwd: root });
const tests = sources.sort().map((source) => path.join(root, 'dist', source.replace(/\.ts$/, '.js')));
const missing = [];
for (const test of tests) if (!(await fs.pathExists(test))) missing.push(path.relative(root, test));
if (missing.length > 0) {
  console.error(`dfss: the build did not produce ${missing.join(', ')}`);
  process.exit(1);
}

// How each runtime runs the suite, and how its closing lines give the counts.
const RUNNERS = {
  node: {
    args: ['--test', '--test-reporter=spec', ...tests],
    counts: (out) => ({ passed: last(out, /^(?:ℹ|#) pass (\d+)$/gm), failed: last(out, /^(?:ℹ|#) fail (\d+)$/gm), skipped: last(out, /^(?:ℹ|#) skipped (\d+)$/gm) }),
  },
  bun: {
    // Absolute paths: bun test takes other arguments as name filters. Its default 5 s per test is too short for
    // the tests that start the command line several times.
    args: ['test', '--timeout', '300000', ...tests],
    counts: (out) => ({ passed: last(out, /^\s*(\d+) pass$/gm), failed: last(out, /^\s*(\d+) fail$/gm), skipped: last(out, /^\s*(\d+) skip$/gm) ?? 0 }),
  },
  deno: {
    // tsc has checked the sources; --no-lock leaves no deno.lock behind.
    args: ['test', '--allow-all', '--no-check', '--no-lock', ...tests],
    counts: (out) => {
      const line = /(\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \((\d+) steps?\))?(?: \| (\d+) ignored(?: \((\d+) steps?\))?)?/.exec(out);
      if (line === null) return { passed: null, failed: null, skipped: null };
      const n = (i) => Number(line[i] ?? 0);
      return { passed: n(1) + n(2), failed: n(3) + n(4), skipped: n(5) + n(6) };
    },
  },
};

const installed = new Map(findRuntimes().map((r) => [r.name, r]));
const totals = { passed: 0, failed: 0, skipped: 0 };
for (const name of runtimes) {
  const runtime = installed.get(name);
  if (runtime.missing) {
    console.error(`dfss: ${name}: ${runtime.missing}`);
    summary.push(`${name}: NOT RUN (${runtime.missing})`);
    failed = true;
    continue;
  }
  const where = runtime.path.startsWith(root + path.sep) ? path.relative(root, runtime.path) : runtime.path;
  console.log(`\ndfss: the tests under ${name} ${runtime.version} (${where})`);
  const start = performance.now();
  const { code, output } = await runStreaming(runtime.path, RUNNERS[name].args);
  const seconds = ((performance.now() - start) / 1000).toFixed(1);
  const counts = RUNNERS[name].counts(output);
  const ok = code === 0 && counts.failed === 0;
  failed ||= !ok;
  const described = counts.passed === null ? 'counts not found in its output' : `${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`;
  summary.push(`${name}: ${ok ? 'passed' : `FAILED (exit status ${code})`}: ${described} in ${seconds} s`);
  if (counts.passed !== null) for (const key of Object.keys(totals)) totals[key] += counts[key];
}

console.log(`\ndfss: test summary\n${summary.map((line) => `  ${line}`).join('\n')}`);
console.log(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(failed ? 1 : 0);

function parseArguments(argv) {
  let chosen = process.env.DFSS_RUNTIMES || ALL_RUNTIMES.join(',');
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--runtimes') chosen = argv[++i] ?? '';
    else if (argv[i].startsWith('--runtimes=')) chosen = argv[i].slice('--runtimes='.length);
    else rest.push(argv[i]);
  }
  const names = chosen.split(',').filter(Boolean);
  const unknown = names.filter((name) => !ALL_RUNTIMES.includes(name));
  if (names.length === 0 || unknown.length > 0) {
    console.error(`test.mjs: --runtimes: expected a comma-separated list of ${ALL_RUNTIMES.join(', ')}, got ${JSON.stringify(chosen)}`);
    process.exit(2);
  }
  return { buildArgs: rest, runtimes: [...new Set(names)] };
}

/** The last match of `pattern` (global, one group) as a number, or null. */
function last(text, pattern) {
  const matches = [...text.matchAll(pattern)];
  return matches.length === 0 ? null : Number(matches[matches.length - 1][1]);
}

/** Runs `file args` from the checkout root, echoing its output as it comes, and returns the status and output. */
function runStreaming(file, args) {
  return new Promise((resolve) => {
    const child = spawn(file, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...quietEnv(), NO_COLOR: '1' } });
    let output = '';
    for (const [stream, sink] of [[child.stdout, process.stdout], [child.stderr, process.stderr]]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        output += chunk;
        sink.write(chunk);
      });
    }
    child.on('error', (error) => resolve({ code: -1, output: `${output}\n${error.message}` }));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), output }));
  });
}
