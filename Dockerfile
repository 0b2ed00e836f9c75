# syntax=docker/dockerfile:1
# The task-status bridge: built with Swift, run on slim Debian with hiredis and OpenSSL, as a non-root user.
#   docker build -t task-status-bridge .
#   docker run --rm -e REDIS_URL=redis://redis:6379/0 -e TASKSTATUS_JWT_SECRET_FILE=/run/secrets/jwt_secret ... task-status-bridge

# ---- build ----------------------------------------------------------------------------------
FROM swift:6.3-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libhiredis-dev libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so that a change in the sources does not fetch them again.
COPY Package.swift ./
COPY Sources ./Sources
RUN swift package resolve
RUN swift build -c release --product task-status-bridge --static-swift-stdlib \
    && install -D "$(swift build -c release --show-bin-path)/task-status-bridge" /out/task-status-bridge

# ---- run ------------------------------------------------------------------------------------
FROM debian:bookworm-slim
# libhiredis0.14: the C client the bridge links; libssl3: TLS to Redis (rediss://), verified
# against ca-certificates unless a CA file is given; curl: the health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libhiredis0.14 libssl3 curl ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin bridge
COPY --from=build /out/task-status-bridge /usr/local/bin/task-status-bridge
USER bridge:bridge
# Inside a container the HTTP server must listen beyond loopback; the port is the default one.
ENV TASKSTATUS_HTTP_HOST=0.0.0.0 \
    TASKSTATUS_HTTP_PORT=8080
EXPOSE 8080
# Ready means: Redis answers, the consumer group exists and this consumer can read from it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/health/ready >/dev/null || exit 1
# SIGTERM makes the bridge stop reading, finish and acknowledge what it holds, and exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["task-status-bridge"]
CMD ["serve"]
