//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import HTTPAPI
import Redis

/// Every setting of `serve` (and the connection settings every command shares), in the order
/// docs/configuration.md lists them. Defaults come from the configuration types
/// (`BridgeConfiguration.Defaults` and its kin), so that the library, the help text and the docs
/// say the same.
enum ServeOptions {
    typealias Bridge = BridgeConfiguration.Defaults
    typealias Limits = RequestLimits.Defaults
    typealias Auth = AuthConfiguration.Defaults
    typealias Rate = RateLimitConfiguration.Defaults
    typealias HTTP = HTTPConfiguration.Defaults

    // MARK: Redis and naming

    static let redisURL = OptionSpec<String>.text(
        "--redis-url",
        "REDIS_URL",
        .redis,
        default: RedisConfiguration.defaultURL,
        "`redis://[user[:password]@]host:port/db`, `rediss://...` for TLS (see below), or `unix://[user[:password]@]/path/to/socket?db=N`. `redis://bridge@host` names a user whose password comes from the file below. With `--sentinel` or `--redis-cluster` its scheme, user and password still apply"
    )
    static let redisPasswordFile = OptionSpec<String>.text(
        "--redis-password-file",
        "TASKSTATUS_REDIS_PASSWORD_FILE",
        .redis,
        default: nil,
        "a file holding the Redis password (trailing newline ignored), so that it stays out of the URL, the process list and the environment"
    )
    static let sentinel = OptionSpec<String>.text(
        "--sentinel",
        "TASKSTATUS_SENTINEL",
        .redis,
        default: nil,
        "`host:port[,host:port...]` of Redis Sentinels to ask for the master (port 26379 when left out); the URL's host and port are then ignored, its user, password and database still apply. Every connection follows a failover"
    )
    static let sentinelMaster = OptionSpec<String>.text(
        "--sentinel-master",
        "TASKSTATUS_SENTINEL_MASTER",
        .redis,
        default: "mymaster",
        "the name the sentinels monitor the master under"
    )
    static let sentinelPasswordFile = OptionSpec<String>.text(
        "--sentinel-password-file",
        "TASKSTATUS_SENTINEL_PASSWORD_FILE",
        .redis,
        default: nil,
        "a file holding the sentinels' password (`requirepass` of the sentinels), when they have one"
    )
    static let redisCluster = OptionSpec<String>.text(
        "--redis-cluster",
        "TASKSTATUS_REDIS_CLUSTER",
        .redis,
        default: nil,
        "`host:port[,host:port...]` of Redis Cluster nodes to read the slot map from (port 6379 when left out); every command then goes to the master of its key's slot, following `MOVED` and `ASK`. The URL's host, port and database are then ignored; its user and password apply to every node"
    )
    static let shards = OptionSpec<Int>.integer(
        "--shards",
        "TASKSTATUS_SHARDS",
        .redis,
        default: Bridge.shards,
        in: 1...1024,
        "request streams (with their dead letters and change feeds) to spread the work over, `taskstatus:requests:{s<k>}` (contract section 7); a task's requests go to shard `KEYSLOT(task key) mod N`. 1 keeps the single stream. Producers and every bridge must use the same number"
    )
    static let pubsub = OptionSpec<String>.text(
        "--pubsub",
        "TASKSTATUS_PUBSUB",
        .redis,
        default: Bridge.pubsub,
        "`classic` (`PUBLISH`: every node of a cluster receives every message) or `sharded` (`SPUBLISH` on the task's `taskstatus:updates:{<id>}` and on `reply-to`, no global channel; subscribers use `SSUBSCRIBE`)"
    )
    static let prefix = OptionSpec<String>.text(
        "--prefix",
        "TASKSTATUS_PREFIX",
        .redis,
        default: Bridge.prefix,
        "the prefix of every key and channel; no braces or spaces"
    )
    static let consumer = OptionSpec<String>.text(
        "--consumer",
        "TASKSTATUS_CONSUMER",
        .redis,
        default: nil,
        defaultText: "host name and process id",
        "this process's consumer name in the group (1 to 200 bytes); must be unique per running process"
    )

    // MARK: Redis connections: TLS and timeouts

    static let redisTLSCAFile = OptionSpec<String>.text(
        "--redis-tls-ca-file",
        "TASKSTATUS_REDIS_TLS_CA_FILE",
        .redisConnections,
        default: nil,
        defaultText: "the system's trust store",
        "PEM file of the certificate authorities that sign Redis's certificates. Any `--redis-tls-*` setting turns TLS on, as `rediss://` does, for every connection: nodes, replicas, sentinels (see `--sentinel-tls`), cluster nodes"
    )
    static let redisTLSCertFile = OptionSpec<String>.text(
        "--redis-tls-cert-file",
        "TASKSTATUS_REDIS_TLS_CERT_FILE",
        .redisConnections,
        default: nil,
        "PEM file of the client certificate (its chain may follow it), for servers that require one (`tls-auth-clients yes`, mutual TLS); needs `--redis-tls-key-file`"
    )
    static let redisTLSKeyFile = OptionSpec<String>.text(
        "--redis-tls-key-file",
        "TASKSTATUS_REDIS_TLS_KEY_FILE",
        .redisConnections,
        default: nil,
        "PEM file of the client certificate's private key"
    )
    static let redisTLSServerName = OptionSpec<String>.text(
        "--redis-tls-server-name",
        "TASKSTATUS_REDIS_TLS_SERVER_NAME",
        .redisConnections,
        default: nil,
        defaultText: "the host connected to",
        "the name sent as SNI and required in every server's certificate: for nodes reached by IP address whose certificate names the service. Without it, a node reported by IP address is verified against that address, or against the URL's (or the first cluster seed's) DNS name when it has one"
    )
    static let redisTLSInsecure = OptionSpec<Bool>.boolean(
        "--redis-tls-insecure",
        "TASKSTATUS_REDIS_TLS_INSECURE",
        .redisConnections,
        default: false,
        defaultText: "off",
        "TLS without verifying the server's certificate or name (the variable takes `true`): for tests only; a warning is logged at start"
    )
    static let sentinelTLS = OptionSpec<Bool>.boolean(
        "--sentinel-tls",
        "TASKSTATUS_SENTINEL_TLS",
        .redisConnections,
        default: nil,
        defaultText: "as the data nodes",
        "whether the sentinels are reached in TLS (their `tls-port`); `false` reaches plain sentinels in front of TLS data nodes"
    )
    static let redisCommandTimeout = OptionSpec<Int>.integer(
        "--redis-command-timeout",
        "TASKSTATUS_REDIS_COMMAND_TIMEOUT",
        .redisConnections,
        default: Int(RedisConfiguration.Defaults.commandTimeout.components.seconds),
        in: 1...3600,
        "seconds a connection may wait for Redis's answer before it is given up as dead (no FIN, no RST); the other connections to that server that wait are cut with it, so the bridge resumes within about this time plus a reconnect. Blocking reads wait `--block-ms` more, `WAIT` `--replica-timeout-ms` more"
    )
    static let redisKeepalive = OptionSpec<Int>.integer(
        "--redis-keepalive",
        "TASKSTATUS_REDIS_KEEPALIVE",
        .redisConnections,
        default: Int(RedisConfiguration.Defaults.keepalive.components.seconds),
        in: 2...7200,
        "seconds within which TCP keepalive finds an idle connection whose server vanished (probes from half of it on, three over the rest)"
    )

    // MARK: The consumer loop

    static let batchSize = OptionSpec<Int>.integer(
        "--batch-size",
        "TASKSTATUS_BATCH_SIZE",
        .consumer,
        default: Bridge.batchSize,
        in: 1...1000,
        "most entries per `XREADGROUP` (1 to 1000)"
    )
    static let blockMs = OptionSpec<Int>.integer(
        "--block-ms",
        "TASKSTATUS_BLOCK_MS",
        .consumer,
        default: Bridge.blockMilliseconds,
        in: 1...60000,
        "how long one `XREADGROUP` waits for entries, in ms"
    )
    static let batchWindowUs = OptionSpec<Int>.integer(
        "--batch-window-us",
        "TASKSTATUS_BATCH_WINDOW_US",
        .consumer,
        default: Bridge.batchWindowMicroseconds,
        in: 0...100_000,
        "the longest, in µs, a read's first entries wait for more to join their batch; only while requests arrive fast enough that at least 2 more are expected meanwhile (2,000/s with the default) (a batch costs its round trips once, whatever its size); 0 never waits"
    )
    static let workers = OptionSpec<Int>.integer(
        "--workers",
        "TASKSTATUS_WORKERS",
        .consumer,
        default: Bridge.workers,
        in: 1...16,
        "threads that process the parts of a batch (split by task) at once, 1 to 16"
    )
    static let cacheSize = OptionSpec<Int>.integer(
        "--cache-size",
        "TASKSTATUS_CACHE_SIZE",
        .consumer,
        default: Bridge.cacheSize,
        in: 0...10_000_000,
        "tasks held in memory between updates, per worker (checked against `_rev` by the commit script, so a stale copy only costs a retry); 0 reads every task from Redis"
    )
    static let claimIdleMs = OptionSpec<Int>.integer(
        "--claim-idle-ms",
        "TASKSTATUS_CLAIM_IDLE_MS",
        .consumer,
        default: Bridge.claimIdleMilliseconds,
        in: 1...86_400_000,
        "idle time after which another consumer's pending entry is claimed, in ms"
    )
    static let maxDeliveries = OptionSpec<Int>.integer(
        "--max-deliveries",
        "TASKSTATUS_MAX_DELIVERIES",
        .consumer,
        default: Bridge.maxDeliveries,
        in: 1...1000,
        "deliveries after which an entry is dead-lettered"
    )
    static let consumerIdleTimeout = OptionSpec<Int>.integer(
        "--consumer-idle-timeout",
        "TASKSTATUS_CONSUMER_IDLE_TIMEOUT",
        .consumer,
        default: Bridge.consumerIdleTimeoutSeconds,
        in: 1...31_536_000,
        "seconds after which a consumer with nothing pending is removed from the group (replicas that went away)"
    )
    static let replyTTL = OptionSpec<Int>.integer(
        "--reply-ttl",
        "TASKSTATUS_REPLY_TTL",
        .consumer,
        default: Bridge.replyTTLSeconds,
        in: 1...31_536_000,
        "seconds a stored reply lives (and so how long a request id stays idempotent)"
    )
    static let eventsMaxlen = OptionSpec<Int>.integer(
        "--events-maxlen",
        "TASKSTATUS_EVENTS_MAXLEN",
        .consumer,
        default: Bridge.eventsMaxLength,
        in: 1...1_000_000_000,
        "approximate cap of the change feed `taskstatus:events`"
    )
    static let retentionDays = OptionSpec<Int>.integer(
        "--retention-days",
        "TASKSTATUS_RETENTION_DAYS",
        .consumer,
        default: 0,
        defaultText: "0 (off)",
        in: 0...36_500,
        "completed tasks whose `completed` time is older than this many days are removed, with their list-index entries, a small batch at a time (SailPoint keeps 90); running tasks never; 0 keeps every task"
    )
    static let eventsMaxBytes = OptionSpec<Int>.integer(
        "--events-max-bytes",
        "TASKSTATUS_EVENTS_MAX_BYTES",
        .consumer,
        default: Bridge.eventsMaxBytes,
        in: 1024...1_099_511_627_776,
        "approximate cap of the change feed in bytes of its entries (a `MAXLEN` from the average size of recent entries)"
    )
    static let wholeTaskMaxBytes = OptionSpec<Int>.integer(
        "--whole-task-max-bytes",
        "TASKSTATUS_WHOLE_TASK_MAX_BYTES",
        .consumer,
        default: Bridge.wholeTaskMaxBytes,
        in: 0...16_777_216,
        "notifications and change-feed entries carry the whole task (`task`) when its JSON is at most this many bytes; 0 never. They always carry the patch and the task's small properties (`summary`)"
    )
    static let deadMaxlen = OptionSpec<Int>.integer(
        "--dead-maxlen",
        "TASKSTATUS_DEAD_MAXLEN",
        .consumer,
        default: Bridge.deadMaxLength,
        in: 1...1_000_000_000,
        "approximate cap of the dead-letter stream"
    )

    static let minReplicas = OptionSpec<Int>.integer(
        "--min-replicas",
        "TASKSTATUS_MIN_REPLICAS",
        .consumer,
        default: Bridge.minReplicas,
        in: 0...100,
        "replicas that must confirm a batch's commits (`WAIT`) before any of it becomes visible (replies, notifications, change feed, acknowledgements); 0 asks none. Run one replica more than this"
    )
    static let replicaTimeoutMs = OptionSpec<Int>.integer(
        "--replica-timeout-ms",
        "TASKSTATUS_REPLICA_TIMEOUT_MS",
        .consumer,
        default: Bridge.replicaTimeoutMilliseconds,
        in: 1...60000,
        "how long one `WAIT` for those replicas may take, in ms; a batch not confirmed by then is tried again"
    )

    // MARK: What requests may do

    static let maxPatchBytes = OptionSpec<Int>.integer(
        "--max-patch-bytes",
        "TASKSTATUS_MAX_PATCH_BYTES",
        .requests,
        default: Limits.maxPatchBytes,
        in: 2...(256 << 20),
        "largest patch in bytes (and HTTP body: 413 above it)"
    )
    static let maxOperations = OptionSpec<Int>.integer(
        "--max-operations",
        "TASKSTATUS_MAX_OPERATIONS",
        .requests,
        default: Limits.maxOperations,
        in: 1...1_000_000,
        "most operations per patch"
    )
    static let maxDepth = OptionSpec<Int>.integer(
        "--max-depth",
        "TASKSTATUS_MAX_DEPTH",
        .requests,
        default: Limits.maxDepth,
        in: 2...4096,
        "deepest JSON nesting in a patch (2 to 4096)"
    )
    static let writableProperties = OptionSpec<String>.text(
        "--writable-properties",
        "TASKSTATUS_WRITABLE_PROPERTIES",
        .requests,
        default: nil,
        defaultText: "all but `id` and `created`",
        "comma-separated properties updates may change, e.g. `progress,percentComplete,messages`"
    )
    static let requireExperimental = OptionSpec<Bool>.boolean(
        "--require-experimental",
        "TASKSTATUS_REQUIRE_EXPERIMENTAL",
        .requests,
        default: Bridge.requireExperimentalFlag,
        "whether requests need `x-sailpoint-experimental: true` (the `/task-status/v1/` routes never do)"
    )

    // MARK: HTTP

    static let httpHost = OptionSpec<String>.text(
        "--http-host",
        "TASKSTATUS_HTTP_HOST",
        .http,
        default: HTTP.host,
        "listen address of the API, health and metrics (the container image sets `0.0.0.0`)"
    )
    static let httpPort = OptionSpec<Int>.integer(
        "--http-port",
        "TASKSTATUS_HTTP_PORT",
        .http,
        default: HTTP.port,
        in: 0...65535,
        "listen port; 0 picks a free one (logged at start)"
    )
    static let httpTLSCertFile = OptionSpec<String>.text(
        "--http-tls-cert-file",
        "TASKSTATUS_HTTP_TLS_CERT_FILE",
        .http,
        default: nil,
        "serve HTTPS (TLS 1.2 and later) with this certificate chain in PEM: the server's certificate first, then its intermediates. Needs `--http-tls-key-file`; for deployments with no proxy in front to end TLS"
    )
    static let httpTLSKeyFile = OptionSpec<String>.text(
        "--http-tls-key-file",
        "TASKSTATUS_HTTP_TLS_KEY_FILE",
        .http,
        default: nil,
        "the certificate's private key in PEM, unencrypted; read once at start"
    )
    static let httpHeaderTimeout = OptionSpec<Int>.integer(
        "--http-header-timeout",
        "TASKSTATUS_HTTP_HEADER_TIMEOUT",
        .http,
        default: HTTP.headerTimeoutSeconds,
        in: 1...3600,
        "seconds a request head may take: from the accept (TLS handshake included) for a connection's first request, from its first byte for a later one. Past it the connection is closed, with a 408 if part of a head came (Go's `ReadHeaderTimeout`)"
    )
    static let httpBodyTimeout = OptionSpec<Int>.integer(
        "--http-body-timeout",
        "TASKSTATUS_HTTP_BODY_TIMEOUT",
        .http,
        default: HTTP.bodyTimeoutSeconds,
        in: 1...86400,
        "seconds a request's whole body may take from its head: a total, as Go's `ReadTimeout` counts it, not nginx's gap between two reads (which a body trickling in a byte a second never exceeds). Past it, 408 and the connection is closed. 30 s carries the largest patch of the default `--max-patch-bytes` (1 MiB) over any link faster than about 300 kbit/s"
    )
    static let httpIdleTimeout = OptionSpec<Int>.integer(
        "--http-idle-timeout",
        "TASKSTATUS_HTTP_IDLE_TIMEOUT",
        .http,
        default: HTTP.idleTimeoutSeconds,
        in: 1...86400,
        "seconds a keep-alive connection waits for its next request before it is closed. Behind a proxy or load balancer that keeps connections to the bridge, set it above the proxy's own idle timeout (e.g. 65 behind a 60 s one)"
    )
    static let httpMaxConnections = OptionSpec<Int>.integer(
        "--http-max-connections",
        "TASKSTATUS_HTTP_MAX_CONNECTIONS",
        .http,
        default: nil,
        defaultText: "\(HTTP.maxConnectionsCeiling), or the descriptor limit (`ulimit -n`) less \(HTTP.reservedDescriptors) when that is lower",
        in: 1...1_000_000,
        "open connections at most; past it a new connection is closed as it is accepted, before TLS or HTTP (counted in `taskstatus_http_connections_refused_total`). Each needs a file descriptor"
    )
    static let httpQueueLimit = OptionSpec<Int>.integer(
        "--http-queue-limit",
        "TASKSTATUS_HTTP_QUEUE_LIMIT",
        .http,
        default: Bridge.httpQueueLimit,
        in: 1...1_000_000,
        "HTTP updates that may wait for the HTTP worker; past it they are answered 503 with `Retry-After` at once"
    )
    static let logLevel = OptionSpec<String>.text(
        "--log-level",
        "TASKSTATUS_LOG_LEVEL",
        .http,
        default: "info",
        "trace, debug, info, notice, warning, error or critical; logs go to standard error"
    )

    // MARK: Authentication

    /// `--no-auth` is a flag; its variable takes `true`.
    static let noAuth = OptionSpec<Bool>.boolean(
        "--no-auth",
        "TASKSTATUS_NO_AUTH",
        .authentication,
        default: false,
        defaultText: "off",
        "accept every request without a token (the variable takes `true`)"
    )
    static let jwtSecretFile = OptionSpec<String>.text(
        "--jwt-secret-file",
        "TASKSTATUS_JWT_SECRET_FILE",
        .authentication,
        default: nil,
        "HS256 shared secret (at least 32 bytes)"
    )
    static let jwtPublicKeyFile = OptionSpec<String>.text(
        "--jwt-public-key-file",
        "TASKSTATUS_JWT_PUBLIC_KEY_FILE",
        .authentication,
        default: nil,
        "an RS256 or ES256 public key in PEM"
    )
    static let jwksFile = OptionSpec<String>.text(
        "--jwks-file",
        "TASKSTATUS_JWKS_FILE",
        .authentication,
        default: nil,
        "a JSON Web Key Set (keys chosen by `kid`)"
    )
    static let jwtIssuer = OptionSpec<String>.text(
        "--jwt-issuer",
        "TASKSTATUS_JWT_ISSUER",
        .authentication,
        default: nil,
        "the `iss` tokens must carry"
    )
    static let jwtAudience = OptionSpec<String>.text(
        "--jwt-audience",
        "TASKSTATUS_JWT_AUDIENCE",
        .authentication,
        default: nil,
        "a value `aud` must contain"
    )
    static let jwtLeeway = OptionSpec<Int>.integer(
        "--jwt-leeway",
        "TASKSTATUS_JWT_LEEWAY",
        .authentication,
        default: Auth.leewaySeconds,
        in: 0...3600,
        "seconds of clock skew allowed on `exp`, `nbf`, `iat`"
    )
    static let jwtRequireExp = OptionSpec<Bool>.boolean(
        "--jwt-require-exp",
        "TASKSTATUS_JWT_REQUIRE_EXP",
        .authentication,
        default: Auth.requiresExpiry,
        "whether tokens must carry `exp`; `false` accepts tokens without one, which stay valid forever once leaked: a risk to take knowingly"
    )
    static let readScopes = OptionSpec<String>.text(
        "--read-scopes",
        "TASKSTATUS_READ_SCOPES",
        .authentication,
        default: nil,
        defaultText: "`\(Auth.readScopes.sorted().joined(separator: ","))`",
        "any of these allows GET (comma-separated)"
    )
    static let writeScopes = OptionSpec<String>.text(
        "--write-scopes",
        "TASKSTATUS_WRITE_SCOPES",
        .authentication,
        default: nil,
        defaultText: "`\(Auth.writeScopes.sorted().joined(separator: ","))`",
        "any of these allows PATCH and stream requests (comma-separated)"
    )

    // MARK: Rate limits

    static let rateLimit = OptionSpec<Bool>.boolean(
        "--rate-limit",
        "TASKSTATUS_RATE_LIMIT",
        .rateLimits,
        default: nil,
        defaultText: "on with authentication, off with `--no-auth`",
        "per-caller limits on both paths"
    )
    static let rateLimitRequests = OptionSpec<Int>.integer(
        "--rate-limit-requests",
        "TASKSTATUS_RATE_LIMIT_REQUESTS",
        .rateLimits,
        default: Rate.limit,
        in: 1...1_000_000,
        "requests per caller per period (SailPoint's published limit)"
    )
    static let rateLimitPeriod = OptionSpec<Int>.integer(
        "--rate-limit-period",
        "TASKSTATUS_RATE_LIMIT_PERIOD",
        .rateLimits,
        default: Rate.periodSeconds,
        in: 1...86400,
        "the period, in seconds"
    )
    static let rateLimitBurst = OptionSpec<Int>.integer(
        "--rate-limit-burst",
        "TASKSTATUS_RATE_LIMIT_BURST",
        .rateLimits,
        default: nil,
        defaultText: "the requests per period",
        in: 1...1_000_000,
        "requests a caller may send at once after a quiet spell"
    )

    /// Every setting, in the docs' order.
    static let all: [any DocumentedOption] = [
        redisURL, redisPasswordFile, sentinel, sentinelMaster, sentinelPasswordFile, redisCluster, shards, pubsub, prefix, consumer,
        redisTLSCAFile, redisTLSCertFile, redisTLSKeyFile, redisTLSServerName, redisTLSInsecure, sentinelTLS, redisCommandTimeout, redisKeepalive,
        batchSize, blockMs, batchWindowUs, workers, cacheSize, claimIdleMs, maxDeliveries, consumerIdleTimeout, replyTTL, eventsMaxlen,
        eventsMaxBytes, retentionDays, wholeTaskMaxBytes, deadMaxlen, minReplicas,
        replicaTimeoutMs,
        maxPatchBytes, maxOperations, maxDepth, writableProperties, requireExperimental,
        httpHost, httpPort, httpTLSCertFile, httpTLSKeyFile, httpHeaderTimeout, httpBodyTimeout, httpIdleTimeout, httpMaxConnections,
        httpQueueLimit, logLevel,
        noAuth, jwtSecretFile, jwtPublicKeyFile, jwksFile, jwtIssuer, jwtAudience, jwtLeeway, jwtRequireExp, readScopes, writeScopes,
        rateLimit, rateLimitRequests, rateLimitPeriod, rateLimitBurst,
    ]
}
