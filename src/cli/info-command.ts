// `dfss info`: what this installation can do. The runtime, the library (where it was found, its version), each
// GPU (compute capability, memory, sparse tensor cores) and the backend `auto` picks, with the reason.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { backendInfo, cudaSupports, DTYPES, type BackendInfo } from '../index.js';
import { parsePattern } from '../pattern.js';
import { parseArgs, UsageError } from './args.js';
import { INFO_HELP } from './help.js';
import { currentRuntime, type RuntimeInfo } from './runtime.js';
import { formatTable } from './table.js';
import { packageVersion } from './version.js';

const FLAGS = {
  json: { kind: 'boolean' },
  help: { kind: 'boolean', short: 'h' },
} as const;

/** Everything `dfss info` reports; `--json` prints it as is. */
export interface InstallationInfo {
  readonly runtime: RuntimeInfo;
  readonly dfss: { readonly version: string; readonly packageRoot: string };
  readonly library: { readonly found: boolean; readonly path: string | null; readonly version: string | null };
  readonly cuda: { readonly available: boolean; readonly reason: string };
  readonly devices: readonly {
    readonly index: number;
    readonly name: string;
    readonly computeCapability: string;
    readonly multiprocessors: number;
    readonly memoryBytes: number;
    readonly sparseTensorCores: boolean;
  }[];
  readonly auto: { readonly backend: 'cpu' | 'cuda'; readonly reason: string };
}

export async function runInfoCommand(argv: readonly string[]): Promise<void> {
  const { flags, positionals } = parseArgs(argv, FLAGS);
  if (flags.help) {
    process.stdout.write(INFO_HELP);
    return;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const info = installationInfo();
  process.stdout.write(flags.json ? `${JSON.stringify(info, null, 2)}\n` : formatInfo(info));
}

/** The root of the dfss package: this file runs from <root>/dist/src/cli/. */
const PACKAGE_ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

export function installationInfo(backend: BackendInfo = backendInfo()): InstallationInfo {
  const { cuda } = backend;
  return {
    runtime: currentRuntime(),
    dfss: { version: packageVersion(), packageRoot: PACKAGE_ROOT },
    library: { found: cuda.libraryPath !== null, path: cuda.libraryPath, version: cuda.libraryVersion },
    cuda: { available: cuda.available, reason: cuda.reason },
    devices: cuda.devices.map((d) => ({
      index: d.index,
      name: d.name,
      computeCapability: d.computeCapability,
      multiprocessors: d.multiprocessors,
      memoryBytes: d.totalMemoryBytes,
      sparseTensorCores: d.sparseTensorCores,
    })),
    auto: { backend: backend.auto, reason: autoReason(backend) },
  };
}

/** Why `auto` picks what it picks, in one line. */
function autoReason({ cuda, auto }: BackendInfo): string {
  if (auto === 'cpu') {
    const why = cuda.libraryPath === null ? 'libdfss.so is not loaded' : 'libdfss.so loaded, but no GPU can be used';
    return `${why} (${cuda.reason}), so everything runs on the pure TypeScript reference`;
  }
  // The problems libdfss implements; every other dtype and pattern runs on the CPU even under 'auto'.
  const patterns = ['dense', '1:2', '2:4'];
  const onGpu = DTYPES.map((dtype) => {
    const supported = patterns.filter((p) => cudaSupports(dtype, parsePattern(p)));
    return `${dtype} ${supported.join(', ')}`;
  });
  return `libdfss ${cuda.libraryVersion} found ${cuda.devices.length} GPU(s); it runs ${onGpu.join('; ')} - any other N:M runs on the cpu`;
}

function gibibytes(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

export function formatInfo(info: InstallationInfo): string {
  const { runtime, dfss, library, cuda, devices, auto } = info;
  const rows: string[][] = [
    ['runtime', `${runtime.name} ${runtime.version} (Float16Array: ${runtime.float16Array ? 'yes' : 'no, float16 data is Uint16Array bits'})`],
    ['dfss', `${dfss.version} (${dfss.packageRoot})`],
    ['library', library.found ? `${library.path} (libdfss ${library.version})` : 'not loaded (see auto)'],
  ];
  if (devices.length === 0) rows.push(['GPUs', library.found ? 'none usable (see auto)' : 'none usable without the library']);
  for (const d of devices) {
    const sparse = d.sparseTensorCores ? 'sparse tensor cores' : 'no sparse tensor cores';
    rows.push([`GPU ${d.index}`, `${d.name}: compute capability ${d.computeCapability}, ${gibibytes(d.memoryBytes)}, ${d.multiprocessors} SMs, ${sparse}`]);
  }
  rows.push(['auto', `${auto.backend}: ${auto.reason}`]);
  return `${formatTable(rows, 'left').join('\n')}\n`;
}
