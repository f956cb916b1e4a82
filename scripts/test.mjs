#!/usr/bin/env zx
// Builds (scripts/build.mjs, with this script's arguments), runs the C ABI test program through CTest where
// libdfss.so was built, then every test file with Node's test runner, whose summary ends the output.
// Exits non-zero when anything failed.
//
//   zx scripts/test.mjs [build arguments, e.g. --arch 80]
import { $, fs, glob, path } from 'zx';

const root = path.resolve(import.meta.dirname, '..');
const nativeBuild = path.join(root, 'build', 'cuda');
$.cwd = root;

const build = await $({ stdio: 'inherit', nothrow: true })`node ${path.join(root, 'scripts', 'build.mjs')} ${process.argv.slice(2)}`;
if (build.exitCode !== 0) process.exit(build.exitCode ?? 1);

let failed = false;

if (await fs.pathExists(path.join(nativeBuild, 'lib', 'libdfss.so'))) {
  const ctest = await $({ stdio: 'inherit', nothrow: true })`ctest --test-dir ${nativeBuild} --output-on-failure`;
  failed ||= ctest.exitCode !== 0;
} else {
  console.log('dfss: libdfss.so not built: the C ABI test program is not run');
}

// The compiled counterparts of test/*.test.ts, named one by one (Node 20's --test takes no glob); compiled
// tests whose source is gone are left out.
const sources = await glob('test/*.test.ts', { cwd: root });
const tests = sources.sort().map((source) => path.join('dist', source.replace(/\.ts$/, '.js')));
const missing = [];
for (const test of tests) if (!(await fs.pathExists(path.join(root, test)))) missing.push(test);
if (missing.length > 0) {
  console.error(`dfss: the build did not produce ${missing.join(', ')}`);
  process.exit(1);
}
const node = await $({ stdio: 'inherit', nothrow: true })`node --test ${tests}`;
failed ||= node.exitCode !== 0;

process.exit(failed ? 1 : 0);
