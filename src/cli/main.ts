#!/usr/bin/env node
// Entry point of the `dfss` command: dispatches to a command and turns errors into a one-line message on
// stderr and an exit status (2 for a malformed command line, 1 for a failure while running).
import { readFileSync } from 'node:fs';
import { DfssError } from '../errors.js';
import { UsageError } from './args.js';
import { MAIN_HELP } from './help.js';

type Command = (argv: readonly string[]) => Promise<void>;

// Commands are imported on use, so `dfss --help` and `dfss --version` never load the library.
const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  demo: async () => (await import('./demo.js')).runDemo,
  attention: async () => (await import('./attention-command.js')).runAttentionCommand,
};

async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError("no command given (expected demo or attention; see 'dfss --help')");
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(MAIN_HELP);
    return;
  }
  if (command === '--version' || command === '-V') {
    process.stdout.write(`dfss ${packageVersion()}\n`);
    return;
  }
  const load = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (load === undefined) {
    const what = command.startsWith('-') ? 'unknown flag' : 'unknown command';
    throw new UsageError(`${what} ${command} (expected demo, attention, --help or --version; see 'dfss --help')`);
  }
  const run = await load();
  try {
    await run(rest);
  } catch (error) {
    if (error instanceof UsageError) throw new UsageError(`${error.message} (see 'dfss ${command} --help')`);
    throw error;
  }
}

function packageVersion(): string {
  // dist/src/cli/main.js -> package.json at the package root.
  const manifest = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version?: unknown;
  };
  return String(manifest.version);
}

function report(error: unknown): number {
  if (error instanceof UsageError) {
    process.stderr.write(`dfss: ${error.message}\n`);
    return 2;
  }
  if (error instanceof DfssError) {
    process.stderr.write(`dfss: ${error.message}\n`);
    return 1;
  }
  // Not one of the library's typed errors: a bug, so the stack is worth showing.
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`dfss: unexpected error: ${detail}\n`);
  return 1;
}

// A closed pipe (`dfss demo | head -1`) is not an error of the command.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

main(process.argv.slice(2)).then(
  () => {
    process.exitCode = 0;
  },
  (error: unknown) => {
    process.exitCode = report(error);
  },
);
