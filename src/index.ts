// dfss: Dynamic N:M fine-grained structured sparse attention. The public API.
export { Tensor, type Device, type ElementType } from './tensor.js';
export { type DType, DTYPES } from './dtype.js';
export { type Pattern, parsePattern, formatPattern } from './pattern.js';
export {
  attention,
  attentionWithLse,
  attentionBackward,
  attentionForTraining,
  AttentionContext,
  type AttentionGradients,
  sddmmPrune,
  compressedSoftmax,
  spmm,
  CompressedRows,
  resolveBackend,
  cudaSupports,
  type AttentionOptions,
} from './attention.js';
export { backendInfo, type BackendInfo } from './info.js';
export type { BackendChoice, BackendName, Pipeline } from './backend.js';
export {
  synchronize,
  releaseCachedDeviceMemory,
  deviceCacheStats,
  type DeviceCacheStats,
  type CudaDevice,
  type CudaStatus,
} from './cuda/runtime.js';
export { compressedRowSize, encodeMetadata, decodeMetadata } from './layout.js';
export {
  DfssError,
  InvalidArgumentError,
  NoDeviceError,
  UnsupportedError,
  DisposedTensorError,
  LibraryNotFoundError,
  NativeError,
} from './errors.js';
