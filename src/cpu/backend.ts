// The CPU backend: the TypeScript reference kernels of src/cpu/ on host tensors.
import type { Backend } from '../backend.js';
import type { DType } from '../dtype.js';
import type { AttentionProblem } from '../problem.js';
import { Storage, Tensor, fromFloat32, toFloat32 } from '../tensor.js';
import { attentionForward } from './attention.js';
import { attentionBackward } from './backward.js';
import { compressedSoftmax, sddmmPrune, spmm } from './staged.js';

/** All of a host tensor's storage as float32 values, in storage order (so the tensor's strides still apply). */
function values(t: Tensor, argument: string): Float32Array {
  return toFloat32(t.dtype, t.storage.hostElements(argument));
}

function hostTensor(dtype: DType, data: Float32Array, shape: readonly number[]): Tensor {
  return new Tensor(Storage.host(dtype, fromFloat32(dtype, data)), shape);
}

function outShape(p: AttentionProblem): number[] {
  return [p.batch, p.headsQ, p.seqQ, p.headDimV];
}

function rowsShape(p: AttentionProblem): number[] {
  return [p.batch, p.headsQ, p.seqQ];
}

export const cpuBackend: Backend = {
  name: 'cpu',
  device: 'cpu',

  async attention(p, q, k, v, withLse, pipeline) {
    let out: Float32Array;
    let lse: Float32Array | null = null;
    if (pipeline === 'staged') {
      // The three staged steps, the softmax in place: the compressed scores are rounded to the dtype, as on the GPU.
      const scores = sddmmPrune(p, values(q, 'q'), values(k, 'k'));
      const probs = compressedSoftmax(p, scores.values, scores.values);
      out = spmm(p, probs.probs, scores.metadata, values(v, 'v'));
      if (withLse) lse = probs.lse;
    } else {
      if (withLse) lse = new Float32Array(p.batch * p.headsQ * p.seqQ);
      out = attentionForward(p, values(q, 'q'), values(k, 'k'), values(v, 'v'), undefined, lse);
    }
    return { out: hostTensor(p.dtype, out, outShape(p)), lse: lse && hostTensor('float32', lse, rowsShape(p)) };
  },

  async sddmmPrune(p, q, k) {
    const r = sddmmPrune(p, values(q, 'q'), values(k, 'k'));
    const rows = rowsShape(p);
    const rowCount = p.batch * p.headsQ * p.seqQ;
    const metadata = r.metadata && new Tensor(Storage.host('uint32', r.metadata), [...rows, r.metadata.length / rowCount]);
    return { values: hostTensor(p.dtype, r.values, [...rows, r.values.length / rowCount]), metadata };
  },

  async compressedSoftmax(p, scores) {
    const r = compressedSoftmax(p, values(scores, 'scores.values'));
    return { probs: hostTensor(p.dtype, r.probs, scores.shape), lse: hostTensor('float32', r.lse, rowsShape(p)) };
  },

  async spmm(p, probs, metadata, v) {
    const words = metadata ? (metadata.storage.hostElements('metadata') as Uint32Array) : null;
    const out = spmm(p, values(probs, 'probs'), words, values(v, 'v'));
    return hostTensor(p.dtype, out, outShape(p));
  },

  async attentionBackward(p, t) {
    const g = attentionBackward(
      p,
      values(t.q, 'q'),
      values(t.k, 'k'),
      values(t.v, 'v'),
      values(t.out, 'out'),
      values(t.dout, 'dout'),
      p.doutStrides,
      values(t.lse, 'lse'),
    );
    return {
      dq: hostTensor(p.dtype, g.dq, [p.batch, p.headsQ, p.seqQ, p.headDim]),
      dk: hostTensor(p.dtype, g.dk, [p.batch, p.headsKv, p.seqK, p.headDim]),
      dv: hostTensor(p.dtype, g.dv, [p.batch, p.headsKv, p.seqK, p.headDimV]),
    };
  },
};
