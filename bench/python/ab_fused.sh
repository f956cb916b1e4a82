#!/usr/bin/env bash
# Libraries side by side in one device call: the fused variants (2:4, 1:2, dense) of bench_attention.py for each
# library in turn, ROUNDS times, alternating (drift of the card then shows between rounds, not between libraries);
# the first library's first round also times PyTorch flash and cuDNN. From the checkout root of a GPU host:
#
#   bash bench/python/ab_fused.sh ROUNDS DIMS SEQS CAUSAL LIB...
#   e.g. bash bench/python/ab_fused.sh 2 64,128 1024,4096 no before/libdfss.so after/libdfss.so
#
# A LIB of the form NAME=VALUE@path runs that library with the environment variable NAME set to VALUE (one library
# with a kernel switched off by its environment variable against itself). BACKWARD=1 times training steps instead
# (bench_attention.py --backward: dfss 2:4, 1:2 and dense forward + backward; flash and cuDNN in the first run).
# BUDGET sets each run's --budget-seconds (default 60). The summary rows of each run go to $OUT/bench.log (else
# /tmp/dfss-ab/bench.log) under a line naming round and library.
set -uo pipefail
if [[ $# -lt 5 ]]; then
  sed -n '2,15p' "$0" >&2
  exit 2
fi
rounds=$1 dims=$2 seqs=$3 causal=$4
shift 4
python=${PYTHON:-/opt/torch/.venv/bin/python3}
logs=${OUT:-/tmp/dfss-ab}
mkdir -p "$logs"
for round in $(seq 1 "$rounds"); do
  for lib in "$@"; do
    mode=() variants=fused-2:4,fused-1:2,fused-dense torch=flash,cudnn
    if [[ ${BACKWARD:-0} == 1 ]]; then
      mode=(--backward) variants=train-2:4,train-1:2,train-dense torch=train-flash,train-cudnn
    fi
    [[ $round == 1 && $lib == "$1" ]] && variants=$variants,$torch
    run=$(mktemp -d)
    setting=()
    path=$lib
    if [[ $lib == *=*@* ]]; then
      setting=("${lib%%@*}")
      path=${lib#*@}
    fi
    env "${setting[@]}" "$python" bench/python/bench_attention.py --lib "$path" --out "$run" --suite grid --dims "$dims" --seqs "$seqs" \
      --dtypes float16 --causal "$causal" --cell-seconds 0.15 --budget-seconds "${BUDGET:-60}" --variants "$variants" "${mode[@]}" \
      > "$run/log" 2>&1
    echo "== round $round lib $lib rc $?" >> "$logs/bench.log"
    grep -E "^(grid|backward) " "$run/log" >> "$logs/bench.log"
    rm -rf "$run"
  done
done
