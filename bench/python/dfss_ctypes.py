"""libdfss (cuda/include/dfss.h) for Python through ctypes.

The binding knows nothing of PyTorch: pointers are plain integers (a device address, e.g. a tensor's
data_ptr(), or None for NULL), streams are integers too (a cudaStream_t, e.g.
torch.cuda.current_stream().cuda_stream; 0 or None is the legacy default stream). Every entry point that
returns a dfss_status is checked: a failure raises DfssError carrying dfss_last_error_message().

The struct layouts below are dfss.h's, field for field; load() refuses a library whose ABI version differs,
or whose dfss_attention_desc_init writes a struct_size other than ctypes.sizeof(AttentionDesc).
"""

import ctypes
import math
import os
from pathlib import Path

ABI_VERSION = 2

SUCCESS = 0
ERROR_INVALID_ARGUMENT = 1
ERROR_NO_DEVICE = 2
ERROR_UNSUPPORTED = 3
ERROR_OUT_OF_MEMORY = 4
ERROR_CUDA = 5
ERROR_INTERNAL = 6
STATUS_NAMES = {
    SUCCESS: "DFSS_SUCCESS",
    ERROR_INVALID_ARGUMENT: "DFSS_ERROR_INVALID_ARGUMENT",
    ERROR_NO_DEVICE: "DFSS_ERROR_NO_DEVICE",
    ERROR_UNSUPPORTED: "DFSS_ERROR_UNSUPPORTED",
    ERROR_OUT_OF_MEMORY: "DFSS_ERROR_OUT_OF_MEMORY",
    ERROR_CUDA: "DFSS_ERROR_CUDA",
    ERROR_INTERNAL: "DFSS_ERROR_INTERNAL",
}

DTYPES = {"float16": 0, "bfloat16": 1, "float32": 2}
PATTERNS = {"dense": 0, "1:2": 1, "2:4": 2}

MEMCPY_HOST_TO_DEVICE = 0
MEMCPY_DEVICE_TO_HOST = 1
MEMCPY_DEVICE_TO_DEVICE = 2

LIBRARY_ENV = "DFSS_LIBRARY"
REPO_ROOT = Path(__file__).resolve().parents[2]
# Where the library is looked for without an explicit path, in the order of ffi/library-path.ts: the build
# output, then the GPU bundle (made by `make bundle`).
DEFAULT_LIBRARY_PATHS = (
    REPO_ROOT / "build" / "cuda" / "lib" / "libdfss.so",
    REPO_ROOT / "bundle" / "dfss-gpu" / "lib" / "libdfss.so",
)


class DeviceInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char * 256),
        ("compute_major", ctypes.c_int32),
        ("compute_minor", ctypes.c_int32),
        ("multiprocessor_count", ctypes.c_int32),
        ("sparse_tensor_cores", ctypes.c_int32),
        ("total_memory_bytes", ctypes.c_uint64),
        ("free_memory_bytes", ctypes.c_uint64),
    ]


Strides = ctypes.c_int64 * 4


class AttentionDesc(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("dtype", ctypes.c_int32),
        ("pattern", ctypes.c_int32),
        ("causal", ctypes.c_int32),
        ("batch", ctypes.c_int64),
        ("heads_q", ctypes.c_int64),
        ("heads_kv", ctypes.c_int64),
        ("seq_q", ctypes.c_int64),
        ("seq_k", ctypes.c_int64),
        ("head_dim", ctypes.c_int64),
        ("head_dim_v", ctypes.c_int64),
        ("q_strides", Strides),
        ("k_strides", Strides),
        ("v_strides", Strides),
        ("out_strides", Strides),
        ("scale", ctypes.c_float),
        ("reserved0", ctypes.c_int32),
        ("seqlens_q", ctypes.POINTER(ctypes.c_int32)),
        ("seqlens_k", ctypes.POINTER(ctypes.c_int32)),
        ("stream", ctypes.c_void_p),
    ]


class BackwardStrides(ctypes.Structure):
    _fields_ = [
        ("dout_strides", Strides),
        ("dq_strides", Strides),
        ("dk_strides", Strides),
        ("dv_strides", Strides),
    ]


_status = ctypes.c_int32
_ptr = ctypes.c_void_p
_desc_ptr = ctypes.POINTER(AttentionDesc)
_int64_out = ctypes.POINTER(ctypes.c_int64)
_int32_out = ctypes.POINTER(ctypes.c_int32)

# name -> (restype, argtypes), in header order.
PROTOTYPES = {
    "dfss_status_string": (ctypes.c_char_p, [_status]),
    "dfss_last_error_message": (ctypes.c_char_p, []),
    "dfss_version": (ctypes.c_int32, []),
    "dfss_abi_version": (ctypes.c_int32, []),
    "dfss_device_count": (_status, [_int32_out]),
    "dfss_device_get_info": (_status, [ctypes.c_int32, ctypes.POINTER(DeviceInfo)]),
    "dfss_device_set": (_status, [ctypes.c_int32]),
    "dfss_device_get": (_status, [_int32_out]),
    "dfss_device_synchronize": (_status, []),
    "dfss_malloc": (_status, [ctypes.POINTER(ctypes.c_void_p), ctypes.c_uint64]),
    "dfss_free": (_status, [_ptr]),
    "dfss_memcpy": (_status, [_ptr, _ptr, ctypes.c_uint64, ctypes.c_int32, _ptr]),
    "dfss_memset": (_status, [_ptr, ctypes.c_int32, ctypes.c_uint64, _ptr]),
    "dfss_stream_create": (_status, [ctypes.POINTER(ctypes.c_void_p)]),
    "dfss_stream_destroy": (_status, [_ptr]),
    "dfss_stream_synchronize": (_status, [_ptr]),
    "dfss_attention_desc_init": (
        _status,
        [_desc_ptr, ctypes.c_int32, ctypes.c_int32] + [ctypes.c_int64] * 7,
    ),
    "dfss_attention_forward": (_status, [_desc_ptr, _ptr, _ptr, _ptr, _ptr, _ptr]),
    "dfss_compressed_row_size": (_status, [_desc_ptr, _int64_out, _int64_out]),
    "dfss_sddmm_prune": (_status, [_desc_ptr, _ptr, _ptr, _ptr, _ptr]),
    "dfss_compressed_softmax": (_status, [_desc_ptr, _ptr, _ptr, _ptr]),
    "dfss_spmm": (_status, [_desc_ptr, _ptr, _ptr, _ptr, _ptr]),
    "dfss_attention_staged_workspace_size": (_status, [_desc_ptr, ctypes.POINTER(ctypes.c_uint64)]),
    "dfss_attention_staged": (_status, [_desc_ptr] + [_ptr] * 6 + [ctypes.c_uint64]),
    "dfss_attention_backward_workspace_size": (_status, [_desc_ptr, ctypes.POINTER(ctypes.c_uint64)]),
    "dfss_attention_backward": (
        _status,
        [_desc_ptr, ctypes.POINTER(BackwardStrides)] + [_ptr] * 10 + [ctypes.c_uint64],
    ),
}
# Functions added in version 0.3 (the ABI version did not change): a 0.2 library loads without them, so that the
# benchmarks can compare it with a newer one.
SINCE_0_3 = frozenset(("dfss_attention_staged_workspace_size", "dfss_attention_staged"))


class DfssError(RuntimeError):
    """A dfss call that returned a status other than DFSS_SUCCESS."""

    def __init__(self, function, status, message):
        self.function = function
        self.status = status
        self.status_name = STATUS_NAMES.get(status, "dfss_status %d" % status)
        super().__init__("%s: %s: %s" % (function, self.status_name, message))


def locate_library(path=None):
    """The library file: `path` if given, else $DFSS_LIBRARY if set, else the first default place that exists."""
    explicit = path if path else os.environ.get(LIBRARY_ENV)
    candidates = [Path(explicit).resolve()] if explicit else list(DEFAULT_LIBRARY_PATHS)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        "libdfss.so not found (tried %s); build it with `make` (needs nvcc) or `make bundle`, "
        "or pass its path (--lib or $%s)" % (tried, LIBRARY_ENV)
    )


class Dfss:
    """A loaded libdfss. `raw` is the ctypes library with every prototype declared (statuses unchecked)."""

    def __init__(self, path=None):
        self.path = locate_library(path)
        self.raw = ctypes.CDLL(str(self.path))
        # The ABI version first: a library of another version may lack functions of this one.
        self.raw.dfss_abi_version.restype = ctypes.c_int32
        abi = self.raw.dfss_abi_version()
        if abi != ABI_VERSION:
            raise RuntimeError(
                "%s implements dfss ABI version %d; this binding was written for version %d" % (self.path, abi, ABI_VERSION)
            )
        for name, (restype, argtypes) in PROTOTYPES.items():
            if name in SINCE_0_3 and not hasattr(self.raw, name):
                continue  # a 0.2 library (same ABI): calling it fails with ctypes' "undefined symbol"
            function = getattr(self.raw, name)
            function.restype = restype
            function.argtypes = argtypes
        probe = AttentionDesc()
        self.check(self.raw.dfss_attention_desc_init(ctypes.byref(probe), 0, 0, 1, 1, 1, 1, 1, 1, 1), "dfss_attention_desc_init")
        if probe.struct_size != ctypes.sizeof(AttentionDesc):
            raise RuntimeError(
                "%s has a dfss_attention_desc of %d bytes; this binding lays it out in %d bytes"
                % (self.path, probe.struct_size, ctypes.sizeof(AttentionDesc))
            )

    # ----- errors and version

    def last_error_message(self):
        return self.raw.dfss_last_error_message().decode("utf-8", "replace")

    def status_string(self, status):
        return self.raw.dfss_status_string(status).decode("utf-8", "replace")

    def check(self, status, function):
        """Raises DfssError for a failed status; call right after the call (the message is thread-local)."""
        if status != SUCCESS:
            raise DfssError(function, status, self.last_error_message() or self.status_string(status))

    def version(self):
        v = self.raw.dfss_version()
        return "%d.%d.%d" % (v // 10000, v // 100 % 100, v % 100)

    # ----- devices

    def device_count(self):
        """Number of CUDA devices; DfssError with status ERROR_NO_DEVICE where there is none."""
        count = ctypes.c_int32(-1)
        self.check(self.raw.dfss_device_count(ctypes.byref(count)), "dfss_device_count")
        return count.value

    def device_info(self, device):
        info = DeviceInfo()
        self.check(self.raw.dfss_device_get_info(device, ctypes.byref(info)), "dfss_device_get_info")
        return {
            "name": info.name.decode("utf-8", "replace"),
            "compute_capability": "%d.%d" % (info.compute_major, info.compute_minor),
            "multiprocessors": info.multiprocessor_count,
            "sparse_tensor_cores": bool(info.sparse_tensor_cores),
            "total_memory_bytes": info.total_memory_bytes,
            "free_memory_bytes": info.free_memory_bytes,
        }

    def device_set(self, device):
        self.check(self.raw.dfss_device_set(device), "dfss_device_set")

    def device_synchronize(self):
        self.check(self.raw.dfss_device_synchronize(), "dfss_device_synchronize")

    # ----- attention

    def attention_desc(
        self,
        dtype,
        pattern,
        batch,
        heads_q,
        heads_kv,
        seq_q,
        seq_k,
        head_dim,
        head_dim_v=None,
        causal=False,
        scale=None,
        strides=None,
        seqlens_q=None,
        seqlens_k=None,
        stream=None,
    ):
        """A descriptor from dfss_attention_desc_init (packed [B, H, N, D] strides, scale 1/sqrt(D)), then
        the given changes. dtype and pattern are names ('float16', '2:4'); strides maps 'q', 'k', 'v', 'out'
        to four element strides; seqlens_q / seqlens_k are sequences of B ints (kept alive by the desc)."""
        if dtype not in DTYPES:
            raise ValueError("dtype: expected one of %s, got %r" % (", ".join(DTYPES), dtype))
        if pattern not in PATTERNS:
            raise ValueError("pattern: expected one of %s, got %r" % (", ".join(PATTERNS), pattern))
        desc = AttentionDesc()
        dims = (batch, heads_q, heads_kv, seq_q, seq_k, head_dim, head_dim if head_dim_v is None else head_dim_v)
        self.check(
            self.raw.dfss_attention_desc_init(ctypes.byref(desc), DTYPES[dtype], PATTERNS[pattern], *dims),
            "dfss_attention_desc_init",
        )
        desc.causal = 1 if causal else 0
        if scale is not None:
            if not math.isfinite(scale):
                raise ValueError("scale: expected a finite number, got %r" % (scale,))
            desc.scale = scale
        for name, values in (strides or {}).items():
            if name not in ("q", "k", "v", "out") or len(values) != 4:
                raise ValueError("strides[%r]: expected 4 element strides of q, k, v or out, got %r" % (name, values))
            setattr(desc, name + "_strides", Strides(*values))
        # Assigning a ctypes array to a pointer field keeps the array alive as long as the descriptor.
        if seqlens_q is not None:
            desc.seqlens_q = (ctypes.c_int32 * len(seqlens_q))(*seqlens_q)
        if seqlens_k is not None:
            desc.seqlens_k = (ctypes.c_int32 * len(seqlens_k))(*seqlens_k)
        desc.stream = stream or None
        return desc

    def attention_forward(self, desc, q, k, v, out, lse=None):
        self.check(self.raw.dfss_attention_forward(ctypes.byref(desc), q, k, v, out, lse), "dfss_attention_forward")

    def compressed_row_size(self, desc):
        """(values per compressed row C, metadata words per row W) of the descriptor's pattern and Nk."""
        values = ctypes.c_int64()
        words = ctypes.c_int64()
        self.check(
            self.raw.dfss_compressed_row_size(ctypes.byref(desc), ctypes.byref(values), ctypes.byref(words)),
            "dfss_compressed_row_size",
        )
        return values.value, words.value

    def sddmm_prune(self, desc, q, k, values, metadata):
        self.check(self.raw.dfss_sddmm_prune(ctypes.byref(desc), q, k, values, metadata), "dfss_sddmm_prune")

    def compressed_softmax(self, desc, values_in, values_out, lse=None):
        self.check(
            self.raw.dfss_compressed_softmax(ctypes.byref(desc), values_in, values_out, lse), "dfss_compressed_softmax"
        )

    def spmm(self, desc, probs, metadata, v, out):
        self.check(self.raw.dfss_spmm(ctypes.byref(desc), probs, metadata, v, out), "dfss_spmm")

    def workspace_size(self, entry_point, desc):
        """Bytes of device workspace that entry_point ("attention_staged", "attention_backward") needs for desc."""
        name = "dfss_%s_workspace_size" % entry_point
        size = ctypes.c_uint64()
        self.check(getattr(self.raw, name)(ctypes.byref(desc), ctypes.byref(size)), name)
        return size.value

    def attention_staged(self, desc, q, k, v, out, lse, workspace, workspace_bytes):
        self.check(
            self.raw.dfss_attention_staged(ctypes.byref(desc), q, k, v, out, lse, workspace, workspace_bytes),
            "dfss_attention_staged",
        )

    # ----- backward

    def attention_backward(self, desc, q, k, v, out, dout, lse, dq, dk, dv, workspace, workspace_bytes, strides=None):
        """strides: a BackwardStrides, or None for the descriptor's layouts (see dfss.h)."""
        self.check(
            self.raw.dfss_attention_backward(
                ctypes.byref(desc), None if strides is None else ctypes.byref(strides),
                q, k, v, out, dout, lse, dq, dk, dv, workspace, workspace_bytes,
            ),
            "dfss_attention_backward",
        )
