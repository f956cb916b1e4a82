// N:M sparsity patterns: in each group of M consecutive keys, N are kept. `null` stands for dense attention.

import { InvalidArgumentError } from './errors.js';

export interface Pattern {
  readonly n: number;
  readonly m: number;
}

/** The largest group size any backend accepts (the compressed layout stores in-group indices in 3 bits). */
export const MAX_GROUP_SIZE = 8;

const EXPECTED = `'dense', null, or 'N:M' (or {n, m}) with integers 1 <= N < M <= ${MAX_GROUP_SIZE}, e.g. '2:4'`;

/**
 * The pattern that x names: 'dense', null and undefined give null (no pruning); 'N:M' or {n, m} give a
 * frozen Pattern. Anything else throws an InvalidArgumentError naming `argument`.
 */
export function parsePattern(x: string | Pattern | null | undefined, argument = 'pattern'): Pattern | null {
  if (x === null || x === undefined) return null;
  let n: unknown;
  let m: unknown;
  if (typeof x === 'string') {
    if (x.trim().toLowerCase() === 'dense') return null;
    const match = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(x);
    if (match === null) throw new InvalidArgumentError(argument, EXPECTED, x);
    n = Number(match[1]);
    m = Number(match[2]);
  } else if (typeof x === 'object') {
    n = (x as { n?: unknown }).n;
    m = (x as { m?: unknown }).m;
  } else {
    throw new InvalidArgumentError(argument, EXPECTED, x);
  }
  if (!Number.isInteger(n) || !Number.isInteger(m)) throw new InvalidArgumentError(argument, EXPECTED, display(x));
  const keep = n as number;
  const group = m as number;
  if (keep === group && keep >= 1) {
    throw new InvalidArgumentError(argument, `${EXPECTED}; ${keep}:${group} keeps every key, use 'dense'`, display(x));
  }
  if (!(keep >= 1 && keep < group && group <= MAX_GROUP_SIZE)) {
    throw new InvalidArgumentError(argument, EXPECTED, display(x));
  }
  return Object.freeze({ n: keep, m: group });
}

/** 'dense' or 'N:M'; parsePattern(formatPattern(p)) gives p back. */
export function formatPattern(pattern: Pattern | null): string {
  return pattern === null ? 'dense' : `${pattern.n}:${pattern.m}`;
}

/** The nominal fraction of keys kept: N / M, or 1 for dense. */
export function keptFraction(pattern: Pattern | null): number {
  return pattern === null ? 1 : pattern.n / pattern.m;
}

function display(x: string | Pattern): string {
  return typeof x === 'string' ? x : `{ n: ${String(x.n)}, m: ${String(x.m)} }`;
}
