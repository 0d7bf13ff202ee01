# Vigil's single entry points. Run `make help` for the list.

GO          ?= go
BIN         := bin
TOOLS       := $(CURDIR)/.tools
PKG         := github.com/vigilml/vigil
VERSION     ?= $(shell git describe --tags --match 'v*' --dirty 2>/dev/null || echo 0.1.0-dev)
REVISION    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_DATE  ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS     := -X $(PKG)/agent/version.Version=$(VERSION) \
               -X $(PKG)/agent/version.Revision=$(REVISION) \
               -X $(PKG)/agent/version.BuildDate=$(BUILD_DATE)

# Pinned tool versions, installed into .tools/ by `make tools`.
STATICCHECK_VERSION := v0.8.2

# Plugin folders with a main package: plugins/<kind>/<name>/main.go
PLUGINS := $(patsubst %/main.go,%,$(wildcard plugins/*/*/main.go))

.PHONY: help build run test test-deps lint tools bench clean

help: ## Show this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: ## Build bin/vigil and every plugin into bin/plugins/
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/vigil ./cmd/vigil
	@for p in $(PLUGINS); do \
		echo "$(GO) build -o $(BIN)/plugins/$$(basename $$p) ./$$p"; \
		$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/plugins/$$(basename $$p) ./$$p || exit 1; \
	done

run: build ## Build, then run the agent on embedded defaults (vigil agent -dev)
	./$(BIN)/vigil agent -dev

test: test-deps ## Run every test with the race detector (installs what tests need)
	$(GO) test -race -count=1 -timeout 25m ./...

test-deps: ## Install what the tests need when it is missing (promtool from Debian's prometheus)
	@if ! command -v promtool >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "test-deps: installing Debian package prometheus (for promtool)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
		else \
			echo "test-deps: promtool is missing; install Debian's prometheus package (sudo apt-get install prometheus)" >&2; exit 1; \
		fi; \
	fi
	@command -v promtool >/dev/null && echo "test-deps: promtool $$(promtool --version 2>&1 | head -1 | awk '{print $$3}') ok"

tools: $(TOOLS)/staticcheck ## Install pinned Go tools into .tools/

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: tools ## gofmt, go vet and staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:" $$unformatted >&2; exit 1; fi
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...

bench: ## Run the benchmarks (see bench/README.md)
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean: ## Remove build outputs and the dev data dir
	rm -rf $(BIN) .vigil-dev
