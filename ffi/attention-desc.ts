// A dfss_attention_desc in native memory, written field by field from JavaScript numbers and passed to the entry
// points as a pointer. koffi would otherwise marshal a JS object of 20 fields (four arrays of int64 among them) on
// every call, which costs several microseconds; writing the fields here costs a fraction of one, and the call
// then passes one pointer. The per-batch lengths are copied into the same native memory, right after the
// struct, so the descriptor's seqlens pointers address memory that stays put.
//
// One instance is one descriptor: write it, make the call, and the C side has read what it needs by the time
// the call returns (dfss.h: the lengths are host arrays read during the call). It must not be rewritten while
// an async call that was given its pointer is in flight.
import koffi from 'koffi';

import { InvalidArgumentError } from '../src/errors.js';
import type { AttentionGeometry } from '../src/problem.js';
import type { DfssLibrary } from './dfss.js';

/** The pointer that stands for a dfss_attention_desc written by NativeAttentionDesc (koffi's native pointer). */
export type AttentionDescPointer = { readonly __nativeAttentionDesc: never };

/** Four element strides (batch, head, row, column). */
export type StrideValues = ArrayLike<number>;

/** The descriptor's sizes, strides, scale and lengths (field meanings: cuda/include/dfss.h). */
export type AttentionDescShape = AttentionGeometry<StrideValues>;

const TWO_TO_32 = 2 ** 32;
/** Index of the low and high 32-bit halves of a little- or big-endian int64 in an Int32Array. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LOW = LITTLE_ENDIAN ? 0 : 1;
const HIGH = 1 - LOW;

/** The fields, in 32-bit words from the struct's start, read once from koffi's layout of the header's struct. */
interface Layout {
  readonly bytes: number;
  readonly structSize: number;
  readonly dtype: number;
  readonly pattern: number;
  readonly causal: number;
  readonly sizes: readonly number[]; // batch, heads_q, heads_kv, seq_q, seq_k, head_dim, head_dim_v (int64 each)
  readonly strides: readonly [number, number, number, number]; // q, k, v, out: int64[4] each
  readonly scale: number;
  readonly reserved0: number;
  readonly seqlensQ: number;
  readonly seqlensK: number;
  readonly stream: number;
}

const SIZE_FIELDS = ['batch', 'heads_q', 'heads_kv', 'seq_q', 'seq_k', 'head_dim', 'head_dim_v'] as const;

function layoutOf(lib: DfssLibrary): Layout {
  const type = lib.types.dfss_attention_desc;
  const word = (field: string) => koffi.offsetof(type, field) / 4;
  const sizes = SIZE_FIELDS.map(word);
  return {
    bytes: koffi.sizeof(type),
    structSize: word('struct_size'),
    dtype: word('dtype'),
    pattern: word('pattern'),
    causal: word('causal'),
    sizes,
    strides: [word('q_strides'), word('k_strides'), word('v_strides'), word('out_strides')],
    scale: word('scale'),
    reserved0: word('reserved0'),
    seqlensQ: word('seqlens_q'),
    seqlensK: word('seqlens_k'),
    stream: word('stream'),
  };
}

export class NativeAttentionDesc {
  readonly #layout: Layout;
  /** koffi's handle of the native memory: the struct, then room for `#capacity` lengths of q and of k. */
  #memory: unknown = null;
  #address = 0n;
  #words = new Int32Array(0);
  #floats = new Float32Array(0);
  #capacity = -1;

  constructor(lib: DfssLibrary) {
    this.#layout = layoutOf(lib);
    this.#reserve(16);
  }

  /** What to pass for `const dfss_attention_desc *desc`. */
  get pointer(): AttentionDescPointer {
    return this.#memory as AttentionDescPointer;
  }

  /**
   * Writes every field: `dtype` and `pattern` are dfss_dtype / dfss_pattern codes, `stream` the stream of the
   * work (null: the legacy default stream). Sizes and strides must be safe integers (|value| < 2^53); the
   * TypeScript layer has validated them, and the library checks their ranges.
   */
  write(dtype: number, pattern: number, shape: AttentionDescShape, stream: bigint | null = null): AttentionDescPointer {
    const lengthsQ = shape.seqlensQ;
    const lengthsK = shape.seqlensK;
    const needed = Math.max(lengthsQ === null ? 0 : lengthsQ.length, lengthsK === null ? 0 : lengthsK.length);
    if (needed > this.#capacity) this.#reserve(Math.max(needed, 2 * this.#capacity));
    const layout = this.#layout;
    const words = this.#words;
    words[layout.structSize] = layout.bytes;
    words[layout.dtype] = dtype;
    words[layout.pattern] = pattern;
    words[layout.causal] = shape.causal ? 1 : 0;
    const sizes = layout.sizes;
    this.#int64(sizes[0], shape.batch, 'batch');
    this.#int64(sizes[1], shape.headsQ, 'heads_q');
    this.#int64(sizes[2], shape.headsKv, 'heads_kv');
    this.#int64(sizes[3], shape.seqQ, 'seq_q');
    this.#int64(sizes[4], shape.seqK, 'seq_k');
    this.#int64(sizes[5], shape.headDim, 'head_dim');
    this.#int64(sizes[6], shape.headDimV, 'head_dim_v');
    this.#strides(layout.strides[0], shape.qStrides, 'q_strides');
    this.#strides(layout.strides[1], shape.kStrides, 'k_strides');
    this.#strides(layout.strides[2], shape.vStrides, 'v_strides');
    this.#strides(layout.strides[3], shape.outStrides, 'out_strides');
    this.#floats[layout.scale] = shape.scale;
    words[layout.reserved0] = 0;
    const lengths = layout.bytes / 4; // the lengths of q start right after the struct, those of k after them
    this.#lengths(layout.seqlensQ, lengthsQ, lengths);
    this.#lengths(layout.seqlensK, lengthsK, lengths + this.#capacity);
    this.#address64(layout.stream, stream ?? 0n);
    return this.#memory as AttentionDescPointer;
  }

  /** Makes room for `count` lengths of each kind (the old memory, if any, is freed). */
  #reserve(count: number): void {
    const bytes = this.#layout.bytes + 2 * 4 * count;
    const memory = koffi.alloc('uint8_t', bytes);
    const view = koffi.view(memory, bytes);
    if (this.#memory !== null) koffi.free(this.#memory);
    this.#memory = memory;
    this.#address = koffi.address(memory);
    this.#words = new Int32Array(view);
    this.#floats = new Float32Array(view);
    this.#capacity = count;
  }

  #int64(word: number, value: number, field: string): void {
    if (!Number.isSafeInteger(value)) throw new InvalidArgumentError(`desc.${field}`, 'a safe integer (|value| < 2^53)', value);
    const high = Math.floor(value / TWO_TO_32);
    this.#words[word + LOW] = value - high * TWO_TO_32; // stored modulo 2^32: the low half's bits
    this.#words[word + HIGH] = high;
  }

  #strides(word: number, strides: StrideValues, field: string): void {
    if (strides.length !== 4) throw new InvalidArgumentError(`desc.${field}`, '4 strides (batch, head, row, column)', strides.length);
    for (let i = 0; i < 4; i++) this.#int64(word + 2 * i, strides[i], field);
  }

  /** Copies `values` to the native lengths at word `at` and points the descriptor's field at them (NULL: null). */
  #lengths(field: number, values: Int32Array | null, at: number): void {
    if (values === null) {
      this.#address64(field, 0n);
      return;
    }
    this.#words.set(values, at);
    this.#address64(field, this.#address + BigInt(at * 4));
  }

  #address64(word: number, address: bigint): void {
    if (address === 0n) {
      this.#words[word + LOW] = 0;
      this.#words[word + HIGH] = 0;
      return;
    }
    this.#words[word + LOW] = Number(BigInt.asUintN(32, address));
    this.#words[word + HIGH] = Number(BigInt.asUintN(32, address >> 32n));
  }
}
