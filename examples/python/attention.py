#!/usr/bin/env python3
"""dfss from Python through ctypes (no NumPy needed): float16 attention with the 2:4 pattern on the GPU.

In a checkout, after `make`: python3 examples/python/attention.py (DFSS_LIBRARY names another libdfss.so).
Exit status 3 where there is no GPU (DFSS_ERROR_NO_DEVICE), 1 on any other failure.
"""
import ctypes
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
LIBRARY = os.environ.get("DFSS_LIBRARY") or os.path.join(HERE, "..", "..", "build", "cuda", "lib", "libdfss.so")
ABI_VERSION = 2  # the DFSS_ABI_VERSION of dfss.h whose dfss_attention_desc is transcribed here
SUCCESS, NO_DEVICE = 0, 2  # dfss_status
FLOAT16, PATTERN_2_4 = 0, 2  # dfss_dtype, dfss_pattern
HOST_TO_DEVICE, DEVICE_TO_HOST = 0, 1  # dfss_memcpy_kind

i32, i64, ptr = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p


class AttentionDesc(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("dtype", i32),
        ("pattern", i32),
        ("causal", i32),
        ("batch", i64),
        ("heads_q", i64),
        ("heads_kv", i64),
        ("seq_q", i64),
        ("seq_k", i64),
        ("head_dim", i64),
        ("head_dim_v", i64),
        ("q_strides", i64 * 4),
        ("k_strides", i64 * 4),
        ("v_strides", i64 * 4),
        ("out_strides", i64 * 4),
        ("scale", ctypes.c_float),
        ("reserved0", i32),
        ("seqlens_q", ctypes.POINTER(i32)),
        ("seqlens_k", ctypes.POINTER(i32)),
        ("stream", ptr),
    ]


dfss = ctypes.CDLL(LIBRARY)
dfss.dfss_last_error_message.restype = ctypes.c_char_p
dfss.dfss_malloc.argtypes = [ctypes.POINTER(ptr), ctypes.c_uint64]
dfss.dfss_free.argtypes = [ptr]
dfss.dfss_memcpy.argtypes = [ptr, ptr, ctypes.c_uint64, i32, ptr]
dfss.dfss_attention_desc_init.argtypes = [ctypes.POINTER(AttentionDesc), i32, i32] + [i64] * 7
dfss.dfss_attention_forward.argtypes = [ctypes.POINTER(AttentionDesc), ptr, ptr, ptr, ptr, ptr]


def check(status, call):
    if status != SUCCESS:
        print(f"{call} failed: {dfss.dfss_last_error_message().decode()}", file=sys.stderr)
        sys.exit(3 if status == NO_DEVICE else 1)


if dfss.dfss_abi_version() != ABI_VERSION:
    sys.exit(f"{LIBRARY} has dfss ABI version {dfss.dfss_abi_version()}; this example is written for {ABI_VERSION}")
version = dfss.dfss_version()
print(f"libdfss {version // 10000}.{version // 100 % 100}.{version % 100}")

B, H, N, D = 1, 4, 256, 64
COUNT = B * H * N * D
BYTES = 2 * COUNT  # float16


def input_bytes(seed):
    """Multiples of 1/8 in [-1, 1] (exact in float16), packed as float16; the other examples use the same inputs."""
    return struct.pack(f"<{COUNT}e", *((((i * 37 + seed) % 17) - 8) / 8 for i in range(COUNT)))


# Device memory for q, k, v and out; the inputs copied in.
q, k, v, out = (ptr() for _ in range(4))
for buffer in (q, k, v, out):
    check(dfss.dfss_malloc(ctypes.byref(buffer), BYTES), "dfss_malloc")
for buffer, seed in ((q, 1), (k, 2), (v, 3)):
    check(dfss.dfss_memcpy(buffer, input_bytes(seed), BYTES, HOST_TO_DEVICE, None), "dfss_memcpy")

# One descriptor: dtype, pattern and sizes [B, H, N, D] (packed strides by default), then the options.
desc = AttentionDesc()
check(dfss.dfss_attention_desc_init(ctypes.byref(desc), FLOAT16, PATTERN_2_4, B, H, H, N, N, D, D), "dfss_attention_desc_init")
desc.causal = 1
check(dfss.dfss_attention_forward(ctypes.byref(desc), q, k, v, out, None), "dfss_attention_forward")

# The copy back returns once the result is on the host.
result = ctypes.create_string_buffer(BYTES)
check(dfss.dfss_memcpy(result, out, BYTES, DEVICE_TO_HOST, None), "dfss_memcpy")
for buffer in (q, k, v, out):
    dfss.dfss_free(buffer)

values = struct.unpack(f"<{COUNT}e", result.raw)
row = (N - 1) * D
print(f"out [{B}, {H}, {N}, {D}], out[0, 0, {N - 1}, :4] = {' '.join(f'{x:.4f}' for x in values[row:row + 4])}")
print(f"mean |out| {sum(abs(x) for x in values) / COUNT:.6f}")
