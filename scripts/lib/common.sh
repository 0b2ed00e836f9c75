# Shared helpers for the project's scripts (sourced, not run).
# shellcheck shell=bash

# Builds the release executable as the container image does (Dockerfile): the Swift runtime and
# Foundation linked in statically, which starts in two thirds of the CPU time and calls the
# runtime (retain, release) without going through the dynamic linker's tables.
build_release() {
    swift build -c release --product task-status-bridge --static-swift-stdlib "$@"
}

# Installs the Debian packages the project needs when they are missing: libhiredis-dev (the C
# client the Redis module wraps), libssl-dev and openssl (TLS to Redis, and the test
# certificates), redis-server (for the bridge and the integration tests), and python3 with venv
# (helper scripts, and SailPoint's Python SDK for the client test).
ensure_system_packages() {
    local missing=()
    pkg-config --exists hiredis 2>/dev/null || missing+=(libhiredis-dev)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    # OpenSSL: the Redis module's TLS (libssl-dev to build), and the test certificates (openssl).
    pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
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

# url_address URL: prints "HOST PORT" of a redis://[user[:password]@]host:port[/db] URL.
url_address() {
    local address=${1#redis://}
    address=${address#*@}
    address=${address%%/*}
    echo "${address%:*} ${address##*:}"
}

# A free loopback port whose cluster bus port (port + 10000) is free too.
free_cluster_port() {
    python3 - <<'PY'
import random, socket
for _ in range(200):
    port = random.randrange(20000, 55000)
    sockets = []
    try:
        for p in (port, port + 10000):
            s = socket.socket()
            sockets.append(s)
            s.bind(("127.0.0.1", p))
        print(port)
        break
    except OSError:
        pass
    finally:
        for s in sockets:
            s.close()
PY
}

# Starts a loopback Redis Cluster in DIR: three masters and a replica each (`redis-cli --cluster
# create`), on free ports, AOF off; waits until every node says cluster_state:ok and knows the
# three replicas. With a second argument, a directory of certificates (scripts/lib/make-certs):
# TLS only (`port 0`, `tls-cluster yes`, `tls-replication yes`, client certificates required).
# Sets CLUSTER_PIDS and CLUSTER_SEEDS (host:port,...). Stop it with stop_cluster.
start_cluster() {
    local dir=$1 certs=${2:-} port i nodes=() tls=() cli=()
    CLUSTER_PIDS=() CLUSTER_SEEDS=""
    if [ -n "$certs" ]; then
        tls=(--tls-cluster yes --tls-replication yes --tls-cert-file "$certs/redis.crt" --tls-key-file "$certs/redis.key"
            --tls-ca-cert-file "$certs/ca.crt" --tls-auth-clients yes)
        cli=(--tls --cacert "$certs/ca.crt" --cert "$certs/client.crt" --key "$certs/client.key")
    fi
    for i in 1 2 3 4 5 6; do
        port=$(free_cluster_port)
        mkdir -p "$dir/$port"
        if [ -n "$certs" ]; then
            (cd "$dir/$port" && exec redis-server --port 0 --tls-port "$port" "${tls[@]}" --bind 127.0.0.1 --cluster-enabled yes \
                --cluster-config-file nodes.conf --cluster-node-timeout 2000 --save "" --appendonly no \
                --dir "$dir/$port" --logfile "$dir/$port/redis.log") >/dev/null 2>&1 &
        else
            (cd "$dir/$port" && exec redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
                --cluster-config-file nodes.conf --cluster-node-timeout 2000 --save "" --appendonly no \
                --dir "$dir/$port" --logfile "$dir/$port/redis.log") >/dev/null 2>&1 &
        fi
        CLUSTER_PIDS+=($!)
        nodes+=("127.0.0.1:$port")
        wait_until_up $! "cluster node on port $port (see $dir/$port/redis.log)" 100 redis_answers "$port" ${cli[@]+"${cli[@]}"} || return 1
    done
    redis-cli ${cli[@]+"${cli[@]}"} --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 ||
        { echo "error: redis-cli --cluster create failed (see $dir/create.log)" >&2; return 1; }
    cluster_ok() {
        local node
        for node in "${nodes[@]}"; do
            redis-cli ${cli[@]+"${cli[@]}"} -p "${node##*:}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || return 1
            # and it knows all three replicas
            [ "$(redis-cli ${cli[@]+"${cli[@]}"} -p "${node##*:}" cluster nodes 2>/dev/null | awk '$3 ~ /slave/' | wc -l)" = 3 ] || return 1
        done
    }
    wait_until_up "${CLUSTER_PIDS[0]}" "the cluster (see $dir)" 400 cluster_ok || return 1
    CLUSTER_SEEDS=$(IFS=,; echo "${nodes[*]}")
}

stop_cluster() {
    local pid
    for pid in ${CLUSTER_PIDS[@]+"${CLUSTER_PIDS[@]}"}; do kill "$pid" 2>/dev/null || true; done
    for pid in ${CLUSTER_PIDS[@]+"${CLUSTER_PIDS[@]}"}; do wait "$pid" 2>/dev/null || true; done
    CLUSTER_PIDS=()
}

# Kills (SIGKILL) every redis-server whose working directory is under DIR: servers that tests
# started for themselves and could not stop. (Matching the command line does not work: Redis
# rewrites its process title.)
kill_servers_under() {
    local pid
    for pid in $(pgrep -x redis-server 2>/dev/null) $(pgrep -x redis-sentinel 2>/dev/null); do
        case "$(readlink "/proc/$pid/cwd" 2>/dev/null)" in "$1"/*) kill -9 "$pid" 2>/dev/null || true ;; esac
    done
}

# redis_answers PORT [redis-cli options...]: whether the server on PORT answers PING.
redis_answers() {
    local port=$1
    shift
    redis-cli "$@" -p "$port" ping 2>/dev/null | grep -q PONG
}

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
