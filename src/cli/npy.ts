// Reading and writing NumPy .npy files (format versions 1.0, 2.0 and 3.0), limited to what the command line
// needs: float32 and float16 arrays in C order, of any rank. The header is validated strictly, so a file that
// is not exactly a .npy array of a supported type is rejected with a message naming the file.
import { readFile, writeFile } from 'node:fs/promises';
import { DfssError, InvalidArgumentError } from '../errors.js';

/** A .npy file that cannot be read or written, or whose content is not a supported array. */
export class NpyFileError extends DfssError {
  readonly file: string;
  constructor(file: string, detail: string) {
    super('INVALID_ARGUMENT', `${file}: ${detail}`);
    this.file = file;
  }
}

/** The element types the reader accepts. float16 elements are returned as their IEEE binary16 bits. */
export type NpyArray =
  | { readonly dtype: 'float32'; readonly shape: readonly number[]; readonly data: Float32Array }
  | { readonly dtype: 'float16'; readonly shape: readonly number[]; readonly data: Uint16Array };

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const PREAMBLE_BYTES_V1 = 10; // magic (6), version (2), header length as uint16 (2)
const PREAMBLE_BYTES_V2 = 12; // magic (6), version (2), header length as uint32 (4)
const HEADER_ALIGNMENT = 64; // NumPy pads the header so the data starts at a multiple of 64 bytes

const SUPPORTED_DESCRS: Record<string, { dtype: 'float32' | 'float16'; itemSize: 4 | 2; littleEndian: boolean }> = {
  '<f4': { dtype: 'float32', itemSize: 4, littleEndian: true },
  '>f4': { dtype: 'float32', itemSize: 4, littleEndian: false },
  '<f2': { dtype: 'float16', itemSize: 2, littleEndian: true },
  '>f2': { dtype: 'float16', itemSize: 2, littleEndian: false },
};

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reads a float32 or float16 .npy file; every failure is an NpyFileError naming `path`. */
export async function readNpy(path: string): Promise<NpyArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new NpyFileError(path, `cannot read the file (${describeIoError(error)})`);
  }
  return decodeNpy(bytes, path);
}

/** Writes `data` (row-major, C order) as a little-endian float32 .npy file of the given shape. */
export async function writeNpyFloat32(path: string, data: Float32Array, shape: readonly number[]): Promise<void> {
  const bytes = encodeNpyFloat32(data, shape);
  try {
    await writeFile(path, bytes);
  } catch (error) {
    throw new NpyFileError(path, `cannot write the file (${describeIoError(error)})`);
  }
}

/** Parses the bytes of a .npy file; `name` is the file name used in error messages. */
export function decodeNpy(bytes: Uint8Array, name: string): NpyArray {
  const fail: (detail: string) => never = (detail) => {
    throw new NpyFileError(name, detail);
  };
  if (bytes.length < MAGIC.length || MAGIC.some((byte, i) => bytes[i] !== byte)) {
    fail('not a NumPy .npy file (it does not start with the magic string "\\x93NUMPY")');
  }
  if (bytes.length < PREAMBLE_BYTES_V1) fail('truncated .npy file (the header is incomplete)');
  const major = bytes[6];
  const minor = bytes[7];
  if (![1, 2, 3].includes(major) || minor !== 0) {
    fail(`unsupported .npy format version ${major}.${minor} (expected 1.0, 2.0 or 3.0)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerStart: number;
  let headerLength: number;
  if (major === 1) {
    headerStart = PREAMBLE_BYTES_V1;
    headerLength = view.getUint16(8, true);
  } else {
    if (bytes.length < PREAMBLE_BYTES_V2) fail('truncated .npy file (the header is incomplete)');
    headerStart = PREAMBLE_BYTES_V2;
    headerLength = view.getUint32(8, true);
  }
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) fail('truncated .npy file (the header is incomplete)');
  // Version 3.0 allows UTF-8 in the header (for structured field names); 1.0 and 2.0 are latin-1.
  const headerText = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));
  const header = parseHeader(headerText, fail);

  const format = SUPPORTED_DESCRS[header.descr];
  if (format === undefined) {
    fail(`unsupported dtype ${JSON.stringify(header.descr)} (expected float32 '<f4' or float16 '<f2')`);
  }
  if (header.fortranOrder) fail('arrays in Fortran order are not supported (expected fortran_order False, C order)');

  const count = header.shape.reduce((product, dim) => product * dim, 1);
  const expectedBytes = count * format.itemSize;
  const actualBytes = bytes.length - dataStart;
  const shapeText = `[${header.shape.join(', ')}]`;
  if (actualBytes < expectedBytes) {
    fail(`truncated .npy file (shape ${shapeText} ${format.dtype} needs ${expectedBytes} data bytes, found ${actualBytes})`);
  }
  if (actualBytes > expectedBytes) {
    fail(`${actualBytes - expectedBytes} unexpected bytes after the data of shape ${shapeText} ${format.dtype}`);
  }
  const elements = copyElements(bytes.subarray(dataStart), format.itemSize, format.littleEndian);
  return format.dtype === 'float32'
    ? { dtype: 'float32', shape: header.shape, data: new Float32Array(elements) }
    : { dtype: 'float16', shape: header.shape, data: new Uint16Array(elements) };
}

/** The bytes of a little-endian float32 .npy file (format 1.0, or 2.0 when the header needs it). */
export function encodeNpyFloat32(data: Float32Array, shape: readonly number[]): Uint8Array {
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new InvalidArgumentError('shape', 'non-negative integer dimensions', shape);
    }
  }
  const count = shape.reduce((product, dim) => product * dim, 1);
  if (count !== data.length) {
    throw new InvalidArgumentError('data.length', `${count} elements for shape [${shape.join(', ')}]`, data.length);
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // The dict, padded with spaces and ended by a newline, makes the data start on the alignment boundary.
  const unpadded = PREAMBLE_BYTES_V1 + dict.length + 1;
  const useV2 = roundUp(unpadded, HEADER_ALIGNMENT) - PREAMBLE_BYTES_V1 > 0xffff;
  const preamble = useV2 ? PREAMBLE_BYTES_V2 : PREAMBLE_BYTES_V1;
  const dataStart = roundUp(preamble + dict.length + 1, HEADER_ALIGNMENT);
  const header = dict + ' '.repeat(dataStart - preamble - dict.length - 1) + '\n';

  const bytes = new Uint8Array(dataStart + data.length * 4);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  bytes[6] = useV2 ? 2 : 1;
  bytes[7] = 0;
  if (useV2) view.setUint32(8, header.length, true);
  else view.setUint16(8, header.length, true);
  bytes.set(new TextEncoder().encode(header), preamble);
  const dataBytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  bytes.set(new Uint8Array(copyElements(dataBytes, 4, HOST_IS_LITTLE_ENDIAN)), dataStart);
  return bytes;
}

interface NpyHeader {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
}

/** Validates the header text: a Python dict literal with exactly the keys descr, fortran_order and shape,
 * padded with spaces and ended by a newline. */
function parseHeader(text: string, fail: (detail: string) => never): NpyHeader {
  const bad: (detail: string) => never = (detail) => fail(`malformed .npy header (${detail})`);
  if (!text.endsWith('\n')) bad('it does not end with a newline');
  let value: PyValue;
  try {
    const parser = new PyLiteralParser(text);
    value = parser.parseValue();
    parser.expectEnd();
  } catch (error) {
    if (error instanceof PySyntaxError) return bad(error.message);
    throw error;
  }
  if (!(value instanceof Map)) return bad('expected a dict');
  const keys = [...value.keys()].sort();
  if (keys.join(',') !== 'descr,fortran_order,shape') {
    bad(`expected the keys 'descr', 'fortran_order' and 'shape', got ${keys.map((key) => `'${key}'`).join(', ')}`);
  }
  const descr = value.get('descr');
  const fortranOrder = value.get('fortran_order');
  const shape = value.get('shape');
  if (typeof descr !== 'string') {
    return fail('unsupported dtype: a structured dtype (expected float32 \'<f4\' or float16 \'<f2\')');
  }
  if (typeof fortranOrder !== 'boolean') return bad("'fortran_order' is not True or False");
  if (!isTuple(shape) || !shape.items.every((dim) => typeof dim === 'number')) {
    return bad("'shape' is not a tuple of integers");
  }
  const dims = shape.items as number[];
  let count = 1;
  for (const dim of dims) {
    count *= dim;
    if (!Number.isSafeInteger(count)) bad(`shape (${dims.join(', ')}) is too large`);
  }
  return { descr, fortranOrder, shape: dims };
}

// A small parser of the Python literals NumPy writes in headers: dicts, tuples, lists, strings, integers,
// True, False and None.
type PyValue = string | number | boolean | null | PyTuple | PyValue[] | Map<string, PyValue>;
interface PyTuple {
  readonly kind: 'tuple';
  readonly items: PyValue[];
}
function isTuple(value: PyValue | undefined): value is PyTuple {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Map);
}

class PySyntaxError extends Error {}

class PyLiteralParser {
  private position = 0;
  constructor(private readonly text: string) {}

  parseValue(): PyValue {
    this.skipSpace();
    const char = this.text[this.position];
    if (char === '{') return this.parseDict();
    if (char === '(') return this.parseSequence(')');
    if (char === '[') return this.parseSequence(']');
    if (char === "'" || char === '"') return this.parseString();
    const word = /^(?:True|False|None|-?\d+L?)/.exec(this.text.slice(this.position));
    if (word === null) throw this.error('unexpected text');
    this.position += word[0].length;
    if (word[0] === 'True') return true;
    if (word[0] === 'False') return false;
    if (word[0] === 'None') return null;
    // Python 2 NumPy wrote long integers with an L suffix, e.g. (3L, 4L).
    const integer = Number(word[0].replace(/L$/, ''));
    if (!Number.isSafeInteger(integer) || integer < 0) throw this.error(`integer ${word[0]} out of range`);
    return integer;
  }

  expectEnd(): void {
    this.skipSpace();
    if (this.position !== this.text.length) throw this.error('unexpected text after the dict');
  }

  private parseDict(): Map<string, PyValue> {
    const dict = new Map<string, PyValue>();
    this.position++; // '{'
    for (;;) {
      this.skipSpace();
      if (this.consume('}')) return dict;
      const key = this.parseValue();
      if (typeof key !== 'string') throw this.error('dict key is not a string');
      if (dict.has(key)) throw this.error(`duplicate key '${key}'`);
      this.skipSpace();
      if (!this.consume(':')) throw this.error("expected ':'");
      dict.set(key, this.parseValue());
      this.skipSpace();
      if (this.consume('}')) return dict;
      if (!this.consume(',')) throw this.error("expected ',' or '}'");
    }
  }

  private parseSequence(close: ')' | ']'): PyValue {
    const items: PyValue[] = [];
    let trailingComma = false;
    this.position++; // '(' or '['
    for (;;) {
      this.skipSpace();
      if (this.consume(close)) break;
      items.push(this.parseValue());
      this.skipSpace();
      trailingComma = this.consume(',');
      if (!trailingComma) {
        this.skipSpace();
        if (!this.consume(close)) throw this.error(`expected ',' or '${close}'`);
        break;
      }
    }
    if (close === ']') return items;
    // In Python "(3)" is the integer 3, not a tuple; a one-element tuple needs its comma: "(3,)".
    if (items.length === 1 && !trailingComma) return items[0];
    return { kind: 'tuple', items };
  }

  private parseString(): string {
    const quote = this.text[this.position++];
    const start = this.position;
    while (this.position < this.text.length && this.text[this.position] !== quote) {
      if (this.text[this.position] === '\\' || this.text[this.position] === '\n') throw this.error('unsupported string');
      this.position++;
    }
    if (this.position >= this.text.length) throw this.error('unterminated string');
    return this.text.slice(start, this.position++);
  }

  private skipSpace(): void {
    while (this.position < this.text.length && ' \t\n'.includes(this.text[this.position])) this.position++;
  }

  private consume(char: string): boolean {
    if (this.text[this.position] !== char) return false;
    this.position++;
    return true;
  }

  private error(detail: string): PySyntaxError {
    return new PySyntaxError(`${detail} at character ${this.position}`);
  }
}

/** A fresh buffer holding the elements of `bytes` in host byte order. */
function copyElements(bytes: Uint8Array, itemSize: number, littleEndian: boolean): ArrayBuffer {
  // A copy (Buffer#slice would share memory), which also aligns the data for the caller's typed-array view.
  const copy = new Uint8Array(bytes);
  if (littleEndian !== HOST_IS_LITTLE_ENDIAN) {
    for (let offset = 0; offset < copy.length; offset += itemSize) copy.subarray(offset, offset + itemSize).reverse();
  }
  return copy.buffer;
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

function describeIoError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EISDIR':
      return 'it is a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a component of the path is not a directory';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}
