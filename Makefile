# fe-php: build, test, demo. Every target does its own set-up on a fresh
# Debian 12 (as root: it installs the Debian packages it needs).

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/fe-php/fe-php/internal/version.Version=$(VERSION)

.PHONY: all build test vet deps demo bench clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/fe-php ./cmd/fe-php

# Debian packages the tests need (skipped when already installed).
deps:
	bash scripts/deps.sh

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Every test: unit tests and integration tests against the real binary,
# with the race detector.
test: deps vet
	$(GO) test -race -count=1 ./...

# The demo site on http://127.0.0.1:8080 (Ctrl-C stops it).
demo: build
	./bin/fe-php check -c examples/demo/fe-php.toml
	./bin/fe-php run -c examples/demo/fe-php.toml

# fe-php against nginx on the same machine (see bench/README.md).
bench:
	bash bench/static.sh

clean:
	rm -rf bin
