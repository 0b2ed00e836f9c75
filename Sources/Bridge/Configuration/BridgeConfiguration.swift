//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import Redis
public import TaskStatus

/// Everything the bridge can be told, with the documented defaults. The command line fills it;
/// tests build it directly.
public struct BridgeConfiguration: Sendable {
    /// Where Redis is.
    public var redis: RedisConfiguration
    /// The key prefix: `<prefix>:task:{id}`, `<prefix>:requests`, ...
    public var prefix: String
    /// This process's consumer name in the group (unique per process).
    public var consumer: String
    /// Most entries read per `XREADGROUP`.
    public var batchSize: Int
    /// How long one `XREADGROUP` waits for entries (`BLOCK`).
    public var blockTimeout: Duration
    /// The longest a read's first entries wait for more to join their batch, when the rate says
    /// more are coming (see ``BatchWindow``); zero never waits.
    public var batchWindow: Duration = .microseconds(Defaults.batchWindowMicroseconds)
    /// How long another consumer's entry stays pending before this one claims it.
    public var claimIdle: Duration
    /// Deliveries after which an entry goes to the dead-letter stream.
    public var maxDeliveries: Int
    /// How long stored replies live.
    public var replyTTL: Duration
    /// Approximate cap of the change-feed stream (`MAXLEN ~`).
    public var eventsMaxLength: Int
    /// Approximate cap of the change feed in bytes of its entries (a count from their average size).
    public var eventsMaxBytes: Int
    /// Notifications and change-feed entries carry the whole task when its JSON is at most this
    /// many bytes (0: never); always its small properties and the patch.
    public var wholeTaskMaxBytes: Int
    /// Approximate cap of the dead-letter stream.
    public var deadMaxLength: Int
    /// Consumers idle this long with nothing pending are removed from the group.
    public var deadConsumerIdle: Duration
    /// How often the request stream is trimmed of acknowledged entries.
    public var trimInterval: Duration
    /// Tasks held in memory per worker (revision-checked on every commit, so a stale one only
    /// costs a retry).
    public var cacheSize: Int
    /// Workers that process parts of each batch at the same time, each on its own thread and
    /// connection; a task always goes to the same one.
    public var workers: Int
    /// HTTP updates that may wait for the HTTP worker; past it they are answered 503 at once.
    public var httpQueueLimit: Int
    /// Replicas that must confirm a batch's commits (`WAIT`) before anything of it becomes
    /// visible: replies, notifications, change-feed entries, acknowledgements. 0: none asked.
    public var minReplicas: Int
    /// How long one `WAIT` for those replicas may take.
    public var replicaTimeout: Duration
    /// Limits on each request.
    public var limits: RequestLimits
    /// Whether requests must say `x-sailpoint-experimental: true`.
    public var requireExperimentalFlag: Bool
    /// Token verification and scopes; no keys means authentication is off.
    public var auth: AuthConfiguration
    /// Per-caller rate limits.
    public var rateLimit: RateLimitConfiguration
    /// Properties an update may change (`id` and `created` never can).
    public var writableProperties: Set<TaskProperty>
    /// Changes a live-update watcher may have waiting before it is told to list again and closed.
    public var watchBuffer = 1024
    /// How long a live-update stream may stay quiet before it gets a heartbeat comment (proxies
    /// drop quiet connections).
    public var watchHeartbeat: Duration = .seconds(15)
    /// Completed tasks whose `completed` time is older than this are removed (with their index
    /// entries); `nil` keeps every task.
    public var retention: Duration?

    public init(
        redis: RedisConfiguration,
        prefix: String = Defaults.prefix,
        consumer: String,
        batchSize: Int = Defaults.batchSize,
        blockTimeout: Duration = .milliseconds(Defaults.blockMilliseconds),
        claimIdle: Duration = .milliseconds(Defaults.claimIdleMilliseconds),
        maxDeliveries: Int = Defaults.maxDeliveries,
        replyTTL: Duration = .seconds(Defaults.replyTTLSeconds),
        eventsMaxLength: Int = Defaults.eventsMaxLength,
        eventsMaxBytes: Int = Defaults.eventsMaxBytes,
        wholeTaskMaxBytes: Int = Defaults.wholeTaskMaxBytes,
        deadMaxLength: Int = Defaults.deadMaxLength,
        deadConsumerIdle: Duration = .seconds(Defaults.consumerIdleTimeoutSeconds),
        trimInterval: Duration = .seconds(5),
        cacheSize: Int = Defaults.cacheSize,
        workers: Int = Defaults.workers,
        httpQueueLimit: Int = Defaults.httpQueueLimit,
        minReplicas: Int = Defaults.minReplicas,
        replicaTimeout: Duration = .milliseconds(Defaults.replicaTimeoutMilliseconds),
        limits: RequestLimits = RequestLimits(),
        requireExperimentalFlag: Bool = Defaults.requireExperimentalFlag,
        auth: AuthConfiguration = AuthConfiguration(),
        rateLimit: RateLimitConfiguration = RateLimitConfiguration(enabled: false),
        writableProperties: Set<TaskProperty> = Set(TaskProperty.allCases).subtracting(TaskProperty.immutable),
        shards: Int = Defaults.shards,
        pubsub: PubSubMode = .classic
    ) {
        self.shards = max(1, shards)
        self.pubsub = pubsub
        self.redis = redis
        self.prefix = prefix
        self.consumer = consumer
        self.batchSize = batchSize
        self.blockTimeout = blockTimeout
        self.claimIdle = claimIdle
        self.maxDeliveries = maxDeliveries
        self.replyTTL = replyTTL
        self.eventsMaxLength = eventsMaxLength
        self.eventsMaxBytes = eventsMaxBytes
        self.wholeTaskMaxBytes = wholeTaskMaxBytes
        self.deadMaxLength = deadMaxLength
        self.deadConsumerIdle = deadConsumerIdle
        self.trimInterval = trimInterval
        self.cacheSize = cacheSize
        self.workers = workers
        self.httpQueueLimit = httpQueueLimit
        self.minReplicas = minReplicas
        self.replicaTimeout = replicaTimeout
        self.limits = limits
        self.requireExperimentalFlag = requireExperimentalFlag
        self.auth = auth
        self.rateLimit = rateLimit
        self.writableProperties = writableProperties.subtracting(TaskProperty.immutable)
    }

    /// Request streams (with their dead letters and change feeds) to spread the work over
    /// (contract section 7); 1: the single stream of one Redis.
    public var shards: Int
    /// How notifications and replies are published.
    public var pubsub: PubSubMode
    /// The shard this configuration's consumer reads; `nil` outside a consumer.
    public var shard: Int?
    /// With several shards: how long a bridge that stopped renewing its hold on a shard keeps
    /// it (see ``ShardLease``); another bridge takes the shard over after it.
    public var shardLease: Duration = .seconds(5)

    /// The key names (of ``shard``'s streams when set).
    public var keys: Keys {
        let keys = Keys(prefix: prefix, shardedPubSub: pubsub == .sharded)
        guard let shard else { return keys }
        return keys.forShard(shard, of: shards)
    }

    /// The Redis settings of the links that commit: with `--min-replicas`, their `WAIT` may block
    /// for ``replicaTimeout`` before Redis answers, so the socket timeout covers it too.
    public var committingRedis: RedisConfiguration {
        var redis = self.redis
        if minReplicas > 0 { redis.commandTimeout += replicaTimeout }
        return redis
    }

    /// The same configuration for the consumer of shard `k`.
    public func forShard(_ k: Int) -> BridgeConfiguration {
        var copy = self
        copy.shard = k
        return copy
    }

    /// The documented defaults, written once: these initialisers, the command line's help text and
    /// resolution, and docs/configuration.md all take them from here.
    public enum Defaults {
        public static let prefix = "taskstatus"
        public static let batchSize = 128
        public static let blockMilliseconds = 1000
        public static let batchWindowMicroseconds = 1000
        public static let claimIdleMilliseconds = 30_000
        public static let maxDeliveries = 5
        public static let replyTTLSeconds = 86_400
        public static let eventsMaxLength = 100_000
        public static let eventsMaxBytes = 256 << 20
        public static let wholeTaskMaxBytes = 8192
        public static let deadMaxLength = 100_000
        public static let consumerIdleTimeoutSeconds = 3600
        public static let cacheSize = 10_000
        public static let workers = 2
        public static let httpQueueLimit = 4096
        public static let minReplicas = 0
        public static let replicaTimeoutMilliseconds = 1000
        public static let requireExperimentalFlag = true
        public static let shards = 1
        public static let pubsub = "classic"
    }
}

/// Bounds on what one request may carry.
public struct RequestLimits: Sendable, Equatable {
    /// Largest patch (the HTTP body, or the entry's `patch` field), in bytes.
    public var maxPatchBytes: Int
    /// Most operations in one patch.
    public var maxOperations: Int
    /// Deepest JSON nesting in a patch.
    public var maxDepth: Int

    public init(maxPatchBytes: Int = Defaults.maxPatchBytes, maxOperations: Int = Defaults.maxOperations, maxDepth: Int = Defaults.maxDepth) {
        self.maxPatchBytes = maxPatchBytes
        self.maxOperations = maxOperations
        self.maxDepth = maxDepth
    }

    /// The documented defaults (see ``BridgeConfiguration/Defaults``).
    public enum Defaults {
        public static let maxPatchBytes = 1 << 20
        public static let maxOperations = 1000
        public static let maxDepth = 64
    }
}

/// The Redis names of the contract, derived from one prefix. Every key of one task carries the
/// `{id}` hash tag, so that a task's keys share one Redis Cluster slot. With shards (contract
/// section 7) the request stream, its dead letters and the change feed are one per shard, each
/// with the `{s<k>}` hash tag.
public struct Keys: Sendable, Equatable {
    public let prefix: String
    /// The shard these stream names belong to; `nil`: the single stream of one Redis.
    public let shard: Int?
    /// Whether notifications go out on shard channels (`SPUBLISH`, `--pubsub sharded`).
    public let shardedPubSub: Bool
    /// `<prefix>:task:{`, to which the id and `}` are joined.
    public let taskPrefix: String
    /// `<prefix>:reply:{`, to which the id, `}:` and the request id are joined.
    public let replyPrefix: String
    /// `<prefix>:stage:{`, to which the id, `}:` and a token are joined: a large update's new
    /// task hash, written before the commit script renames it over the task.
    public let stagePrefix: String
    /// `<prefix>:updates:` (`<prefix>:updates:{` with shard channels), to which the id and
    /// ``updatesSuffix`` are joined.
    public let updatesPrefix: String
    /// `""`, or `}` with shard channels: the task's channel then shares the task's slot.
    public let updatesSuffix: String

    public init(prefix: String, shard: Int? = nil, shardedPubSub: Bool = false) {
        self.prefix = prefix
        self.shard = shard
        self.shardedPubSub = shardedPubSub
        self.taskPrefix = "\(prefix):task:{"
        self.replyPrefix = "\(prefix):reply:{"
        self.stagePrefix = "\(prefix):stage:{"
        self.updatesPrefix = shardedPubSub ? "\(prefix):updates:{" : "\(prefix):updates:"
        self.updatesSuffix = shardedPubSub ? "}" : ""
        // Named once: the consumer and the processors use them for every batch.
        let tag = shard.map { ":{s\($0)}" } ?? ""
        self.requests = "\(prefix):requests\(tag)"
        self.group = "\(prefix)-bridge"
        self.dead = "\(prefix):requests:dead\(tag)"
        self.events = "\(prefix):events\(tag)"
        self.updates = "\(prefix):updates"
        self.indexStem = "\(prefix):index:"
        self.indexTag = tag
        self.replicationMarker = "\(prefix):replication"
    }

    public let requests: String
    public let group: String
    public let dead: String
    public let events: String
    /// The channel of every update (classic Pub/Sub only).
    public let updates: String
    /// A channel nobody needs to listen on: publishing to it is a write that reaches the replicas,
    /// so that a `WAIT` after it covers whatever the connection read before (see
    /// ``BridgeConfiguration/minReplicas``). On a cluster, a key of that name per node instead.
    public let replicationMarker: String

    /// `<prefix>:index:`, to which a status and ``indexTag`` are joined.
    public let indexStem: String
    /// The shard's hash tag, `:{s<k>}`, or "" for the single stream's names.
    public let indexTag: String

    /// The list index of one completion status (see ``TaskIndexEntry``):
    /// `<prefix>:index:<status>`, with `:{s<k>}` per shard (in the slot of the shard's streams).
    public func index(_ status: String) -> String { indexStem + status + indexTag }

    public func task(_ id: String) -> String { "\(prefix):task:{\(id)}" }
    public func reply(taskId: String, requestId: String) -> String { "\(prefix):reply:{\(taskId)}:\(requestId)" }
    public func updates(_ id: String) -> String { "\(updatesPrefix)\(id)\(updatesSuffix)" }

    /// The shard of a task among `count`: `KEYSLOT(task key) mod count` (contract section 7), so
    /// that one task's requests stay on one stream, in order.
    public func shard(ofTask id: String, count: Int) -> Int {
        count <= 1 ? 0 : HashSlot.of(task(id)) % count
    }

    /// The names of shard `k` among `count` (the unsharded names when `count` is 1).
    public func forShard(_ k: Int, of count: Int) -> Keys {
        Keys(prefix: prefix, shard: count > 1 ? k : nil, shardedPubSub: shardedPubSub)
    }

    /// The names of the shard a task's requests go to, among `count`.
    public func forTask(_ id: String, of count: Int) -> Keys {
        forShard(shard(ofTask: id, count: count), of: count)
    }
}

/// How notifications and replies are published.
public enum PubSubMode: String, Sendable, CaseIterable {
    /// `PUBLISH` (contract section 5): on a cluster, every node receives every message.
    case classic
    /// `SPUBLISH` on the task's own channel and the reply channel, no global channel (contract
    /// section 7): each message stays on the node of its channel's slot.
    case sharded
}
