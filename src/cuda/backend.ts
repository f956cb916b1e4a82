// The CUDA backend: libdfss's entry points on device tensors, through ffi/.
import {
  type AttentionDesc,
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
import { Tensor, contiguousStrides } from '../tensor.js';
import { requireCuda } from './runtime.js';

const DTYPE_CODES: Record<DType, number> = {
  float16: DFSS_DTYPE_FLOAT16,
  bfloat16: DFSS_DTYPE_BFLOAT16,
  float32: DFSS_DTYPE_FLOAT32,
};

/** The patterns libdfss implements, by dtype (dfss.h); the CPU backend takes any N:M. */
function patternCode(p: AttentionProblem): number {
  const name = formatPattern(p.pattern);
  if (name === 'dense') return DFSS_PATTERN_DENSE;
  if (name === '1:2') return DFSS_PATTERN_1_2;
  if (name === '2:4' && p.dtype !== 'float32') return DFSS_PATTERN_2_4;
  const offered = p.dtype === 'float32' ? "'dense' or '1:2'" : "'dense', '1:2' or '2:4'";
  throw new UnsupportedError(`pattern ${name} with ${p.dtype} is not available on the CUDA backend (it offers ${offered}); use backend 'cpu' to study other patterns`);
}

function describe(lib: DfssLibrary, p: AttentionProblem): AttentionDesc {
  const desc: Partial<AttentionDesc> = {};
  lib.check(
    lib.dfss_attention_desc_init(desc, DTYPE_CODES[p.dtype], patternCode(p), p.batch, p.headsQ, p.headsKv, p.seqQ, p.seqK, p.headDim, p.headDimV),
    'dfss_attention_desc_init',
  );
  return {
    ...(desc as AttentionDesc),
    causal: p.causal ? 1 : 0,
    scale: p.scale,
    q_strides: p.qStrides,
    k_strides: p.kStrides,
    v_strides: p.vStrides,
    out_strides: p.outStrides,
    seqlens_q: p.seqlensQ,
    seqlens_k: p.seqlensK,
  };
}

function address(t: Tensor | null, argument: string): bigint | null {
  return t === null ? null : t.storage.deviceBuffer(argument).address;
}

/** Runs `work` with new device tensors, disposing them if it fails. */
async function producing<T>(tensors: Tensor[], work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    for (const t of tensors) t.dispose();
    throw error;
  }
}

export const cudaBackend: Backend = {
  name: 'cuda',
  device: 'cuda',

  async attention(p, q, k, v, withLse) {
    const lib = requireCuda();
    const desc = describe(lib, p);
    const out = Tensor.empty([p.batch, p.headsQ, p.seqQ, p.headDimV], p.dtype, 'cuda');
    const lse = withLse ? Tensor.empty([p.batch, p.headsQ, p.seqQ], 'float32', 'cuda') : null;
    return producing([out, ...(lse ? [lse] : [])], async () => {
      await lib.async.dfss_attention_forward(desc, address(q, 'q'), address(k, 'k'), address(v, 'v'), address(out, 'out'), address(lse, 'lse'));
      return { out, lse };
    });
  },

  async sddmmPrune(p, q, k) {
    const lib = requireCuda();
    const desc = describe(lib, p);
    const { values: slots, metadataWords } = compressedRowSize(p.seqK, p.pattern);
    const rows = [p.batch, p.headsQ, p.seqQ];
    const values = Tensor.empty([...rows, slots], p.dtype, 'cuda');
    const metadata = metadataWords > 0 ? Tensor.empty([...rows, metadataWords], 'uint32', 'cuda') : null;
    return producing([values, ...(metadata ? [metadata] : [])], async () => {
      await lib.async.dfss_sddmm_prune(desc, address(q, 'q'), address(k, 'k'), address(values, 'values'), address(metadata, 'metadata'));
      return { values, metadata };
    });
  },

  async compressedSoftmax(p, scores) {
    const lib = requireCuda();
    const desc = describe(lib, p);
    const probs = Tensor.empty(scores.shape, p.dtype, 'cuda');
    const lse = Tensor.empty([p.batch, p.headsQ, p.seqQ], 'float32', 'cuda');
    return producing([probs, lse], async () => {
      await lib.async.dfss_compressed_softmax(desc, address(scores, 'scores.values'), address(probs, 'probs'), address(lse, 'lse'));
      return { probs, lse };
    });
  },

  async spmm(p, probs, metadata, v) {
    const lib = requireCuda();
    const desc = describe(lib, p);
    const out = Tensor.empty([p.batch, p.headsQ, p.seqQ, p.headDimV], p.dtype, 'cuda');
    return producing([out], async () => {
      await lib.async.dfss_spmm(desc, address(probs, 'probs.values'), address(metadata, 'probs.metadata'), address(v, 'v'), address(out, 'out'));
      return out;
    });
  },

  async attentionBackward(p, t) {
    const lib = requireCuda();
    const desc = describe(lib, p);
    const bytes: [number] = [0];
    lib.check(lib.dfss_attention_backward_workspace_size(desc, bytes), 'dfss_attention_backward_workspace_size');
    const dqShape = [p.batch, p.headsQ, p.seqQ, p.headDim];
    const dkShape = [p.batch, p.headsKv, p.seqK, p.headDim];
    const dvShape = [p.batch, p.headsKv, p.seqK, p.headDimV];
    const strides: BackwardStrides = {
      dout_strides: p.doutStrides,
      dq_strides: contiguousStrides(dqShape),
      dk_strides: contiguousStrides(dkShape),
      dv_strides: contiguousStrides(dvShape),
    };
    // Freed when the call returns: dfss_free (cudaFree) waits for the work queued on the device first.
    const workspace = Tensor.empty([Math.ceil(Number(bytes[0]) / 4)], 'uint32', 'cuda');
    const gradients: Tensor[] = [];
    try {
      for (const shape of [dqShape, dkShape, dvShape]) gradients.push(Tensor.empty(shape, p.dtype, 'cuda'));
      const [dq, dk, dv] = gradients;
      await lib.async.dfss_attention_backward(
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
        address(workspace, 'workspace'),
        bytes[0],
      );
      return { dq, dk, dv };
    } catch (error) {
      for (const g of gradients) g.dispose();
      throw error;
    } finally {
      workspace.dispose();
    }
  },
};
