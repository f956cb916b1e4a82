#!/usr/bin/env zx
// Builds dfss: the TypeScript library (tsc -> dist/), then libdfss.so from cuda/ through cmake-js, offline.
//
//   zx scripts/build.mjs [--arch 80[;90a...]] [--debug] [--skip-native]
//
//   --arch         GPU architectures (DFSS_CUDA_ARCHITECTURES), e.g. 80 for a quick single-target build;
//                  default: every architecture cuda/CMakeLists.txt lists
//   --debug        Debug configuration of the native library
//   --skip-native  build the TypeScript library only
//
// The library lands in build/cuda/lib/libdfss.so whatever the configuration (ffi/library-path.ts looks there).
// Without nvcc the native part is skipped with one line: the CPU backend works without it.
// A second build reuses build/cuda and rebuilds only what changed; changing --arch or --debug reconfigures.
import { createRequire } from 'node:module';
import os from 'node:os';

import { $, argv, fs, path, which } from 'zx';

const root = path.resolve(import.meta.dirname, '..');
const nativeSource = path.join(root, 'cuda');
const nativeBuild = path.join(root, 'build', 'cuda');
const libraryDir = path.join(nativeBuild, 'lib');
// What the configure step was last run with: a change reconfigures from scratch, so that an option
// dropped from the command line (such as --arch) does not linger in CMakeCache.txt.
const configureStamp = path.join(nativeBuild, 'dfss-configure.json');

const knownFlags = new Set(['_', 'arch', 'debug', 'skip-native']);
const unknown = Object.keys(argv).filter((flag) => !knownFlags.has(flag));
if (unknown.length > 0 || argv._.length > 0) {
  const given = [...unknown.map((flag) => `--${flag}`), ...argv._].join(' ');
  console.error(`build.mjs: unknown arguments ${given}; expected --arch LIST, --debug, --skip-native`);
  process.exit(2);
}
if (argv.arch !== undefined && !/^[0-9]+a?(;[0-9]+a?)*$/.test(String(argv.arch))) {
  console.error(`build.mjs: --arch: expected architectures like 80 or "80;90a", got ${JSON.stringify(argv.arch)}`);
  process.exit(2);
}

$.cwd = root;
$.verbose = false;

try {
  await timed('TypeScript', buildTypeScript);
  if (argv['skip-native']) {
    console.log('dfss: --skip-native: libdfss.so not built');
  } else {
    const nvcc = await findNvcc();
    if (nvcc === null) {
      console.log(
        'dfss: nvcc not found; building the TypeScript library only - the CPU backend works, the CUDA backend is unavailable',
      );
    } else {
      await timed(path.relative(root, path.join(libraryDir, 'libdfss.so')), () => buildNative(nvcc));
    }
  }
} catch (error) {
  // The failing tool has printed its diagnostics above; a stack trace of this script would add nothing.
  const reason = error.exitCode == null ? error.message : `a step exited with code ${error.exitCode}`;
  console.error(`dfss: build failed: ${reason}`);
  process.exit(1);
}

async function buildTypeScript() {
  // The project's own compiler, never a download (npx could fetch one where node_modules lacks it).
  const tsc = path.join(root, 'node_modules', '.bin', 'tsc');
  await $({ stdio: 'inherit' })`${tsc} -p tsconfig.json`;
}

async function findNvcc() {
  for (const candidate of [process.env.CUDACXX, await which('nvcc', { nothrow: true }), '/usr/local/cuda/bin/nvcc']) {
    if (candidate && (await fs.pathExists(candidate))) return candidate;
  }
  return null;
}

async function buildNative(nvcc) {
  // cmake-js' CLI decides between Node-API headers (the local node-api-headers package) and a download of
  // the full Node headers by reading package.json in the CMake project's own directory, which is cuda/ here
  // and has none: the CLI would download. Its CMake class takes that decision as an option and never
  // downloads, so it is driven directly. libdfss is no addon and uses none of the headers anyway.
  const { CMake } = createRequire(import.meta.url)('cmake-js');
  const cMakeOptions = {
    CMAKE_CUDA_COMPILER: nvcc,
    // One place for every configuration, instead of cmake-js' build/cuda/<Config>/.
    CMAKE_LIBRARY_OUTPUT_DIRECTORY: libraryDir,
  };
  if (argv.arch !== undefined) cMakeOptions.DFSS_CUDA_ARCHITECTURES = String(argv.arch);
  const cmake = new CMake({
    directory: nativeSource,
    out: nativeBuild,
    config: argv.debug ? 'Debug' : 'Release',
    isNodeApi: true,
    cMakeOptions,
    parallel: os.availableParallelism(),
  });

  const configureCommand = JSON.stringify(await cmake.getConfigureCommand());
  const cache = path.join(nativeBuild, 'CMakeCache.txt');
  const configured =
    (await fs.pathExists(cache)) &&
    (await fs.pathExists(configureStamp)) &&
    (await fs.readFile(configureStamp, 'utf8')) === configureCommand;
  if (!configured) {
    await fs.remove(cache);
    await cmake.configure();
    await fs.writeFile(configureStamp, configureCommand);
  }
  await cmake.build();
}

async function timed(what, step) {
  const start = performance.now();
  await step();
  console.log(`dfss: ${what} built in ${((performance.now() - start) / 1000).toFixed(1)} s`);
}
