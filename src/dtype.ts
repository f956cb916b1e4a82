// Element types of dfss tensors and exact conversions between JavaScript numbers and the 16-bit formats.
//
// Every conversion to float16 or bfloat16 rounds the input number (a float64) directly to the target format
// with one round-to-nearest-even step. It does not go through float32 first: that would round twice and can
// land on the wrong neighbour (for example 1 + 2^-11 + 2^-40 is above the float16 halfway point between 1 and
// 1 + 2^-10, but its float32 value 1 + 2^-11 is exactly on it and would round down to 1). For float32 inputs
// the two are the same, since every float32 is a float64. Special values:
//   - NaN stays NaN with its sign, made quiet, keeping the upper payload bits that fit;
//   - +-Infinity stays +-Infinity, and finite values beyond the largest finite value round to +-Infinity as
//     round-to-nearest-even prescribes (float16: |x| >= 65520; bfloat16: |x| >= (2 - 2^-8) * 2^127);
//   - results below the smallest normal become subnormals (or a signed zero), also rounded to nearest even;
//   - the sign of zero is kept.
// Scalar functions pass through JavaScript numbers, so a NaN's payload and sign are whatever the engine keeps;
// the bulk functions on typed arrays work on the stored bits and keep them exactly.

import { InvalidArgumentError } from './errors.js';

export type DType = 'float16' | 'bfloat16' | 'float32';

export const DTYPES: readonly DType[] = Object.freeze(['float16', 'bfloat16', 'float32'] as const);

export function isDType(x: unknown): x is DType {
  return x === 'float16' || x === 'bfloat16' || x === 'float32';
}

/** Bytes of one element as stored on the device (float16 and bfloat16 are 16-bit). */
export function bytesPerElement(dtype: DType): number {
  switch (dtype) {
    case 'float16':
    case 'bfloat16':
      return 2;
    case 'float32':
      return 4;
    default:
      throw new InvalidArgumentError('dtype', `one of ${DTYPES.join(', ')}`, dtype);
  }
}

// ----- bit access ---------------------------------------------------------------------------------------

const scratchF64 = new Float64Array(1);
const scratchU32 = new Uint32Array(scratchF64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const HI = LITTLE_ENDIAN ? 1 : 0;
const LO = LITTLE_ENDIAN ? 0 : 1;

// ----- float16 ------------------------------------------------------------------------------------------

/** float16 bits of a float32 given by its bits (round to nearest even). */
function float32BitsToFloat16Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const abs = u & 0x7fffffff;
  if (abs >= 0x7f800000) {
    if (abs === 0x7f800000) return sign | 0x7c00;
    return sign | 0x7e00 | ((abs >>> 13) & 0x3ff);
  }
  if (abs >= 0x477ff000) return sign | 0x7c00; // >= 65520: rounds past 65504
  if (abs >= 0x38800000) {
    // normal: rebias the exponent (127 -> 15) and keep 10 mantissa bits
    const base = (abs - 0x38000000) >>> 13;
    const rest = abs & 0x1fff;
    return sign | (base + (rest > 0x1000 || (rest === 0x1000 && (base & 1) === 1) ? 1 : 0));
  }
  if (abs <= 0x33000000) return sign; // <= 2^-25: halfway to the smallest subnormal or below, rounds to 0
  // subnormal: units of 2^-24
  const exponent = abs >>> 23;
  const mantissa = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - exponent;
  const units = mantissa >>> shift;
  const rest = mantissa & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (units + (rest > half || (rest === half && (units & 1) === 1) ? 1 : 0));
}

/** float16 bits of a float64 given by its two 32-bit halves (round to nearest even, one rounding). */
function float64BitsToFloat16Bits(hi: number, lo: number): number {
  const sign = (hi >>> 16) & 0x8000;
  const abs = hi & 0x7fffffff;
  if (abs >= 0x7ff00000) {
    if (abs === 0x7ff00000 && lo === 0) return sign | 0x7c00;
    return sign | 0x7e00 | ((abs >>> 10) & 0x3ff);
  }
  if (abs >= 0x40effe00) return sign | 0x7c00; // >= 65520
  if (abs >= 0x3f100000) {
    // normal: exponent 1023 -> 15, 10 mantissa bits from the high word; the low word is sticky
    const base = (abs - 0x3f000000) >>> 10;
    const rest = abs & 0x3ff;
    const up = rest > 0x200 || (rest === 0x200 && (lo !== 0 || (base & 1) === 1));
    return sign | (base + (up ? 1 : 0));
  }
  if (abs < 0x3e600000 || (abs === 0x3e600000 && lo === 0)) return sign; // <= 2^-25
  const exponent = abs >>> 20;
  const mantissa = (abs & 0xfffff) | 0x100000;
  const shift = 1019 - exponent; // 11 .. 21
  const units = mantissa >>> shift;
  const rest = mantissa & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  const up = rest > half || (rest === half && (lo !== 0 || (units & 1) === 1));
  return sign | (units + (up ? 1 : 0));
}

let float16Table: Float32Array | null = null;
let float16TableBits: Uint32Array | null = null;

/** The float32 value of every float16 bit pattern, built on first use. */
function float16Values(): Float32Array {
  if (float16Table !== null) return float16Table;
  const values = new Float32Array(65536);
  const bits = new Uint32Array(values.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = ((h & 0x8000) << 16) >>> 0;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0x1f) {
      bits[h] = (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
    } else if (exponent === 0) {
      // zero or subnormal: mantissa * 2^-24 is exact in float32
      const magnitude = mantissa * 2 ** -24;
      values[h] = sign !== 0 ? -magnitude : magnitude;
    } else {
      bits[h] = (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
    }
  }
  float16Table = values;
  float16TableBits = bits;
  return values;
}

/**
 * float16 bits (0 .. 65535) of the number x, rounded to nearest even directly from its float64 value.
 * The name says float32 because that is the usual source; any number is converted exactly as described at
 * the top of this file.
 */
export function float32ToFloat16Bits(x: number): number {
  scratchF64[0] = x;
  return float64BitsToFloat16Bits(scratchU32[HI], scratchU32[LO]);
}

/** The value of float16 bits (an integer 0 .. 65535); exact. */
export function float16BitsToFloat32(bits: number): number {
  checkBits(bits);
  return float16Values()[bits];
}

/** x rounded to the nearest float16 value (ties to even). */
export function roundToFloat16(x: number): number {
  scratchF64[0] = x;
  return float16Values()[float64BitsToFloat16Bits(scratchU32[HI], scratchU32[LO])];
}

/** float16 bits of every element of src (dst, if given, must have src's length). */
export function encodeFloat16(src: ArrayLike<number>, dst?: Uint16Array): Uint16Array {
  const out = outputArray(dst, src.length, 'dst', Uint16Array);
  if (src instanceof Float32Array) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < bits.length; i++) out[i] = float32BitsToFloat16Bits(bits[i]);
  } else {
    for (let i = 0; i < src.length; i++) {
      scratchF64[0] = src[i];
      out[i] = float64BitsToFloat16Bits(scratchU32[HI], scratchU32[LO]);
    }
  }
  return out;
}

/** float32 values of float16 bits (dst, if given, must have bits' length); NaN bits are kept exactly. */
export function decodeFloat16(bits: Uint16Array, dst?: Float32Array): Float32Array {
  const out = outputArray(dst, bits.length, 'dst', Float32Array);
  float16Values();
  const table = float16TableBits as Uint32Array;
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) outBits[i] = table[bits[i]];
  return out;
}

// ----- bfloat16 -----------------------------------------------------------------------------------------

/** bfloat16 bits of a float32 given by its bits (round to nearest even). */
function float32BitsToBfloat16Bits(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  // Adding 0x7fff plus the lowest kept bit rounds to nearest even; a carry moves into the exponent, which
  // also turns values past the largest finite bfloat16 into infinity. u is unsigned, so the sum fits 32 bits.
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bfloat16 bits of a float64 given by its two 32-bit halves (round to nearest even, one rounding). */
function float64BitsToBfloat16Bits(hi: number, lo: number): number {
  const sign = (hi >>> 16) & 0x8000;
  const abs = hi & 0x7fffffff;
  if (abs >= 0x7ff00000) {
    if (abs === 0x7ff00000 && lo === 0) return sign | 0x7f80;
    return sign | 0x7fc0 | ((abs >>> 13) & 0x7f);
  }
  if (abs >= 0x47eff000) return sign | 0x7f80; // >= (2 - 2^-8) * 2^127
  if (abs >= 0x38100000) {
    // normal (>= 2^-126): exponent 1023 -> 127, 7 mantissa bits from the high word; the low word is sticky
    const base = (abs - 0x38000000) >>> 13;
    const rest = abs & 0x1fff;
    const up = rest > 0x1000 || (rest === 0x1000 && (lo !== 0 || (base & 1) === 1));
    return sign | (base + (up ? 1 : 0));
  }
  if (abs < 0x37900000 || (abs === 0x37900000 && lo === 0)) return sign; // <= 2^-134
  // subnormal: units of 2^-133
  const exponent = abs >>> 20;
  const mantissa = (abs & 0xfffff) | 0x100000;
  const shift = 910 - exponent; // 14 .. 21
  const units = mantissa >>> shift;
  const rest = mantissa & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  const up = rest > half || (rest === half && (lo !== 0 || (units & 1) === 1));
  return sign | (units + (up ? 1 : 0));
}

const bfloat16Scratch = new Float32Array(1);
const bfloat16ScratchBits = new Uint32Array(bfloat16Scratch.buffer);

/** bfloat16 bits (0 .. 65535) of the number x, rounded to nearest even directly from its float64 value. */
export function float32ToBfloat16Bits(x: number): number {
  scratchF64[0] = x;
  return float64BitsToBfloat16Bits(scratchU32[HI], scratchU32[LO]);
}

/** The value of bfloat16 bits (an integer 0 .. 65535); exact. */
export function bfloat16BitsToFloat32(bits: number): number {
  checkBits(bits);
  bfloat16ScratchBits[0] = bits << 16;
  return bfloat16Scratch[0];
}

/** x rounded to the nearest bfloat16 value (ties to even). */
export function roundToBfloat16(x: number): number {
  scratchF64[0] = x;
  bfloat16ScratchBits[0] = float64BitsToBfloat16Bits(scratchU32[HI], scratchU32[LO]) << 16;
  return bfloat16Scratch[0];
}

/** bfloat16 bits of every element of src (dst, if given, must have src's length). */
export function encodeBfloat16(src: ArrayLike<number>, dst?: Uint16Array): Uint16Array {
  const out = outputArray(dst, src.length, 'dst', Uint16Array);
  if (src instanceof Float32Array) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < bits.length; i++) out[i] = float32BitsToBfloat16Bits(bits[i]);
  } else {
    for (let i = 0; i < src.length; i++) {
      scratchF64[0] = src[i];
      out[i] = float64BitsToBfloat16Bits(scratchU32[HI], scratchU32[LO]);
    }
  }
  return out;
}

/** float32 values of bfloat16 bits (dst, if given, must have bits' length); NaN bits are kept exactly. */
export function decodeBfloat16(bits: Uint16Array, dst?: Float32Array): Float32Array {
  const out = outputArray(dst, bits.length, 'dst', Float32Array);
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  // a bfloat16 is the upper half of a float32
  for (let i = 0; i < bits.length; i++) outBits[i] = bits[i] << 16;
  return out;
}

// ----- any dtype ----------------------------------------------------------------------------------------

/** x after a round trip through dtype: float16 / bfloat16 round to nearest even, float32 is Math.fround. */
export function roundToDType(x: number, dtype: DType): number {
  return rounderFor(dtype)(x);
}

/** The function that rounds a number to dtype; hot loops pick it once and call it directly. */
export function rounderFor(dtype: DType): (x: number) => number {
  switch (dtype) {
    case 'float16':
      return roundToFloat16;
    case 'bfloat16':
      return roundToBfloat16;
    case 'float32':
      return Math.fround;
    default:
      throw new InvalidArgumentError('dtype', `one of ${DTYPES.join(', ')}`, dtype);
  }
}

/** Every element of src rounded to dtype, as float32 values (dst, if given, must have src's length). */
export function roundArrayToDType(src: ArrayLike<number>, dtype: DType, dst?: Float32Array): Float32Array {
  const out = outputArray(dst, src.length, 'dst', Float32Array);
  switch (dtype) {
    case 'float16':
      return decodeFloat16(encodeFloat16(src), out);
    case 'bfloat16':
      return decodeBfloat16(encodeBfloat16(src), out);
    case 'float32':
      for (let i = 0; i < src.length; i++) out[i] = src[i];
      return out;
    default:
      throw new InvalidArgumentError('dtype', `one of ${DTYPES.join(', ')}`, dtype);
  }
}

// ----- argument checks ----------------------------------------------------------------------------------

function checkBits(bits: number): void {
  if (!(Number.isInteger(bits) && bits >= 0 && bits <= 0xffff)) {
    throw new InvalidArgumentError('bits', 'an integer 0 .. 65535', bits);
  }
}

function outputArray<T extends Uint16Array | Float32Array>(
  dst: T | undefined,
  length: number,
  argument: string,
  make: new (length: number) => T,
): T {
  if (dst === undefined) return new make(length);
  if (!(dst instanceof make) || dst.length !== length) {
    throw new InvalidArgumentError(argument, `a ${make.name} of length ${length}`, dst);
  }
  return dst;
}
