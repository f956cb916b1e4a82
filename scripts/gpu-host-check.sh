#!/usr/bin/env bash
# The whole GPU check of one change, on a GPU host without Node.js: every test through the bundle (GPU tests
# included), the C ABI test compiled against dfss.h and linked to the bundled libdfss.so, compute-sanitizer
# memcheck and racecheck on the GPU kernel tests, the demo and the benchmarks. Run from the checkout root after
# `make bundle` here; logs go to $OUT (or /tmp/dfss-gpu-check) and a summary table is printed last.
#
#   bash scripts/gpu-host-check.sh [step ...]
#     steps: tests c-abi memcheck racecheck autograd demo long (the default: all of these; tests runs every test,
#            then the GPU kernel and backward tests again with DFSS_FUSED_WARP_SPECIALIZED=1 and with
#            DFSS_FUSED_WGMMA=0, so that on a Hopper host the warp-specialized forward kernels (which otherwise take
#            only long sequences) and the sm_80 ones are tested too (three sets of counts); memcheck and racecheck
#            cover the forward and backward GPU tests, and the forward's with DFSS_FUSED_WARP_SPECIALIZED=1;
#            autograd is test/python/autograd_check.py; long is the N = 65,536 fused run), and
#            the benchmarks of bench/README.md, each named when wanted:
#       bench     bench/python/bench_attention.py (PyTorch side by side; flags in $DFSS_BENCH_ARGS, e.g. --quick);
#                 writes bench.log, attention-bench.json and attention-bench.md
#       overhead  the call overhead from TypeScript over C (bench/call-overhead.sh)
#       api       bench/attention.bench.ts through the bundle (the TypeScript API, DFSS against dense)
# At most 8 files come back from $OUT: gpu.txt, one log per step, and bench's two reports.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bundle="$root/bundle/dfss-gpu"
logs="${OUT:-/tmp/dfss-gpu-check}"
mkdir -p "$logs"
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(tests c-abi memcheck racecheck autograd demo long)
summary=()

run_step() {
  local name="$1" limit="$2"
  shift 2
  local start=$SECONDS
  timeout "$limit" "$@" >"$logs/$name.log" 2>&1
  local rc=$?
  local counts
  counts="$(grep -E '^# (pass|fail|skipped) ' "$logs/$name.log" | awk '{printf "%s %s ", $2, $3}')"
  summary+=("$(printf '%-10s rc=%-3s %4ss  %s' "$name" "$rc" "$((SECONDS - start))" "$counts")")
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv >"$logs/gpu.txt" 2>&1
for step in "${steps[@]}"; do
  case "$step" in
    tests) run_step tests 900 bash -c "'$bundle/run' test &&
      DFSS_FUSED_WARP_SPECIALIZED=1 '$bundle/run' test gpu-kernels gpu-backward &&
      DFSS_FUSED_WGMMA=0 '$bundle/run' test gpu-kernels gpu-backward" ;;
    c-abi)
      run_step c-abi 120 bash -c "gcc -std=c99 -O1 -I'$root/cuda/include' '$root/cuda/test/test_abi.c' \
        -L'$bundle/lib' -ldfss -Wl,-rpath,'$bundle/lib' -lm -o /tmp/dfss_test_abi && /tmp/dfss_test_abi" ;;
    memcheck) run_step memcheck 900 bash -c "'$bundle/run' sanitize --tool memcheck gpu-kernels &&
      '$bundle/run' sanitize --tool memcheck gpu-backward &&
      DFSS_FUSED_WARP_SPECIALIZED=1 '$bundle/run' sanitize --tool memcheck gpu-kernels" ;;
    racecheck) DFSS_GPU_TESTS=small run_step racecheck 900 bash -c "'$bundle/run' sanitize --tool racecheck gpu-kernels &&
      '$bundle/run' sanitize --tool racecheck gpu-backward &&
      DFSS_FUSED_WARP_SPECIALIZED=1 '$bundle/run' sanitize --tool racecheck gpu-kernels" ;;
    autograd) PYTHONUNBUFFERED=1 run_step autograd 300 python3 "$root/test/python/autograd_check.py" \
      --lib "$bundle/lib/libdfss.so" ;;
    demo) run_step demo 300 "$bundle/run" demo ;;
    bench)
      # shellcheck disable=SC2086  # DFSS_BENCH_ARGS holds several flags
      PYTHONUNBUFFERED=1 run_step bench 570 python3 "$root/bench/python/bench_attention.py" \
        --lib "$bundle/lib/libdfss.so" --out "$logs" ${DFSS_BENCH_ARGS:-} ;;
    overhead) run_step overhead 300 bash "$root/bench/call-overhead.sh" "$bundle/lib" "$bundle/run" node \
      "$bundle/dist/bench/call-overhead.bench.js" ;;
    api) run_step api 300 "$bundle/run" node "$bundle/dist/bench/attention.bench.js" ;;
    long) run_step long 300 "$bundle/run" node "$bundle/dist/bench/long-sequence.bench.js" ;;
    *) echo "gpu-host-check: unknown step $step" >&2; exit 2 ;;
  esac
done

echo "== $(head -2 "$logs/gpu.txt" | tail -1) =="
tail -n 15 "$logs/c-abi.log" 2>/dev/null | grep -E 'passed|failed' | tail -1
grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$logs"/memcheck.log "$logs"/racecheck.log 2>/dev/null
cat "$logs/demo.log" 2>/dev/null | tail -8
# The harness prints its summary table last, from this line on; its progress lines stay in bench.log.
if [[ -f "$logs/bench.log" ]]; then
  if grep -q '^dfss attention bench: ' "$logs/bench.log"; then
    sed -n '/^dfss attention bench: /,$p' "$logs/bench.log"
  else
    tail -n 8 "$logs/bench.log"
  fi
fi
cat "$logs/overhead.log" "$logs/api.log" "$logs/long.log" 2>/dev/null
printf '%s\n' "${summary[@]}"
