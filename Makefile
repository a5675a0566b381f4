# The index of what a developer runs. `make help` lists the targets.
GO       ?= go
BIN      ?= bin/diffah
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
FUZZTIME ?= 30s
# CI runs a short fuzz pass; `make fuzz` runs each target for FUZZTIME.
CI_FUZZTIME ?= 5s

.PHONY: help deps build test unit fuzz-short fuzz demo bench bench-huge corpus fixtures lint clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

deps: ## install Debian tools (skopeo, umoci, docker-registry, zstd, bsdiff, jq, time, openssl, podman) and Go modules
	@scripts/deps.sh

build: ## build bin/diffah
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/diffah

test: deps lint unit fuzz-short ## everything CI runs: lint, unit + end-to-end tests, a short fuzz pass

unit: ## go test (unit and end-to-end testscript tests)
	$(GO) test -count=1 -timeout 20m ./...

lint: ## gofmt, go vet, fixture checksums
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if [ -f scripts/genfixtures/main.go ]; then $(GO) run ./scripts/genfixtures -check; fi

fuzz-short: ## every fuzz target for CI_FUZZTIME
	@scripts/fuzz.sh $(CI_FUZZTIME)

fuzz: ## every fuzz target for FUZZTIME (default 30s)
	@scripts/fuzz.sh $(FUZZTIME)

fixtures: ## regenerate testdata/images
	$(GO) run ./scripts/genfixtures

demo: deps build ## the main job on the bundled example: export a delta v1→v2, import it, compare digests
	@scripts/demo.sh

corpus: deps ## build the benchmark corpus (real software) under .cache/corpus
	@scripts/corpus.sh

bench: deps build corpus ## benchmark table vs full image, layer-level delta and zstd --patch-from
	@scripts/bench.sh

bench-huge: deps build corpus ## optional: export+import of a generated 10 GiB layer pair (HUGE_SIZE=1GiB for less), byte-exact, peak RSS < 512 MiB
	@scripts/bench-huge.sh

clean:
	rm -rf bin .cache/bench
