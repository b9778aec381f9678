# syntax=docker/dockerfile:1
# Build: docker build -t mcp-jupyter .
# Run:   docker run -p 3000:3000 -v mcp-data:/data mcp-jupyter
# NB: the image binds 0.0.0.0:3000. Once the MCP edge lands, binding beyond
# loopback requires its auth token (MCP_AUTH_TOKEN); until then only the
# probes are served.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -o /out/mcp-jupyter ./cmd/mcp-jupyter

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3-ipykernel python3-dill python3-matplotlib python3-pandas python3-nbformat \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /home/mcp mcp \
 && mkdir -p /data && chown mcp:mcp /data
COPY --from=build /out/mcp-jupyter /usr/local/bin/mcp-jupyter
USER mcp
ENV MCP_DATA_DIR=/data \
    MCP_ADDR=0.0.0.0:3000 \
    MCP_LOG_FORMAT=json
VOLUME /data
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD curl -fsS http://127.0.0.1:3000/health || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["mcp-jupyter"]
CMD ["serve"]
