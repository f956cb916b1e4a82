"""The reports of bench_attention.py: attention-bench.json (everything measured), attention-bench.md (tables to
paste into bench/RESULTS.md) and the short terminal table. Needs no PyTorch.

Input: meta (dict of strings), variants [{key, label}], ratios [{key, label, dfss, baseline, target,
target_text}], rows [{shape: {suite, B, H, N, D, dtype, causal, flops}, cells: {variant key: {status, ms?,
tflops?, reps?, check?, message?}}, ratios: {ratio key: {value, target_applies, met}}}]; a ratio is present
where both of its cells were measured or its target applies (value None: not measured; met None: no target).
"""

import json
from pathlib import Path

JSON_NAME = "attention-bench.json"
MARKDOWN_NAME = "attention-bench.md"
DTYPE_NAMES = {"float16": "fp16", "bfloat16": "bf16"}
SHORT_STATUS = {
    "WRONG": "WRONG",
    "skipped (slow)": "slow",
    "skipped (budget)": "budget",
    "unsupported": "unsup",
    "error": "ERROR",
    "out of memory": "oom",
}
SHAPE_COLUMNS = ("suite", "D", "N", "B", "H", "dtype", "causal")
FAILURES_SHOWN = 10  # on the terminal


def shape_cells(shape):
    return [shape["suite"], str(shape["D"]), str(shape["N"]), str(shape["B"]), str(shape["H"]), DTYPE_NAMES.get(shape["dtype"], shape["dtype"]), "yes" if shape["causal"] else "no"]


def shape_text(shape):
    return "%s D=%d N=%d B=%d %s%s" % (shape["suite"], shape["D"], shape["N"], shape["B"], DTYPE_NAMES.get(shape["dtype"], shape["dtype"]), " causal" if shape["causal"] else "")


def ratio_text(ratio, markdown=False):
    if ratio is None or ratio["value"] is None:
        return "-"
    text = "%.2f" % ratio["value"]
    if not ratio["target_applies"]:
        return text
    if markdown:
        return "**%s** %s" % (text, "met" if ratio["met"] else "MISSED")
    return text + (" ok" if ratio["met"] else " MISS")


def target_summaries(ratios, rows):
    """One line per target: where it applies, how often it is met, the worst shape."""
    lines = []
    for r in ratios:
        targeted = [row for row in rows if r["key"] in row["ratios"] and row["ratios"][r["key"]]["target_applies"]]
        applicable = [row for row in targeted if row["ratios"][r["key"]]["value"] is not None]
        unmeasured = len(targeted) - len(applicable)
        if not applicable:
            lines.append("%s (%s): not measured%s" % (r["target_text"], r["label"], " at the %d shapes it applies to" % unmeasured if unmeasured else " (no shape of this run)"))
            continue
        met = sum(1 for row in applicable if row["ratios"][r["key"]]["met"])
        worst = min(applicable, key=lambda row: row["ratios"][r["key"]]["value"])
        best = max(applicable, key=lambda row: row["ratios"][r["key"]]["value"])
        line = "%s (%s): met at %d of %d shapes; worst %.2fx (%s), best %.2fx (%s)" % (
            r["target_text"],
            r["label"],
            met,
            len(applicable),
            worst["ratios"][r["key"]]["value"],
            shape_text(worst["shape"]),
            best["ratios"][r["key"]]["value"],
            shape_text(best["shape"]),
        )
        if unmeasured:
            line += "; %d more shapes not measured" % unmeasured
        lines.append(line)
    return lines


def problems(variants, rows):
    """(shape, variant label, status, detail) of every cell that is not a clean measurement."""
    labels = {v["key"]: v["label"] for v in variants}
    found = []
    for row in rows:
        for key, cell in row["cells"].items():
            if cell["status"] != "ok" or "message" in cell:
                found.append((shape_text(row["shape"]), labels[key], cell["status"], cell.get("message") or cell.get("check") or ""))
    return found


def align(table):
    widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
    return "\n".join("  ".join(cell.rjust(w) if c > 0 else cell.ljust(w) for c, (cell, w) in enumerate(zip(r, widths))).rstrip() for r in table)


def terminal_table(meta, variants, ratios, rows):
    heads = SHAPE_COLUMNS.index("H")  # implied by the suite: left out of the terminal table
    header = [c for c in SHAPE_COLUMNS if c != "H"] + [v["key"] for v in variants] + ["|"] + [r["key"] for r in ratios]
    table = [header]
    for row in rows:
        cells = []
        for v in variants:
            cell = row["cells"].get(v["key"], {"status": "-"})
            if cell["status"] == "ok":
                cells.append("%.3g" % cell["tflops"])
            else:
                cells.append(SHORT_STATUS.get(cell["status"], cell["status"]))
        shape = shape_cells(row["shape"])
        del shape[heads]
        table.append(shape + cells + ["|"] + [ratio_text(row["ratios"].get(r["key"])) for r in ratios])
    lines = [
        "dfss attention bench: %s (sm_%s), %s; torch %s, CUDA %s, libdfss %s%s; %ss"
        % (meta["card"], meta["compute_capability"].replace(".", ""), meta["date"], meta["torch"], meta["cuda"], meta["libdfss"], ", commit " + meta["commit"] if meta.get("commit") else "", meta.get("seconds", "?")),
    ]
    if meta.get("aborted"):
        lines.append("RUN ABORTED after the rows below: " + meta["aborted"])
    lines += [
        "TFLOP/s = 4*B*H*N^2*D / time (halved for causal, dense-equivalent for sparse); speed-ups = baseline time / dfss time;",
        "'ok' / 'MISS': the ratio's issue-4 target applies to that row. Cells: WRONG (failed check), slow, budget (skipped), unsup, ERROR, oom.",
        align(table),
    ]
    lines += target_summaries(ratios, rows)
    bad = problems(variants, rows)
    wrong = [p for p in bad if p[2] in ("WRONG", "error")]
    if wrong:
        lines.append("failed cells (all of them, with details, in %s):" % MARKDOWN_NAME)
        lines += ["  %s, %s: %s: %s" % (s, v, status, detail[:300]) for s, v, status, detail in wrong[:FAILURES_SHOWN]]
        if len(wrong) > FAILURES_SHOWN:
            lines.append("  ... and %d more" % (len(wrong) - FAILURES_SHOWN))
    return "\n".join(lines)


def markdown(meta, variants, ratios, rows, table):
    md = ["# dfss attention benchmark: %s, %s" % (meta["card"], meta["date"]), ""]
    for key in ("card", "compute_capability", "sparse_tensor_cores", "date", "torch", "cuda", "cudnn", "libdfss", "library", "commit", "command", "timing", "seconds", "aborted"):
        if key in meta:
            md.append("- %s: %s" % (key.replace("_", " "), "`%s`" % meta[key] if key in ("command", "library") else meta[key]))
    md += ["", "## Targets (issue 4)", ""]
    md += ["- " + line for line in target_summaries(ratios, rows)]
    md += ["", "## Speed-ups of dfss (baseline time / dfss time; bold where the target applies)", ""]
    header = list(SHAPE_COLUMNS) + [r["label"] for r in ratios]
    md.append("| " + " | ".join(header) + " |")
    md.append("|" + "---|" * len(header))
    for row in rows:
        md.append("| " + " | ".join(shape_cells(row["shape"]) + [ratio_text(row["ratios"].get(r["key"]), markdown=True) for r in ratios]) + " |")
    md += ["", "## Times (ms per call, median; TFLOP/s dense-equivalent)", ""]
    header = list(SHAPE_COLUMNS) + [v["label"] for v in variants]
    md.append("| " + " | ".join(header) + " |")
    md.append("|" + "---|" * len(header))
    for row in rows:
        cells = []
        for v in variants:
            cell = row["cells"].get(v["key"], {"status": "-"})
            if "ms" in cell:
                text = "%.3f ms, %.1f" % (cell["ms"], cell["tflops"])
                cells.append(text if cell["status"] == "ok" else "%s (%s)" % (cell["status"], text))
            else:
                cells.append(cell["status"])
        md.append("| " + " | ".join(shape_cells(row["shape"]) + cells) + " |")
    bad = problems(variants, rows)
    if bad:
        md += ["", "## Cells not measured cleanly", ""]
        md += ["- %s, %s: %s%s" % (s, v, status, ": " + detail.replace("\n", " ") if detail else "") for s, v, status, detail in bad]
    md += ["", "## Terminal summary", "", "```", table, "```", ""]
    return "\n".join(md)


def write_reports(out_dir, meta, variants, ratios, rows):
    """Writes the JSON and markdown reports into out_dir and returns the terminal table."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = terminal_table(meta, variants, ratios, rows)
    (out_dir / JSON_NAME).write_text(json.dumps({"meta": meta, "variants": variants, "ratios": ratios, "rows": rows}, indent=1) + "\n")
    (out_dir / MARKDOWN_NAME).write_text(markdown(meta, variants, ratios, rows, table))
    return table + "\nwritten: %s, %s" % (out_dir / JSON_NAME, out_dir / MARKDOWN_NAME)
