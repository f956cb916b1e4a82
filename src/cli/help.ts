// Usage text of the dfss command line.

export const MAIN_HELP = `dfss: dynamic N:M fine-grained structured sparse attention (DFSS)

Usage:
  dfss demo [options]                              DFSS against full attention on random inputs
  dfss attention q.npy k.npy v.npy -o out.npy [options]
                                                   attention of .npy arrays, written as .npy
  dfss <command> --help                            options of a command
  dfss --version                                   version of dfss

Backends: 'cuda' runs on an NVIDIA GPU through libdfss; 'cpu' is the pure TypeScript reference;
'auto' (the default) takes cuda when the library loads, a GPU is present and libdfss implements the
dtype and pattern, else cpu.
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
  --lse FILE               also write the log-sum-exp of each row, [B, Hq, Nq] float32, to FILE
  -h, --help               this text
`;
