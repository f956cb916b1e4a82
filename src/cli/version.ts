// The dfss version, from the package's own package.json (read on use: `dfss --version` loads nothing else).
import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  // dist/src/cli/version.js -> package.json at the package root.
  const manifest = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return String(manifest.version);
}
