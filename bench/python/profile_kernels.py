"""A small driver for Nsight Compute: one call per pattern of the fused forward (or of the staged pipeline) on one
shape, nothing else on the GPU in between, so that `ncu` sees exactly these kernels (node-driven runs could not be
profiled on the H200 host; see bench/NOTES.md).

    ncu -k regex:attention_fused python3 bench/python/profile_kernels.py --lib LIB
    ncu -k regex:'sddmm|softmax|spmm' python3 bench/python/profile_kernels.py --lib LIB --staged \\
        --batch 48 --heads 4 --seq 4096 --dim 64 --dtype bfloat16 --patterns 2:4
    ncu -k regex:attention_backward python3 bench/python/profile_kernels.py --lib LIB --backward
    ncu -k regex:attention_fused python3 bench/python/profile_kernels.py --lib LIB --seqlens-k 4095,4031,3967,3903
"""

import argparse

import torch

from dfss_torch import DfssTorch

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lib", help="path of libdfss.so (default: as dfss_ctypes finds it)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--seq", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float16")
    parser.add_argument("--patterns", default="dense,2:4,1:2")
    parser.add_argument("--causal", action="store_true")
    parser.add_argument("--staged", action="store_true", help="the staged pipeline (sddmm_prune, softmax, spmm)")
    parser.add_argument("--staged-call", action="store_true",
                        help="the staged pipeline in one call (dfss_attention_staged: sddmm_prune, spmm)")
    parser.add_argument("--backward", action="store_true", help="also the fused backward, after each forward")
    parser.add_argument("--seqlens-k", help="the valid key length of each batch entry, comma-separated (padded batches)")
    args = parser.parse_args()
    seqlens_k = None
    if args.seqlens_k:
        seqlens_k = [int(n) for n in args.seqlens_k.split(",")]
        if len(seqlens_k) != args.batch:
            parser.error("--seqlens-k: expected %d lengths (--batch), got %d" % (args.batch, len(seqlens_k)))

    dfss = DfssTorch(args.lib)
    dtype = DTYPES[args.dtype]
    shape = (args.batch, args.heads, args.seq, args.dim)
    q, k, v = (torch.randn(shape, dtype=dtype, device="cuda") for _ in range(3))
    out = torch.empty_like(q)
    for pattern in args.patterns.split(","):
        desc = dfss.desc(q, k, v, out, pattern, causal=args.causal, seqlens_k=seqlens_k)
        if args.staged:
            values, metadata = dfss.compressed_buffers(desc, dtype, q.device)
            dfss.sddmm_prune(desc, q, k, values, metadata)
            dfss.compressed_softmax(desc, values, values)
            dfss.spmm(desc, values, metadata, v, out)
        elif args.staged_call:
            dfss.attention_staged(desc, q, k, v, out, dfss.workspace("attention_staged", desc, q.device))
        elif args.backward:
            lse = torch.empty(shape[:3], dtype=torch.float32, device="cuda")
            dfss.attention_forward(desc, q, k, v, out, lse)
            dq, dk, dv = (torch.empty_like(t) for t in (q, k, v))
            workspace = dfss.workspace("attention_backward", desc, q.device)
            dfss.attention_backward(desc, q, k, v, out, torch.randn_like(out), lse, dq, dk, dv, workspace)
        else:
            dfss.attention_forward(desc, q, k, v, out)
        torch.cuda.synchronize()
        kind = "staged" if args.staged else "staged call" if args.staged_call else (
            "fused forward + backward" if args.backward else "fused")
        print("ran %s %s %s %s" % (kind, pattern, args.dtype, shape))


if __name__ == "__main__":
    main()
