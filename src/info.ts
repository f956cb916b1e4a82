// What this installation can do: the library, the devices, and the backend `auto` picks.
import { resolveBackend } from './attention.js';
import type { BackendName } from './backend.js';
import { type CudaStatus, cudaStatus } from './cuda/runtime.js';

export interface BackendInfo {
  readonly cuda: CudaStatus;
  /** The backend 'auto' picks for a problem CUDA implements. */
  readonly auto: BackendName;
}

export function backendInfo(): BackendInfo {
  return { cuda: cudaStatus(), auto: resolveBackend('auto') };
}
