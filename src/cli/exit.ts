// Exit statuses of the dfss command line (documented in `dfss --help` and the README).

export const EXIT_STATUS = {
  /** The command did what was asked. */
  success: 0,
  /** It ran and failed: an error while running, or `dfss check` found a GPU result that differs from the CPU's. */
  failure: 1,
  /** A malformed command line: unknown command or flag, missing or bad value. Nothing was run. */
  usage: 2,
  /** A GPU is required (`dfss check`, `--backend cuda`) and none can be used: no libdfss, driver or device. */
  noDevice: 3,
} as const;

/** A command that ran to its end and reports failure (exit status 1), e.g. `dfss check` with failing checks. */
export class CommandFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandFailedError';
  }
}
