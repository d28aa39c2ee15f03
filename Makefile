# Thin wrapper around CMake: `make test`, `make demo`.
BUILD ?= build
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all build test demo demo-pageheap clean deps asan tsan bench bench-quick bench-scaling

all: build

deps:
	@sh tools/deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	sh demo/run-demo.sh $(BUILD)

# The page heap alone, driven the way the malloc layer drives it.
demo-pageheap: build
	$(BUILD)/demo/mh-demo-pageheap

# The benchmark suite against glibc, jemalloc, tcmalloc and mimalloc
# (installs the peers with apt-get when missing).  Results in docs/.
bench: build
	python3 bench/run.py --build $(BUILD) --mode full

bench-quick: build
	python3 bench/run.py --build $(BUILD) --mode quick

# Throughput of the threaded workloads from 1 thread to twice the CPUs.
bench-scaling: build
	python3 bench/scaling.py --build $(BUILD)

# Sanitizer builds of the whole test suite.
asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMHEAP_SANITIZE=address,undefined $(CMAKE_FLAGS)
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

tsan:
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DMHEAP_SANITIZE=thread $(CMAKE_FLAGS)
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) build-asan build-tsan
