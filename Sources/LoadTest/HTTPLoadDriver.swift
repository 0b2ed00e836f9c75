//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation
import JSONPatch
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Drives the bridge's HTTP API as SailPoint's SDKs do: `PATCH {base}/task-status/{id}` with a
/// JSON Patch body and the experimental header, over keep-alive HTTP/1.1 connections, one request
/// in flight on each.
struct HTTPLoadDriver: Sendable {
    let workload: Workload
    let options: LoadOptions
    let recorder: LoadRecorder

    /// Where requests go, from ``LoadOptions/httpURL``.
    struct Target: Sendable {
        var host: String
        var port: Int
        var pathPrefix: String

        init(_ url: String) throws {
            guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host, !host.isEmpty else {
                throw LoadTestError("the HTTP URL must look like http://127.0.0.1:8080 (optionally with a prefix such as /v2026): \(url)")
            }
            self.host = host
            self.port = components.port ?? 80
            self.pathPrefix = components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path
        }
    }

    func run(schedule: Schedule) async throws {
        let target = try Target(options.httpURL)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let jobs = JobQueue(schedule: schedule, paced: options.rate != nil)
        do {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for _ in 0..<options.concurrency {
                    tasks.addTask { await drive(target: target, group: group, jobs: jobs) }
                }
                if options.rate != nil {
                    tasks.addTask { try await pace(schedule: schedule, jobs: jobs) }
                }
                try await tasks.waitForAll()
            }
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    /// Releases requests when they are due; a request waits in the queue while every connection
    /// is busy, and that wait counts in its latency.
    private func pace(schedule: Schedule, jobs: JobQueue) async throws {
        var next = 0
        while schedule.includes(next) {
            let due = schedule.dueCount(at: monotonicNanos())
            if due > next {
                var released: [Job] = []
                while next < due, schedule.includes(next) {
                    released.append(Job(sequence: next, intendedNanos: schedule.dueNanos(next)))
                    next += 1
                }
                jobs.push(released)
            } else {
                let wait = schedule.nanosUntilDue(next)
                try await Task.sleep(for: .nanoseconds(Int64(max(50_000, min(wait, 100_000_000)))))
            }
        }
        jobs.finish()
    }

    /// One connection: takes requests from the queue, one at a time, until the run ends.
    /// A connection that fails is opened again; after ten failures in a row it gives up.
    private func drive(target: Target, group: MultiThreadedEventLoopGroup, jobs: JobQueue) async {
        var failures = 0
        var carried: Job?
        while failures < 10 {
            let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
            do {
                channel = try await ClientBootstrap(group: group)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .connectTimeout(.seconds(5))
                    .connect(host: target.host, port: target.port) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHTTPClientHandlers()
                            return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                        }
                    }
            } catch {
                failures += 1
                let job: Job
                if let carriedJob = carried {
                    job = carriedJob
                    carried = nil
                } else if let nextJob = await jobs.next() {
                    job = nextJob
                } else {
                    return
                }
                recorder.sendingOne()
                recorder.transportError("cannot connect to \(target.host):\(target.port): \(error)", sequence: job.sequence)
                try? await Task.sleep(for: .milliseconds(100))
                continue
            }
            do {
                try await channel.executeThenClose { inbound, outbound in
                    var responses = inbound.makeAsyncIterator()
                    while true {
                        var job = carried
                        if job == nil { job = await jobs.next() }
                        guard let job else { break }
                        carried = job
                        try await exchange(job, target: target, outbound: outbound, responses: &responses)
                        carried = nil
                        failures = 0
                    }
                }
                return
            } catch {
                failures += 1
                if let job = carried {
                    carried = nil
                    recorder.transportError("no answer: \(error)", sequence: job.sequence)
                }
            }
        }
    }

    private func exchange(
        _ job: Job,
        target: Target,
        outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>,
        responses: inout NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    ) async throws {
        let request = workload.request(job.sequence)
        var head = HTTPRequestHead(
            version: .http1_1,
            method: .PATCH,
            uri: "\(target.pathPrefix)/task-status/\(workload.taskId(request.taskIndex))"
        )
        head.headers.add(name: "Host", value: "\(target.host):\(target.port)")
        head.headers.add(name: "Content-Type", value: "application/json-patch+json")
        head.headers.add(name: "Content-Length", value: String(request.patch.count))
        head.headers.add(name: "X-SailPoint-Experimental", value: "true")
        if options.httpRequestIds { head.headers.add(name: "X-Request-Id", value: "\(options.runId)-\(job.sequence)") }
        if let authorization = options.authorization { head.headers.add(name: "Authorization", value: authorization) }
        recorder.sendingOne()
        try await outbound.write(contentsOf: [.head(head), .body(.byteBuffer(ByteBuffer(bytes: request.patch))), .end(nil)])
        var status = 0
        var body = ByteBuffer()
        reading: while let part = try await responses.next() {
            switch part {
            case .head(let head): status = Int(head.status.code)
            case .body(var chunk): body.writeBuffer(&chunk)
            case .end: break reading
            }
        }
        let received = monotonicNanos()
        guard status != 0 else { throw LoadTestError("the connection closed before the answer") }
        let parsed = (try? JSONValue(parsing: Array(body.readableBytesView))) ?? .null
        let problem = workload.check(request, status: status, body: parsed)
        recorder.answered(intendedNanos: job.intendedNanos, receivedNanos: received, status: status, problem: problem, sequence: job.sequence)
    }
}

/// One request to send: its number and when it was due.
struct Job: Sendable {
    var sequence: Int
    var intendedNanos: UInt64
}

/// The requests waiting for a free connection. Paced: the pacer pushes them when due. Unpaced:
/// each connection takes the next number as soon as it is free (as fast as the bridge answers).
final class JobQueue: Sendable {
    private struct State {
        var backlog: [Job] = []
        var head = 0
        var waiters: [CheckedContinuation<Job?, Never>] = []
        var finished = false
        var next = 0
    }

    private let state = Mutex(State())
    private let schedule: Schedule
    private let paced: Bool

    init(schedule: Schedule, paced: Bool) {
        self.schedule = schedule
        self.paced = paced
    }

    func push(_ jobs: [Job]) {
        var handOff: [(CheckedContinuation<Job?, Never>, Job)] = []
        state.withLock { state in
            for job in jobs {
                if let waiter = state.waiters.popLast() {
                    handOff.append((waiter, job))
                } else {
                    state.backlog.append(job)
                }
            }
        }
        for (waiter, job) in handOff { waiter.resume(returning: job) }
    }

    /// Ends the run: connections waiting for work get `nil` once the backlog is empty.
    func finish() {
        // Waiters exist only while the backlog is empty: push hands jobs to them first.
        let waiters = state.withLock { state in
            state.finished = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }

    /// The next request, or `nil` when the run is over.
    func next() async -> Job? {
        if !paced {
            let now = monotonicNanos()
            guard now < schedule.endNanos else { return nil }
            return state.withLock { state in
                guard state.next < schedule.count else { return nil }
                defer { state.next += 1 }
                return Job(sequence: state.next, intendedNanos: now)
            }
        }
        return await withCheckedContinuation { continuation in
            let immediate: Job?? = state.withLock { state in
                if state.head < state.backlog.count {
                    let job = state.backlog[state.head]
                    state.head += 1
                    if state.head > 4096, state.head * 2 > state.backlog.count {
                        state.backlog.removeFirst(state.head)
                        state.head = 0
                    }
                    return .some(job)
                }
                if state.finished { return .some(nil) }
                state.waiters.append(continuation)
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }
}

/// A load test that cannot run as asked.
public struct LoadTestError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
