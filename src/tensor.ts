// Tensor: a typed view (shape, strides, element type) of memory on the host or on a CUDA device.
//
// Several tensors may view one Storage (transpose() makes such views); dispose() on any of them frees the
// storage, and every view of it is then refused. Host storage holds the raw elements: float16 and bfloat16 as
// Uint16Array bits, float32 as Float32Array, uint32 (compressed-layout metadata) as Uint32Array. Device storage
// comes from the cache of device blocks (src/cuda/block-cache.ts): disposing it gives its block back for the
// next tensor of that size, and releaseCachedDeviceMemory() returns the cached blocks to the device.
import { DisposedTensorError, InvalidArgumentError } from './errors.js';
import {
  type DType,
  bytesPerElement,
  decodeBfloat16,
  decodeFloat16,
  encodeBfloat16,
  encodeFloat16,
  isDType,
} from './dtype.js';
import { getDeviceMemory, type DeviceBuffer } from './cuda/runtime.js';

export type Device = 'cpu' | 'cuda';
/** Element types a tensor can hold: the three compute dtypes, and uint32 for compressed-layout metadata. */
export type ElementType = DType | 'uint32';
export type HostElements = Uint16Array | Float32Array | Uint32Array;

type Float16ArrayLike = ArrayLike<number> & { readonly [Symbol.toStringTag]: 'Float16Array'; readonly buffer: ArrayBufferLike };
const Float16ArrayCtor: (new (buffer: ArrayBufferLike, offset?: number, length?: number) => Float16ArrayLike) | undefined =
  (globalThis as { Float16Array?: new (buffer: ArrayBufferLike, offset?: number, length?: number) => Float16ArrayLike })
    .Float16Array;

function isFloat16Array(x: unknown): x is Float16ArrayLike {
  return Float16ArrayCtor !== undefined && x instanceof Float16ArrayCtor;
}

function elementBytes(type: ElementType): number {
  return type === 'uint32' ? 4 : bytesPerElement(type);
}

function allocateHost(type: ElementType, length: number): HostElements {
  if (type === 'float32') return new Float32Array(length);
  if (type === 'uint32') return new Uint32Array(length);
  return new Uint16Array(length);
}

/** Row-major strides of a shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

function checkShape(shape: readonly number[], argument: string): void {
  if (!Array.isArray(shape) || shape.length === 0)
    throw new InvalidArgumentError(argument, 'a non-empty array of dimensions', shape);
  for (const d of shape)
    if (!Number.isSafeInteger(d) || d < 1)
      throw new InvalidArgumentError(argument, 'every dimension an integer >= 1', shape);
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Registry that gives back the device memory of storages the program forgot to dispose. */
const leakedStorage = new FinalizationRegistry<DeviceBuffer>((buffer) => buffer.release());

/** The memory behind one or more tensors. */
export class Storage {
  readonly device: Device;
  readonly type: ElementType;
  /** Number of elements. */
  readonly length: number;
  #host: HostElements | null;
  #buffer: DeviceBuffer | null;
  #disposed = false;

  private constructor(device: Device, type: ElementType, length: number, host: HostElements | null, buffer: DeviceBuffer | null) {
    this.device = device;
    this.type = type;
    this.length = length;
    this.#host = host;
    this.#buffer = buffer;
    if (buffer) leakedStorage.register(this, buffer, this);
  }

  static host(type: ElementType, elements: HostElements): Storage {
    return new Storage('cpu', type, elements.length, elements, null);
  }

  static device(type: ElementType, length: number): Storage {
    const buffer = getDeviceMemory().allocate(length * elementBytes(type));
    return new Storage('cuda', type, length, null, buffer);
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  get bytes(): number {
    return this.length * elementBytes(this.type);
  }

  /** Host elements; only for host storage. */
  hostElements(argument: string): HostElements {
    if (this.#disposed) throw new DisposedTensorError(argument);
    if (!this.#host) throw new InvalidArgumentError(argument, 'a host (cpu) tensor', 'a cuda tensor');
    return this.#host;
  }

  /** Device buffer; only for device storage. */
  deviceBuffer(argument: string): DeviceBuffer {
    if (this.#disposed) throw new DisposedTensorError(argument);
    if (!this.#buffer) throw new InvalidArgumentError(argument, 'a cuda tensor', 'a host (cpu) tensor');
    return this.#buffer;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#host = null;
    if (this.#buffer) {
      leakedStorage.unregister(this);
      this.#buffer.release();
      this.#buffer = null;
    }
  }
}

export interface FromArrayOptions {
  /**
   * Element type of the tensor. Default: float16 for Float16Array and Uint16Array data, uint32 for Uint32Array
   * data, float32 otherwise.
   */
  dtype?: ElementType;
}

export class Tensor {
  /**
   * Marks tensors made by this class, so that objects posing as tensors (Object.create(Tensor.prototype)) are
   * refused. A private field rather than a WeakSet of tensors: the collector pays for every entry of a WeakSet,
   * microseconds per tensor when a tensor is made per call.
   */
  readonly #genuine = true;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly dtype: ElementType;
  readonly storage: Storage;

  /** Use Tensor.fromArray, Tensor.empty or the library's operations to make tensors. */
  constructor(storage: Storage, shape: readonly number[], strides?: readonly number[]) {
    checkShape(shape, 'shape');
    this.storage = storage;
    this.dtype = storage.type;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    if (this.strides.length !== this.shape.length)
      throw new InvalidArgumentError('strides', `${this.shape.length} strides, one per dimension`, strides);
    let span = 1;
    for (let i = 0; i < this.shape.length; i++) {
      const s = this.strides[i];
      if (!Number.isSafeInteger(s) || s < 0) throw new InvalidArgumentError('strides', 'non-negative integers', strides);
      span += (this.shape[i] - 1) * s;
    }
    if (span > storage.length)
      throw new InvalidArgumentError('strides', `views within the storage of ${storage.length} elements`, strides);
  }

  /**
   * A host tensor holding `data` in row-major order. Numbers (Float32Array, Float64Array, number[],
   * Float16Array) are rounded to `dtype` to nearest even; a Uint16Array is taken as raw float16 or bfloat16
   * bits (dtype required) and a Uint32Array as raw uint32 words. The data is copied, never kept.
   */
  static fromArray(
    data: Float32Array | Float64Array | readonly number[] | Uint16Array | Uint32Array | Float16ArrayLike,
    shape: readonly number[],
    options: FromArrayOptions = {},
  ): Tensor {
    checkShape(shape, 'shape');
    const count = elementCount(shape);
    if (data === null || typeof data !== 'object' || typeof (data as ArrayLike<number>).length !== 'number')
      throw new InvalidArgumentError('data', 'a typed array or an array of numbers', data);
    if (data.length !== count)
      throw new InvalidArgumentError('data', `${count} elements for shape [${shape.join(', ')}]`, `${data.length} elements`);
    const f16 = isFloat16Array(data);
    const type: ElementType =
      options.dtype ?? (f16 ? 'float16' : data instanceof Uint32Array ? 'uint32' : data instanceof Uint16Array ? 'float16' : 'float32');
    if (options.dtype !== undefined && !isDType(options.dtype) && options.dtype !== 'uint32')
      throw new InvalidArgumentError('options.dtype', "'float16', 'bfloat16' or 'float32'", options.dtype);
    let elements: HostElements;
    if (data instanceof Uint32Array) {
      if (type !== 'uint32') throw new InvalidArgumentError('data', `numbers or bits for ${type}, not a Uint32Array`);
      elements = data.slice();
    } else if (type === 'uint32') {
      throw new InvalidArgumentError('data', 'a Uint32Array for uint32 tensors', data);
    } else if (data instanceof Uint16Array && !f16) {
      if (type === 'float32')
        throw new InvalidArgumentError('options.dtype', "'float16' or 'bfloat16' for Uint16Array bits", type);
      elements = data.slice();
    } else if (f16 && type === 'float16') {
      elements = new Uint16Array(new Uint16Array(data.buffer, (data as unknown as Uint16Array).byteOffset, count));
    } else if (type === 'float32') {
      elements = Float32Array.from(data as ArrayLike<number>);
    } else {
      elements = type === 'float16' ? encodeFloat16(data as ArrayLike<number>) : encodeBfloat16(data as ArrayLike<number>);
    }
    return new Tensor(Storage.host(type, elements), shape);
  }

  /** An uninitialized tensor (zeros on the host) in row-major order. */
  static empty(shape: readonly number[], dtype: ElementType = 'float32', device: Device = 'cpu'): Tensor {
    checkShape(shape, 'shape');
    if (!isDType(dtype) && dtype !== 'uint32')
      throw new InvalidArgumentError('dtype', "'float16', 'bfloat16', 'float32' or 'uint32'", dtype);
    const count = elementCount(shape);
    if (device === 'cpu') return new Tensor(Storage.host(dtype, allocateHost(dtype, count)), shape);
    if (device === 'cuda') return new Tensor(Storage.device(dtype, count), shape);
    throw new InvalidArgumentError('device', "'cpu' or 'cuda'", device);
  }

  /** Refuses objects that are not live tensors of this library; `argument` names the parameter in errors. */
  static check(x: unknown, argument: string): Tensor {
    if (!(x instanceof Tensor) || !(#genuine in x)) throw new InvalidArgumentError(argument, 'a dfss Tensor', x);
    if (x.storage.disposed) throw new DisposedTensorError(argument);
    return x;
  }

  get device(): Device {
    return this.storage.device;
  }

  get disposed(): boolean {
    return this.storage.disposed;
  }

  get size(): number {
    return elementCount(this.shape);
  }

  get isContiguous(): boolean {
    const c = contiguousStrides(this.shape);
    return this.shape.every((d, i) => d === 1 || this.strides[i] === c[i]);
  }

  /** A view with dimensions a and b swapped (no copy), e.g. [B, N, H, D] -> [B, H, N, D]. */
  transpose(a: number, b: number): Tensor {
    this.#live('tensor');
    const rank = this.shape.length;
    for (const [name, d] of [['a', a], ['b', b]] as const)
      if (!Number.isInteger(d) || d < 0 || d >= rank) throw new InvalidArgumentError(name, `a dimension in 0..${rank - 1}`, d);
    const shape = [...this.shape];
    const strides = [...this.strides];
    [shape[a], shape[b]] = [shape[b], shape[a]];
    [strides[a], strides[b]] = [strides[b], strides[a]];
    return new Tensor(this.storage, shape, strides);
  }

  /** A copy of this tensor on `device` (its storage copied whole, so views keep their strides). */
  async to(device: Device): Promise<Tensor> {
    this.#live('tensor');
    if (device !== 'cpu' && device !== 'cuda') throw new InvalidArgumentError('device', "'cpu' or 'cuda'", device);
    const storage = this.storage;
    if (device === storage.device) {
      if (device === 'cpu') return new Tensor(Storage.host(storage.type, storage.hostElements('tensor').slice()), this.shape, this.strides);
      const copy = Storage.device(storage.type, storage.length);
      await getDeviceMemory().copyDeviceToDevice(copy.deviceBuffer('copy'), storage.deviceBuffer('tensor'), storage.bytes);
      return new Tensor(copy, this.shape, this.strides);
    }
    if (device === 'cuda') {
      const copy = Storage.device(storage.type, storage.length);
      try {
        await getDeviceMemory().upload(copy.deviceBuffer('copy'), storage.hostElements('tensor'));
      } catch (e) {
        copy.dispose();
        throw e;
      }
      return new Tensor(copy, this.shape, this.strides);
    }
    const host = allocateHost(storage.type, storage.length);
    await getDeviceMemory().download(host, storage.deviceBuffer('tensor'));
    return new Tensor(Storage.host(storage.type, host), this.shape, this.strides);
  }

  /** The raw elements in row-major order, on the host: Uint16Array bits for float16/bfloat16. */
  async toRawArray(): Promise<HostElements> {
    this.#live('tensor');
    const host = this.device === 'cpu' ? this : await this.to('cpu');
    try {
      return gather(host.storage.hostElements('tensor'), this.shape, this.strides);
    } finally {
      if (host !== this) host.dispose();
    }
  }

  /** The values as float32 in row-major order (exact for every dtype but uint32 past 2^24). */
  async toFloat32Array(): Promise<Float32Array> {
    return toFloat32(this.dtype, await this.toRawArray());
  }

  /** float16 data as a Float16Array where the runtime has one, else as Uint16Array bits; other dtypes as toRawArray. */
  async toTypedArray(): Promise<HostElements | Float16ArrayLike> {
    const raw = await this.toRawArray();
    if (this.dtype === 'float16' && Float16ArrayCtor) return new Float16ArrayCtor(raw.buffer, raw.byteOffset, raw.length);
    return raw;
  }

  dispose(): void {
    this.storage.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}], ${this.device}${this.disposed ? ', disposed' : ''})`;
  }

  #live(argument: string): void {
    if (this.storage.disposed) throw new DisposedTensorError(argument);
  }
}

/** Decodes raw host elements of `type` into float32 values (a fresh array, same order). */
export function toFloat32(type: ElementType, raw: HostElements): Float32Array {
  if (type === 'float16') return decodeFloat16(raw as Uint16Array);
  if (type === 'bfloat16') return decodeBfloat16(raw as Uint16Array);
  if (type === 'float32') return (raw as Float32Array).slice();
  return Float32Array.from(raw);
}

/** Encodes float32 values into raw host elements of a compute dtype. */
export function fromFloat32(type: DType, values: Float32Array): HostElements {
  if (type === 'float16') return encodeFloat16(values);
  if (type === 'bfloat16') return encodeBfloat16(values);
  return values;
}

/** Copies a strided view into a new row-major array of the same element kind. */
function gather(src: HostElements, shape: readonly number[], strides: readonly number[]): HostElements {
  const count = elementCount(shape);
  const out = new (src.constructor as new (n: number) => HostElements)(count);
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  let offset = 0;
  for (let n = 0; n < count; n++) {
    out[n] = src[offset];
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      offset += strides[d];
      if (index[d] < shape[d]) break;
      offset -= index[d] * strides[d];
      index[d] = 0;
    }
  }
  return out;
}

