// The compressed layout of the staged operations, exactly as cuda/include/dfss.h documents it:
//   - a compressed row holds C = ceil(Nk / M) * N values (dense: C = Nk), group g in slots [gN, gN + N);
//   - metadata: per row W = ceil(C * b / 32) uint32 words, b = ceil(log2 M) bits per kept value; the in-group
//     index of slot c sits in bits [c*b, c*b + b) of the row's bit stream, bit t of the stream being bit
//     t % 32 of word t / 32 (least significant bit first). Indices may straddle two words (b = 3); unused
//     trailing bits are 0.

import { InvalidArgumentError } from './errors.js';
import type { Pattern } from './pattern.js';

export interface CompressedRowSize {
  /** C: values per compressed row. */
  readonly values: number;
  /** W: uint32 metadata words per row (0 for dense). */
  readonly metadataWords: number;
}

/** Bits per stored in-group index: ceil(log2 m) (m = 2: 1, m = 3..4: 2, m = 5..8: 3). */
export function indexBits(m: number): number {
  if (!(Number.isInteger(m) && m >= 2 && m <= 8)) throw new InvalidArgumentError('m', 'an integer 2 .. 8', m);
  return m <= 2 ? 1 : m <= 4 ? 2 : 3;
}

/** C and W of one row of seqK keys under pattern (null: dense). */
export function compressedRowSize(seqK: number, pattern: Pattern | null): CompressedRowSize {
  if (!(Number.isInteger(seqK) && seqK >= 1)) throw new InvalidArgumentError('seqK', 'an integer >= 1', seqK);
  if (pattern === null) return { values: seqK, metadataWords: 0 };
  const values = Math.ceil(seqK / pattern.m) * pattern.n;
  return { values, metadataWords: metadataWordsPerRow(values, pattern.m) };
}

/** W for C values of in-group indices below m. */
export function metadataWordsPerRow(valuesPerRow: number, m: number): number {
  return Math.ceil((valuesPerRow * indexBits(m)) / 32);
}

/**
 * Packs one row: the C indices indices[indexOffset ..] go to words[wordOffset .. wordOffset + W), which are
 * overwritten (so unused bits end up 0). Indices must be integers 0 .. m-1.
 */
export function encodeMetadataRow(
  indices: Int32Array,
  indexOffset: number,
  valuesPerRow: number,
  m: number,
  words: Uint32Array,
  wordOffset: number,
): void {
  const bits = indexBits(m);
  const wordCount = metadataWordsPerRow(valuesPerRow, m);
  words.fill(0, wordOffset, wordOffset + wordCount);
  for (let c = 0; c < valuesPerRow; c++) {
    const index = indices[indexOffset + c];
    if (!(index >= 0 && index < m)) {
      throw new InvalidArgumentError(`indices[${indexOffset + c}]`, `an in-group index 0 .. ${m - 1}`, index);
    }
    const bit = c * bits;
    const word = wordOffset + (bit >>> 5);
    const shift = bit & 31;
    words[word] |= index << shift;
    if (shift + bits > 32) words[word + 1] |= index >>> (32 - shift);
  }
}

/**
 * Unpacks one row: the C indices stored in words[wordOffset ..] go to indices[indexOffset ..]. An index that
 * is not below m is an InvalidArgumentError (the metadata is not of this pattern).
 */
export function decodeMetadataRow(
  words: Uint32Array,
  wordOffset: number,
  valuesPerRow: number,
  m: number,
  indices: Int32Array,
  indexOffset: number,
): void {
  const bits = indexBits(m);
  const mask = (1 << bits) - 1;
  for (let c = 0; c < valuesPerRow; c++) {
    const bit = c * bits;
    const word = wordOffset + (bit >>> 5);
    const shift = bit & 31;
    let value = words[word] >>> shift;
    if (shift + bits > 32) value |= words[word + 1] << (32 - shift);
    const index = value & mask;
    if (index >= m) {
      throw new InvalidArgumentError(`metadata[${word}]`, `in-group indices 0 .. ${m - 1}`, `index ${index} in slot ${c}`);
    }
    indices[indexOffset + c] = index;
  }
}

/** Packs rows × C in-group indices (row-major) into rows × W metadata words. */
export function encodeMetadata(indices: Int32Array, rows: number, valuesPerRow: number, m: number): Uint32Array {
  checkCount('rows', rows);
  checkCount('valuesPerRow', valuesPerRow);
  if (indices.length !== rows * valuesPerRow) {
    throw new InvalidArgumentError('indices', `an Int32Array of rows * C = ${rows * valuesPerRow} elements`, indices.length);
  }
  const wordsPerRow = metadataWordsPerRow(valuesPerRow, m);
  const words = new Uint32Array(rows * wordsPerRow);
  for (let r = 0; r < rows; r++) encodeMetadataRow(indices, r * valuesPerRow, valuesPerRow, m, words, r * wordsPerRow);
  return words;
}

/** Unpacks rows × W metadata words into rows × C in-group indices (row-major). */
export function decodeMetadata(words: Uint32Array, rows: number, valuesPerRow: number, m: number): Int32Array {
  checkCount('rows', rows);
  checkCount('valuesPerRow', valuesPerRow);
  const wordsPerRow = metadataWordsPerRow(valuesPerRow, m);
  if (words.length !== rows * wordsPerRow) {
    throw new InvalidArgumentError('metadata', `a Uint32Array of rows * W = ${rows * wordsPerRow} words`, words.length);
  }
  const indices = new Int32Array(rows * valuesPerRow);
  for (let r = 0; r < rows; r++) decodeMetadataRow(words, r * wordsPerRow, valuesPerRow, m, indices, r * valuesPerRow);
  return indices;
}

function checkCount(argument: string, value: number): void {
  if (!(Number.isInteger(value) && value >= 0)) throw new InvalidArgumentError(argument, 'an integer >= 0', value);
}
