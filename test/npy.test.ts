import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeNpy, encodeNpyFloat32, readNpy, writeNpyFloat32, NpyFileError } from '../src/cli/npy.js';
import { InvalidArgumentError } from '../src/errors.js';

// Builds a .npy file by hand: magic, version, header length (uint16 for 1.0, uint32 for 2.0 and 3.0), the
// header text as given, then the data bytes.
function npyFile(major: number, header: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const headerBytes = new TextEncoder().encode(header);
  const lengthBytes = major === 1 ? 2 : 4;
  const bytes = new Uint8Array(8 + lengthBytes + headerBytes.length + data.length);
  bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(bytes.buffer);
  if (major === 1) view.setUint16(8, headerBytes.length, true);
  else view.setUint32(8, headerBytes.length, true);
  bytes.set(headerBytes, 8 + lengthBytes);
  bytes.set(data, 8 + lengthBytes + headerBytes.length);
  return bytes;
}

/** A dict padded with spaces and ended by a newline, so that the data starts at a multiple of 64. */
function paddedHeader(dict: string, preamble: number): string {
  const total = Math.ceil((preamble + dict.length + 1) / 64) * 64;
  return dict + ' '.repeat(total - preamble - dict.length - 1) + '\n';
}

function float32Bytes(values: number[], littleEndian = true): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((value, i) => view.setFloat32(i * 4, value, littleEndian));
  return bytes;
}

function uint16Bytes(values: number[], littleEndian = true): Uint8Array {
  const bytes = new Uint8Array(values.length * 2);
  const view = new DataView(bytes.buffer);
  values.forEach((value, i) => view.setUint16(i * 2, value, littleEndian));
  return bytes;
}

const F4_HEADER = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

function assertNpyError(run: () => unknown, file: string, pattern: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof NpyFileError, `expected an NpyFileError, got ${String(error)}`);
    assert.equal(error.file, file);
    assert.ok(error.message.startsWith(`${file}: `), error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

test('reads a hand-written float32 file, format 1.0', () => {
  const values = [1, -2.5, 3.25, 0, -0, 1e-40];
  const array = decodeNpy(npyFile(1, paddedHeader(F4_HEADER, 10), float32Bytes(values)), 'a.npy');
  assert.equal(array.dtype, 'float32');
  assert.deepEqual(array.shape, [2, 3]);
  assert.deepEqual([...array.data], [...new Float32Array(values)]);
  assert.ok(Object.is(array.data[4], -0));
});

test('reads a hand-written float16 file, format 2.0, as its bits', () => {
  const bits = [0x3c00, 0xc000, 0x7c00, 0xfc00, 0x0001, 0x7e00, 0x3555, 0x8000];
  const header = paddedHeader("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2, 2), }", 12);
  const array = decodeNpy(npyFile(2, header, uint16Bytes(bits)), 'h.npy');
  assert.equal(array.dtype, 'float16');
  assert.deepEqual(array.shape, [2, 2, 2]);
  assert.ok(array.data instanceof Uint16Array);
  assert.deepEqual([...array.data], bits);
});

test('reads format 3.0 and unaligned, unpadded headers', () => {
  const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
  const array = decodeNpy(npyFile(3, dict + '\n', float32Bytes([1, 2, 3])), 'v3.npy');
  assert.deepEqual(array.shape, [3]);
  assert.deepEqual([...array.data], [1, 2, 3]);
});

test('accepts the header variants Python writes: key order, quotes, no trailing comma, long integers', () => {
  const headers = [
    "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}",
    '{"descr": "<f4", "fortran_order": False, "shape": (2, 3)}',
    "{'descr':'<f4','fortran_order':False,'shape':(2L, 3L),}",
  ];
  for (const header of headers) {
    const array = decodeNpy(npyFile(1, paddedHeader(header, 10), float32Bytes([1, 2, 3, 4, 5, 6])), 'x.npy');
    assert.deepEqual(array.shape, [2, 3], header);
    assert.deepEqual([...array.data], [1, 2, 3, 4, 5, 6], header);
  }
});

test('converts big-endian float32 and float16 data to host order', () => {
  const f4 = decodeNpy(
    npyFile(1, paddedHeader("{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", 10), float32Bytes([1.5, -7, 1e30], false)),
    'be4.npy',
  );
  assert.equal(f4.dtype, 'float32');
  assert.deepEqual([...f4.data], [...new Float32Array([1.5, -7, 1e30])]);
  const f2 = decodeNpy(
    npyFile(1, paddedHeader("{'descr': '>f2', 'fortran_order': False, 'shape': (2,), }", 10), uint16Bytes([0x3c00, 0xc248], false)),
    'be2.npy',
  );
  assert.equal(f2.dtype, 'float16');
  assert.deepEqual([...f2.data], [0x3c00, 0xc248]);
});

test('reads scalars and empty arrays', () => {
  const scalar = decodeNpy(
    npyFile(1, paddedHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 10), float32Bytes([42])),
    's.npy',
  );
  assert.deepEqual(scalar.shape, []);
  assert.deepEqual([...scalar.data], [42]);
  const empty = decodeNpy(npyFile(1, paddedHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", 10)), 'e.npy');
  assert.deepEqual(empty.shape, [0, 4]);
  assert.equal(empty.data.length, 0);
});

test('writes exactly the header NumPy writes and reads it back, for every rank', () => {
  const bytes = encodeNpyFloat32(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
  assert.deepEqual([...bytes.subarray(0, 10)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 118, 0]);
  assert.equal(new TextDecoder('latin1').decode(bytes.subarray(10, 128)), paddedHeader(F4_HEADER, 10));
  assert.deepEqual(bytes.subarray(128), float32Bytes([1, 2, 3, 4, 5, 6]));

  const shapes = [[], [0], [5], [2, 3], [1, 2, 3, 4], [2, 1, 3, 1, 2]];
  for (const shape of shapes) {
    const count = shape.reduce((product, dim) => product * dim, 1);
    const data = Float32Array.from({ length: count }, (_, i) => i * 0.5 - 3);
    const written = encodeNpyFloat32(data, shape);
    const dataStart = written.length - data.length * 4;
    assert.equal(dataStart % 64, 0, `data offset for shape [${shape}]`);
    const read = decodeNpy(written, 'round-trip.npy');
    assert.equal(read.dtype, 'float32');
    assert.deepEqual(read.shape, shape);
    assert.deepEqual(read.data, data);
  }
  const oneDim = new TextDecoder().decode(encodeNpyFloat32(new Float32Array(5), [5]).subarray(10, 64));
  assert.ok(oneDim.includes("'shape': (5,)"), oneDim);
});

test('writes format 2.0 when the header does not fit 1.0, and reads it back', () => {
  const shape = new Array<number>(22_000).fill(1);
  const written = encodeNpyFloat32(new Float32Array([3.5]), shape);
  assert.equal(written[6], 2);
  assert.equal(written[7], 0);
  const headerLength = new DataView(written.buffer).getUint32(8, true);
  assert.ok(headerLength > 0xffff);
  assert.equal((12 + headerLength) % 64, 0);
  const read = decodeNpy(written, 'wide.npy');
  assert.equal(read.shape.length, 22_000);
  assert.deepEqual([...read.data], [3.5]);
});

test('writing checks that the data matches the shape', () => {
  assert.throws(() => encodeNpyFloat32(new Float32Array(5), [2, 3]), InvalidArgumentError);
  assert.throws(() => encodeNpyFloat32(new Float32Array(0), [-1]), InvalidArgumentError);
  assert.throws(() => encodeNpyFloat32(new Float32Array(2), [2.5]), InvalidArgumentError);
});

test('writing does not modify the data it is given', () => {
  const data = new Float32Array([1, 2, 3]);
  encodeNpyFloat32(data.subarray(1), [2]);
  assert.deepEqual([...data], [1, 2, 3]);
});

test('rejects files that are not .npy or are truncated, naming the file', () => {
  const good = encodeNpyFloat32(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
  assertNpyError(() => decodeNpy(new Uint8Array(0), 'empty.npy'), 'empty.npy', /not a NumPy \.npy file/);
  assertNpyError(() => decodeNpy(new TextEncoder().encode('PK\x03\x04 zip file'), 'z.npy'), 'z.npy', /magic/);
  const wrongMagic = good.slice();
  wrongMagic[1] = 0x4f;
  assertNpyError(() => decodeNpy(wrongMagic, 'm.npy'), 'm.npy', /magic/);
  assertNpyError(() => decodeNpy(good.subarray(0, 9), 'p.npy'), 'p.npy', /truncated/);
  assertNpyError(() => decodeNpy(good.subarray(0, 60), 'h.npy'), 'h.npy', /truncated .*header/);
  assertNpyError(() => decodeNpy(good.subarray(0, good.length - 1), 't.npy'), 't.npy', /truncated .*needs 24 data bytes, found 23/);
  assertNpyError(() => decodeNpy(good.subarray(0, 128), 'nodata.npy'), 'nodata.npy', /truncated/);
  const trailing = new Uint8Array(good.length + 4);
  trailing.set(good);
  assertNpyError(() => decodeNpy(trailing, 'long.npy'), 'long.npy', /4 unexpected bytes after the data/);
  const v2Truncated = npyFile(2, paddedHeader(F4_HEADER, 12)).subarray(0, 11);
  assertNpyError(() => decodeNpy(v2Truncated, 'v2.npy'), 'v2.npy', /truncated/);
});

test('rejects unknown format versions', () => {
  for (const [major, minor] of [[0, 0], [4, 0], [1, 1]]) {
    const bytes = npyFile(1, paddedHeader(F4_HEADER, 10), float32Bytes([1, 2, 3, 4, 5, 6]));
    bytes[6] = major;
    bytes[7] = minor;
    assertNpyError(() => decodeNpy(bytes, 'ver.npy'), 'ver.npy', new RegExp(`version ${major}\\.${minor}`));
  }
});

test('rejects dtypes other than float32 and float16', () => {
  const descrs = ['<i4', '|u1', '<f8', '<c8', '|b1', '<u2', '<i2', 'f4', '=f4', '<f4 '];
  for (const descr of descrs) {
    const header = paddedHeader(`{'descr': '${descr}', 'fortran_order': False, 'shape': (2,), }`, 10);
    assertNpyError(
      () => decodeNpy(npyFile(1, header, new Uint8Array(16)), 'i.npy'),
      'i.npy',
      new RegExp(`unsupported dtype "${descr.replace('|', '\\|')}".*float32 '<f4' or float16 '<f2'`),
    );
  }
  const structured = paddedHeader("{'descr': [('x', '<f4'), ('y', '<f4')], 'fortran_order': False, 'shape': (2,), }", 10);
  assertNpyError(() => decodeNpy(npyFile(1, structured, new Uint8Array(16)), 'r.npy'), 'r.npy', /structured dtype/);
});

test('rejects Fortran order', () => {
  const header = paddedHeader("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 10);
  assertNpyError(() => decodeNpy(npyFile(1, header, new Uint8Array(24)), 'f.npy'), 'f.npy', /Fortran order/);
});

test('rejects malformed headers', () => {
  const cases: [string, RegExp][] = [
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", /newline/], // no newline
    ["['descr', '<f4']\n", /expected a dict/],
    ["{'descr': '<f4', 'shape': (2, 3), }\n", /keys/],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}\n", /keys .*'extra'/],
    ["{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n", /duplicate key 'descr'/],
    ["{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}\n", /'fortran_order' is not True or False/],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}\n", /'shape' is not a tuple/],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (6)}\n", /'shape' is not a tuple/],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': ('2', 3)}\n", /'shape' is not a tuple/],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3)}\n", /out of range/],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} junk\n", /unexpected text after the dict/],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}\n", /expected ',' or '\)'/],
    ["{'descr': '<f4' 'fortran_order': False}\n", /expected ',' or '}'/],
    ["{'descr' '<f4'}\n", /expected ':'/],
    ["{'descr: '<f4'}\n", /./],
    ["{'descr': '<f4\n", /unsupported string|unterminated/],
    ["{1: '<f4'}\n", /key is not a string/],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (99999999, 99999999, 99999999)}\n", /too large/],
    ['\n', /unexpected text/],
  ];
  for (const [header, pattern] of cases) {
    assertNpyError(() => decodeNpy(npyFile(1, header, new Uint8Array(24)), 'bad.npy'), 'bad.npy', pattern);
    assert.throws(() => decodeNpy(npyFile(1, header, new Uint8Array(24)), 'bad.npy'), /malformed \.npy header/, header);
  }
});

test('readNpy and writeNpyFloat32 go through files and name the file in errors', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dfss-npy-'));
  try {
    const path = join(dir, 'x.npy');
    const data = new Float32Array([0.25, -1, 8, 1e-7]);
    await writeNpyFloat32(path, data, [2, 1, 2]);
    const read = await readNpy(path);
    assert.deepEqual(read.shape, [2, 1, 2]);
    assert.deepEqual(read.data, data);
    assert.deepEqual(new Uint8Array(await readFile(path)), encodeNpyFloat32(data, [2, 1, 2]));

    const missing = join(dir, 'missing.npy');
    await assert.rejects(readNpy(missing), (error: unknown) => {
      assert.ok(error instanceof NpyFileError);
      assert.equal(error.message, `${missing}: cannot read the file (no such file or directory)`);
      return true;
    });
    await mkdir(join(dir, 'sub.npy'));
    await assert.rejects(readNpy(join(dir, 'sub.npy')), /sub\.npy: cannot read the file \(it is a directory\)/);
    const unwritable = join(dir, 'no-such-dir', 'out.npy');
    await assert.rejects(writeNpyFloat32(unwritable, data, [4]), (error: unknown) => {
      assert.ok(error instanceof NpyFileError);
      assert.ok(error.message.startsWith(`${unwritable}: cannot write the file`), error.message);
      return true;
    });
    const text = join(dir, 'text.npy');
    await writeFile(text, 'hello');
    await assert.rejects(readNpy(text), new RegExp(`${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a NumPy`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
