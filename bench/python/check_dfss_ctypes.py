"""Checks the ctypes binding (dfss_ctypes.py) against cuda/include/dfss.h and a built libdfss.so, with or
without a GPU; needs no PyTorch.

    python3 bench/python/check_dfss_ctypes.py [path/to/libdfss.so]

- against the header: the ABI version, every struct's fields (names, order, types) and every function's
  return and argument types, so the binding cannot drift from dfss.h unnoticed;
- against the library: dfss_attention_desc_init writes struct_size == ctypes.sizeof(AttentionDesc), and every
  field it fills reads back where dfss.h puts it (distinct sizes, so a shifted field shows up);
  dfss_compressed_row_size answers through its int64 out-parameters; an argument error comes back as DfssError
  with the library's message; dfss_device_count answers DFSS_ERROR_NO_DEVICE with a message where there is no
  GPU, a count >= 1 where there is.
Exits 1 at the first failed check.
"""

import ctypes
import math
import re
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ beside the sources in the checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dfss_ctypes  # noqa: E402
from dfss_ctypes import AttentionDesc, Dfss, DfssError  # noqa: E402

HEADER = dfss_ctypes.REPO_ROOT / "cuda" / "include" / "dfss.h"
C_SCALARS = {
    "int32_t": ctypes.c_int32,
    "uint32_t": ctypes.c_uint32,
    "int64_t": ctypes.c_int64,
    "uint64_t": ctypes.c_uint64,
    "float": ctypes.c_float,
    "char": ctypes.c_char,
}
STRUCTS = {"dfss_device_info": dfss_ctypes.DeviceInfo, "dfss_attention_desc": AttentionDesc, "dfss_backward_strides": dfss_ctypes.BackwardStrides}


def expect(condition, what):
    if not condition:
        print("FAIL: " + what)
        sys.exit(1)
    print("ok: " + what)


# ----- the header


def parse_header(text):
    """(ABI version, enum names, {struct: [(C type, name, array length or None)]}, {function: (return type,
    [parameter C types])}) of dfss.h."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    abi = int(re.search(r"#define\s+DFSS_ABI_VERSION\s+(\d+)", text).group(1))
    enums = set(re.findall(r"typedef\s+enum\s+\w+\s*\{[^}]*\}\s*(\w+)\s*;", text))
    structs = {}
    for name, body in re.findall(r"typedef\s+struct\s+(\w+)\s*\{(.*?)\}\s*\1\s*;", text, flags=re.S):
        fields = []
        for declaration in filter(None, (d.strip() for d in body.split(";"))):
            m = re.match(r"(.*?)(\w+)\s*(?:\[(\d+)\])?$", " ".join(declaration.split()))
            fields.append((m.group(1).strip(), m.group(2), int(m.group(3)) if m.group(3) else None))
        structs[name] = fields
    functions = {}
    for head, params in re.findall(r"DFSS_API\s+([^;(]*?)\(([^;]*?)\)\s*;", text, flags=re.S):
        m = re.match(r"(.*?)(\w+)$", " ".join(head.split()))
        types = [] if params.strip() == "void" else [re.match(r"(.*?)\w+$", " ".join(p.split())).group(1).strip() for p in params.split(",")]
        functions[m.group(2)] = (m.group(1).strip(), types)
    return abi, enums, structs, functions


def expected_ctype(c_type, enums):
    """The ctypes type a C type must be bound as: 'pointer' for any pointer (and dfss_stream), None for void."""
    words = c_type.replace("const", " ").split()
    if "*" in c_type or words == ["dfss_stream"]:
        return "pointer"
    name = " ".join(words)
    if name == "void":
        return None
    if name in enums:
        return ctypes.c_int32
    if name in STRUCTS:
        return STRUCTS[name]
    return C_SCALARS[name]


def ctype_kind(t):
    if t in (ctypes.c_void_p, ctypes.c_char_p) or (isinstance(t, type) and issubclass(t, ctypes._Pointer)):
        return "pointer"
    return t


def check_header():
    abi, enums, structs, functions = parse_header(HEADER.read_text())
    expect(abi == dfss_ctypes.ABI_VERSION, "ABI version of %s: %d, the binding's %d" % (HEADER.name, abi, dfss_ctypes.ABI_VERSION))
    expect(set(structs) == set(STRUCTS), "structs of the header %s are the binding's" % sorted(structs))
    for name, fields in structs.items():
        bound = STRUCTS[name]._fields_
        expect([f[1] for f in fields] == [f[0] for f in bound], "%s: fields in header order" % name)
        for (c_type, field, length), (_, t) in zip(fields, bound):
            want = expected_ctype(c_type, enums)
            got = (t._type_, t._length_) if length else t
            expect(ctype_kind(got if not length else got[0]) == want and (not length or got[1] == length), "%s.%s: %s%s" % (name, field, c_type, "[%d]" % length if length else ""))
    expect(set(functions) == set(dfss_ctypes.PROTOTYPES), "functions of the header are the binding's (%d)" % len(functions))
    for name, (return_type, params) in functions.items():
        restype, argtypes = dfss_ctypes.PROTOTYPES[name]
        want = [expected_ctype(return_type, enums)] + [expected_ctype(p, enums) for p in params]
        got = [ctype_kind(restype)] + [ctype_kind(t) for t in argtypes]
        if want[0] == "pointer" and restype is ctypes.c_char_p:
            got[0] = "pointer"
        expect(want == got, "%s: return and %d argument types" % (name, len(params)))


# ----- the library


def packed(heads, rows, columns):
    return [heads * rows * columns, rows * columns, columns, 1]


def check_library(path):
    lib = Dfss(path)
    print("libdfss %s at %s" % (lib.version(), lib.path))

    b, hq, hk, nq, nk, d, dv = 2, 6, 3, 5, 7, 16, 8
    desc = lib.attention_desc("bfloat16", "1:2", b, hq, hk, nq, nk, d, dv)
    expect(desc.struct_size == ctypes.sizeof(AttentionDesc), "struct_size %d == ctypes.sizeof(AttentionDesc) %d" % (desc.struct_size, ctypes.sizeof(AttentionDesc)))
    fields = (desc.dtype, desc.pattern, desc.causal, desc.batch, desc.heads_q, desc.heads_kv, desc.seq_q, desc.seq_k, desc.head_dim, desc.head_dim_v)
    expect(fields == (1, 1, 0, b, hq, hk, nq, nk, d, dv), "scalar fields read back in dfss.h order: %r" % (fields,))
    strides = [list(desc.q_strides), list(desc.k_strides), list(desc.v_strides), list(desc.out_strides)]
    expected = [packed(hq, nq, d), packed(hk, nk, d), packed(hk, nk, dv), packed(hq, nq, dv)]
    expect(strides == expected, "packed strides of q, k, v, out: %r" % (strides,))
    expect(math.isclose(desc.scale, 1 / math.sqrt(d), rel_tol=1e-6), "scale 1/sqrt(D): %r" % desc.scale)
    expect(desc.reserved0 == 0 and not desc.seqlens_q and not desc.seqlens_k and not desc.stream, "reserved0 0, no lengths, default stream")

    with_lengths = lib.attention_desc("float16", "2:4", 2, 1, 1, 8, 8, 4, causal=True, seqlens_k=[3, 8], stream=0x1234)
    expect(with_lengths.causal == 1 and with_lengths.seqlens_k[1] == 8 and with_lengths.stream == 0x1234, "causal, seqlens_k and stream set")

    row = lib.compressed_row_size(lib.attention_desc("float16", "2:4", 1, 1, 1, 4, 1000, 64))
    expect(row == (500, 32), "compressed row of 2:4 at Nk=1000: (C, W) = %r, expected (500, 32)" % (row,))

    bad = lib.attention_desc("float16", "2:4", 1, 1, 1, 4, 4, 64)
    bad.heads_kv = 0
    try:
        lib.compressed_row_size(bad)
        expect(False, "a descriptor with heads_kv = 0 is refused")
    except DfssError as error:
        expect(error.status == dfss_ctypes.ERROR_INVALID_ARGUMENT and "heads_kv" in str(error), "argument error carries the message: %s" % error)

    try:
        count = lib.device_count()
        expect(count >= 1, "dfss_device_count: %d device(s)" % count)
    except DfssError as error:
        expect(error.status == dfss_ctypes.ERROR_NO_DEVICE and len(str(error)) > 40, "no GPU: %s" % error)


def main():
    check_header()
    check_library(sys.argv[1] if len(sys.argv) > 1 else None)
    print("all checks passed")


if __name__ == "__main__":
    main()
