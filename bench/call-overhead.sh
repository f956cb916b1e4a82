#!/usr/bin/env bash
# The call-overhead benchmark with its C baseline: builds bench/c/call_overhead.c against the libdfss.so in
# LIBDIR (when there is one), then runs the TypeScript benchmark with it (bench/call-overhead.bench.ts).
#
#   bash bench/call-overhead.sh LIBDIR NODE [NODE ARGUMENTS...]
#     here:         bash bench/call-overhead.sh build/cuda/lib node dist/bench/call-overhead.bench.js
#     GPU bundle:   bash bench/call-overhead.sh bundle/dfss-gpu/lib bundle/dfss-gpu/run node \
#                     bundle/dfss-gpu/dist/bench/call-overhead.bench.js
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -ge 2 ]] || { echo "usage: bash bench/call-overhead.sh LIBDIR NODE [NODE ARGUMENTS...]" >&2; exit 2; }
libdir="$(cd "$1" 2>/dev/null && pwd)" || libdir=""
shift

if [[ -n "$libdir" && -f "$libdir/libdfss.so" ]]; then
  program="$(mktemp -d)/dfss_call_overhead"
  gcc -std=c99 -O2 -I"$root/cuda/include" "$root/bench/c/call_overhead.c" -L"$libdir" -ldfss -Wl,-rpath,"$libdir" \
    -o "$program"
  "$@" --c-program "$program"
  rm -rf "$(dirname "$program")"
else
  echo "call-overhead: no libdfss.so in ${libdir:-the given folder}: the C baseline is not measured"
  "$@"
fi
