import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  bfloat16BitsToFloat32,
  bytesPerElement,
  decodeBfloat16,
  decodeFloat16,
  DTYPES,
  encodeBfloat16,
  encodeFloat16,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
  isDType,
  roundArrayToDType,
  roundToDType,
  type DType,
} from '../src/dtype.js';
import { InvalidArgumentError } from '../src/errors.js';

const ALL_BITS = Uint16Array.from({ length: 65536 }, (_, i) => i);

/** A float32 given by its bits. */
function f32(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0];
}

function f32Array(bits: number[]): Float32Array {
  return new Float32Array(new Uint32Array(bits).buffer);
}

/** The value of float16 bits, computed from the definition of the format. */
function float16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** The value of bfloat16 bits, computed from the definition of the format. */
function bfloat16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 7) & 0xff;
  const mantissa = h & 0x7f;
  if (exponent === 0xff) return mantissa === 0 ? sign * Infinity : NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -133;
  return sign * (1 + mantissa / 128) * 2 ** (exponent - 127);
}

interface Format {
  name: 'float16' | 'bfloat16';
  value: (bits: number) => number;
  exponentMask: number;
  quietBit: number;
  decode: (bits: Uint16Array) => Float32Array;
  encode: (src: ArrayLike<number>) => Uint16Array;
  toBits: (x: number) => number;
  fromBits: (bits: number) => number;
}

const FORMATS: Format[] = [
  {
    name: 'float16',
    value: float16Value,
    exponentMask: 0x7c00,
    quietBit: 0x0200,
    decode: (bits) => decodeFloat16(bits),
    encode: (src) => encodeFloat16(src),
    toBits: float32ToFloat16Bits,
    fromBits: float16BitsToFloat32,
  },
  {
    name: 'bfloat16',
    value: bfloat16Value,
    exponentMask: 0x7f80,
    quietBit: 0x0040,
    decode: (bits) => decodeBfloat16(bits),
    encode: (src) => encodeBfloat16(src),
    toBits: float32ToBfloat16Bits,
    fromBits: bfloat16BitsToFloat32,
  },
];

function isNaNBits(format: Format, bits: number): boolean {
  return (bits & format.exponentMask) === format.exponentMask && (bits & ~format.exponentMask & 0x7fff) !== 0;
}

describe('dtype names', () => {
  test('DTYPES, isDType and bytesPerElement', () => {
    assert.deepEqual([...DTYPES], ['float16', 'bfloat16', 'float32']);
    for (const dtype of DTYPES) assert.equal(isDType(dtype), true);
    for (const other of ['float64', 'fp16', '', null, 2]) assert.equal(isDType(other), false);
    assert.equal(bytesPerElement('float16'), 2);
    assert.equal(bytesPerElement('bfloat16'), 2);
    assert.equal(bytesPerElement('float32'), 4);
    assert.throws(() => bytesPerElement('int8' as DType), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'dtype');
  });
});

for (const format of FORMATS) {
  describe(`${format.name}: all 65,536 bit patterns`, () => {
    test('decode gives the value of the definition (bulk and scalar)', () => {
      const values = format.decode(ALL_BITS);
      for (let h = 0; h < 65536; h++) {
        const expected = format.value(h);
        if (Number.isNaN(expected)) {
          assert.ok(Number.isNaN(values[h]) && Number.isNaN(format.fromBits(h)), `bits ${h.toString(16)}`);
        } else {
          assert.ok(Object.is(values[h], expected), `bits ${h.toString(16)}: ${values[h]} != ${expected}`);
          assert.ok(Object.is(format.fromBits(h), expected), `scalar bits ${h.toString(16)}`);
        }
      }
    });

    test('bulk decode then encode gives the same bits; NaNs stay NaN with sign and payload, made quiet', () => {
      const back = format.encode(format.decode(ALL_BITS));
      for (let h = 0; h < 65536; h++) {
        if (isNaNBits(format, h)) assert.equal(back[h], h | format.quietBit, `NaN bits ${h.toString(16)}`);
        else assert.equal(back[h], h, `bits ${h.toString(16)}`);
      }
    });

    test('scalar decode then encode gives the same bits; NaNs stay NaN', () => {
      for (let h = 0; h < 65536; h++) {
        const bits = format.toBits(format.fromBits(h));
        if (isNaNBits(format, h)) assert.ok(isNaNBits(format, bits), `NaN bits ${h.toString(16)} -> ${bits.toString(16)}`);
        else assert.equal(bits, h, `bits ${h.toString(16)}`);
      }
    });

    test('every halfway point between neighbours rounds to the even one, and just off it to the nearer one', () => {
      // neighbours a < b among the positive finite values (bits h and h + 1), including subnormals, and the
      // halfway point above the largest finite value, which rounds to infinity
      const infinityBits = format.exponentMask;
      const midpoints: number[] = [];
      const expected: number[] = [];
      for (let h = 0; h < infinityBits; h++) {
        const a = format.value(h);
        const b = h + 1 === infinityBits ? 2 * format.value(h) - format.value(h - 1) : format.value(h + 1);
        const mid = (a + b) / 2;
        const even = (h & 1) === 0 ? h : h + 1;
        midpoints.push(mid, mid * (1 - 2 ** -40), mid * (1 + 2 ** -40));
        expected.push(even, h, h + 1);
      }
      const negated = midpoints.map((x) => -x);
      const viaDouble = format.encode(midpoints);
      const viaDoubleNegative = format.encode(negated);
      for (let t = 0; t < midpoints.length; t++) {
        assert.equal(viaDouble[t], expected[t], `${midpoints[t]}`);
        assert.equal(viaDoubleNegative[t], expected[t] | 0x8000, `${negated[t]}`);
        if (t % 97 === 0) assert.equal(format.toBits(midpoints[t]), expected[t], `scalar ${midpoints[t]}`);
      }
      // the float32 path: every halfway point is a float32; one float32 step off it decides the direction
      const mids32 = new Float32Array(midpoints.filter((_, t) => t % 3 === 0));
      const bits32 = new Uint32Array(mids32.buffer);
      const below = f32Array([...bits32].map((u) => u - 1));
      const above = f32Array([...bits32].map((u) => u + 1));
      const atMid = format.encode(mids32);
      const atBelow = format.encode(below);
      const atAbove = format.encode(above);
      for (let t = 0; t < mids32.length; t++) {
        assert.equal(mids32[t], midpoints[3 * t], 'the halfway point is exact in float32');
        assert.equal(atMid[t], expected[3 * t]);
        assert.equal(atBelow[t], expected[3 * t + 1]);
        assert.equal(atAbove[t], expected[3 * t + 2]);
      }
    });
  });
}

describe('float16 special values', () => {
  const cases: Array<[string, number, number]> = [
    ['one', 1, 0x3c00],
    ['negative zero', -0, 0x8000],
    ['zero', 0, 0x0000],
    ['largest finite', 65504, 0x7bff],
    ['just below the overflow threshold', 65519.99, 0x7bff],
    ['overflow threshold (halfway to 65536) rounds to infinity', 65520, 0x7c00],
    ['far beyond', 1e10, 0x7c00],
    ['negative overflow', -65520, 0xfc00],
    ['infinity', Infinity, 0x7c00],
    ['negative infinity', -Infinity, 0xfc00],
    ['smallest subnormal', 2 ** -24, 0x0001],
    ['negative smallest subnormal', -(2 ** -24), 0x8001],
    ['half the smallest subnormal rounds to even (zero)', 2 ** -25, 0x0000],
    ['just above half the smallest subnormal', 2 ** -25 + 2 ** -50, 0x0001],
    ['halfway between subnormals 1 and 2 goes to 2', 3 * 2 ** -25, 0x0002],
    ['largest subnormal', 1023 * 2 ** -24, 0x03ff],
    ['halfway between the largest subnormal and the smallest normal', 2 ** -14 - 2 ** -25, 0x0400],
    ['smallest normal', 2 ** -14, 0x0400],
    ['tiny negative number keeps its sign', -1e-30, 0x8000],
    ['1 + 2^-11 is a tie: rounds to even 1', 1 + 2 ** -11, 0x3c00],
    ['1 + 3 * 2^-11 is a tie: rounds to even 1 + 2^-9', 1 + 3 * 2 ** -11, 0x3c02],
    ['one rounding from the double (float32 first would give 0x3c00)', 1 + 2 ** -11 + 2 ** -40, 0x3c01],
  ];
  for (const [name, x, bits] of cases) {
    test(`${name}: ${x} -> 0x${bits.toString(16)}`, () => {
      assert.equal(float32ToFloat16Bits(x), bits);
      assert.equal(encodeFloat16([x])[0], bits);
      if (Math.fround(x) === x) assert.equal(encodeFloat16(new Float32Array([x]))[0], bits);
    });
  }

  test('NaN: quiet, sign and upper payload bits kept', () => {
    const out = encodeFloat16(f32Array([0x7fc00000, 0xffc00000, 0x7f800001, 0x7fa00000, 0xffbfe000]));
    assert.deepEqual([...out], [0x7e00, 0xfe00, 0x7e00, 0x7f00, 0xffff]);
    assert.ok(isNaNBits(FORMATS[0], float32ToFloat16Bits(NaN)));
    assert.ok(Number.isNaN(roundToDType(NaN, 'float16')));
  });
});

describe('bfloat16 special values', () => {
  const largest = bfloat16Value(0x7f7f);
  const cases: Array<[string, number, number]> = [
    ['one', 1, 0x3f80],
    ['negative zero', -0, 0x8000],
    ['largest finite', largest, 0x7f7f],
    ['just below the overflow threshold', (2 - 2 ** -8) * 2 ** 127 * (1 - 2 ** -30), 0x7f7f],
    ['overflow threshold rounds to infinity', (2 - 2 ** -8) * 2 ** 127, 0x7f80],
    ['largest float32 rounds to infinity', f32(0x7f7fffff), 0x7f80],
    ['beyond float32', 1e300, 0x7f80],
    ['negative infinity', -Infinity, 0xff80],
    ['smallest subnormal', 2 ** -133, 0x0001],
    ['half the smallest subnormal rounds to even (zero)', 2 ** -134, 0x0000],
    ['just above half the smallest subnormal', 2 ** -134 + 2 ** -140, 0x0001],
    ['halfway between subnormals 1 and 2 goes to 2', 3 * 2 ** -134, 0x0002],
    ['float32 subnormal 2^-127 is exact', f32(0x00400000), 0x0040],
    ['smallest float32 subnormal rounds to zero', f32(0x00000001), 0x0000],
    ['negative float32 subnormal', -f32(0x00400000), 0x8040],
    ['below the float32 range', 1e-300, 0x0000],
    ['1 + 2^-8 is a tie: rounds to even 1', 1 + 2 ** -8, 0x3f80],
    ['1 + 3 * 2^-8 is a tie: rounds to even 1 + 2^-6', 1 + 3 * 2 ** -8, 0x3f82],
    ['one rounding from the double', 1 + 2 ** -8 + 2 ** -40, 0x3f81],
  ];
  for (const [name, x, bits] of cases) {
    test(`${name}: ${x} -> 0x${bits.toString(16)}`, () => {
      assert.equal(float32ToBfloat16Bits(x), bits);
      assert.equal(encodeBfloat16([x])[0], bits);
      if (Math.fround(x) === x) assert.equal(encodeBfloat16(new Float32Array([x]))[0], bits);
    });
  }

  test('NaN: quiet, sign and upper payload bits kept', () => {
    const out = encodeBfloat16(f32Array([0x7fc00000, 0xffc00000, 0x7f800001, 0x7fa00000, 0xff810000]));
    assert.deepEqual([...out], [0x7fc0, 0xffc0, 0x7fc0, 0x7fe0, 0xffc1]);
    assert.ok(isNaNBits(FORMATS[1], float32ToBfloat16Bits(NaN)));
  });
});

describe('rounding to a dtype', () => {
  test('roundToDType: float32 is Math.fround, 16-bit types round to nearest even', () => {
    const x = 0.1;
    assert.equal(roundToDType(x, 'float32'), Math.fround(x));
    assert.equal(roundToDType(x, 'float16'), float16Value(0x2e66));
    assert.equal(roundToDType(x, 'bfloat16'), bfloat16Value(0x3dcd));
    assert.equal(roundToDType(1 + 2 ** -11, 'float16'), 1);
    assert.equal(roundToDType(70000, 'float16'), Infinity);
    assert.ok(Object.is(roundToDType(-0, 'bfloat16'), -0));
    assert.throws(() => roundToDType(1, 'half' as DType), InvalidArgumentError);
  });

  test('roundArrayToDType agrees with roundToDType and leaves its input alone', () => {
    const src = Array.from({ length: 2000 }, (_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 13) - 6));
    const copy = src.slice();
    for (const dtype of DTYPES) {
      const rounded = roundArrayToDType(src, dtype);
      const fromFloat32 = roundArrayToDType(new Float32Array(src), dtype);
      for (let i = 0; i < src.length; i++) {
        assert.equal(rounded[i], roundToDType(src[i], dtype), `${dtype} ${src[i]}`);
        assert.equal(fromFloat32[i], roundToDType(Math.fround(src[i]), dtype));
      }
    }
    assert.deepEqual(src, copy);
  });

  test('bulk encode of doubles equals the scalar conversion on random inputs of every magnitude', () => {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const src = Array.from({ length: 20000 }, () => (random() - 0.5) * 2 ** Math.floor(random() * 300 - 150));
    const h = encodeFloat16(src);
    const b = encodeBfloat16(src);
    for (let i = 0; i < src.length; i++) {
      assert.equal(h[i], float32ToFloat16Bits(src[i]));
      assert.equal(b[i], float32ToBfloat16Bits(src[i]));
      // the result is one of the two neighbours of x and the nearer one
      const value = float16Value(h[i]);
      if (Number.isFinite(value)) {
        const other = float16Value(value < src[i] !== src[i] < 0 ? h[i] + 1 : h[i] - 1);
        if (Number.isFinite(other)) assert.ok(Math.abs(value - src[i]) <= Math.abs(other - src[i]), `${src[i]}`);
      }
    }
  });
});

describe('argument checks', () => {
  test('bits outside 0 .. 65535 and wrong dst lengths are named errors', () => {
    for (const bad of [-1, 65536, 1.5, NaN]) {
      assert.throws(() => float16BitsToFloat32(bad), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'bits');
      assert.throws(() => bfloat16BitsToFloat32(bad), InvalidArgumentError);
    }
    assert.throws(() => encodeFloat16([1, 2], new Uint16Array(3)), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'dst');
    assert.throws(() => decodeFloat16(new Uint16Array(2), new Float32Array(1)), InvalidArgumentError);
    assert.throws(() => encodeBfloat16([1], new Uint16Array(0)), InvalidArgumentError);
    assert.throws(() => decodeBfloat16(new Uint16Array(2), new Float32Array(3)), InvalidArgumentError);
  });

  test('dst is filled and returned when given', () => {
    const dst = new Uint16Array(2);
    assert.equal(encodeFloat16([1, -2], dst), dst);
    assert.deepEqual([...dst], [0x3c00, 0xc000]);
    const values = new Float32Array(2);
    assert.equal(decodeBfloat16(new Uint16Array([0x3f80, 0xc000]), values), values);
    assert.deepEqual([...values], [1, -2]);
  });
});

describe('cross-check against the runtime Float16Array', () => {
  const Float16ArrayCtor = (globalThis as { Float16Array?: new (n: number | ArrayLike<number>) => ArrayLike<number> & { buffer: ArrayBuffer } }).Float16Array;
  test('decode and encode agree with Float16Array', (t) => {
    if (Float16ArrayCtor === undefined) {
      t.skip(`this runtime (Node ${process.versions.node}) has no global Float16Array`);
      return;
    }
    const native = new Float16ArrayCtor(65536);
    new Uint16Array(native.buffer).set(ALL_BITS);
    const ours = decodeFloat16(ALL_BITS);
    for (let h = 0; h < 65536; h++) {
      if (Number.isNaN(ours[h])) assert.ok(Number.isNaN(native[h]));
      else assert.ok(Object.is(ours[h], native[h]), `bits ${h.toString(16)}`);
    }
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const src = Array.from({ length: 50000 }, () => (random() - 0.5) * 2 ** Math.floor(random() * 50 - 30));
    const nativeBits = new Uint16Array(new Float16ArrayCtor(src).buffer);
    assert.deepEqual([...encodeFloat16(src)], [...nativeBits]);
  });
});
