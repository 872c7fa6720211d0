# fe-php: build, test, demo. Every target does its own set-up on a fresh
# Debian 12 (as root: it installs the Debian packages it needs).

GO         ?= go
CC         ?= cc
PHP_PREFIX ?= /usr/local/php-zts-embed
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS    := -s -w -X github.com/fe-php/fe-php/internal/version.Version=$(VERSION)
# fephp_bridge embeds the PHP bridge (internal/embed/bridge) in the binary.
GOTAGS     := -tags fephp_bridge
BRIDGE     := internal/embed/bridge/fephp-bridge.so

.PHONY: all build test vet deps php bridge demo bench clean

all: build

build: bridge
	$(GO) build $(GOTAGS) -trimpath -ldflags '$(LDFLAGS)' -o bin/fe-php ./cmd/fe-php

# Debian packages the tests need (skipped when already installed).
deps:
	bash scripts/deps.sh

# The ZTS embed PHP under $(PHP_PREFIX), built from Debian's source
# package; skipped in a second when the prefix holds the same build.
php:
	PHP_PREFIX=$(PHP_PREFIX) bash scripts/build-php.sh

# The embedded backend's SAPI bridge, compiled against that PHP's headers.
bridge: php $(BRIDGE)

$(BRIDGE): internal/embed/bridge/fephp.c internal/embed/bridge/fephp.h $(PHP_PREFIX)/bin/php-config
	$(CC) -O2 -g -fPIC -shared -Wall -Werror -DZEND_ENABLE_STATIC_TSRMLS_CACHE=1 \
		$$($(PHP_PREFIX)/bin/php-config --includes) -o $@ internal/embed/bridge/fephp.c

vet: bridge
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(GOTAGS) ./...

# Every test: unit tests and integration tests against the real binary,
# real php-fpm and real libphp, with the race detector.
test: deps vet
	$(GO) test $(GOTAGS) -race -count=1 ./...
	# internal/rawio makes its raw system calls only without -race (under
	# -race it uses syscall.Read/Write): run its users once that way too.
	$(GO) test $(GOTAGS) -count=1 ./internal/rawio ./internal/http1 ./internal/fastcgi

# The spec's SaaS recipe (examples/saas) on http://127.0.0.1:8080: embedded
# PHP, an API, /admin/ on a php-fpm the demo starts, static assets (Ctrl-C
# stops it). examples/ecommerce and examples/spa run the same way.
demo: build
	bash scripts/deps.sh base
	bash examples/saas/run.sh

# fe-php against nginx on the same machine (see bench/README.md).
bench: build
	bash bench/static.sh
	bash bench/php.sh
	bash bench/wordpress.sh

clean:
	rm -rf bin $(BRIDGE)
