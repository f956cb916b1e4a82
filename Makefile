# The front door of dfss.
#
#   make              install the npm dependencies if needed, build the TypeScript library and libdfss.so
#   make test         build, then run the C ABI test and every test file
#   make demo         build, then run the DFSS attention demo
#   make bench        build, then the benchmarks of bench/README.md that can run here (BENCH_ARGS: harness flags)
#   make bundle       pack bundle/dfss-gpu/ for a GPU host without Node.js (see scripts/pack-gpu.mjs)
#   make clean        remove every build output
#
# Options: ARCH=80 builds libdfss.so for one GPU architecture only (quick), DEBUG=1 builds it for debugging.
# Without nvcc the library is skipped with one line and everything else works on the CPU.

BUILD_ARGS := $(if $(ARCH),--arch '$(ARCH)') $(if $(DEBUG),--debug)
# npm records each install in this file: dependencies are reinstalled when package-lock.json is newer.
INSTALLED := node_modules/.package-lock.json

.PHONY: all build test demo bench bundle clean

all: build

$(INSTALLED): package-lock.json package.json
	npm ci --prefer-offline --no-audit --no-fund
	@touch $@

build: $(INSTALLED)
	node scripts/build.mjs $(BUILD_ARGS)

test: $(INSTALLED)
	node scripts/test.mjs $(BUILD_ARGS)

demo: build
	node dist/src/cli/main.js demo

# bench/README.md: the TypeScript API (CPU: issue 4's target 6), the call overhead over C where a GPU is, and
# where PyTorch sees a GPU the side-by-side comparison with it (BENCH_ARGS=--quick for a short one).
bench: build
	node dist/bench/attention.bench.js
	bash bench/call-overhead.sh build/cuda/lib node dist/bench/call-overhead.bench.js
	@if python3 -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then \
	  python3 bench/python/bench_attention.py --out build/bench $(BENCH_ARGS); \
	else \
	  echo "bench: no PyTorch with a GPU here; bench/python/bench_attention.py (dfss against PyTorch) runs on a GPU host: see bench/README.md"; \
	fi

bundle: build
	node scripts/pack-gpu.mjs

clean:
	rm -rf dist build bundle
