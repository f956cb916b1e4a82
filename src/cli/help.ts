// Usage text of the dfss command line.

export const MAIN_HELP = `dfss: dynamic N:M fine-grained structured sparse attention (DFSS)

Usage:
  dfss info [--json]                               runtime, library, GPUs and the backend 'auto' picks
  dfss check [options]                             every GPU entry point against the CPU backend
  dfss bench [options]                             time attention per variant, dtype and N; table, JSON, SVG
  dfss demo [options]                              DFSS against full attention on random inputs
  dfss attention q.npy k.npy v.npy -o out.npy [options]
                                                   attention of .npy arrays, written as .npy
  dfss <command> --help                            options of a command
  dfss --version                                   version of dfss

Backends: 'cuda' runs on an NVIDIA GPU through libdfss; 'cpu' is the pure TypeScript reference;
'auto' (the default) takes cuda when the library loads, a GPU is present and libdfss implements the
dtype and pattern, else cpu.

Runtimes: the command runs under Node.js 20 or later (dfss ...), Bun (bun dist/src/cli/main.js ...)
and Deno (deno run -A dist/src/cli/main.js ...).

Exit status:
  0  success
  1  failure: an error while running, or 'dfss check' found a GPU result that differs from the CPU's
  2  usage error: unknown command or flag, missing or bad value (nothing was run)
  3  no usable GPU where one is required ('dfss check', --backend cuda): no libdfss, driver or device
`;

export const DEMO_HELP = `Usage: dfss demo [options]

Runs DFSS attention and full (dense) attention on the same seeded random q, k, v and prints which
backend ran, the shapes, the fraction of attention scores kept, the error of DFSS against full
attention and the median time of each.

Options:
  --backend auto|cpu|cuda  where to run (default auto)
  --batch B                batch size (default 1 on the CPU, 4 on a GPU)
  --heads H                attention heads (default 4 on the CPU, 16 on a GPU)
  --seq N                  sequence length of queries and keys (default 512 on the CPU, 4096 on a GPU)
  --dim D                  head dimension of q, k and v (default 64)
  --pattern N:M            sparsity pattern of DFSS, e.g. 2:4 or 1:2 (default 2:4)
  --dtype float16|bfloat16|float32
                           element type the inputs are rounded to (default float16)
  --causal                 causal (bottom-right aligned) masking
  --runs R                 timed runs of each attention after one warm-up run (default 3 on the CPU, 10 on a GPU)
  --seed S                 seed of the random inputs (default 1)
  -h, --help               this text
`;

export const ATTENTION_HELP = `Usage: dfss attention q.npy k.npy v.npy -o out.npy [options]

Computes attention of q [B, Hq, Nq, D], k [B, Hk, Nk, D] and v [B, Hk, Nk, Dv], read from float32 or
float16 .npy files (k and v may have fewer heads than q, Hq % Hk == 0: grouped-query attention), and
writes the output [B, Hq, Nq, Dv] as a float32 .npy file.

Options:
  -o, --output FILE        output .npy file (required)
  --pattern P              dense, 1:2, 2:4 or any N:M the backend supports (default 2:4)
  --dtype float16|bfloat16|float32
                           element type the inputs are rounded to before the computation (default float16)
  --causal                 causal (bottom-right aligned) masking
  --scale X                score scale (default 1/sqrt(D))
  --backend auto|cpu|cuda  where to run (default auto)
  --pipeline fused|staged  one fused pass (default), or the paper's staged pipeline through compressed scores
                           rounded to the dtype (dfss_attention_staged on the GPU)
  --lse FILE               also write the log-sum-exp of each row, [B, Hq, Nq] float32, to FILE
  -h, --help               this text
`;

export const INFO_HELP = `Usage: dfss info [--json]

Prints what this installation can do: the JavaScript runtime and its version, the dfss version, where
libdfss.so was found (or why it was not) and its version, each GPU with its compute capability, memory
and whether it has sparse tensor cores, and the backend 'auto' picks with the reason.

Options:
  --json                   the same as a JSON object
  -h, --help               this text

The library is looked for in build/cuda/lib/libdfss.so of this package, or where DFSS_LIBRARY points.
`;

export const CHECK_HELP = `Usage: dfss check [options]

Runs every GPU entry point of libdfss (fused attention with its log-sum-exp, staged attention in one
call, sddmm_prune, compressed_softmax, spmm and the staged pipeline) against the CPU backend on a grid
of sizes (1 to 1000 queries and keys), dtypes, patterns and masks (causal, per-batch lengths,
grouped-query heads, [B, N, H, D] strides), on random inputs and on inputs whose scores are exact
(their pruning must agree bit for bit). A progress bar runs on stderr; a pass/fail table per dtype,
pattern and entry point ends the output, followed by each failure.

Options:
  --grid small|full        small: the cases up to 1000 x 1000 (default); full: adds rows of up to
                           4099 keys, as the GPU tests do
  --dtype LIST             only these dtypes, e.g. float16,bfloat16
  --pattern LIST           only these patterns (dense, 1:2, 2:4), e.g. dense,2:4
  --seed S                 seed of the random inputs (default: a fresh one, printed to replay a failure)
  -v, --verbose            one line per case as it finishes
  --json                   the results as a JSON object instead of the table
  -h, --help               this text

Exit status: 0 every check passed; 1 a check failed; 2 usage error; 3 no usable GPU here (nothing to
check: 'dfss info' says why).
`;

export const BENCH_HELP = `Usage: dfss bench [options]

Times DFSS attention (median of --runs runs after a warm-up) for each variant (pattern) and dtype over
sequence lengths N (queries = keys), with a progress bar on stderr, then prints a table on stdout. The
rate is dense-equivalent: 4*B*H*D per unmasked (query, key) pair over the time, so that a faster sparse
kernel shows as a higher TFLOP/s.

Options:
  --backend auto|cpu|cuda  where to run (default auto)
  --seq LIST               sequence lengths (default 1024,2048,4096,8192 on a GPU; 64,128,256 on the CPU)
  --dtype LIST             float16, bfloat16, float32 (default float16,bfloat16 on a GPU; float16 on the CPU)
  --pattern LIST           variants: dense, 1:2, 2:4, any N:M on the CPU (default dense,1:2,2:4)
  --batch B                batch size (default 16384/N on a GPU, at least 1; 1 on the CPU)
  --heads H                attention heads (default 16 on a GPU, 2 on the CPU)
  --dim D                  head dimension (default 64 on a GPU, 32 on the CPU)
  --causal                 causal (bottom-right aligned) masking
  --pipeline fused|staged  one fused pass (default), or the paper's staged pipeline (dfss_attention_staged)
  --runs R                 timed runs of each measurement (default 10 on a GPU, 2 on the CPU)
  --seed S                 seed of the random inputs (default 1)
  --json                   print the results as JSON (for scripts) instead of the table
  --svg FILE               also write a chart of TFLOP/s against N, one line per variant and dtype
  -h, --help               this text

Variants libdfss does not implement (float32 2:4) are skipped on the GPU, and said so.
`;
