# syntax=docker/dockerfile:1
# akminio container image: a static binary on distroless, running as nonroot (65532).
#
#   docker build --build-arg VERSION=$(git describe --tags --always) --build-arg COMMIT=$(git rev-parse HEAD) -t akminio .
#   docker run --read-only -v akminio-state:/var/lib/akminio -v ./config.yaml:/etc/akminio/config.yaml:ro akminio
#
# The root file system can be read-only: the state directory (a volume) is the only place
# akminio writes. Checked by daemon/deploy_test.go.

FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/akminio ./cmd/akminio \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/akminio /akminio
COPY --from=build --chown=65532:65532 /out/state /var/lib/akminio
USER 65532:65532
VOLUME /var/lib/akminio
# The daemon listens on 127.0.0.1:9470 by default; set http.listen: 0.0.0.0:9470 to expose it.
EXPOSE 9470
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/akminio", "healthcheck"]
ENTRYPOINT ["/akminio"]
CMD ["run", "--config", "/etc/akminio/config.yaml"]
