#!/usr/bin/env python3
"""dfss attention against the strongest PyTorch attention on the same card, side by side in one run.

Runs on a GPU host with PyTorch (CUDA) and a built libdfss.so (loaded with ctypes; no Node.js needed):

    python3 bench/python/bench_attention.py --lib bundle/dfss-gpu/lib/libdfss.so --out "$OUT" [--quick]

Variants, on the same inputs: dfss fused 2:4, 1:2 and dense; dfss staged 2:4 (sddmm_prune, compressed_softmax,
spmm), and in one call (dfss_attention_staged: the softmax folded into sddmm_prune and spmm); torch
scaled_dot_product_attention with the flash and the cuDNN backend; unfused torch attention (bmm + softmax + bmm,
the paper's baseline). Each dfss output is checked before it is timed: dense against
torch SDPA, the N:M variants against dfss_reference (the dfss.h semantics in PyTorch) on a sample of rows,
the staged metadata bit for bit; a failed check marks the cell WRONG.

Timing: CUDA events around every call on torch's current stream, after a warm-up; the GPU is first held by a
sleep kernel so the host queues every timed call before the first runs (the time of small calls is then the
GPU's, not Python's); calls rotate over several input sets (>= --rotate-mib together) so that the L2 cache
does not hold the inputs; the median is reported. TFLOP/s = 4*B*H*N^2*D / time, halved for causal masks,
dense-equivalent for the sparse variants. Slow variants are time-boxed (--max-call-seconds), and the whole
run stops measuring after --budget-seconds: skipped cells say so.

Writes attention-bench.json and attention-bench.md to --out and prints the summary table last. Exits 1 when a
dfss cell is WRONG or failed, or the run was cut short by an error; 2 when it cannot run here.

--backward times training steps instead, forward + backward on the same inputs and dout: dfss fused 2:4, 1:2
and dense (dfss_attention_forward with lse, then dfss_attention_backward, through ctypes) against torch SDPA flash
and cuDNN (forward, then torch.autograd.grad), on N = 1024..8192, D = 64 and 128, float16, H = 16, B*N = 16K,
causal and not. The ratio of issue 5's target is dfss 2:4 fwd+bwd against dfss dense fwd+bwd (>= 1.2x at
N >= 2048). TFLOP/s there count forward + backward as 3.5x the forward's 4*B*H*N^2*D (halved for causal). The
forward output is checked as in the forward grid, and the gradients must be finite. Reports go to --out/backward.
"""

import argparse
import contextlib
import datetime
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ beside the sources in the checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

try:
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
except ImportError as error:  # --help and the argument checks work without PyTorch
    torch = None
    TORCH_MISSING = str(error)

from bench_report import write_reports  # noqa: E402
from dfss_ctypes import DfssError  # noqa: E402

GRID_SEQS = (512, 1024, 2048, 4096, 8192, 16384)
PAPER_SEQS = (256, 512, 1024, 2048, 4096)
DTYPE_NAMES = {"float16": "fp16", "bfloat16": "bf16"}

# key, label in the reports, kind, argument (pattern or SDPA backend name)
VARIANTS = (
    ("fused-2:4", "dfss fused 2:4", "dfss-fused", "2:4"),
    ("fused-1:2", "dfss fused 1:2", "dfss-fused", "1:2"),
    ("fused-dense", "dfss fused dense", "dfss-fused", "dense"),
    ("staged-2:4", "dfss staged 2:4", "dfss-staged", "2:4"),
    ("staged-call-2:4", "dfss staged 2:4, one call", "dfss-staged-call", "2:4"),
    ("flash", "torch SDPA flash", "sdpa", "FLASH_ATTENTION"),
    ("cudnn", "torch SDPA cuDNN", "sdpa", "CUDNN_ATTENTION"),
    ("unfused", "torch unfused", "unfused", None),
)
# The training-step variants of --backward: forward + backward.
BACKWARD_VARIANTS = (
    ("train-2:4", "dfss 2:4 fwd+bwd", "dfss-train", "2:4"),
    ("train-1:2", "dfss 1:2 fwd+bwd", "dfss-train", "1:2"),
    ("train-dense", "dfss dense fwd+bwd", "dfss-train", "dense"),
    ("train-flash", "torch flash fwd+bwd", "sdpa-train", "FLASH_ATTENTION"),
    ("train-cudnn", "torch cuDNN fwd+bwd", "sdpa-train", "CUDNN_ATTENTION"),
)
BACKWARD_SEQS = (1024, 2048, 4096, 8192)
# Forward + backward FLOPs as a multiple of the forward's (2 matrix products forward, 5 backward: dq, dk, dv,
# dP and the recomputed scores).
BACKWARD_FLOP_FACTOR = 3.5
VARIANT_KEYS = tuple(v[0] for v in VARIANTS + BACKWARD_VARIANTS)
DFSS_VARIANTS = tuple(v[0] for v in VARIANTS + BACKWARD_VARIANTS if v[2].startswith("dfss"))

# The speed-ups of issue 4's targets: baseline time / dfss time, computed wherever both cells were measured;
# the target applies to the rows `applies` accepts.
RATIOS = (
    {
        "key": "staged/unfused",
        "label": "staged 2:4 vs torch unfused",
        "dfss": "staged-2:4",
        "baseline": "unfused",
        "target": 1.38,
        "target_text": "target 1: >= 1.38x (the paper's 1.38-1.86x) on the paper config, every N",
        "applies": lambda s: s["suite"] == "paper",
    },
    {
        "key": "staged call/unfused",
        "label": "staged 2:4 in one call vs torch unfused",
        "dfss": "staged-call-2:4",
        "baseline": "unfused",
        "target": 1.38,
        "target_text": "target 1 with dfss_attention_staged (softmax folded into sddmm_prune and spmm)",
        "applies": lambda s: s["suite"] == "paper",
    },
    {
        "key": "2:4/dense",
        "label": "fused 2:4 vs fused dense",
        "dfss": "fused-2:4",
        "baseline": "fused-dense",
        "target": 1.3,
        "target_text": "target 2: >= 1.3x at N >= 1024, D = 64 and 128",
        "applies": lambda s: s["suite"] == "grid" and s["N"] >= 1024,
    },
    {
        "key": "2:4/flash",
        "label": "fused 2:4 vs torch flash",
        "dfss": "fused-2:4",
        "baseline": "flash",
        "target": 1.3,
        "target_text": "target 3: >= 1.3x at N >= 1024, D = 64 and 128",
        "applies": lambda s: s["suite"] == "grid" and s["N"] >= 1024,
    },
    {
        "key": "2:4/cudnn",
        "label": "fused 2:4 vs torch cuDNN",
        "dfss": "fused-2:4",
        "baseline": "cudnn",
        "target": 1.0,
        "target_text": "target 4: >= 1.0x at D = 64, N >= 2048",
        "applies": lambda s: s["suite"] == "grid" and s["D"] == 64 and s["N"] >= 2048,
    },
)

BACKWARD_RATIOS = (
    {
        "key": "train 2:4/dense",
        "label": "2:4 vs dense, fwd+bwd",
        "dfss": "train-2:4",
        "baseline": "train-dense",
        "target": 1.2,
        "target_text": "issue 5: dfss 2:4 fwd+bwd >= 1.2x dfss dense fwd+bwd at N >= 2048",
        "applies": lambda s: s["N"] >= 2048,
    },
)


def mode_tables(args):
    """(variants, ratios) of the run: the training-step tables with --backward, else the forward's."""
    return (BACKWARD_VARIANTS, BACKWARD_RATIOS) if args.backward else (VARIANTS, RATIOS)


def int_list(text):
    try:
        return [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got %r" % text)


def choice_list(choices):
    def parse(text):
        items = [x for x in text.split(",") if x]
        bad = [x for x in items if x not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError("expected a comma-separated subset of %s, got %r" % (",".join(choices), text))
        return items

    return parse


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="dfss attention against torch SDPA (flash, cuDNN) and unfused torch attention, on one GPU.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--lib", help="libdfss.so to load (default: $DFSS_LIBRARY, else build/cuda/lib, else bundle/dfss-gpu/lib)")
    p.add_argument("--out", default=os.environ.get("OUT") or "build/bench", help="folder for attention-bench.json and .md ($OUT when set)")
    p.add_argument("--quick", action="store_true", help="a short run: grid suite, D=64, N=1024,4096, float16, no causal (other flags still apply)")
    p.add_argument("--backward", action="store_true", help="time forward + backward (training steps) instead: N=%s, D=64,128, float16, H=16, B*N=16K, causal both; reports in --out/backward" % ",".join(map(str, BACKWARD_SEQS)))
    p.add_argument("--suite", type=choice_list(("grid", "paper")), help="grid (issue 4's grid), paper (the paper's table); default both (grid with --quick)")
    p.add_argument("--dims", type=int_list, help="head dims D of the grid (default 64,128)")
    p.add_argument("--seqs", type=int_list, help="sequence lengths N of the grid (default %s)" % ",".join(map(str, GRID_SEQS)))
    p.add_argument("--paper-seqs", type=int_list, default=list(PAPER_SEQS), help="sequence lengths of the paper suite")
    p.add_argument("--dtypes", type=choice_list(tuple(DTYPE_NAMES)), help="dtypes of the grid (default float16,bfloat16)")
    p.add_argument("--causal", choices=("no", "yes", "both"), help="causal masks in the grid (default both)")
    p.add_argument("--heads", type=int, default=16, help="heads H of the grid")
    p.add_argument("--tokens", type=int, default=16384, help="batch * N of the grid")
    p.add_argument("--variants", type=choice_list(VARIANT_KEYS), help="variants to run (default: every variant of the mode: %s; with --backward: %s)" % (",".join(v[0] for v in VARIANTS), ",".join(v[0] for v in BACKWARD_VARIANTS)))
    p.add_argument("--reps", type=int, default=30, help="timed calls per cell at most")
    p.add_argument("--min-reps", type=int, default=3, help="timed calls per cell at least")
    p.add_argument("--cell-seconds", type=float, default=0.5, help="GPU time aimed at per cell (sets the reps between the bounds)")
    p.add_argument("--max-call-seconds", type=float, default=2.0, help="a variant whose call takes longer (measured or predicted) is skipped at that shape")
    p.add_argument("--budget-seconds", type=float, default=480.0, help="stop measuring after this long; the remaining cells are marked skipped")
    p.add_argument("--rotate-mib", type=int, default=256, help="input sets rotate until their total reaches this size (L2 is 50 MiB on H100/H200)")
    p.add_argument("--check-rows", type=int, default=32, help="query rows per sampled head checked against the reference semantics")
    p.add_argument("--no-check", action="store_true", help="skip the correctness checks")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    mode_variants = [v[0] for v in mode_tables(args)[0]]
    args.variants = args.variants or mode_variants
    if any(v not in mode_variants for v in args.variants):
        p.error("--variants: expected a subset of %s%s" % (",".join(mode_variants), " (with --backward)" if args.backward else ""))
    if args.backward:
        args.suite = ["backward"]
        args.seqs = args.seqs or ([2048, 4096] if args.quick else list(BACKWARD_SEQS))
        args.dims = args.dims or ([64] if args.quick else [64, 128])
        args.dtypes = args.dtypes or ["float16"]
        args.causal = args.causal or ("no" if args.quick else "both")
    if args.quick:
        args.suite = args.suite or ["grid"]
        args.dims = args.dims or [64]
        args.seqs = args.seqs or [1024, 4096]
        args.dtypes = args.dtypes or ["float16"]
        args.causal = args.causal or "no"
    args.suite = args.suite or ["grid", "paper"]
    args.dims = args.dims or [64, 128]
    args.seqs = args.seqs or list(GRID_SEQS)
    args.dtypes = args.dtypes or list(DTYPE_NAMES)
    args.causal = args.causal or "both"
    for name in ("heads", "tokens", "reps", "min_reps", "check_rows", "rotate_mib"):
        if getattr(args, name) < 1:
            p.error("--%s: expected an integer >= 1, got %d" % (name.replace("_", "-"), getattr(args, name)))
    if any(n < 1 for n in args.seqs + args.paper_seqs + args.dims):
        p.error("--seqs, --paper-seqs, --dims: expected positive integers")
    if args.min_reps > args.reps:
        p.error("--min-reps (%d) must not exceed --reps (%d)" % (args.min_reps, args.reps))
    return args


def shapes_of(args):
    """Every shape of the run: the paper suite first (small), then the grid by N ascending, so that a run cut
    by its budget loses the largest shapes."""
    shapes = []
    if args.backward:
        masks = {"no": [False], "yes": [True], "both": [False, True]}[args.causal]
        for n in sorted(args.seqs):
            for d in args.dims:
                for dtype in args.dtypes:
                    for causal in masks:
                        shapes.append(dict(suite="backward", B=max(1, args.tokens // n), H=args.heads, N=n, D=d, dtype=dtype, causal=causal))
        for s in shapes:
            s["flops"] = BACKWARD_FLOP_FACTOR * 4 * s["B"] * s["H"] * s["N"] ** 2 * s["D"] / (2 if s["causal"] else 1)
        return shapes
    if "paper" in args.suite:
        for n in args.paper_seqs:
            shapes.append(dict(suite="paper", B=24 if n >= 4096 else 48, H=4, N=n, D=64, dtype="bfloat16", causal=False))
    if "grid" in args.suite:
        masks = {"no": [False], "yes": [True], "both": [False, True]}[args.causal]
        for n in sorted(args.seqs):
            for d in args.dims:
                for dtype in args.dtypes:
                    for causal in masks:
                        shapes.append(dict(suite="grid", B=max(1, args.tokens // n), H=args.heads, N=n, D=d, dtype=dtype, causal=causal))
    for s in shapes:
        s["flops"] = 4 * s["B"] * s["H"] * s["N"] ** 2 * s["D"] / (2 if s["causal"] else 1)
    return shapes


def shape_label(s):
    return "%s D=%d N=%d B=%d H=%d %s%s" % (s["suite"], s["D"], s["N"], s["B"], s["H"], DTYPE_NAMES[s["dtype"]], " causal" if s["causal"] else "")


class Skip(Exception):
    """A cell that is not measured: its status, and why."""

    def __init__(self, status, message=None):
        super().__init__(status)
        self.status = status
        self.message = message


class Harness:
    def __init__(self, args, dfss):
        self.args = args
        self.dfss = dfss
        self.variants = mode_tables(args)[0]
        self.train_gradients = None  # dq, dk, dv of the dfss training step being measured, for its check
        self.device = torch.device("cuda", torch.cuda.current_device())
        self.started = time.monotonic()
        self.best_rate = {}  # variant -> best FLOP/s seen, to predict which calls would be too slow
        self.staged_metadata = None  # the metadata buffer of the staged variant being measured, for its check
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(args.seed)

    # ----- inputs

    def input_sets(self, s):
        dtype = getattr(torch, s["dtype"])
        shape = (s["B"], s["H"], s["N"], s["D"])
        tensor_bytes = math.prod(shape) * 2
        free, _ = torch.cuda.mem_get_info()
        count = max(2, math.ceil(self.args.rotate_mib * 2**20 / (4 * tensor_bytes)))
        count = max(1, min(count, 16, int(free * 0.25 // (4 * tensor_bytes))))
        return [tuple(torch.randn(shape, generator=self.generator, device=self.device, dtype=dtype) for _ in range(3)) for _ in range(count)]

    # ----- variants

    def runner(self, key, kind, arg, s, sets):
        """(call(i) -> output tensor of input set i, context manager to hold around the calls)."""
        if kind == "dfss-fused":
            outs = [torch.full_like(q, math.nan) for q, _, _ in sets]  # NaN: an element never written shows up
            desc = self.dfss.desc(*sets[0], outs[0], arg, causal=s["causal"])

            def fused(i):
                q, k, v = sets[i]
                self.dfss.attention_forward(desc, q, k, v, outs[i])
                return outs[i]

            return fused, contextlib.nullcontext()
        if kind == "dfss-staged":
            outs = [torch.full_like(q, math.nan) for q, _, _ in sets]
            desc = self.dfss.desc(*sets[0], outs[0], arg, causal=s["causal"])
            values, metadata = self.dfss.compressed_buffers(desc, sets[0][0].dtype, self.device)
            self.staged_metadata = metadata

            def staged(i):
                q, k, v = sets[i]
                self.dfss.sddmm_prune(desc, q, k, values, metadata)
                self.dfss.compressed_softmax(desc, values, values)  # in place
                self.dfss.spmm(desc, values, metadata, v, outs[i])
                return outs[i]

            return staged, contextlib.nullcontext()
        if kind == "dfss-staged-call":
            outs = [torch.full_like(q, math.nan) for q, _, _ in sets]
            desc = self.dfss.desc(*sets[0], outs[0], arg, causal=s["causal"])
            workspace = self.dfss.workspace("attention_staged", desc, self.device)

            def staged_call(i):
                q, k, v = sets[i]
                self.dfss.attention_staged(desc, q, k, v, outs[i], workspace)
                return outs[i]

            return staged_call, contextlib.nullcontext()
        if kind == "dfss-train":
            outs = [torch.full_like(q, math.nan) for q, _, _ in sets]
            lses = [torch.full(q.shape[:3], math.nan, dtype=torch.float32, device=self.device) for q, _, _ in sets]
            dout = torch.randn(sets[0][0].shape, generator=self.generator, device=self.device, dtype=sets[0][0].dtype)
            gradients = tuple(torch.full_like(t, math.nan) for t in sets[0])
            self.train_gradients = gradients
            desc = self.dfss.desc(*sets[0], outs[0], arg, causal=s["causal"])
            workspace = self.dfss.workspace("attention_backward", desc, self.device)

            def train(i):
                q, k, v = sets[i]
                self.dfss.attention_forward(desc, q, k, v, outs[i], lses[i])
                self.dfss.attention_backward(desc, q, k, v, outs[i], dout, lses[i], *gradients, workspace)
                return outs[i]

            return train, contextlib.nullcontext()
        if kind == "sdpa-train":
            leaves = [tuple(t.detach().requires_grad_() for t in inputs) for inputs in sets]
            dout = torch.randn(sets[0][0].shape, generator=self.generator, device=self.device, dtype=sets[0][0].dtype)

            def sdpa_train(i):
                q, k, v = leaves[i]
                out = F.scaled_dot_product_attention(q, k, v, is_causal=s["causal"])
                torch.autograd.grad(out, (q, k, v), dout)
                return out.detach()

            return sdpa_train, sdpa_kernel(getattr(SDPBackend, arg))
        if kind == "sdpa":

            def sdpa(i):
                q, k, v = sets[i]
                return F.scaled_dot_product_attention(q, k, v, is_causal=s["causal"])

            return sdpa, sdpa_kernel(getattr(SDPBackend, arg))
        if kind == "unfused":
            b, h, n, d = s["B"], s["H"], s["N"], s["D"]
            # The scale is folded into q beforehand (as models fold it into the query projection), so that the
            # timed work is exactly bmm, softmax, bmm: the baseline at its fastest.
            scaled_q = [(q * (1.0 / math.sqrt(d))).view(b * h, n, d) for q, _, _ in sets]
            masked = torch.ones(n, n, dtype=torch.bool, device=self.device).triu_(1) if s["causal"] else None

            def unfused(i):
                k, v = (t.view(b * h, n, d) for t in sets[i][1:])
                scores = torch.bmm(scaled_q[i], k.transpose(1, 2))
                if masked is not None:
                    scores.masked_fill_(masked, -math.inf)
                return torch.bmm(torch.softmax(scores, dim=-1), v).view(b, h, n, d)

            return unfused, contextlib.nullcontext()
        raise AssertionError(kind)

    # ----- checks

    def sample(self, s):
        """(batch, head) pairs and query rows checked against the reference: first and last head, the first
        and last rows (the causal extremes) and random rows between."""
        pairs = sorted({(0, 0), (s["B"] - 1, s["H"] - 1)})
        count = min(self.args.check_rows, s["N"])
        middle = torch.randperm(max(s["N"] - 2, 0), generator=torch.Generator().manual_seed(self.args.seed))[: max(count - 2, 0)] + 1
        rows = torch.unique(torch.cat([torch.tensor([0, s["N"] - 1]), middle]))[:count]
        return pairs, rows.to(self.device)

    def check(self, key, kind, pattern, s, sets, out, reference_cache):
        """(ok, text) of the output of input set 0."""
        import dfss_reference as ref

        q, k, v = sets[0]
        dtype = q.dtype
        texts = []
        ok = True
        if pattern == "dense":
            expected = F.scaled_dot_product_attention(q, k, v, is_causal=s["causal"])
            good, text = ref.compare(out, expected, dtype)
            ok &= good
            texts.append("vs torch SDPA: " + text)
        pairs, rows = self.sample(s)
        scale = 1.0 / math.sqrt(s["D"])
        for b, h in pairs:
            cache_key = (pattern, b, h)
            if cache_key not in reference_cache:
                reference_cache[cache_key] = ref.attention_rows(q[b, h], k[b, h], v[b, h], rows, pattern, s["causal"], scale)
            expected, keep, group_margin = reference_cache[cache_key]
            clear = ref.clear_rows(group_margin)
            good, text = ref.compare(out[b, h][rows], expected, dtype, clear)
            ok &= good
            left_out = 0 if clear is None else int((~clear).sum())
            texts.append("b%d h%d vs reference: %s%s" % (b, h, text, ", %d near-tie rows left out" % left_out if left_out else ""))
            if kind == "dfss-train":
                finite = all(bool(torch.isfinite(g).all()) for g in self.train_gradients)
                ok &= finite
                texts.append("b%d h%d dq, dk, dv %s" % (b, h, "finite" if finite else "NOT FINITE (NaN: an element never written)"))
            if kind == "dfss-staged":
                n, m = ref.PATTERN_NM[pattern]
                good, text = ref.compare_metadata(self.staged_metadata[b, h][rows], keep, group_margin, n, m)
                ok &= good
                texts.append("b%d h%d %s" % (b, h, text))
        return ok, "; ".join(texts)

    # ----- timing

    def time_calls(self, call, count, reps, first_call_s):
        """Median GPU milliseconds of `reps` calls rotating over `count` input sets, and every time."""
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        torch.cuda.synchronize()
        if hasattr(torch.cuda, "_sleep"):
            # Holds the GPU while the host queues the timed calls, so that a call whose GPU time is shorter
            # than its host time is timed on the GPU alone. The host side of a call takes less than its
            # first (wall-clock) run and, past that, less than 200 us; clocks run at ~2 GHz.
            torch.cuda._sleep(int((reps * min(first_call_s, 2e-4) + 1e-3) * 2e9))
        for r in range(reps):
            starts[r].record()
            call((r + 1) % count)
            ends[r].record()
        torch.cuda.synchronize()
        times = [a.elapsed_time(b) for a, b in zip(starts, ends)]
        return statistics.median(times), times

    def cell(self, variant, s, sets, reference_cache):
        key, label, kind, arg = variant
        result = {"status": "ok"}
        if time.monotonic() - self.started > self.args.budget_seconds:
            raise Skip("skipped (budget)")
        if key in self.best_rate and s["flops"] / self.best_rate[key] > self.args.max_call_seconds:
            predicted = s["flops"] / self.best_rate[key]
            raise Skip("skipped (slow)", "a call would take about %.1f s at the best rate seen so far" % predicted)
        call, context = self.runner(key, kind, arg, s, sets)
        with context:
            begin = time.perf_counter()
            out = call(0)
            torch.cuda.synchronize()
            first = time.perf_counter() - begin
            if first > self.args.max_call_seconds:
                # A first call may carry one-off costs (module loading, cuDNN plans; torch's flash backward took
                # over 2 s), so a second call decides: one that slow too is slow.
                del out
                begin = time.perf_counter()
                out = call(0)
                torch.cuda.synchronize()
                second = time.perf_counter() - begin
                if second > self.args.max_call_seconds:
                    self.best_rate[key] = max(self.best_rate.get(key, 0.0), s["flops"] / second)
                    raise Skip("skipped (slow)", "the first two calls took %.1f and %.1f s" % (first, second))
                first = second
            if not self.args.no_check and kind.startswith("dfss"):
                ok, text = self.check(key, kind, arg, s, sets, out, reference_cache)
                result["check"] = text
                if not ok:
                    result["status"] = "WRONG"
            del out
            if first < 0.2:
                call(1 % len(sets))  # a second warm-up where it is cheap
            reps = max(self.args.min_reps, min(self.args.reps, int(self.args.cell_seconds / first)))
            ms, times = self.time_calls(call, len(sets), reps, first)
        self.best_rate[key] = max(self.best_rate.get(key, 0.0), s["flops"] / (ms / 1e3))
        result.update(ms=ms, tflops=s["flops"] / (ms / 1e3) / 1e12, reps=reps, times_ms=[round(t, 5) for t in times])
        return result

    def run_shape(self, s):
        cells = {}
        if time.monotonic() - self.started > self.args.budget_seconds:
            return {v[0]: {"status": "skipped (budget)"} for v in self.variants if v[0] in self.args.variants}
        try:
            sets = self.input_sets(s)
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            return {v[0]: {"status": "out of memory"} for v in self.variants if v[0] in self.args.variants}
        reference_cache = {}
        for variant in self.variants:
            key, label = variant[0], variant[1]
            if key not in self.args.variants:
                continue
            try:
                cells[key] = self.cell(variant, s, sets, reference_cache)
            except Skip as skip:
                cells[key] = {"status": skip.status}
                if skip.message:
                    cells[key]["message"] = skip.message
            except DfssError as error:
                cells[key] = {"status": "error", "message": str(error)}  # carries dfss_last_error_message()
            except torch.OutOfMemoryError:
                cells[key] = {"status": "out of memory"}
            except RuntimeError as error:  # e.g. an SDPA backend that cannot run this shape
                text = " ".join(str(error).split())[:500]
                unsupported = "No available kernel" in text or "No viable backend" in text
                cells[key] = {"status": "unsupported" if unsupported else "error", "message": text}
            finally:
                self.staged_metadata = None
                self.train_gradients = None
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
            c = cells[key]
            detail = "%8.3f ms %7.1f TFLOP/s" % (c["ms"], c["tflops"]) if "ms" in c else ""
            print("  %-17s %-17s %s%s" % (label, c["status"], detail, ("  " + c.get("check", c.get("message", ""))) if c["status"] != "ok" or "message" in c else ""), flush=True)
        del sets
        torch.cuda.empty_cache()
        return cells


def ratio_rows(shape, cells, ratio_table=RATIOS):
    """Each ratio of ratio_table where both cells were measured cleanly or its target applies (value None: not
    measured)."""
    ratios = {}
    for r in ratio_table:
        fast, base = cells.get(r["dfss"], {}), cells.get(r["baseline"], {})
        measured = fast.get("status") == "ok" and base.get("status") == "ok"
        applies = r["applies"](shape)
        if not (measured or applies):
            continue
        value = base["ms"] / fast["ms"] if measured else None
        ratios[r["key"]] = {"value": value, "target_applies": applies, "met": value >= r["target"] if measured and applies else None}
    return ratios


def print_comparisons(rows):
    """dfss 2:4 fwd+bwd against torch flash and cuDNN fwd+bwd (baseline time / dfss time), per shape: no target,
    for comparison."""
    print("\ndfss 2:4 fwd+bwd speed-up over torch fwd+bwd (baseline time / dfss time; no target):")
    for row in rows:
        cells = row["cells"]
        fast = cells.get("train-2:4", {})
        texts = []
        for key, name in (("train-flash", "flash"), ("train-cudnn", "cuDNN")):
            base = cells.get(key, {})
            measured = fast.get("status") == "ok" and base.get("status") == "ok"
            texts.append("vs %s %s" % (name, "%.2fx" % (base["ms"] / fast["ms"]) if measured else "-"))
        print("  %s: %s" % (shape_label(row["shape"]), ", ".join(texts)))


def git_commit():
    root = Path(__file__).resolve().parents[2]
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if torch is None:
        print("bench_attention: PyTorch is needed to run the benchmark (%s)" % TORCH_MISSING, file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("bench_attention: PyTorch sees no CUDA device; run this on a GPU host", file=sys.stderr)
        return 2
    from dfss_torch import DfssTorch

    try:
        dfss = DfssTorch(args.lib)
    except (OSError, RuntimeError) as error:  # not found, not loadable, another ABI version
        print("bench_attention: %s" % error, file=sys.stderr)
        return 2
    dfss.lib.device_set(torch.cuda.current_device())  # the device whose memory torch hands out
    info = dfss.lib.device_info(torch.cuda.current_device())
    meta = {
        "card": torch.cuda.get_device_name(),
        "compute_capability": info["compute_capability"],
        "sparse_tensor_cores": info["sparse_tensor_cores"],
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "libdfss": dfss.lib.version(),
        "library": str(dfss.lib.path),
        "commit": git_commit(),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, sys.argv[0]] + (sys.argv[1:] if argv is None else argv)),
        "timing": "median of CUDA-event times per call after warm-up; inputs rotated over sets of >= %d MiB" % args.rotate_mib,
    }
    print("dfss attention bench on %s (sm_%s), torch %s, CUDA %s, libdfss %s (%s)" % (meta["card"], meta["compute_capability"].replace(".", ""), meta["torch"], meta["cuda"], meta["libdfss"], meta["library"]), flush=True)
    harness = Harness(args, dfss)
    mode_variants, mode_ratios = mode_tables(args)
    if args.backward:
        meta["flops"] = "forward + backward = %.1f x 4*B*H*N^2*D (halved for causal)" % BACKWARD_FLOP_FACTOR
    rows = []
    try:
        for shape in shapes_of(args):
            print(shape_label(shape), flush=True)
            cells = harness.run_shape(shape)
            rows.append({"shape": shape, "cells": cells, "ratios": ratio_rows(shape, cells, mode_ratios)})
    except Exception as error:  # e.g. a CUDA error that poisons the context: what was measured is still reported
        meta["aborted"] = "%s: %s" % (type(error).__name__, " ".join(str(error).split())[:500])
        print("bench_attention: run aborted: " + meta["aborted"], file=sys.stderr, flush=True)
    meta["seconds"] = round(time.monotonic() - harness.started, 1)
    variants = [{"key": v[0], "label": v[1]} for v in mode_variants if v[0] in args.variants]
    ratios = [{k: r[k] for k in ("key", "label", "dfss", "baseline", "target", "target_text")} for r in mode_ratios]
    out_dir = Path(args.out) / "backward" if args.backward else Path(args.out)
    table = write_reports(out_dir, meta, variants, ratios, rows)
    print()
    print(table)
    if args.backward:
        print_comparisons(rows)
    dfss_failed = any(c["status"] in ("WRONG", "error") for row in rows for key, c in row["cells"].items() if key in DFSS_VARIANTS)
    return 1 if dfss_failed or "aborted" in meta else 0


if __name__ == "__main__":
    sys.exit(main())
