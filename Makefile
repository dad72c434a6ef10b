# akminio — build, test and lint.
#
#   make build   bin/akminio, stamped with the version and commit
#   make test    every test, against a real MinIO (built once into a cache outside the repo)
#   make lint    go vet and a gofmt check
#   make minio   build the pinned MinIO server if missing and print its path

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test lint minio demo

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/akminio ./cmd/akminio

# The tests that talk to MinIO start the real server found at $AKMINIO_MINIO_BIN; a missing
# binary fails them (never skips). -race because the daemon is concurrent; it fits the
# 2-core budget.
test:
	@minio_bin="$$(./scripts/minio.sh ensure)" && \
	echo "MinIO server: $$minio_bin" && \
	AKMINIO_MINIO_BIN="$$minio_bin" $(GO) test -race -count=1 -timeout 60m ./...

lint:
	$(GO) vet ./...
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then echo "not gofmt'd:"; echo "$$unformatted"; exit 1; fi

minio:
	./scripts/minio.sh ensure

# A tour on one machine: the real MinIO and the authentik simulator on loopback with demo
# users, akminio plan / apply / plan, each user's STS login, then `akminio run` in the
# foreground until Ctrl-C. Everything started is stopped at the end. DEMO_ARGS passes flags
# to the demo: -run=false ends after the logins, -keep keeps its folder (config, logs).
DEMO_ARGS ?=
demo: build
	@minio_bin="$$(./scripts/minio.sh ensure)" && \
	$(GO) run ./internal/cmd/demo -akminio bin/akminio -minio "$$minio_bin" $(DEMO_ARGS)
