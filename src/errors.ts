// Typed errors of the public API. Every error names what was wrong and what was expected, so a caller can
// fix the call from the message alone; `code` lets programs branch without parsing text.

export type DfssErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NO_DEVICE'
  | 'UNSUPPORTED'
  | 'DISPOSED'
  | 'LIBRARY_NOT_FOUND'
  | 'NATIVE';

export class DfssError extends Error {
  readonly code: DfssErrorCode;
  constructor(code: DfssErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An argument outside its documented range; `argument` names it, `expected` says what would be valid. */
export class InvalidArgumentError extends DfssError {
  readonly argument: string;
  readonly expected: string;
  constructor(argument: string, expected: string, actual?: unknown) {
    const got = actual === undefined ? '' : `, got ${describe(actual)}`;
    super('INVALID_ARGUMENT', `${argument}: expected ${expected}${got}`);
    this.argument = argument;
    this.expected = expected;
  }
}

/** The CUDA backend was asked for where no library, driver or GPU can run it. */
export class NoDeviceError extends DfssError {
  constructor(message: string) {
    super('NO_DEVICE', message);
  }
}

/** A valid request this backend, build or GPU does not implement. */
export class UnsupportedError extends DfssError {
  constructor(message: string) {
    super('UNSUPPORTED', message);
  }
}

/** A tensor was used after dispose(). */
export class DisposedTensorError extends DfssError {
  constructor(argument: string) {
    super('DISPOSED', `${argument}: the tensor was disposed and can no longer be used`);
  }
}

/** libdfss could not be found or loaded. */
export class LibraryNotFoundError extends DfssError {
  constructor(message: string) {
    super('LIBRARY_NOT_FOUND', message);
  }
}

/** A failure reported by libdfss: `status` is its dfss_status name, the message its detailed text. */
export class NativeError extends DfssError {
  readonly status: string;
  constructor(status: string, message: string) {
    super('NATIVE', `${status}: ${message}`);
    this.status = status;
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(describe).join(', ')}]`;
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return String(value);
}
