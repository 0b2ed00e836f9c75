//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Logging
import Metrics
import Redis
import TaskStatus

/// The consumer's work, on a thread of its own: each ``step()`` settles set-up, entries held
/// since a failure, and the periodic jobs when due, then reads one batch with `XREADGROUP ...
/// BLOCK` and splits it by task into parts that are decided, committed and answered at the same
/// time: one by the consumer itself, the others by ``PartWorker``s (each on its own thread and
/// connection, so that one computes while Redis runs another's commands). A task always goes to
/// the same part, so its requests keep their order.
///
/// When Redis refuses (memory full, a failover, a lost connection), the entries concerned are
/// neither answered nor acknowledged: the step fails, the loop backs off, and the next step
/// reads this consumer's pending entries again and processes them first.
actor StreamConsumer {
    let configuration: BridgeConfiguration
    let keys: Keys
    /// The shard whose stream this consumer reads (0 with one stream).
    let shard: Int
    let reader: RedisLink
    /// The connection of set-up, recovery and the periodic jobs.
    let commands: RedisLink
    /// The part of each batch that the consumer processes itself, on its own connection.
    let processor: UpdateProcessor
    /// The other parts' workers (`workers` in the configuration, less one).
    let workers: [PartWorker]
    let decoder: PatchRequestDecoder
    let authenticator: Authenticator?
    let status: BridgeStatus
    let metrics: BridgeMetrics
    let logger: Logger
    private let executor: ThreadExecutor
    /// With Sentinel, where the master is.
    private let router: SentinelRouter?
    /// With `--min-replicas`: what dead letters must wait for.
    let replication: ReplicationCheck?
    private var needsSetup = true
    /// With several shards: whether this bridge reads this one now (see ``ShardLease``).
    private var lease: ShardLease?
    /// Why the current step's requests were deferred, when Redis refused them (read by the step's
    /// failure, then cleared).
    private var deferral: Deferral?
    /// Why the last step failed; while set, the next step first processes what this consumer holds.
    private var recovering: String?
    var maintenance: MaintenanceClock
    /// Whether a read waits for more entries to join it (adaptive batching).
    private var batchWindow: BatchWindow

    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    init(configuration: BridgeConfiguration, authenticator: Authenticator?, status: BridgeStatus, metrics: BridgeMetrics, logger: Logger) {
        self.authenticator = authenticator
        self.configuration = configuration
        self.keys = configuration.keys
        self.status = status
        self.metrics = metrics
        self.logger = logger
        self.shard = configuration.shard ?? 0
        let suffix = configuration.shards > 1 ? "-s\(shard)" : ""
        self.executor = ThreadExecutor(name: "bridge-consumer\(suffix)")
        self.router = configuration.redis.sentinel.map(SentinelRouter.shared(for:))
        self.replication = ReplicationCheck(configuration: configuration)
        var readerConfiguration = configuration.redis
        // A blocking read needs a socket timeout longer than its BLOCK.
        readerConfiguration.commandTimeout += configuration.blockTimeout
        self.reader = RedisLink(configuration: readerConfiguration)
        self.commands = RedisLink(configuration: configuration.committingRedis)
        self.processor = UpdateProcessor(configuration: configuration, logger: logger, metrics: metrics, path: .stream)
        self.workers = (1..<max(1, configuration.workers)).map {
            PartWorker(configuration: configuration, name: "bridge-worker\(suffix)-\($0)", logger: logger, metrics: metrics)
        }
        self.decoder = PatchRequestDecoder(limits: configuration.limits, requireExperimentalFlag: configuration.requireExperimentalFlag)
        self.maintenance = MaintenanceClock(configuration: configuration)
        self.batchWindow = BatchWindow(window: configuration.batchWindow)
        self.lease =
            configuration.shards > 1
            ? ShardLease(shard: shard, keys: configuration.keys, consumer: configuration.consumer, ttl: configuration.shardLease) : nil
    }

    deinit {
        executor.shutdown()
        for worker in workers { worker.close() }
    }

    /// What one step did.
    enum Outcome: Sendable {
        case processed(Int)
        /// Redis failed, or refused some requests for now (`deferral`: why, typed).
        case failed(RedisError, deferral: Deferral?)
    }

    /// Runs batch after batch until `stop` is set (or the task is cancelled), backing off while
    /// Redis fails, then waits until Redis has run the last batch's answers and ends the workers.
    func run(until stop: StopSignal) async {
        for worker in workers { worker.start() }
        var backoff = Backoff()
        while !stop.isSet && !Task.isCancelled {
            let switches = router?.switches
            switch await step() {
            case .processed:
                backoff.reset()
            case .failed(let error, let deferral):
                // Replicas that did not confirm in time were already waited for (`WAIT` takes
                // up to --replica-timeout-ms): try again soon, so that a shard whose master just
                // got its replica back (after a failover) resumes within a second, not after the
                // back-off's 5 s.
                let delay = deferral?.retriesSoon == true ? Backoff.first : backoff.next()
                logger.warning("redis refused or failed; trying the same entries again", metadata: ["error": "\(error)", "retry.in": "\(delay)"])
                var left = delay
                // A failover the sentinels announce ends the wait: the new master is ready. (Not
                // any new generation: the failed step itself made one, and the wait would end at
                // once, a busy loop against the sentinels for as long as the master is down.)
                while left > .zero, !stop.isSet, !Task.isCancelled, router?.switches == switches {
                    let step = min(left, .milliseconds(100))
                    try? await Task.sleep(for: step)
                    left -= step
                }
            }
        }
        settle()
        lease?.release(on: commands)
        for worker in workers { worker.close() }
    }

    /// One turn of the consumer loop; Redis failures are returned for the caller to back off.
    func step() async -> Outcome {
        do throws(RedisError) {
            if lease != nil, try !lease!.check(on: commands) {
                // Another bridge reads this shard: look again in a while, with nothing in flight
                // (what Redis did not commit is pending, for the new owner to claim).
                if hasCommitsInFlight { try completeInFlight() }
                status.markStandby(shard: shard, holder: lease?.holder ?? "")
                try? await Task.sleep(for: min(configuration.blockTimeout, configuration.shardLease / 3))
                return .processed(0)
            }
            if needsSetup {
                try await setUp()
                needsSetup = false
            }
            if recovering != nil {
                try await processHeldEntries()
                recovering = nil
                status.markConsuming(shard: shard)
            }
            try await maintain()
            // A commit in flight is answered while this read waits (see UpdateProcessor): the
            // read waits less, so that a commit Redis did not make is seen soon on a quiet stream.
            let inFlight = hasCommitsInFlight
            var entries = try readGroup(
                count: configuration.batchSize,
                after: ">",
                blocking: true,
                for: inFlight ? min(Self.inFlightBlock, configuration.blockTimeout) : configuration.blockTimeout,
                on: reader
            )
            if batchWindow.waits(after: entries.count, batchSize: configuration.batchSize) {
                // Requests come fast: those due within the window join this batch (see BatchWindow),
                // waited for on the consumer's own thread.
                sleepThisThread(for: batchWindow.window)
                entries += try readGroup(count: configuration.batchSize - entries.count, after: ">", blocking: false, on: reader)
            }
            batchWindow.record(entries.count)
            // Before anything of the new entries: a task's requests keep their order, and a
            // deferred one leaves these pending too, processed again after it.
            if inFlight { try completeInFlight() }
            if entries.isEmpty {
                // Idle: confirm the last answers, so that a failed one is retried now rather than
                // once its entries are claimed as abandoned.
                try settleOrThrow()
            } else {
                try await handle(entries)
            }
            status.markConsuming(shard: shard)
            return .processed(entries.count)
        } catch {
            if error.serverErrorPrefix == "NOGROUP" {
                logger.warning("the consumer group is gone (Redis lost its data?); recreating it", metadata: ["stream": "\(keys.requests)"])
                needsSetup = true
                forgetCachedTasks()
                return .processed(0)
            }
            if error.message.hasPrefix("NOSCRIPT") || error.code == .connectionLost || error.code == .connectionFailed {
                // Redis may have restarted: without its scripts, maybe without its data.
                forgetCachedTasks()
            }
            metrics.countRefusal(error)
            status.markProblem(error.message, shard: shard)
            recovering = error.message
            defer { deferral = nil }
            return .failed(error, deferral: deferral)
        }
    }

    /// Reads up to `count` of the group's entries for this consumer after `id` (`>`: entries no
    /// one was given yet; an id: this consumer's own pending ones) on `link`; `blocking`, waiting
    /// up to `--block-ms` for the first.
    private func readGroup(
        count: Int,
        after id: String,
        blocking: Bool,
        for block: Duration? = nil,
        on link: RedisLink
    ) throws(RedisError) -> [StreamEntry] {
        var read = RedisCommand("XREADGROUP", "GROUP", keys.group, configuration.consumer, "COUNT", count)
        if blocking {
            read.append("BLOCK")
            read.append(max(1, (block ?? configuration.blockTimeout).milliseconds))
        }
        for word in ["STREAMS", keys.requests, id] { read.append(word) }
        return StreamEntry.fromReadGroup(try link.value(of: read))
    }

    /// Waits until Redis has run every answer and acknowledgement sent without waiting. A
    /// connection that failed has nothing left to wait for: its unacknowledged entries are
    /// processed again.
    func settle() {
        let outcomes = [PartWorker.settle(processor)] + workers.map { $0.settle() }
        for case .failure(let error) in outcomes {
            logger.warning("could not confirm the last answers; their entries will be processed again", metadata: ["error": "\(error)"])
        }
    }

    private func forgetCachedTasks() {
        processor.forgetCachedTasks()
        for worker in workers { worker.forgetCachedTasks() }
    }

    /// Creates the group when missing and settles what this consumer left pending in an earlier
    /// run (a crash): dead-letters those delivered too often, then processes the rest, counting
    /// this as a delivery (their stored replies make it idempotent).
    private func setUp() async throws(RedisError) {
        let created = try commands.execute([RedisCommand("XGROUP", "CREATE", keys.requests, keys.group, "0", "MKSTREAM")])[0]
        if case .error(let message) = created, !message.hasPrefix("BUSYGROUP") {
            throw RedisError(code: .serverError, message: message)
        }
        if created == .status("OK") {
            logger.info("created the consumer group", metadata: ["group": "\(keys.group)", "stream": "\(keys.requests)"])
            forgetCachedTasks()
        }
        let own = try commands.execute(RedisCommand("XPENDING", keys.requests, keys.group, "-", "+", 10_000, configuration.consumer))
        try deadLetter(Self.overdelivered(own, limit: configuration.maxDeliveries), minIdle: 0)
        var cursor = "0"
        for _ in 0..<1000 {
            let entries = try readGroup(count: configuration.batchSize, after: cursor, blocking: false, on: commands)
            guard let last = entries.last else { break }
            try await handle(entries)
            cursor = last.id
        }
    }

    /// Processes the entries this consumer holds unacknowledged after a failure: a batch Redis
    /// refused, announcements that failed, entries delivered into a connection that broke. They
    /// are read with `XPENDING` and `XRANGE`, which do not count a delivery: Redis's trouble is not
    /// the entry's, and must not push it towards the dead-letter stream.
    private func processHeldEntries() async throws(RedisError) {
        for _ in 0..<1000 {
            // The answers sent without waiting first: an entry acknowledged by them is not held.
            try settleOrThrow()
            let pending = try commands.value(
                of: RedisCommand("XPENDING", keys.requests, keys.group, "-", "+", configuration.batchSize, configuration.consumer)
            )
            // The delivery limit holds here too: an entry over it goes to the dead-letter stream
            // (one whose dead-lettering failed is held, and must not be applied instead).
            let over = Self.overdelivered(pending.reply, limit: configuration.maxDeliveries)
            try deadLetter(over, minIdle: 0)
            let ids = pending.elements.compactMap { $0.elements.isEmpty ? nil : $0.elements[0].string }.filter { id in !over.contains { $0.id == id }
            }
            guard !ids.isEmpty else {
                if over.isEmpty { return }
                continue
            }
            var ranges = RedisPipeline()
            for id in ids {
                ranges.begin("XRANGE")
                for word in [keys.requests, id, id] { ranges.add(word) }
            }
            let found = try commands.execute(ranges)
            var entries: [StreamEntry] = []
            for (k, id) in ids.enumerated() {
                // An entry deleted meanwhile comes back empty: it is only acknowledged.
                entries.append(StreamEntry.list(found[k]).first ?? StreamEntry(id: id, fields: nil))
            }
            logger.info("processing entries held since a failure", metadata: ["count": "\(entries.count)", "first": "\(ids[0])"])
            try await handle(entries)
        }
    }

    /// How long a read waits while a commit is in flight: how soon, on a quiet stream, a commit
    /// Redis did not make (the task moved meanwhile) is decided again.
    static let inFlightBlock = Duration.milliseconds(10)

    /// Whether a processor (the consumer's or a worker's) has a commit in flight.
    private var hasCommitsInFlight: Bool {
        processor.isInFlight || workers.contains { $0.isInFlight }
    }

    /// Reads the answers of the commits in flight (every processor's) and finishes their
    /// batches; throws the first failure (a deferral is kept for the back-off).
    private func completeInFlight() throws(RedisError) {
        var failure: PartWorker.Failure?
        if case .failure(let error) = PartWorker.complete(processor) { failure = error }
        for worker in workers {
            if case .failure(let error) = worker.completeHere(), failure == nil { failure = error }
        }
        if let failure { throw fail(failure) }
    }

    /// ``settle()``, failing on the first connection that fails or announcements that failed.
    private func settleOrThrow() throws(RedisError) {
        try PartWorker.settle(processor).get()
        for worker in workers { try worker.settle().get() }
    }

    /// Checks the request's token (when authentication is on) and names whom it counts against
    /// for rate limits: the token's caller, or without authentication the reply channel.
    private func authorize(_ request: inout PatchRequest) async {
        guard request.rejection == nil else { return }
        guard let authenticator else {
            request.rateLimitKey = request.replyTo
            return
        }
        let outcome: Authorization
        if let known = authenticator.authorizeKnown(request.authorization, for: .write) {
            outcome = known
        } else {
            outcome = await authenticator.authorize(request.authorization, for: .write)
        }
        switch outcome {
        case .allowed(let caller): request.rateLimitKey = caller.id
        case .denied(let response): request.rejection = response
        }
    }

    /// Entries a batch needs before its parts go to the workers' threads: below it, the hand-over
    /// (a worker woken, the consumer woken when it is done) costs more than the parts' round
    /// trips save, and the consumer runs the parts itself.
    static let forkThreshold = 16

    /// Whether a batch's parts run on the workers' threads at once.
    static func forks(entries: Int, busyParts: Int) -> Bool {
        busyParts >= 2 && entries >= forkThreshold
    }

    /// Decodes, processes, answers and acknowledges one batch, split by task into parts: the
    /// workers start theirs, the consumer processes the first, then waits for the workers; a
    /// small batch, or one with a single part, the consumer runs itself.
    /// Throws when any part could not answer everything (the rest stays pending).
    func handle(_ entries: [StreamEntry]) async throws(RedisError) {
        let count = workers.count + 1
        var parts = [PartWorker.Part](repeating: PartWorker.Part(), count: count)
        for entry in entries {
            // An entry deleted while pending has no fields: it is only acknowledged.
            guard let fields = entry.fields else {
                parts[0].extraAcks.append(entry.id)
                continue
            }
            var request = decoder.decode(entryId: entry.id, fields: fields)
            await authorize(&request)
            let part = count == 1 ? 0 : Int(UInt(bitPattern: request.taskId.hashValue) % UInt(count))
            parts[part].requests.append(consume request)
        }
        metrics.batchSize.record(entries.count)
        maintenance.trimOwed = true
        if configuration.shards > 1 { metrics.shard(shard).entries.increment(by: entries.count) }
        var failure: PartWorker.Failure?
        let busy = workers.indices.filter { !parts[$0 + 1].isEmpty }
        // Otherwise the consumer runs every part itself, each on its own processor, in turn.
        let forking = Self.forks(entries: entries.count, busyParts: busy.count + (parts[0].isEmpty ? 0 : 1))
        if forking { for k in busy { workers[k].start(parts[k + 1]) } }
        if !parts[0].isEmpty {
            if case .failure(let error) = PartWorker.run(parts[0], on: processor) { failure = error }
        }
        // Every started part is waited for, failed or not: its worker is then free again.
        for k in busy {
            let result = forking ? workers[k].finish() : workers[k].runHere(parts[k + 1])
            if case .failure(let error) = result, failure == nil { failure = error }
        }
        if let failure { throw fail(failure) }
    }

    /// A part's failure as the step's error; a deferral is kept for the back-off (``run(until:)``).
    private func fail(_ failure: PartWorker.Failure) -> RedisError {
        if case .deferred(let deferral) = failure { noteDeferral(deferral) }
        return failure.error
    }

    /// Keeps why the step's requests were deferred (the first reason), for the back-off.
    func noteDeferral(_ deferral: Deferral) {
        if self.deferral == nil { self.deferral = deferral }
    }
}

/// Back-off between failed steps: doubling from 100 ms to 5 s, each wait drawn at random from its
/// upper half, so that bridges that failed together do not retry together.
struct Backoff {
    static let first = Duration.milliseconds(100)
    static let cap = Duration.seconds(5)
    private var ceiling = Backoff.first

    mutating func reset() { ceiling = Self.first }

    /// The next wait.
    mutating func next() -> Duration {
        let milliseconds = ceiling.milliseconds
        let wait = Duration.milliseconds(Int64.random(in: (milliseconds / 2)...max(milliseconds / 2, milliseconds)))
        ceiling = min(ceiling * 2, Self.cap)
        return wait
    }
}
