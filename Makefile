# zerohop build and test targets. `make test` is what CI runs: lint, the
# cross-builds, then the tests.
GO        ?= go
PKGS      := ./...
# The repository's Go modules: the sidecar's (.) and the nested ones the Go
# client's module graph is made of, with go lines an app can build with
# (README.md, "Go client"). `./...` stops at a nested go.mod, so each Go
# target below runs in every module's directory: $(call each,COMMAND).
NESTED    := internal/testproc shm invalidate invalidate/redisbridge clients/go
MODULES   := . $(NESTED)
each       = set -e; for m in $(or $(2),$(MODULES)); do echo "== module $$m"; (cd $$m && $(1)); done
# staticcheck, pinned so that every machine reports the same findings. `go
# run` fetches it through the module proxy once and caches the build; no
# tool has to be installed beforehand. 0.8.x knows Go 1.26.
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
# GOOS/GOARCH pairs every package must build for: the sidecar's linux
# amd64 and arm64; linux/386 for 32-bit int and atomics mistakes; darwin
# and windows for developers' machines, where the Go client maps nothing and
# sends every request to the sidecar.
CROSS     := linux/amd64 linux/arm64 linux/386 darwin/arm64 windows/amd64
# What `zerohop version` prints: the nearest tag (or the commit) and the
# full commit, stamped with -ldflags because the build info's VCS stamp is
# missing with -buildvcs=false and in a copied source tree (Docker).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Packages whose concurrency matters run under the race detector: these of
# the main module, and every nested module whole.
RACE_PKGS := ./clients/... ./internal/... ./proxy/... ./store/... ./cmd/...

.PHONY: all build docs run test test-clients test-long bench fuzz lint vet staticcheck tidy-check download crossbuild fmt clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/zerohop ./cmd/zerohop

# Generated documentation: docs/config.md from the config package's doc
# comments and defaults (a test fails when it is out of date).
docs:
	$(GO) generate ./config

run: build
	./bin/zerohop demo

vet:
	@$(call each,$(GO) vet $(PKGS))
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: lint crossbuild
	@$(call each,$(GO) test -count=1 -timeout 15m $(PKGS))
	$(GO) test -count=1 -race -timeout 15m $(RACE_PKGS)
	@$(call each,$(GO) test -count=1 -race -timeout 15m ./...,$(NESTED))
	$(MAKE) test-clients

# The app-side clients in other languages: each script installs what its
# tests need (a virtualenv, npm packages, the addon's build) and runs them.
test-clients:
	clients/python/ci.sh
	clients/node/ci.sh

# Long torture and crash runs: >= 10M verified reads, 300 writer kills.
# ZEROHOP_TORTURE_DURATION=10m turns the torture test into a soak.
test-long:
	cd shm && ZEROHOP_LONG=1 $(GO) test -count=1 -timeout 90m -run 'Torture|Crash|Soak' -v ./...
	ZEROHOP_LONG=1 $(GO) test -count=1 -timeout 90m -run 'Torture|Crash|Soak' -v ./store/...
	ZEROHOP_LONG=1 $(GO) test -count=1 -timeout 30m -run 'Crash' -v ./cmd/zerohop/

# The side-by-side suite (nginx, Varnish, HAProxy, Redis when installed),
# then the Go benchmarks with percentiles.
bench: build
	./bin/zerohop bench --json bench/last.json --svg bench/last.svg
	./bin/zerohop bench compare bench/baseline.json bench/last.json
	@$(call each,$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...,shm clients/go)
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./proxy/...

# Every fuzz target for a fixed number of executions (count-based budgets
# avoid a Go 1.26 fuzz shutdown race seen with time budgets).
FUZZ_EXECS ?= 200000x
fuzz:
	@set -e; for spec in \
	  shm:FuzzOpen shm:FuzzAdopt shm:FuzzDecodeEntry shm:FuzzSplitKey shm:FuzzKeyRoundTrip shm:FuzzHeaderIter shm:FuzzStringIter shm:FuzzVaryFields \
	  proxy/httpcache:FuzzParseCacheControl proxy/httpcache:FuzzParseHTTPDate proxy/httpcache:FuzzVary \
	  proxy/httpcache:FuzzETag proxy/httpcache:FuzzCacheStatus proxy/httpcache:FuzzSurrogateKeys proxy/httpcache:FuzzParseRange proxy/httpcache:FuzzTargeted proxy:FuzzNormalizeQuery \
	  invalidate:FuzzDecode store:FuzzRecord shm/appcounters:FuzzParse \
	  proxy/internal/jwtcheck:FuzzVerify proxy/internal/jwtcheck:FuzzParseJWKS proxy/internal/apikey:FuzzParse \
	  proxy/internal/fastpath:FuzzParseHead proxy/internal/h1:FuzzParseResponseHead proxy/internal/h1:FuzzWriteQuick proxy/internal/sniff:FuzzServerName config:FuzzParse; do \
	  pkg=$${spec%%:*}; fn=$${spec#*:}; echo "== $$pkg $$fn"; \
	  (cd $$pkg && $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZ_EXECS) .); \
	done

# go vet and gofmt, staticcheck (fails on any finding: fix it, or where a
# check is wrong for a stated reason, `//lint:ignore CHECK reason` on the
# line before), and go.mod/go.sum as `go mod tidy` would leave them.
lint: vet staticcheck tidy-check

staticcheck:
	@$(call each,$(STATICCHECK) $(PKGS))

tidy-check:
	@$(call each,$(GO) mod tidy -diff || { echo "$$m: go.mod/go.sum are not tidy: run go mod tidy there"; exit 1; })

# Every module's dependencies into the module cache (CI, before the tests).
download:
	@$(call each,$(GO) mod download)

# Compile every package for each of CROSS (no binaries written); the tests
# too on linux/386 (32-bit constants); and the Go client's tests off Linux,
# where they take the no-mapping branch.
crossbuild:
	@set -e; for t in $(CROSS); do \
	  echo "== build $$t"; $(call each,GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build -o /dev/null $(PKGS)); \
	done; \
	echo "== vet linux/386"; $(call each,GOOS=linux GOARCH=386 $(GO) vet $(PKGS)); \
	for t in darwin/arm64 windows/amd64; do \
	  echo "== vet clients/go $$t"; (cd clients/go && GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) vet ./...); \
	done

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
