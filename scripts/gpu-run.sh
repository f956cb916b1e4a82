#!/usr/bin/env bash
# Entry point of the dfss GPU bundle (made by scripts/pack-gpu.mjs): runs dfss on a Linux x86-64 host that has
# a GPU but no Node.js, npm or network.
#
#   ./run test [test files]         every test (or the given ones) with Node's test runner
#   ./run demo [options]            the DFSS attention demo
#   ./run sanitize [--tool T] <test file>  one test file under compute-sanitizer (memcheck, or racecheck...)
#   ./run node <arguments>          anything else, with the bundled node
#
# The bundled node binary is unpacked once into $DFSS_NODE_DIR (default: $TMPDIR, else /tmp).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  cat >&2 <<'USAGE'
usage: ./run test [test files]      every test (or the given ones) with Node's test runner
       ./run demo [options]         the DFSS attention demo
       ./run sanitize [--tool T] <test file>   one test file under compute-sanitizer (default memcheck)
       ./run node <arguments>       anything else, with the bundled node
USAGE
  exit 2
}

unpacked_node() {
  local dir="${DFSS_NODE_DIR:-${TMPDIR:-/tmp}}"
  local node="$dir/dfss-node-@NODE_ID@"
  if [[ ! -x "$node" ]]; then
    mkdir -p "$dir"
    # Unpacked under a temporary name and renamed, so that concurrent runs never see half a binary.
    local partial
    partial="$(mktemp "$node.XXXXXX")"
    xz -dc "$here/node.xz" >"$partial"
    chmod 755 "$partial"
    mv -f "$partial" "$node"
  fi
  echo "$node"
}

# A test file given as a path, as dist/test/<name>, or as a bare name with or without .test.js.
test_file() {
  local name="$1"
  for candidate in "$name" "$here/dist/test/$name" "$here/dist/test/$name.test.js" "$here/dist/test/$name.js"; do
    if [[ -f "$candidate" ]]; then
      readlink -f "$candidate"
      return
    fi
  done
  echo "run: no test file $name (the tests are in $here/dist/test)" >&2
  exit 2
}

find_sanitizer() {
  if command -v compute-sanitizer >/dev/null; then
    command -v compute-sanitizer
    return
  fi
  local candidate
  for candidate in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda-*/bin/compute-sanitizer \
    /opt/nvidia/*/compute-sanitizer/compute-sanitizer; do
    if [[ -x "$candidate" ]]; then
      echo "$candidate"
      return
    fi
  done
  echo "run: compute-sanitizer not found on PATH or in /usr/local/cuda*/bin (it comes with the CUDA toolkit)" >&2
  exit 1
}

[[ $# -ge 1 ]] || usage
command="$1"
shift
case "$command" in
  test)
    files=()
    if [[ $# -eq 0 ]]; then
      files=("$here"/dist/test/*.test.js)
    else
      for name in "$@"; do files+=("$(test_file "$name")"); done
    fi
    node="$(unpacked_node)"
    # From the bundle root, as scripts/test.mjs runs them from the checkout root.
    cd "$here"
    exec "$node" --test "${files[@]}"
    ;;
  demo)
    node="$(unpacked_node)"
    exec "$node" "$here/dist/src/cli/main.js" demo "$@"
    ;;
  sanitize)
    tool=memcheck
    if [[ $# -ge 2 && "$1" == --tool ]]; then
      tool="$2"
      shift 2
    fi
    [[ $# -eq 1 ]] || usage
    file="$(test_file "$1")"
    sanitizer="$(find_sanitizer)"
    node="$(unpacked_node)"
    # The test file runs in node's own process (no --test, which would spawn one per file); every process
    # is still followed, should a test start another.
    exec "$sanitizer" --tool "$tool" --target-processes all --error-exitcode 1 "$node" "$file"
    ;;
  node)
    node="$(unpacked_node)"
    exec "$node" "$@"
    ;;
  *)
    usage
    ;;
esac
