// The koffi bindings of libdfss (cuda/include/dfss.h) for Node.js and Bun. Nothing outside ffi/ knows that a
// C library exists: the CUDA backend imports this module and nothing else native.
//
// Conventions of the bindings:
// - Addresses (device memory, streams, host pointers) are bigints, as koffi passes `void *`; null is NULL.
// - A host buffer (any TypedArray, DataView, Buffer or ArrayBuffer) can be passed where the C side takes
//   a `void *` it reads or writes: koffi passes the buffer's own memory, without copying.
// - Out-parameters marked `_Out_` in ffi/dfss-header.ts take a one-element array (`[0]`, `[null]`) or, for a
//   struct, an object (`{}`), which koffi fills in when the call returns.
// - Sync functions return the dfss_status; `check(status, what)` turns a failure into a NativeError with
//   the library's message, which must happen on the thread that made the call (the message is
//   thread-local): call it right after the sync call it checks.
// - `async.<name>` runs the call on a koffi worker thread and settles when it returns: it resolves on
//   success and rejects with a NativeError that carries the failing call's message (read by repeating the
//   failed call once on this thread: see bind()). Async calls are not ordered with respect to one another:
//   await a call before issuing one that depends on it. Arguments are kept alive until the call settles;
//   host buffers must not be touched until then. The round trip through the worker costs tens of
//   microseconds: calls that only enqueue work on a stream (the attention entry points) are cheaper sync.
// - A descriptor argument takes a JS object (koffi marshals its 20 fields on every call, several
//   microseconds) or the pointer of a NativeAttentionDesc (ffi/attention-desc.ts), written in place.
import koffi, { type LibraryHandle, type TypeObject } from 'koffi';

import { LibraryNotFoundError, NativeError } from '../src/errors.js';
import type { AttentionDescPointer } from './attention-desc.js';
import {
  DFSS_ABI_VERSION,
  DFSS_ENUMS,
  DFSS_PROTOTYPES,
  DFSS_STRUCTS,
  DFSS_TYPEDEFS,
} from './dfss-header.js';
import { LIBRARY_ENV, locateLibrary } from './library-path.js';

export {
  DFSS_ABI_VERSION,
  DFSS_VERSION_MAJOR,
  DFSS_VERSION_MINOR,
  DFSS_VERSION_PATCH,
} from './dfss-header.js';

export const {
  DFSS_SUCCESS,
  DFSS_ERROR_INVALID_ARGUMENT,
  DFSS_ERROR_NO_DEVICE,
  DFSS_ERROR_UNSUPPORTED,
  DFSS_ERROR_OUT_OF_MEMORY,
  DFSS_ERROR_CUDA,
  DFSS_ERROR_INTERNAL,
} = DFSS_ENUMS.dfss_status;
export const { DFSS_DTYPE_FLOAT16, DFSS_DTYPE_BFLOAT16, DFSS_DTYPE_FLOAT32 } = DFSS_ENUMS.dfss_dtype;
export const { DFSS_PATTERN_DENSE, DFSS_PATTERN_1_2, DFSS_PATTERN_2_4 } = DFSS_ENUMS.dfss_pattern;
export const { DFSS_MEMCPY_HOST_TO_DEVICE, DFSS_MEMCPY_DEVICE_TO_HOST, DFSS_MEMCPY_DEVICE_TO_DEVICE } =
  DFSS_ENUMS.dfss_memcpy_kind;

/** A dfss_status value. */
export type DfssStatus = number;
/** A device or host address as koffi passes pointers; null is NULL. */
export type Address = bigint | null;
/** Host memory passed in place of a pointer: the C side reads or writes the buffer itself. */
export type HostMemory = ArrayBufferView | ArrayBuffer;
/** Anything a `void *` argument takes. */
export type Memory = Address | HostMemory;
/** A uint64_t / int64_t argument. */
export type Size = number | bigint;
/** A one-element array that koffi fills with an out-parameter's value. */
export type Out<T> = [T];

/** dfss_device_info as koffi decodes it. */
export interface DeviceInfo {
  name: string;
  compute_major: number;
  compute_minor: number;
  multiprocessor_count: number;
  sparse_tensor_cores: number;
  /** A bigint only above 2^53 bytes. */
  total_memory_bytes: number | bigint;
  free_memory_bytes: number | bigint;
}

/** Four element strides (batch, head, row, column); dfss_attention_desc_init fills them as a BigInt64Array. */
export type Strides = BigInt64Array | readonly Size[];

/** dfss_attention_desc as koffi encodes and decodes it (field meanings: cuda/include/dfss.h). */
export interface AttentionDesc {
  struct_size: number;
  dtype: number;
  pattern: number;
  causal: number;
  batch: Size;
  heads_q: Size;
  heads_kv: Size;
  seq_q: Size;
  seq_k: Size;
  head_dim: Size;
  head_dim_v: Size;
  q_strides: Strides;
  k_strides: Strides;
  v_strides: Strides;
  out_strides: Strides;
  scale: number;
  reserved0: number;
  /** Host array [B], or null for no per-batch lengths. */
  seqlens_q: Int32Array | Address;
  seqlens_k: Int32Array | Address;
  stream: Address;
}

/** A `const dfss_attention_desc *` argument: an object koffi marshals, or a NativeAttentionDesc's pointer. */
export type AttentionDescArgument = AttentionDesc | AttentionDescPointer;

/** dfss_backward_strides as koffi encodes it: the layouts of dout, dq, dk and dv (cuda/include/dfss.h). */
export interface BackwardStrides {
  dout_strides: Strides;
  dq_strides: Strides;
  dk_strides: Strides;
  dv_strides: Strides;
}

/** Every function of dfss.h, with koffi's argument conventions. */
export interface DfssFunctions {
  dfss_status_string(status: DfssStatus): string;
  dfss_last_error_message(): string;
  dfss_version(): number;
  dfss_abi_version(): number;
  dfss_device_count(count: Out<number> | Int32Array): DfssStatus;
  /** Pass `{}`: koffi fills it on return. */
  dfss_device_get_info(device: number, info: Partial<DeviceInfo>): DfssStatus;
  dfss_device_set(device: number): DfssStatus;
  dfss_device_get(device: Out<number> | Int32Array): DfssStatus;
  dfss_device_synchronize(): DfssStatus;
  dfss_malloc(ptr: Out<Address>, bytes: Size): DfssStatus;
  dfss_free(ptr: Address): DfssStatus;
  dfss_memcpy(dst: Memory, src: Memory, bytes: Size, kind: number, stream: Address): DfssStatus;
  dfss_memset(dst: Address, value: number, bytes: Size, stream: Address): DfssStatus;
  dfss_stream_create(stream: Out<Address>): DfssStatus;
  dfss_stream_destroy(stream: Address): DfssStatus;
  dfss_stream_synchronize(stream: Address): DfssStatus;
  /** Pass `{}`: koffi fills it on return. */
  dfss_attention_desc_init(
    desc: Partial<AttentionDesc>,
    dtype: number,
    pattern: number,
    batch: Size,
    heads_q: Size,
    heads_kv: Size,
    seq_q: Size,
    seq_k: Size,
    head_dim: Size,
    head_dim_v: Size,
  ): DfssStatus;
  dfss_attention_forward(desc: AttentionDescArgument, q: Memory, k: Memory, v: Memory, out: Memory, lse: Memory): DfssStatus;
  dfss_compressed_row_size(
    desc: AttentionDescArgument,
    values_per_row: Out<number> | BigInt64Array,
    metadata_words_per_row: Out<number> | BigInt64Array,
  ): DfssStatus;
  dfss_sddmm_prune(desc: AttentionDescArgument, q: Memory, k: Memory, values: Memory, metadata: Memory): DfssStatus;
  dfss_compressed_softmax(desc: AttentionDescArgument, values_in: Memory, values_out: Memory, lse: Memory): DfssStatus;
  dfss_spmm(desc: AttentionDescArgument, probs: Memory, metadata: Memory, v: Memory, out: Memory): DfssStatus;
  dfss_attention_staged_workspace_size(desc: AttentionDescArgument, bytes: Out<number> | BigUint64Array): DfssStatus;
  dfss_attention_staged(
    desc: AttentionDescArgument,
    q: Memory,
    k: Memory,
    v: Memory,
    out: Memory,
    lse: Memory,
    workspace: Memory,
    workspace_bytes: Size,
  ): DfssStatus;
  dfss_attention_backward_workspace_size(desc: AttentionDescArgument, bytes: Out<number> | BigUint64Array): DfssStatus;
  /** strides: null gives dout, dq, dk, dv the strides of out, q, k, v in desc. */
  dfss_attention_backward(
    desc: AttentionDescArgument,
    strides: BackwardStrides | null,
    q: Memory,
    k: Memory,
    v: Memory,
    out: Memory,
    dout: Memory,
    lse: Memory,
    dq: Memory,
    dk: Memory,
    dv: Memory,
    workspace: Memory,
    workspace_bytes: Size,
  ): DfssStatus;
}

type FunctionName = keyof DfssFunctions;
/** The functions that return a dfss_status: each has an async variant. */
type StatusFunctionName = {
  [K in FunctionName]: ReturnType<DfssFunctions[K]> extends DfssStatus ? K : never;
}[FunctionName];

/** Async variants: resolve on success, reject with a NativeError carrying the call's own message. */
export type DfssAsyncFunctions = {
  [K in StatusFunctionName]: (...args: Parameters<DfssFunctions[K]>) => Promise<void>;
};

export interface DfssTypes {
  readonly dfss_attention_desc: TypeObject;
  readonly dfss_device_info: TypeObject;
  readonly dfss_backward_strides: TypeObject;
}

export interface DfssLibrary extends DfssFunctions {
  /** The file that was loaded. */
  readonly path: string;
  readonly async: DfssAsyncFunctions;
  readonly types: DfssTypes;
  /** The enum name of a status ("DFSS_ERROR_NO_DEVICE"). */
  statusName(status: DfssStatus): string;
  /**
   * Throws a NativeError for a failed status of a sync call made just before on this thread; `what` names
   * the operation for the message.
   */
  check(status: DfssStatus, what: string): void;
}

const statusNames = new Map<number, string>(
  Object.entries(DFSS_ENUMS.dfss_status).map(([name, value]) => [value, name]),
);

let types: DfssTypes | undefined;
let library: DfssLibrary | undefined;

/**
 * libdfss, loaded on first use from the first place ffi/library-path.ts finds it. Throws
 * LibraryNotFoundError, listing the paths tried, when it is missing, cannot be loaded, or was built from
 * another version of dfss.h.
 */
export function loadDfss(): DfssLibrary {
  library ??= openLibrary();
  return library;
}

function openLibrary(): DfssLibrary {
  const location = locateLibrary();
  const tried = location.candidates.join(', ');
  if (location.chosen === null) {
    throw new LibraryNotFoundError(
      `libdfss.so was not found (tried ${tried}); build it with \`make\` (needs nvcc) or set ${LIBRARY_ENV} to its path`,
    );
  }
  const path = location.chosen;
  let handle: LibraryHandle;
  try {
    handle = koffi.load(path);
  } catch (error) {
    throw new LibraryNotFoundError(`${path} could not be loaded (tried ${tried}): ${(error as Error).message}`);
  }
  try {
    return bind(handle, path);
  } catch (error) {
    handle.unload();
    throw error;
  }
}

/** koffi names types process-wide, so they are declared once whatever happens to library loads. */
function declareTypes(): DfssTypes {
  for (const name of Object.keys(DFSS_ENUMS)) koffi.alias(name, 'int32_t');
  for (const [name, type] of Object.entries(DFSS_TYPEDEFS)) koffi.alias(name, type);
  const struct = (name: keyof typeof DFSS_STRUCTS) =>
    koffi.struct(name, Object.fromEntries(DFSS_STRUCTS[name].map(([type, field]) => [field, type])));
  return {
    dfss_device_info: struct('dfss_device_info'),
    dfss_attention_desc: struct('dfss_attention_desc'),
    dfss_backward_strides: struct('dfss_backward_strides'),
  };
}

function bind(handle: LibraryHandle, path: string): DfssLibrary {
  types ??= declareTypes();
  const native = new Map<FunctionName, KoffiFunction>();
  for (const [name, prototype] of Object.entries(DFSS_PROTOTYPES) as [FunctionName, string][]) {
    native.set(name, handle.func(prototype) as KoffiFunction);
  }
  const sync = Object.fromEntries(native) as unknown as DfssFunctions;

  const statusName = (status: DfssStatus): string => statusNames.get(status) ?? `dfss_status ${status}`;
  const failure = (status: DfssStatus, what: string): NativeError => {
    const detail = sync.dfss_last_error_message() || sync.dfss_status_string(status);
    return new NativeError(statusName(status), `${what}: ${detail}`);
  };
  const check = (status: DfssStatus, what: string): void => {
    if (status !== DFSS_SUCCESS) throw failure(status, what);
  };

  const abi = sync.dfss_abi_version();
  if (abi !== DFSS_ABI_VERSION) {
    throw new LibraryNotFoundError(
      `${path} implements dfss ABI version ${abi}, these bindings were written for version ${DFSS_ABI_VERSION}`,
    );
  }
  const desc: Partial<AttentionDesc> = {};
  const initArgs = [DFSS_DTYPE_FLOAT16, DFSS_PATTERN_2_4, 1, 1, 1, 1, 1, 1, 1] as const;
  check(sync.dfss_attention_desc_init(desc, ...initArgs), 'dfss_attention_desc_init');
  const size = koffi.sizeof(types.dfss_attention_desc);
  if (desc.struct_size !== size) {
    throw new LibraryNotFoundError(
      `${path} has a dfss_attention_desc of ${desc.struct_size} bytes, these bindings lay it out in ${size} bytes`,
    );
  }

  const asyncFunctions: Record<string, (...args: unknown[]) => Promise<void>> = {};
  for (const [name, fn] of native) {
    if (!DFSS_PROTOTYPES[name].startsWith('dfss_status ')) continue;
    asyncFunctions[name] = (...args) =>
      new Promise<DfssStatus>((resolve, reject) => {
        fn.async(...args, (error: Error | null, status: DfssStatus) => (error ? reject(error) : resolve(status)));
      }).then((status) => {
        if (status === DFSS_SUCCESS) return;
        // The failure's message is thread-local to the koffi worker thread that ran the call, out of reach
        // from here. A failed call has no effect (dfss.h: outputs are written only on success), so the same
        // call repeated on this thread fails the same way, and here its message can be read. Should the
        // repeat succeed, the failure was transient and the repeat has done the work. (This closure also
        // keeps the arguments, host buffers included, alive until the call has settled.)
        check(fn(...args) as DfssStatus, name);
      });
  }

  return { ...sync, path, async: asyncFunctions as DfssAsyncFunctions, types, statusName, check };
}

// DfssFunctions must declare exactly the functions of DFSS_PROTOTYPES (which the header test holds to
// dfss.h): a function missing on either side fails compilation here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const everyFunctionTyped: Same<FunctionName, keyof typeof DFSS_PROTOTYPES> = true;
void everyFunctionTyped;

type KoffiFunction = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };
