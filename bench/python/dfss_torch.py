"""libdfss on PyTorch CUDA tensors: descriptors made from tensors' shapes, strides and dtype, calls ordered on
torch's current stream, compressed buffers of the staged operations. Built on dfss_ctypes (the binding)."""

import torch

from dfss_ctypes import Dfss

TORCH_DTYPES = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32"}


def _check_operand(name, t, dims):
    if not isinstance(t, torch.Tensor):
        raise ValueError("%s: expected a CUDA torch.Tensor, got %s" % (name, type(t).__name__))
    if not t.is_cuda:
        raise ValueError("%s: expected a CUDA tensor, got one on %s" % (name, t.device))
    if t.dim() != 4:
        raise ValueError("%s: expected 4 dimensions %s, got shape %s" % (name, dims, tuple(t.shape)))
    if t.stride(3) != 1:
        raise ValueError("%s: expected a contiguous last dimension (stride 1), got strides %s" % (name, t.stride()))


class DfssTorch:
    """Calls of one loaded libdfss on torch tensors. Pointers are data_ptr(); the stream is torch's current
    stream at the time the descriptor is made."""

    def __init__(self, lib=None):
        self.lib = lib if isinstance(lib, Dfss) else Dfss(lib)

    def desc(self, q, k, v, out, pattern, causal=False, scale=None, seqlens_q=None, seqlens_k=None):
        """The descriptor of q [B, Hq, Nq, D], k [B, Hk, Nk, D], v [B, Hk, Nk, Dv], out [B, Hq, Nq, Dv]; seqlens_q /
        seqlens_k: B valid lengths each, or None."""
        for name, t, dims in (("q", q, "[B, Hq, Nq, D]"), ("k", k, "[B, Hk, Nk, D]"), ("v", v, "[B, Hk, Nk, Dv]"), ("out", out, "[B, Hq, Nq, Dv]")):
            _check_operand(name, t, dims)
        if q.dtype not in TORCH_DTYPES:
            raise ValueError("q.dtype: expected float16, bfloat16 or float32, got %s" % q.dtype)
        for name, t in (("k", k), ("v", v), ("out", out)):
            if t.dtype != q.dtype:
                raise ValueError("%s.dtype: expected q's dtype %s, got %s" % (name, q.dtype, t.dtype))
        b, hq, nq, d = q.shape
        _, hk, nk, _ = k.shape
        dv = v.shape[3]
        return self.lib.attention_desc(
            TORCH_DTYPES[q.dtype],
            pattern,
            b,
            hq,
            hk,
            nq,
            nk,
            d,
            dv,
            causal=causal,
            scale=scale,
            strides={"q": q.stride(), "k": k.stride(), "v": v.stride(), "out": out.stride()},
            seqlens_q=seqlens_q,
            seqlens_k=seqlens_k,
            stream=torch.cuda.current_stream().cuda_stream,
        )

    def attention_forward(self, desc, q, k, v, out, lse=None):
        self.lib.attention_forward(desc, q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), None if lse is None else lse.data_ptr())

    def compressed_buffers(self, desc, dtype, device):
        """Uninitialized compressed values [B, Hq, Nq, C] and metadata [B, Hq, Nq, W] (int32 holding the uint32
        words; None for dense) of the descriptor."""
        values_per_row, words_per_row = self.lib.compressed_row_size(desc)
        rows = (desc.batch, desc.heads_q, desc.seq_q)
        values = torch.empty(rows + (values_per_row,), dtype=dtype, device=device)
        metadata = torch.empty(rows + (words_per_row,), dtype=torch.int32, device=device) if words_per_row > 0 else None
        return values, metadata

    def sddmm_prune(self, desc, q, k, values, metadata):
        self.lib.sddmm_prune(desc, q.data_ptr(), k.data_ptr(), values.data_ptr(), None if metadata is None else metadata.data_ptr())

    def compressed_softmax(self, desc, values_in, values_out, lse=None):
        self.lib.compressed_softmax(desc, values_in.data_ptr(), values_out.data_ptr(), None if lse is None else lse.data_ptr())

    def spmm(self, desc, probs, metadata, v, out):
        self.lib.spmm(desc, probs.data_ptr(), None if metadata is None else metadata.data_ptr(), v.data_ptr(), out.data_ptr())

    def workspace(self, entry_point, desc, device):
        """A device workspace (uint8, torch's allocations are 256-byte aligned) of the size that entry_point
        ("attention_staged", "attention_backward") needs for desc."""
        return torch.empty(self.lib.workspace_size(entry_point, desc), dtype=torch.uint8, device=device)

    def attention_staged(self, desc, q, k, v, out, workspace, lse=None):
        """The staged pipeline in one call (softmax folded into sddmm_prune and spmm)."""
        self.lib.attention_staged(
            desc, q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), None if lse is None else lse.data_ptr(),
            workspace.data_ptr(), workspace.numel(),
        )

    def attention_backward(self, desc, q, k, v, out, dout, lse, dq, dk, dv, workspace, strides=None):
        """dq, dk, dv of the forward of desc for dout (dout, dq, dk, dv in the layouts of out, q, k, v unless
        strides, a dfss_ctypes.BackwardStrides, says otherwise)."""
        self.lib.attention_backward(
            desc, q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), dout.data_ptr(), lse.data_ptr(),
            dq.data_ptr(), dk.data_ptr(), dv.data_ptr(), workspace.data_ptr(), workspace.numel(), strides,
        )
