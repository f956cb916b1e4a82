// The CUDA backend: libdfss's entry points on device tensors, through ffi/.
//
// The entry points only enqueue work on the stream (the legacy default stream here) and return, so they are
// called sync: koffi's async worker round trip would cost more than the call, and the failure's message is read on
// the thread that made the call. The returned promises settle at once; synchronize() or reading an output to the
// host is where the GPU is waited for. (An enqueue waits while the device's launch queue is full, as in any CUDA
// program; and on a GPU without stream-ordered allocation, a call with per-batch lengths waits for its own kernel
// before it frees its scratch memory: those calls hold the event loop as long.)
import { type AttentionDescPointer, NativeAttentionDesc } from '../../ffi/attention-desc.js';
import {
  type BackwardStrides,
  DFSS_DTYPE_BFLOAT16,
  DFSS_DTYPE_FLOAT16,
  DFSS_DTYPE_FLOAT32,
  DFSS_PATTERN_1_2,
  DFSS_PATTERN_2_4,
  DFSS_PATTERN_DENSE,
  type DfssLibrary,
} from '../../ffi/dfss.js';
import type { Backend } from '../backend.js';
import type { DType } from '../dtype.js';
import { UnsupportedError } from '../errors.js';
import { compressedRowSize } from '../layout.js';
import { formatPattern } from '../pattern.js';
import type { AttentionProblem } from '../problem.js';
import { type ElementType, Tensor, contiguousStrides } from '../tensor.js';
import { requireCuda } from './runtime.js';

const DTYPE_CODES: Record<DType, number> = {
  float16: DFSS_DTYPE_FLOAT16,
  bfloat16: DFSS_DTYPE_BFLOAT16,
  float32: DFSS_DTYPE_FLOAT32,
};

/** The patterns libdfss implements, by dtype (dfss.h); the CPU backend takes any N:M. */
function patternCode(p: AttentionProblem): number {
  const pattern = p.pattern;
  if (pattern === null) return DFSS_PATTERN_DENSE;
  if (pattern.n === 1 && pattern.m === 2) return DFSS_PATTERN_1_2;
  if (pattern.n === 2 && pattern.m === 4 && p.dtype !== 'float32') return DFSS_PATTERN_2_4;
  const offered = p.dtype === 'float32' ? "'dense' or '1:2'" : "'dense', '1:2' or '2:4'";
  throw new UnsupportedError(
    `pattern ${formatPattern(pattern)} with ${p.dtype} is not available on the CUDA backend (it offers ${offered}); use backend 'cpu' to study other patterns`,
  );
}

let nativeDesc: NativeAttentionDesc | undefined;

/**
 * The descriptor of `p`, written into the one native descriptor of this module. Valid until the next describe():
 * each entry point is called sync right after it.
 */
function describe(lib: DfssLibrary, p: AttentionProblem): AttentionDescPointer {
  nativeDesc ??= new NativeAttentionDesc(lib);
  return nativeDesc.write(DTYPE_CODES[p.dtype], patternCode(p), p);
}

function address(t: Tensor | null, argument: string): bigint | null {
  return t === null ? null : t.storage.deviceBuffer(argument).address;
}

/** Makes a device tensor for an output of the call being prepared. */
type MakeOutput = (shape: readonly number[], dtype: ElementType) => Tensor;

/** Runs `work` (outputs made, one entry point called sync and checked); on failure disposes the outputs it made. */
function producing<T>(work: (output: MakeOutput) => T): T {
  const made: Tensor[] = [];
  try {
    return work((shape, dtype) => {
      const t = Tensor.empty(shape, dtype, 'cuda');
      made.push(t);
      return t;
    });
  } catch (error) {
    for (const t of made) t.dispose();
    throw error;
  }
}

/** The functions of dfss.h that size an entry point's device workspace. */
type WorkspaceSizeFunction = 'dfss_attention_staged_workspace_size' | 'dfss_attention_backward_workspace_size';

/**
 * Runs `work` (one entry point called sync and checked) with a device workspace of the bytes `sizeFunction` gives
 * for desc. The workspace is used only by the work that call enqueues on the default stream: released when `work`
 * returns, it goes back to the block cache, and whatever reuses it is queued after that work.
 */
function withWorkspace<T>(
  lib: DfssLibrary,
  desc: AttentionDescPointer,
  sizeFunction: WorkspaceSizeFunction,
  work: (workspace: bigint | null, bytes: number) => T,
): T {
  const bytes: [number] = [0];
  lib.check(lib[sizeFunction](desc, bytes), sizeFunction);
  const workspace = Tensor.empty([Math.ceil(Number(bytes[0]) / 4)], 'uint32', 'cuda');
  try {
    return work(address(workspace, 'workspace'), bytes[0]);
  } finally {
    workspace.dispose();
  }
}

export const cudaBackend: Backend = {
  name: 'cuda',
  device: 'cuda',

  async attention(p, q, k, v, withLse, pipeline) {
    const lib = requireCuda();
    const desc = describe(lib, p);
    return producing((output) => {
      const out = output([p.batch, p.headsQ, p.seqQ, p.headDimV], p.dtype);
      const lse = withLse ? output([p.batch, p.headsQ, p.seqQ], 'float32') : null;
      const inputs = [address(q, 'q'), address(k, 'k'), address(v, 'v')] as const;
      const tensors = [...inputs, address(out, 'out'), address(lse, 'lse')] as const;
      if (pipeline === 'staged') {
        withWorkspace(lib, desc, 'dfss_attention_staged_workspace_size', (workspace, bytes) =>
          lib.check(lib.dfss_attention_staged(desc, ...tensors, workspace, bytes), 'dfss_attention_staged'),
        );
      } else {
        lib.check(lib.dfss_attention_forward(desc, ...tensors), 'dfss_attention_forward');
      }
      return { out, lse };
    });
  },

  async sddmmPrune(p, q, k) {
    const lib = requireCuda();
    return producing((output) => {
      const { values: slots, metadataWords } = compressedRowSize(p.seqK, p.pattern);
      const values = output([p.batch, p.headsQ, p.seqQ, slots], p.dtype);
      const metadata = metadataWords > 0 ? output([p.batch, p.headsQ, p.seqQ, metadataWords], 'uint32') : null;
      const status = lib.dfss_sddmm_prune(describe(lib, p), address(q, 'q'), address(k, 'k'), address(values, 'values'), address(metadata, 'metadata'));
      lib.check(status, 'dfss_sddmm_prune');
      return { values, metadata };
    });
  },

  async compressedSoftmax(p, scores) {
    const lib = requireCuda();
    return producing((output) => {
      const probs = output(scores.shape, p.dtype);
      const lse = output([p.batch, p.headsQ, p.seqQ], 'float32');
      const status = lib.dfss_compressed_softmax(describe(lib, p), address(scores, 'scores.values'), address(probs, 'probs'), address(lse, 'lse'));
      lib.check(status, 'dfss_compressed_softmax');
      return { probs, lse };
    });
  },

  async spmm(p, probs, metadata, v) {
    const lib = requireCuda();
    return producing((output) => {
      const out = output([p.batch, p.headsQ, p.seqQ, p.headDimV], p.dtype);
      const status = lib.dfss_spmm(describe(lib, p), address(probs, 'probs.values'), address(metadata, 'probs.metadata'), address(v, 'v'), address(out, 'out'));
      lib.check(status, 'dfss_spmm');
      return out;
    });
  },

  async attentionBackward(p, t) {
    const lib = requireCuda();
    const desc = describe(lib, p);
    const dqShape = [p.batch, p.headsQ, p.seqQ, p.headDim];
    const dkShape = [p.batch, p.headsKv, p.seqK, p.headDim];
    const dvShape = [p.batch, p.headsKv, p.seqK, p.headDimV];
    const strides: BackwardStrides = {
      dout_strides: p.doutStrides,
      dq_strides: contiguousStrides(dqShape),
      dk_strides: contiguousStrides(dkShape),
      dv_strides: contiguousStrides(dvShape),
    };
    return withWorkspace(lib, desc, 'dfss_attention_backward_workspace_size', (workspace, bytes) =>
      producing((output) => {
        const dq = output(dqShape, p.dtype);
        const dk = output(dkShape, p.dtype);
        const dv = output(dvShape, p.dtype);
        const status = lib.dfss_attention_backward(
          desc,
          strides,
          address(t.q, 'q'),
          address(t.k, 'k'),
          address(t.v, 'v'),
          address(t.out, 'out'),
          address(t.dout, 'dout'),
          address(t.lse, 'lse'),
          address(dq, 'dq'),
          address(dk, 'dk'),
          address(dv, 'dv'),
          workspace,
          bytes,
        );
        lib.check(status, 'dfss_attention_backward');
        return { dq, dk, dv };
      }),
    );
  },
};
