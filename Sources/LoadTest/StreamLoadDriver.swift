//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import JSONPatch
import Redis

/// Drives the bridge through its request stream, as producers do: one `XADD` per request (sent
/// in pipelines), every reply on one Pub/Sub channel of the run.
struct StreamLoadDriver: Sendable {
    let redis: RedisConfiguration
    let keys: Keys
    /// Each task's request stream, by task index (one stream without shards).
    let streams: [String]
    let workload: Workload
    let options: LoadOptions
    let recorder: LoadRecorder

    init(redis: RedisConfiguration, keys: Keys, shards: Int, workload: Workload, options: LoadOptions, recorder: LoadRecorder) {
        self.redis = redis
        self.keys = keys
        self.streams = (0..<workload.taskCount).map { keys.forTask(workload.taskId($0), of: shards).requests }
        self.workload = workload
        self.options = options
        self.recorder = recorder
    }

    var channel: String { "\(keys.prefix):loadtest:\(options.runId):replies" }
    var endMarker: [UInt8] { Array("end of \(options.runId)".utf8) }

    func requestId(_ sequence: Int) -> String { "\(options.runId)-\(sequence)" }

    /// Sends the run's requests on schedule and reads their replies; returns once every request is
    /// answered or the reply timeout has passed since the last one went out.
    func run(schedule: Schedule) async throws -> (missing: Int, storedOnly: Int) {
        var receiverConfiguration = redis
        // The reader blocks until a message comes; the run itself ends it with a marker message,
        // so this timeout is only a backstop.
        receiverConfiguration.commandTimeout = .seconds(Int(options.expectedSeconds + options.replyTimeoutSeconds) + 60)
        let receiver = RedisClient(configuration: receiverConfiguration, name: "loadtest-replies")
        try await receiver.subscribe([channel], sharded: keys.shardedPubSub)
        let receiving = Task { try await receiveReplies(receiver) }
        defer { receiving.cancel() }

        let sender = RedisClient(configuration: redis, name: "loadtest-sender")
        try await send(schedule: schedule, with: sender)
        let lastSent = monotonicNanos()
        let deadline = lastSent + UInt64(options.replyTimeoutSeconds * 1e9)
        while recorder.outstanding > 0, monotonicNanos() < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        try await sender.execute(RedisCommand(keys.shardedPubSub ? "SPUBLISH" : "PUBLISH", channel, endMarker))
        try await receiving.value
        await receiver.disconnect()
        return try await collectStoredReplies(with: sender)
    }

    private func send(schedule: Schedule, with sender: RedisClient) async throws {
        var pipeline = RedisPipeline()
        var batch: [(sequence: Int, intendedNanos: UInt64)] = []
        var next = 0
        while next < schedule.count {
            let now = monotonicNanos()
            if now >= schedule.endNanos { break }
            let upTo: Int
            if options.rate != nil {
                upTo = schedule.dueCount(at: now)
            } else {
                upTo = next + max(0, options.concurrency - recorder.outstanding)
            }
            pipeline.removeAll()
            batch.removeAll(keepingCapacity: true)
            let limit = min(upTo, next + 1000)
            while next < limit, schedule.includes(next) {
                let request = workload.request(next)
                append(request, to: &pipeline)
                batch.append((next, options.rate != nil ? schedule.dueNanos(next) : now))
                next += 1
            }
            if batch.isEmpty {
                if options.rate != nil, !schedule.includes(next) { break }
                let wait = options.rate != nil ? schedule.nanosUntilDue(next) : 200_000
                try await Task.sleep(for: .nanoseconds(Int64(max(50_000, min(wait, 100_000_000)))))
                continue
            }
            recorder.sending(batch)
            for failure in try await sender.executeForErrors(pipeline) {
                let sequence = batch[failure.index].sequence
                _ = recorder.takePending(sequence)
                recorder.transportError("XADD failed: \(failure.message)", sequence: sequence)
            }
        }
    }

    private func append(_ request: Workload.Request, to pipeline: inout RedisPipeline) {
        pipeline.begin("XADD")
        pipeline.add(streams[request.taskIndex])
        pipeline.add("*")
        pipeline.add("id")
        pipeline.add(workload.taskId(request.taskIndex))
        pipeline.add("patch")
        pipeline.addBytes(request.patch)
        pipeline.add("reply-to")
        pipeline.add(channel)
        pipeline.add("request-id")
        pipeline.add(requestId(request.sequence))
        pipeline.add("x-sailpoint-experimental")
        pipeline.add("true")
        if let authorization = options.authorization {
            pipeline.add("authorization")
            pipeline.add(authorization)
        }
    }

    /// Reads replies on the receiver's own thread until the end marker comes.
    private func receiveReplies(_ receiver: RedisClient) async throws {
        let endMarker = self.endMarker
        try await receiver.withLink { (link: RedisLink) throws(RedisError) in
            while true {
                let message = try link.nextMessage()
                if message.payload == endMarker { return }
                handle(message.payload, receivedNanos: monotonicNanos())
            }
        }
    }

    private func handle(_ payload: [UInt8], receivedNanos: UInt64) {
        guard let reply = try? JSONValue(parsing: payload), let sequence = sequence(of: reply["requestId"]?.stringValue) else {
            recorder.transportError("a reply that is not ours: \(String(decoding: payload.prefix(120), as: UTF8.self))", sequence: -1)
            return
        }
        guard let intended = recorder.takePending(sequence) else { return }
        let (status, problem) = check(reply, sequence: sequence)
        recorder.answered(intendedNanos: intended, receivedNanos: receivedNanos, status: status, problem: problem, sequence: sequence)
    }

    private func check(_ reply: JSONValue, sequence: Int) -> (status: Int, problem: String?) {
        let request = workload.request(sequence)
        let status = Int(reply["status"]?.int64Value ?? 0)
        if reply["taskId"]?.stringValue != workload.taskId(request.taskIndex) { return (status, "the reply names another task") }
        return (status, workload.check(request, status: status, body: reply["body"] ?? .null))
    }

    private func sequence(of requestId: String?) -> Int? {
        guard let requestId, requestId.hasPrefix(options.runId), let dash = requestId.lastIndex(of: "-") else { return nil }
        return Int(requestId[requestId.index(after: dash)...])
    }

    /// Requests without a published reply: the bridge stores every reply, so a reply whose
    /// publication was missed (a subscriber that fell behind) is still found and checked.
    private func collectStoredReplies(with sender: RedisClient) async throws -> (missing: Int, storedOnly: Int) {
        let pending = recorder.pendingSequences()
        var storedOnly = 0
        for chunk in stride(from: 0, to: pending.count, by: 1000) {
            let sequences = pending[chunk..<min(chunk + 1000, pending.count)]
            let commands = sequences.map { sequence in
                RedisCommand("GET", keys.reply(taskId: workload.taskId(workload.taskIndex(of: sequence)), requestId: requestId(sequence)))
            }
            let replies = try await sender.execute(commands)
            for (sequence, stored) in zip(sequences, replies) {
                guard let bytes = stored.bytes, let reply = try? JSONValue(parsing: bytes) else { continue }
                _ = recorder.takePending(sequence)
                let (status, problem) = check(reply, sequence: sequence)
                recorder.answeredLate(status: status, problem: problem, sequence: sequence)
                storedOnly += 1
            }
        }
        return (recorder.abandonPending(), storedOnly)
    }
}
