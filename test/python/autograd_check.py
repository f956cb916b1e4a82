"""libdfss's forward and backward as a torch.autograd.Function (through ctypes), checked against PyTorch autograd
of a plain PyTorch implementation of the DFSS semantics (cuda/include/dfss.h), then used to finetune the q, k, v
of an attention layer from PyTorch. Needs a CUDA GPU, PyTorch and a built libdfss.so.

    python3 test/python/autograd_check.py [--lib PATH] [--seed N]

Prints one line per check and exits non-zero when one fails. The binding is bench/python/dfss_ctypes.py; the
backward's two functions and its strides struct are declared here on top of it (bind_backward) until that
binding declares them.
"""

import argparse
import ctypes
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "python"))
import dfss_ctypes  # noqa: E402
from dfss_reference import PATTERN_NM, TIE_MARGIN, TOLERANCES, keep_mask  # noqa: E402

TORCH_DTYPES = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32"}


# ----- the backward's part of dfss.h -------------------------------------------------------------------------


class BackwardStrides(ctypes.Structure):
    """dfss_backward_strides: element strides of dout, dq, dk and dv."""

    _fields_ = [(name, dfss_ctypes.Strides) for name in ("dout_strides", "dq_strides", "dk_strides", "dv_strides")]


def bind_backward(lib):
    """Declares dfss_attention_backward_workspace_size and dfss_attention_backward on lib.raw."""
    desc_ptr = ctypes.POINTER(dfss_ctypes.AttentionDesc)
    size = lib.raw.dfss_attention_backward_workspace_size
    size.restype = ctypes.c_int32
    size.argtypes = [desc_ptr, ctypes.POINTER(ctypes.c_uint64)]
    backward = lib.raw.dfss_attention_backward
    backward.restype = ctypes.c_int32
    backward.argtypes = [desc_ptr, ctypes.POINTER(BackwardStrides)] + [ctypes.c_void_p] * 10 + [ctypes.c_uint64]


# ----- the library as an autograd Function -------------------------------------------------------------------


class Settings:
    """What the forward was called with besides the tensors; the backward needs the same."""

    def __init__(self, lib, pattern, causal, scale, seqlens_q, seqlens_k):
        self.lib, self.pattern, self.causal, self.scale = lib, pattern, causal, scale
        self.seqlens_q, self.seqlens_k = seqlens_q, seqlens_k

    def desc(self, q, k, v, out):
        b, hq, nq, d = q.shape
        _, hk, nk, dv = v.shape
        return self.lib.attention_desc(
            TORCH_DTYPES[q.dtype], self.pattern, b, hq, hk, nq, nk, d, dv,
            causal=self.causal, scale=self.scale,
            strides={"q": q.stride(), "k": k.stride(), "v": v.stride(), "out": out.stride()},
            seqlens_q=self.seqlens_q, seqlens_k=self.seqlens_k,
            stream=torch.cuda.current_stream().cuda_stream,
        )


class DfssAttentionFunction(torch.autograd.Function):
    """out = dfss_attention_forward(q, k, v); its backward is dfss_attention_backward, with the forward's lse."""

    @staticmethod
    def forward(ctx, q, k, v, settings):
        out = torch.empty(q.shape[:3] + (v.shape[3],), dtype=q.dtype, device=q.device)
        lse = torch.empty(q.shape[:3], dtype=torch.float32, device=q.device)
        settings.lib.attention_forward(settings.desc(q, k, v, out), q.data_ptr(), k.data_ptr(), v.data_ptr(),
                                       out.data_ptr(), lse.data_ptr())
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.settings = settings
        return out

    @staticmethod
    def backward(ctx, dout):
        q, k, v, out, lse = ctx.saved_tensors
        settings = ctx.settings
        lib = settings.lib
        if dout.stride(3) != 1:
            dout = dout.contiguous()
        dq, dk, dv = (torch.empty(t.shape, dtype=t.dtype, device=t.device) for t in (q, k, v))
        desc = settings.desc(q, k, v, out)
        strides = BackwardStrides(*(dfss_ctypes.Strides(*t.stride()) for t in (dout, dq, dk, dv)))
        size = ctypes.c_uint64()
        lib.check(lib.raw.dfss_attention_backward_workspace_size(ctypes.byref(desc), ctypes.byref(size)),
                  "dfss_attention_backward_workspace_size")
        # Freed to torch's caching allocator on return, which orders its reuse after this stream's work.
        workspace = torch.empty(size.value, dtype=torch.uint8, device=q.device)
        pointers = [t.data_ptr() for t in (q, k, v, out, dout, lse, dq, dk, dv, workspace)]
        lib.check(lib.raw.dfss_attention_backward(ctypes.byref(desc), ctypes.byref(strides), *pointers, size.value),
                  "dfss_attention_backward")
        return dq, dk, dv, None


def dfss_attention(lib, q, k, v, pattern="2:4", causal=False, scale=None, seqlens_q=None, seqlens_k=None):
    """DFSS attention of CUDA tensors q [B, Hq, Nq, D], k [B, Hk, Nk, D], v [B, Hk, Nk, Dv] (any strides with a
    contiguous last dimension), differentiable in q, k and v."""
    q, k, v = (t if t.stride(3) == 1 else t.contiguous() for t in (q, k, v))
    scale = 1.0 / math.sqrt(q.shape[3]) if scale is None else scale
    return DfssAttentionFunction.apply(q, k, v, Settings(lib, pattern, causal, scale, seqlens_q, seqlens_k))


# ----- the semantics in plain PyTorch --------------------------------------------------------------------------


def allowed_keys(b, nq, nk, causal, seqlens_q, seqlens_k, device):
    """[B, 1, Nq, Nk] bool: the keys each query row may see (dfss.h step 2)."""
    i = torch.arange(nq, device=device).view(nq, 1)
    j = torch.arange(nk, device=device).view(1, nk)
    masks = []
    for batch in range(b):
        valid_q = nq if seqlens_q is None else seqlens_q[batch]
        valid_k = nk if seqlens_k is None else seqlens_k[batch]
        mask = (i < valid_q) & (j < valid_k)
        if causal:
            mask &= j <= i + (valid_k - valid_q)
        masks.append(mask)
    return torch.stack(masks).unsqueeze(1)


def reference_attention(q, k, v, pattern, causal, scale, seqlens_q=None, seqlens_k=None):
    """dfss.h steps 1-7 in float64 PyTorch, differentiable in q, k, v (float64 leaves), the N:M selection made
    without gradient: a constant, as the library holds it. Returns out [B, Hq, Nq, Dv] and each group's margin
    (N-th minus (N+1)-th score) [B, Hq, Nq, G], None for dense."""
    b, hq, nq, _ = q.shape
    hk, nk = k.shape[1], k.shape[2]
    k_heads = k.repeat_interleave(hq // hk, dim=1)
    v_heads = v.repeat_interleave(hq // hk, dim=1)
    s = scale * (q @ k_heads.transpose(-1, -2))
    s = s.masked_fill(~allowed_keys(b, nq, nk, causal, seqlens_q, seqlens_k, q.device), -math.inf)
    margin = None
    if PATTERN_NM[pattern] is not None:
        n, m = PATTERN_NM[pattern]
        with torch.no_grad():
            keep, group_margin = keep_mask(s.reshape(-1, nk), n, m)
        s = s.masked_fill(~keep[:, :nk].view(s.shape), -math.inf)
        margin = group_margin.view(b, hq, nq, -1)
    live = torch.isfinite(s.amax(-1, keepdim=True))  # rows with a finite score left
    p = torch.softmax(torch.where(live, s, torch.zeros_like(s)), dim=-1)
    p = torch.where(live, p, torch.zeros_like(p))
    return p @ v_heads, margin


def undecided(margin, hk, nk, m):
    """From the group margins [B, Hq, Nq, G]: rows [B, Hq, Nq] and key rows [B, Hk, Nk] whose choice hangs on a
    near tie (float64 here, float32 in the library: either key may be kept)."""
    tied = margin < TIE_MARGIN
    b, hq, nq, groups = tied.shape
    keys = tied.any(2).view(b, hk, hq // hk, groups).any(2)  # [B, Hk, G]
    return tied.any(-1), keys.repeat_interleave(m, dim=-1)[..., :nk]


def compare(name, got, want, dtype, skip_rows=None):
    """(ok, text): |got - want| <= atol * max(1, max |want|) + rtol |want| (TOLERANCES of the dtype) over the rows
    of [..., X] tensors that skip_rows (bool [...]) does not mark."""
    atol, rtol = TOLERANCES[dtype]
    got, want = got.double(), want.double()
    if skip_rows is not None:
        got, want = got[~skip_rows], want[~skip_rows]
    if not torch.isfinite(got).all():
        return False, "%s: %d non-finite values" % (name, int((~torch.isfinite(got)).sum()))
    limit = atol * max(1.0, float(want.abs().max())) if want.numel() else atol
    error = (got - want).abs()
    bad = error > limit + rtol * want.abs()
    text = "%s max |err| %.2e" % (name, float(error.max()) if error.numel() else 0.0)
    return not bool(bad.any()), text + (" (%d of %d off)" % (int(bad.sum()), bad.numel()) if bad.any() else "")


# ----- checks ----------------------------------------------------------------------------------------------------


def gradient_case(lib, dtype, pattern, config, generator):
    """Gradients of sum(out * dout) through the library against PyTorch autograd of reference_attention."""
    b, hq, hk, nq, nk, d, dv = config["shape"]
    device = torch.device("cuda")

    def draw(*shape):
        return torch.randn(*shape, generator=generator, device=device).to(dtype)

    q, k, v = draw(b, hq, nq, d), draw(b, hk, nk, d), draw(b, hk, nk, dv)
    if config.get("bnhd"):  # [B, N, H, D] buffers seen as [B, H, N, D]
        q, k, v = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in (q, k, v))
    dout = draw(b, hq, nq, dv)
    options = dict(pattern=pattern, causal=config.get("causal", False), scale=1.0 / math.sqrt(d),
                   seqlens_q=config.get("seqlens_q"), seqlens_k=config.get("seqlens_k"))

    leaves = [t.detach().clone().requires_grad_(True) for t in (q, k, v)]
    out = dfss_attention(lib, *leaves, **options)
    out.backward(dout)
    torch.cuda.synchronize()

    reference = [t.detach().double().requires_grad_(True) for t in (q, k, v)]
    want_out, margin = reference_attention(*reference, **options)
    want_out.backward(dout.double())

    skip_q = skip_kv = None
    if margin is not None:
        skip_q, skip_kv = undecided(margin, hk, nk, PATTERN_NM[pattern][1])
    results = [compare("out", out.detach(), want_out.detach(), dtype, skip_q)]
    for name, got, want, skip in zip(("dq", "dk", "dv"), leaves, reference, (skip_q, skip_kv, skip_kv)):
        results.append(compare(name, got.grad, want.grad, dtype, skip))
    return all(ok for ok, _ in results), ", ".join(text for _, text in results)


def finetune_check(lib, generator, steps=150):
    """Finetuning through the library: q, k, v of a causal attention layer (float32 master weights, bfloat16 2:4
    attention) learn by Adam to reproduce the output of another (dense) layer. The loss must fall to a quarter
    (the plain PyTorch reference gets it to about 2% in these steps)."""
    b, h, n, d = 2, 4, 128, 64
    device = torch.device("cuda")
    target_inputs = [torch.randn(b, h, n, d, generator=generator, device=device) for _ in range(3)]
    with torch.no_grad():
        target, _ = reference_attention(*(t.double() for t in target_inputs), "dense", True, 1.0 / math.sqrt(d))
    params = [torch.randn(b, h, n, d, generator=generator, device=device).requires_grad_(True) for _ in range(3)]
    optimizer = torch.optim.Adam(params, lr=3e-2)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        out = dfss_attention(lib, *(p.to(torch.bfloat16) for p in params), pattern="2:4", causal=True)
        loss = (out.float() - target.float()).pow(2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    ok = all(math.isfinite(x) for x in losses) and losses[-1] < 0.25 * losses[0]
    return ok, "loss %.4f -> %.4f in %d steps" % (losses[0], losses[-1], steps)


CONFIGS = [
    {"name": "B2 H4/4 Nq67 Nk131 D64", "shape": (2, 4, 4, 67, 131, 64, 64)},
    {"name": "B2 H4/2 Nq131 Nk67 D32/48 causal+lengths", "shape": (2, 4, 2, 131, 67, 32, 48), "causal": True,
     "seqlens_q": [131, 50], "seqlens_k": [67, 40]},
    {"name": "B1 H8/2 Nq200 Nk1031 D128 [B,N,H,D]", "shape": (1, 8, 2, 200, 1031, 128, 128), "bnhd": True},
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lib", help="path of libdfss.so (default: $DFSS_LIBRARY, the bundle, the build)")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("skipped: PyTorch sees no CUDA device")
        return 0
    lib = dfss_ctypes.Dfss(args.lib)
    bind_backward(lib)
    print("libdfss %s at %s, torch %s, %s" % (lib.version(), lib.path, torch.__version__, torch.cuda.get_device_name()))
    generator = torch.Generator(device="cuda").manual_seed(args.seed)
    failed = 0
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        for pattern in ("dense", "1:2") + (("2:4",) if dtype != torch.float32 else ()):
            for config in CONFIGS:
                ok, text = gradient_case(lib, dtype, pattern, config, generator)
                failed += not ok
                print("%s  %s %s %s: %s" % ("ok  " if ok else "FAIL", TORCH_DTYPES[dtype], pattern, config["name"], text))
    ok, text = finetune_check(lib, generator)
    failed += not ok
    print("%s  finetune 2:4 bfloat16 causal: %s" % ("ok  " if ok else "FAIL", text))
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
