#!/usr/bin/env node
// Entry point of the `dfss` command: dispatches to a command and turns errors into a one-line message on stderr
// and an exit status (src/cli/exit.ts: 1 failure, 2 malformed command line, 3 no usable GPU where one is needed).
import { DfssError, NoDeviceError } from '../errors.js';
import { UsageError } from './args.js';
import { CommandFailedError, EXIT_STATUS } from './exit.js';
import { MAIN_HELP } from './help.js';
import { packageVersion } from './version.js';

type Command = (argv: readonly string[]) => Promise<void>;

// Commands are imported on use, so `dfss --help` and `dfss --version` never load the library.
const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  info: async () => (await import('./info-command.js')).runInfoCommand,
  check: async () => (await import('./check-command.js')).runCheckCommand,
  bench: async () => (await import('./bench-command.js')).runBenchCommand,
  demo: async () => (await import('./demo.js')).runDemo,
  attention: async () => (await import('./attention-command.js')).runAttentionCommand,
};
const COMMAND_LIST = Object.keys(COMMANDS).join(', ');

async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError(`no command given (expected ${COMMAND_LIST}; see 'dfss --help')`);
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
    throw new UsageError(`${what} ${command} (expected ${COMMAND_LIST}, --help or --version; see 'dfss --help')`);
  }
  const run = await load();
  try {
    await run(rest);
  } catch (error) {
    // Each message ends with the way out.
    if (error instanceof UsageError) throw new UsageError(`${error.message} (see 'dfss ${command} --help')`);
    if (error instanceof NoDeviceError) {
      const fix = command === 'check' ? "'dfss info' shows what was found" : "use --backend auto or cpu to run on the cpu; 'dfss info' shows what was found";
      throw new NoDeviceError(`${error.message} (${fix})`);
    }
    throw error;
  }
}

function report(error: unknown): number {
  if (error instanceof UsageError) {
    process.stderr.write(`dfss: ${error.message}\n`);
    return EXIT_STATUS.usage;
  }
  if (error instanceof NoDeviceError) {
    process.stderr.write(`dfss: ${error.message}\n`);
    return EXIT_STATUS.noDevice;
  }
  if (error instanceof DfssError || error instanceof CommandFailedError) {
    process.stderr.write(`dfss: ${error.message}\n`);
    return EXIT_STATUS.failure;
  }
  // Not one of the library's typed errors: a bug, so the stack is worth showing.
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`dfss: unexpected error: ${detail}\n`);
  return EXIT_STATUS.failure;
}

// A closed pipe (`dfss demo | head -1`) is not an error of the command.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

main(process.argv.slice(2)).then(
  () => {
    process.exitCode = EXIT_STATUS.success;
  },
  (error: unknown) => {
    process.exitCode = report(error);
  },
);
