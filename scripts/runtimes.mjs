// Where the JavaScript runtimes the tests run under are: Node.js (this process), and Bun and Deno from their npm
// packages (devDependencies), whose linux-x64 binaries arrive through optionalDependencies. Their postinstall
// scripts are not run (package.json's allowScripts denies them: one would download Bun where its platform
// package is missing), so each binary is used where its platform package put it; where an npm that ran the
// postinstall moved it into the main package, it is found there instead.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** The directory of an installed package, or null. */
function packageDir(name) {
  try {
    return path.dirname(require.resolve(`${name}/package.json`));
  } catch {
    return null;
  }
}

/** The first candidate binary that exists and answers --version, with that answer's first line. */
function firstWorking(candidates) {
  for (const file of candidates) {
    if (file === null || !existsSync(file)) continue;
    try {
      const version = execFileSync(file, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], env: quietEnv() });
      return { path: file, version: version.split('\n')[0].trim() };
    } catch {
      // A placeholder (bun/bin/bun.exe before its postinstall) or a binary for another CPU: try the next.
    }
  }
  return null;
}

const platform = `${process.platform}-${process.arch}`;

function bunCandidates() {
  const variants = ['', '-baseline', '-musl', '-musl-baseline'];
  const platformBinaries = variants.map((variant) => {
    const dir = packageDir(`@oven/bun-${platform}${variant}`);
    return dir && path.join(dir, 'bin', 'bun');
  });
  const main = packageDir('bun');
  return [...platformBinaries, main && path.join(main, 'bin', 'bun.exe')];
}

function denoCandidates() {
  const denoPlatform = { 'linux-x64': 'linux-x64-glibc', 'linux-arm64': 'linux-arm64-glibc' }[platform] ?? platform;
  const dir = packageDir(`@deno/${denoPlatform}`);
  const main = packageDir('deno');
  return [dir && path.join(dir, 'deno'), main && path.join(main, 'deno')];
}

/** Environment for the runtimes: no update checks or prompts (nothing is fetched). */
export function quietEnv(env = process.env) {
  return { ...env, DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1', BUN_DISABLE_TELEMETRY: '1', DO_NOT_TRACK: '1' };
}

/** { name, path, version } of each runtime, or { name, missing } where its binary is not installed. */
export function findRuntimes() {
  const found = (name, binary, hint) => (binary ? { name, ...binary } : { name, missing: hint });
  return [
    { name: 'node', path: process.execPath, version: process.version },
    found('bun', firstWorking(bunCandidates()), `no working Bun binary for ${platform} in node_modules (npm ci installs it)`),
    found('deno', firstWorking(denoCandidates()), `no working Deno binary for ${platform} in node_modules (npm ci installs it)`),
  ];
}
