# Shared helpers for the project's scripts (sourced, not run).
# shellcheck shell=bash

# Builds the release executable as the container image does (Dockerfile): the Swift runtime and
# Foundation linked in statically, which starts in two thirds of the CPU time and calls the
# runtime (retain, release) without going through the dynamic linker's tables.
build_release() {
    swift build -c release --product task-status-bridge --static-swift-stdlib "$@"
}

# Installs the Debian packages the project needs when they are missing: libhiredis-dev (the C
# client the Redis module wraps), redis-server (for the bridge and the integration tests), and
# python3 with venv (helper scripts, and SailPoint's Python SDK for the client test).
ensure_system_packages() {
    local missing=()
    pkg-config --exists hiredis 2>/dev/null || missing+=(libhiredis-dev)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    # python3 finds free ports; its venv module installs SailPoint's SDK for the client test.
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            echo "error: missing ${missing[*]}; run as root: apt-get install -y ${missing[*]}" >&2
            return 1
        fi
    fi
    echo "installing ${missing[*]} ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
        { $sudo apt-get update >/dev/null && $sudo apt-get install -y "${missing[@]}" >/dev/null; }
    # Debian's package starts a system-wide server where systemd runs; the scripts start their own.
}

# Prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# Starts a private redis-server on 127.0.0.1:$1 with its data in $2; waits until it answers.
# Extra arguments go to redis-server. Sets REDIS_PID.
start_redis() {
    local port=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
        --logfile "$dir/redis.log" --daemonize no "$@" >/dev/null 2>&1 &
    REDIS_PID=$!
    wait_until_up "$REDIS_PID" "redis-server on port $port (see $dir/redis.log)" 100 redis_answers "$port"
}

redis_answers() { redis-cli -p "$1" ping 2>/dev/null | grep -q PONG; }

# Runs the command after the first three arguments every 50 ms, up to $3 times, until it succeeds,
# while process $1 lives; $2 names the process in errors.
wait_until_up() {
    local pid=$1 what=$2 tries=$3 i
    shift 3
    for i in $(seq 1 "$tries"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "error: $what exited" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "error: $what did not get ready" >&2
    return 1
}

stop_redis() {
    if [ -n "${REDIS_PID:-}" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    REDIS_PID=""
}

# Starts `$1 serve --no-auth` in the background against $REDIS_URL with its HTTP server on
# 127.0.0.1:$2, logging to $3; waits until /health/ready answers 200. Extra arguments go to
# `serve`. Sets BRIDGE_PID.
start_bridge() {
    local bin=$1 port=$2 log=$3
    shift 3
    "$bin" serve --no-auth --http-host 127.0.0.1 --http-port "$port" --log-level warning "$@" >"$log" 2>&1 &
    BRIDGE_PID=$!
    wait_until_up "$BRIDGE_PID" "the bridge on port $port (see $log)" 200 curl -fsS "http://127.0.0.1:$port/health/ready"
}

stop_bridge() {
    if [ -n "${BRIDGE_PID:-}" ] && kill -0 "$BRIDGE_PID" 2>/dev/null; then
        kill -TERM "$BRIDGE_PID" 2>/dev/null || true
        wait "$BRIDGE_PID" 2>/dev/null || true
    fi
    BRIDGE_PID=""
}
