# syntax=docker/dockerfile:1
# Build: make image (docker where its engine runs, otherwise buildah with base
#        images made locally: infra/image/build.sh), or docker build -t mcp-jupyter .
# Test:  make image-test (infra/image/test.sh: uid, doctor, /health, MCP execute,
#        SIGTERM drain, the volume across a restart; prints the size)
# Run:   docker run -p 3000:3000 -v mcp-data:/data/mcp -e MCP_ALLOWED_HOSTS=localhost mcp-jupyter
# Check: docker run --rm -v mcp-data:/data/mcp mcp-jupyter doctor
# The base images are arguments so that a machine without a registry can build
# on images it made itself (infra/image/build.sh makes both with mmdebstrap).
ARG GO_IMAGE=golang:1.26-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
# Where modules come from (a private or caching proxy); the Go default otherwise.
ARG GOPROXY
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/mcp-jupyter ./cmd/mcp-jupyter

FROM ${BASE_IMAGE}
# The kernels' Python packages come from one list, infra/jupyter/debian-packages.txt,
# which the Makefile and the README use too.
# python3-munkres satisfies python3-fonttools' (matplotlib's) "python3-scipy |
# python3-munkres": without it apt takes scipy, whose python3-pythran pulls gcc,
# g++, binutils, the Python headers and BLAS headers into the image.
COPY infra/jupyter/debian-packages.txt /tmp/debian-packages.txt
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      $(grep -v '^#' /tmp/debian-packages.txt) python3-munkres ca-certificates curl tini \
 && rm -rf /var/lib/apt/lists/* /tmp/debian-packages.txt \
 && groupadd --system --gid 10001 mcp \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/mcp mcp \
 && mkdir -p /data/mcp && chown -R 10001:10001 /data
COPY --from=build /out/mcp-jupyter /usr/local/bin/mcp-jupyter
# NB: numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
ENV MCP_DATA_DIR=/data/mcp \
    MCP_ADDR=0.0.0.0:3000 \
    MCP_LOG_FORMAT=json \
    MCP_SHUTDOWN_GRACE=25s \
    HOME=/home/mcp
# Clients reaching the container by another name must be allowed explicitly
# (DNS-rebinding protection), e.g. -e MCP_ALLOWED_HOSTS=mcp.example.internal
VOLUME ["/data/mcp"]
EXPOSE 3000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s CMD curl -fsS http://127.0.0.1:3000/health || exit 1
# tini is PID 1: it forwards SIGTERM to the server and reaps the orphaned
# children of kernels; the server drains within MCP_SHUTDOWN_GRACE.
ENTRYPOINT ["/usr/bin/tini", "--", "mcp-jupyter"]
CMD ["serve"]
