# voice-ws: the two commands a newcomer needs are `make run` and `make test`.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)

.PHONY: all deps build run test test-fast test-asan bench clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

# Embedded demo database + the voice server with mock SMS.
run: build
	@scripts/run.sh $(BUILD)

# Everything: normal build and ASan+UBSan build, SQLite and a private MariaDB.
test: deps
	@scripts/test.sh

# Just the normal build's tests (MariaDB still started), no sanitizer pass.
test-fast: deps
	@VWS_SKIP_ASAN=1 scripts/test.sh

bench: build
	@scripts/bench.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
