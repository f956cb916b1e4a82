"""The DFSS semantics of dfss.h in plain PyTorch, for a sample of query rows of one (batch, head), and the
comparisons the benchmark harness makes against it.

Scores are computed in float64 (the library accumulates in float32: the two differ by ~1e-6, far below the
near-tie margin below). Where the N-th and (N+1)-th largest scores of a group are closer than TIE_MARGIN, the
library may keep either key; such rows (for outputs) and groups (for metadata) are left out of the checks.
"""

import math

import torch

PATTERN_NM = {"dense": None, "1:2": (1, 2), "2:4": (2, 4)}
TIE_MARGIN = 1e-4

# |actual - expected| <= atol + rtol * |expected|, per dtype. They allow the one rounding of p that a
# flash-style kernel does differently (unnormalized exp values) and the output's rounding to the dtype.
TOLERANCES = {torch.float16: (2e-3, 1e-2), torch.bfloat16: (1.6e-2, 2e-2), torch.float32: (1e-4, 1e-3)}


def keep_mask(scores, n, m):
    """Which keys of each row survive N:M pruning (lower index wins ties; -inf ranked like any value), and
    each group's margin: N-th minus (N+1)-th largest score (+inf where the latter is -inf: no choice to
    make). scores [R, Nk] -> keep [R, G*M] bool (positions past Nk included: they fill groups cut by the end
    of the row), margin [R, G]."""
    rows, nk = scores.shape
    groups = math.ceil(nk / m)
    padded = torch.nn.functional.pad(scores, (0, groups * m - nk), value=-math.inf).view(rows, groups, m)
    index = torch.arange(m, device=scores.device)
    lower = index.view(1, m) < index.view(m, 1)  # [j, l]: key l comes before key j
    other = padded.unsqueeze(-2)  # [R, G, 1, l]
    this = padded.unsqueeze(-1)  # [R, G, j, 1]
    rank = ((other > this) | ((other == this) & lower)).sum(-1)  # keys that beat key j
    keep = (rank < n).view(rows, groups * m)
    ordered = padded.sort(-1, descending=True).values
    kept_last, dropped_first = ordered[..., n - 1], ordered[..., n]
    margin = torch.where(torch.isfinite(dropped_first), kept_last - dropped_first, torch.full_like(kept_last, math.inf))
    return keep, margin


def attention_rows(q, k, v, rows, pattern, causal, scale):
    """DFSS attention of query rows `rows` (LongTensor) of one (batch, head): q [Nq, D], k [Nk, D], v [Nk, Dv].
    Returns the output [R, Dv] as float32 values of q's dtype, the keep mask [R, G*M] and the group margins
    [R, G] (both None for dense)."""
    nq, nk = q.shape[0], k.shape[0]
    s = scale * (q[rows].double() @ k.double().T)
    if causal:
        keys = torch.arange(nk, device=q.device)
        allowed = keys.view(1, nk) <= rows.view(-1, 1) + (nk - nq)  # bottom-right aligned
        s = s.masked_fill(~allowed, -math.inf)
    keep, group_margin = None, None
    if PATTERN_NM[pattern] is not None:
        keep, group_margin = keep_mask(s, *PATTERN_NM[pattern])
        s = s.masked_fill(~keep[:, :nk], -math.inf)
    finite = torch.isfinite(s)
    row_max = s.amax(-1, keepdim=True)
    has_score = torch.isfinite(row_max)
    e = torch.where(finite, torch.exp(s - torch.where(has_score, row_max, torch.zeros_like(row_max))), torch.zeros_like(s))
    p = e / e.sum(-1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    p = p.to(q.dtype).double()  # as the tensor cores see it
    out = torch.where(has_score, p @ v.double(), torch.zeros((), dtype=torch.float64, device=q.device))
    return out.to(q.dtype).float(), keep, group_margin


def clear_rows(group_margin):
    """Rows whose every group has a clear choice (margin >= TIE_MARGIN); all rows for dense (None)."""
    return None if group_margin is None else group_margin.amin(-1) >= TIE_MARGIN


def compare(actual, expected, dtype, rows_used=None):
    """(ok, text) of actual vs expected (same shape, any float dtype) under TOLERANCES[dtype]; rows_used
    (bool per row of the first dimension) leaves rows out."""
    atol, rtol = TOLERANCES[dtype]
    a, e = actual.float(), expected.float()
    if rows_used is not None:
        a, e = a[rows_used], e[rows_used]
    if a.numel() == 0:
        return True, "no row to compare"
    if not torch.isfinite(a).all():
        return False, "%d non-finite values" % int((~torch.isfinite(a)).sum())
    error = (a - e).abs()
    bad = error > atol + rtol * e.abs()
    text = "max |err| %.2e (atol %g, rtol %g)" % (float(error.max()), atol, rtol)
    if bad.any():
        return False, "%d of %d values off, %s" % (int(bad.sum()), bad.numel(), text)
    return True, text


def decode_kept_keys(metadata_row, n, m, groups):
    """Key indices kept by one compressed row of `groups` groups, from its metadata words (dfss.h layout):
    [groups * N] int64."""
    bits = max(1, math.ceil(math.log2(m)))
    slots = torch.arange(groups * n, device=metadata_row.device)
    words = metadata_row.long() & 0xFFFFFFFF
    first_bit = slots * bits
    in_group = (words[first_bit // 32] >> (first_bit % 32)) & ((1 << bits) - 1)
    return (slots // n) * m + in_group


def compare_metadata(metadata_rows, keep, group_margin_rows, n, m):
    """(ok, text): the kept keys decoded from metadata [R, W] against the reference keep mask [R, G*M], on the
    groups whose margin is at least TIE_MARGIN ([R, G])."""
    groups = keep.shape[1] // m
    index = torch.arange(groups * m, device=keep.device).view(groups, m)
    mismatched = 0
    compared = 0
    for r in range(metadata_rows.shape[0]):
        decoded = decode_kept_keys(metadata_rows[r], n, m, groups).view(groups, n)
        # The reference's kept keys of each group in ascending order (exactly n per group).
        expected = index.masked_select(keep[r].view(groups, m)).view(groups, n)
        clear = group_margin_rows[r] >= TIE_MARGIN
        compared += int(clear.sum())
        mismatched += int((decoded != expected).any(-1)[clear].sum())
    if mismatched:
        return False, "metadata: %d of %d groups keep other keys" % (mismatched, compared)
    return True, "metadata: %d groups agree" % compared
