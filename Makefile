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
# Later nfpm versions fail to resolve two modules here.
NFPM_VERSION        := v2.45.2

# Packages (make package): hardened release build, staged for nfpm.
ARCH        ?= amd64
DIST        := dist
STAGE       := $(DIST)/stage-$(ARCH)
PKG_VERSION := $(patsubst v%,%,$(VERSION))
# Stripped (-s -w), PIE, RELRO (-z relro, through the external linker), with
# the same build info as `make build`. Lazy binding (-z lazy), not full RELRO
# (-z now): go-nvml leaves every nvml* symbol undefined until it dlopens
# libnvidia-ml.so, so binding at load fails ("undefined symbol:
# nvmlGpuInstanceGetComputeInstanceProfileInfoV") on every host without the
# driver, and with older drivers (NVIDIA/go-nvml#18, #131).
RELEASE_FLAGS := -trimpath -buildmode=pie \
                 -ldflags "-s -w -linkmode=external -extldflags '-Wl,-z,relro,-z,lazy' $(LDFLAGS)"
# cgo needs a C compiler for the target; arm64 needs Debian's gcc-aarch64-linux-gnu
# and libc6-dev-arm64-cross.
CC_amd64    := gcc
CC_arm64    := aarch64-linux-gnu-gcc

# Plugin folders with a main package: plugins/<kind>/<name>/main.go
PLUGINS := $(patsubst %/main.go,%,$(wildcard plugins/*/*/main.go))

.PHONY: help build run test test-deps test-package package lint tools bench clean proto proto-check protoc-deps

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

test: test-deps ## Run every test with the race detector (installs what tests need); as root, also test-package
	$(GO) test -race -count=1 -timeout 25m ./...
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory test-package; \
	else echo "test: not root, so the package install test (make test-package) did not run"; fi

test-deps: ## Install what the tests need when it is missing (Debian packages as root; see scripts/test-deps.sh)
	@sh scripts/test-deps.sh

tools: $(TOOLS)/staticcheck $(TOOLS)/nfpm ## Install pinned Go tools into .tools/

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

$(TOOLS)/nfpm:
	GOBIN=$(TOOLS) $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

package: $(TOOLS)/nfpm ## Build dist/vigil_*.deb and dist/vigil-*.rpm (ARCH=amd64 or arm64; arm64 needs a cross gcc)
	@command -v $(CC_$(ARCH)) >/dev/null 2>&1 || { echo "package: no C compiler $(CC_$(ARCH)) for ARCH=$(ARCH) (Debian: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)" >&2; exit 1; }
	rm -rf $(STAGE) && mkdir -p $(STAGE)/plugins
	CGO_ENABLED=1 GOOS=linux GOARCH=$(ARCH) CC=$(CC_$(ARCH)) $(GO) build $(RELEASE_FLAGS) -o $(STAGE)/vigil ./cmd/vigil
	@for p in $(PLUGINS); do \
		echo "build plugin $$p"; \
		CGO_ENABLED=1 GOOS=linux GOARCH=$(ARCH) CC=$(CC_$(ARCH)) $(GO) build $(RELEASE_FLAGS) -o $(STAGE)/plugins/$$(basename $$p) ./$$p || exit 1; \
	done
	packaging/gen-catalog.sh $(STAGE)/plugins > $(STAGE)/catalog.json && mv $(STAGE)/catalog.json $(STAGE)/plugins/catalog.json
	gzip -9n < packaging/debian/changelog > $(STAGE)/changelog.gz
	gzip -9n < packaging/vigil.1 > $(STAGE)/vigil.1.gz
	@for fmt in deb rpm; do \
		VIGIL_VERSION=$(PKG_VERSION) VIGIL_ARCH=$(ARCH) VIGIL_STAGE=$(STAGE) \
			$(TOOLS)/nfpm package --config packaging/nfpm.yaml --packager $$fmt --target $(DIST)/ || exit 1; \
	done

test-package: package ## As root: lintian, install, run, remove and purge the .deb on this machine (changes the system)
	VIGIL_PACKAGE_TEST=1 packaging/test-install.sh $(DIST)

lint: $(TOOLS)/staticcheck ## gofmt, go vet and staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:" $$unformatted >&2; exit 1; fi
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...

bench: ## Run the benchmarks (see bench/README.md)
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean: ## Remove build outputs and the dev data dir
	rm -rf $(BIN) .vigil-dev
