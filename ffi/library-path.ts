// Where libdfss.so is looked for. This is the one place that knows where the build puts the library
// (scripts/build.mjs writes it to BUILT_LIBRARY_PATH) and where a bundle made by scripts/pack-gpu.mjs keeps it.
import { existsSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Environment variable naming the library file to load; when set, no other place is tried. */
export const LIBRARY_ENV = 'DFSS_LIBRARY';

/** The library built by scripts/build.mjs, relative to the checkout root (every build configuration). */
export const BUILT_LIBRARY_PATH = 'build/cuda/lib/libdfss.so';

/** The library inside a bundle made by scripts/pack-gpu.mjs, relative to the bundle root. */
export const BUNDLED_LIBRARY_PATH = 'lib/libdfss.so';

export interface LibraryLocation {
  /** Every path tried, in order. */
  readonly candidates: readonly string[];
  /** The first candidate that exists, or null when none does. */
  readonly chosen: string | null;
}

/**
 * The root of this checkout or bundle: this file runs from <root>/dist/ffi/library-path.js in both, and
 * from <root>/ffi/ under runtimes that load TypeScript directly (Bun).
 */
function packageRoot(): string {
  const parent = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  return basename(parent) === 'dist' ? dirname(parent) : parent;
}

/** The places libdfss.so is looked for, in order, and the first one that exists. */
export function locateLibrary(env: NodeJS.ProcessEnv = process.env): LibraryLocation {
  const explicit = env[LIBRARY_ENV];
  // An explicit path is the caller's choice: falling back to another library would hide a typo.
  const candidates =
    explicit !== undefined && explicit !== ''
      ? [isAbsolute(explicit) ? explicit : resolve(explicit)]
      : [join(packageRoot(), BUILT_LIBRARY_PATH), join(packageRoot(), BUNDLED_LIBRARY_PATH)];
  return { candidates, chosen: candidates.find((path) => existsSync(path)) ?? null };
}
