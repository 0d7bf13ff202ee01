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

# go-nvml's cgo bindings declare every deprecated NVML call; silence the
# hundreds of warnings that would otherwise bury real build output.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations

# Pinned tool versions, installed into .tools/ by `make tools`.
STATICCHECK_VERSION := v0.8.2
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
PROTO_FILES := $(wildcard sdk/proto/vigil/plugin/v1/*.proto)

# Plugin folders with a main package: plugins/<kind>/<name>/main.go
PLUGINS := $(patsubst %/main.go,%,$(wildcard plugins/*/*/main.go))

.PHONY: help build run test test-deps lint tools bench clean proto proto-check protoc-deps

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

$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

protoc-deps: $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc
	@if ! command -v protoc >/dev/null 2>&1 || [ ! -f /usr/include/google/protobuf/struct.proto ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian packages protobuf-compiler and libprotobuf-dev (protoc and its well-known types)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends protobuf-compiler libprotobuf-dev >/dev/null; \
		else \
			echo "protoc is missing; install Debian's protobuf-compiler and libprotobuf-dev packages" >&2; exit 1; \
		fi; \
	fi

proto: protoc-deps ## Regenerate Go code from sdk/proto (checked in)
	protoc -I sdk/proto \
		--plugin=protoc-gen-go=$(TOOLS)/protoc-gen-go --go_out=sdk/proto --go_opt=paths=source_relative \
		--plugin=protoc-gen-go-grpc=$(TOOLS)/protoc-gen-go-grpc --go-grpc_out=sdk/proto --go-grpc_opt=paths=source_relative \
		$(PROTO_FILES)

proto-check: proto ## Fail when the checked-in generated code is stale
	@if [ -n "$$(git status --porcelain -- sdk/proto)" ]; then \
		echo "generated code in sdk/proto is stale: run make proto and commit" >&2; git status --porcelain -- sdk/proto >&2; exit 1; \
	fi

lint: tools ## gofmt, go vet and staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:" $$unformatted >&2; exit 1; fi
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...

bench: ## Run the benchmarks (see bench/README.md)
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean: ## Remove build outputs and the dev data dir
	rm -rf $(BIN) .vigil-dev
