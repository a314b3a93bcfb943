# zerohop build and test targets. `make test` is what CI runs.
GO        ?= go
PKGS      := ./...
# Packages whose concurrency matters run under the race detector.
RACE_PKGS := ./shm/... ./clients/... ./internal/... ./proxy/...

.PHONY: all build run test test-long bench fuzz lint vet fmt clean

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

# Long torture, crash and soak runs (tens of minutes).
test-long:
	ZEROHOP_LONG=1 $(GO) test -count=1 -timeout 90m -run 'Torture|Crash|Soak' -v ./shm/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./shm/... ./clients/...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzOpen -fuzztime 60s ./shm/
	$(GO) test -run '^$$' -fuzz FuzzDecodeEntry -fuzztime 60s ./shm/

lint: vet

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
