# zerohop build and test targets. `make test` is what CI runs.
GO        ?= go
PKGS      := ./...
# Packages whose concurrency matters run under the race detector.
RACE_PKGS := ./shm/... ./clients/... ./internal/... ./proxy/... ./invalidate/... ./store/... ./cmd/...

.PHONY: all build run test test-clients test-long bench fuzz lint vet fmt clean

all: build

build:
	$(GO) build -o bin/zerohop ./cmd/zerohop

run: build
	./bin/zerohop demo

vet:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: vet
	$(GO) test -count=1 -timeout 15m $(PKGS)
	$(GO) test -count=1 -race -timeout 15m $(RACE_PKGS)
	$(MAKE) test-clients

# The app-side clients in other languages: each script installs what its
# tests need (a virtualenv, npm packages, the addon's build) and runs them.
test-clients:
	clients/python/ci.sh
	clients/node/ci.sh

# Long torture and crash runs: >= 10M verified reads, 300 writer kills.
# ZEROHOP_TORTURE_DURATION=10m turns the torture test into a soak.
test-long:
	ZEROHOP_LONG=1 $(GO) test -count=1 -timeout 90m -run 'Torture|Crash|Soak' -v ./shm/... ./store/...
	ZEROHOP_LONG=1 $(GO) test -count=1 -timeout 30m -run 'Crash' -v ./cmd/zerohop/

# The side-by-side suite (nginx, Varnish, HAProxy, Redis when installed),
# then the Go benchmarks with percentiles.
bench: build
	./bin/zerohop bench --json bench/last.json --svg bench/last.svg
	./bin/zerohop bench compare bench/baseline.json bench/last.json
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./shm/... ./clients/... ./proxy/...

# Every fuzz target for a fixed number of executions (count-based budgets
# avoid a Go 1.26 fuzz shutdown race seen with time budgets).
FUZZ_EXECS ?= 200000x
fuzz:
	@set -e; for spec in \
	  shm:FuzzOpen shm:FuzzAdopt shm:FuzzDecodeEntry shm:FuzzSplitKey shm:FuzzKeyRoundTrip shm:FuzzHeaderIter shm:FuzzStringIter \
	  proxy/httpcache:FuzzParseCacheControl proxy/httpcache:FuzzParseHTTPDate proxy/httpcache:FuzzVary \
	  proxy/httpcache:FuzzETag proxy/httpcache:FuzzCacheStatus proxy/httpcache:FuzzSurrogateKeys proxy/httpcache:FuzzParseRange \
	  invalidate:FuzzDecode store:FuzzRecord \
	  proxy:FuzzParseHead proxy/internal/h1:FuzzParseResponseHead proxy/internal/h1:FuzzWriteQuick internal/config:FuzzParse; do \
	  pkg=$${spec%%:*}; fn=$${spec#*:}; echo "== $$pkg $$fn"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZ_EXECS) ./$$pkg/; \
	done

lint: vet

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
