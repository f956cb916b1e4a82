# The front door of dfss.
#
#   make              install the npm dependencies if needed, build the TypeScript library and libdfss.so
#   make test         build, then run the C ABI test and every test file
#   make demo         build, then run the DFSS attention demo
#   make bench        build, then time DFSS against dense attention on the available backend
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

bench: build
	node dist/bench/attention.bench.js

bundle: build
	node scripts/pack-gpu.mjs

clean:
	rm -rf dist build bundle
