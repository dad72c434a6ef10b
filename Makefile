# akminio — build, test and lint.
#
#   make build   bin/akminio, stamped with the version and commit
#   make test    every test, against a real MinIO (built once into a cache outside the repo),
#                then `make fuzz`
#   make fuzz    a bounded run of each fuzz target (FUZZTIME each, default 20s)
#   make lint    go vet and a gofmt check
#   make minio   build the pinned MinIO server if missing and print its path
#   make package dist/akminio_<version>_<arch>.deb (deploy/debian/nfpm.yaml)
#   make dashboard  regenerate deploy/grafana/akminio.json from internal/cmd/dashboard

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test fuzz lint minio demo package dashboard

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/akminio ./cmd/akminio

# The Debian package: a static, stripped binary for GOARCH (default: this machine's) packed
# with nfpm by internal/cmd/package. SOURCE_DATE_EPOCH (default: the commit's time) dates
# the files and the changelog.
GOARCH            ?= $(shell $(GO) env GOARCH)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
package:
	rm -f dist/akminio_*.deb
	CGO_ENABLED=0 GOARCH=$(GOARCH) $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o dist/build/akminio ./cmd/akminio
	$(GO) run ./internal/cmd/package -version "$(VERSION)" -commit "$(COMMIT)" -arch $(GOARCH) \
		-date "$(SOURCE_DATE_EPOCH)" -binary dist/build/akminio -out dist

# The Grafana dashboard is generated from Go; a test fails when the committed file differs.
dashboard:
	$(GO) run ./internal/cmd/dashboard -out deploy/grafana/akminio.json

# The tests that talk to MinIO start the real server found at $AKMINIO_MINIO_BIN; a missing
# binary fails them (never skips). -race because the daemon is concurrent; it fits the
# 2-core budget.
test:
	@minio_bin="$$(./scripts/minio.sh ensure)" && \
	echo "MinIO server: $$minio_bin" && \
	AKMINIO_MINIO_BIN="$$minio_bin" $(GO) test -race -count=1 -timeout 60m ./...
	@$(MAKE) --no-print-directory fuzz

# Go runs one fuzz target per invocation; scripts/fuzz.sh runs each in turn and prints
# their executions. A failing input lands in the package's testdata/fuzz/ as a regression
# test.
FUZZTIME ?= 20s
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz.sh

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
