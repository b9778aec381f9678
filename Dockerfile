# syntax=docker/dockerfile:1
# Build: docker build -t mcp-jupyter .
# Run:   docker run -p 3000:3000 -v mcp-data:/data mcp-jupyter
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/mcp-jupyter ./cmd/mcp-jupyter

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3-ipykernel python3-dill python3-matplotlib python3-pandas python3-nbformat ca-certificates curl tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /home/mcp mcp \
 && mkdir -p /data && chown mcp:mcp /data
COPY --from=build /out/mcp-jupyter /usr/local/bin/mcp-jupyter
USER mcp
ENV MCP_DATA_DIR=/data \
    MCP_ADDR=0.0.0.0:3000 \
    MCP_LOG_FORMAT=json \
    MCP_SHUTDOWN_GRACE=25s
# Clients reaching the container by another name must be allowed explicitly
# (DNS-rebinding protection), e.g. -e MCP_ALLOWED_HOSTS=mcp.example.internal
VOLUME ["/data"]
EXPOSE 3000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s CMD curl -fsS http://127.0.0.1:3000/health || exit 1
# tini reaps kernels' orphaned children; the server itself runs kernels in their own sessions.
ENTRYPOINT ["/usr/bin/tini", "--", "mcp-jupyter"]
CMD ["serve"]
