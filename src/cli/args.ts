// The command line's flag parser: `--flag value`, `--flag=value`, short aliases (`-o value`), boolean flags,
// and `--` to end the flags. Anything it does not recognise is a UsageError naming the offending argument.
import { DfssError, InvalidArgumentError } from '../errors.js';
import { MAX_GROUP_SIZE, parsePattern, type Pattern } from '../pattern.js';

/** A malformed command line: the CLI prints the message with a pointer to --help and exits with status 2. */
export class UsageError extends DfssError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

/** Values of every command's --backend flag. */
export const BACKEND_CHOICES = ['auto', 'cpu', 'cuda'] as const;

export interface FlagSpec {
  /** 'string' flags take a value; 'boolean' flags take none. */
  readonly kind: 'string' | 'boolean';
  /** One-letter alias, written with one dash: `short: 'o'` accepts `-o`. */
  readonly short?: string;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

export type FlagValues<S extends FlagSpecs> = {
  -readonly [K in keyof S]?: S[K]['kind'] extends 'boolean' ? true : string;
};

export interface ParsedArgs<S extends FlagSpecs> {
  readonly flags: FlagValues<S>;
  readonly positionals: string[];
}

/** Parses `argv` (the arguments after the command name) against `specs`, keyed by long flag name. */
export function parseArgs<S extends FlagSpecs>(argv: readonly string[], specs: S): ParsedArgs<S> {
  const flags: Record<string, true | string> = {};
  const positionals: string[] = [];
  const shortNames = new Map<string, string>();
  for (const [name, spec] of Object.entries(specs)) if (spec.short !== undefined) shortNames.set(spec.short, name);

  const looksLikeFlag = (arg: string): boolean => arg.startsWith('--') || shortNames.has(arg.slice(1));

  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index];
    if (arg === '--') {
      positionals.push(...argv.slice(index + 1));
      break;
    }
    let name: string;
    let inlineValue: string | undefined;
    let written: string;
    if (arg.startsWith('--')) {
      const equals = arg.indexOf('=');
      written = equals < 0 ? arg : arg.slice(0, equals);
      name = written.slice(2);
      inlineValue = equals < 0 ? undefined : arg.slice(equals + 1);
      if (!Object.hasOwn(specs, name)) throw new UsageError(`unknown flag ${written}`);
    } else if (arg.startsWith('-') && arg.length > 1 && !isNumber(arg)) {
      written = arg;
      const long = shortNames.get(arg.slice(1));
      if (long === undefined) throw new UsageError(`unknown flag ${arg}`);
      name = long;
    } else {
      positionals.push(arg);
      continue;
    }

    if (Object.hasOwn(flags, name)) throw new UsageError(`${written} is given more than once`);
    if (specs[name].kind === 'boolean') {
      if (inlineValue !== undefined) throw new UsageError(`${written} takes no value, got ${JSON.stringify(inlineValue)}`);
      flags[name] = true;
      continue;
    }
    let value = inlineValue;
    if (value === undefined) {
      const next = argv[index + 1];
      if (next !== undefined && !looksLikeFlag(next)) {
        value = next;
        index++;
      }
    }
    if (value === undefined || value === '') throw new UsageError(`${written} needs a value`);
    flags[name] = value;
  }
  return { flags: flags as FlagValues<S>, positionals };
}

/** `value` of `flag` if it is one of `choices`. */
export function parseChoice<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`--${flag}: expected one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
}

/** `value` of `flag` as an integer >= `min`. */
export function parseInteger(flag: string, value: string, min: number): number {
  const number = /^[+]?\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number) || number < min) {
    throw new UsageError(`--${flag}: expected an integer >= ${min}, got ${JSON.stringify(value)}`);
  }
  return number;
}

/** `value` of `flag` as a finite decimal number (e.g. 0.125, -2, 1e-3). */
export function parseFiniteNumber(flag: string, value: string): number {
  const number = isNumber(value) ? Number(value) : Number.NaN;
  if (!Number.isFinite(number)) {
    throw new UsageError(`--${flag}: expected a finite number, got ${JSON.stringify(value)}`);
  }
  return number;
}

function isNumber(text: string): boolean {
  return /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(text);
}

/** `value` of `flag` as a sparsity pattern: null for dense, else N:M as the library parses it. */
export function parsePatternFlag(flag: string, value: string): Pattern | null {
  try {
    return parsePattern(value, `--${flag}`);
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    // The library's message also lists the forms only the API accepts (null, {n, m}); say it in CLI terms.
    throw new UsageError(
      `--${flag}: expected dense or N:M with integers 1 <= N < M <= ${MAX_GROUP_SIZE} (e.g. 2:4), got ${JSON.stringify(value)}`,
    );
  }
}
