//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Bridge
import Foundation
import HTTPAPI
import JSONPatch
import Redis
import TaskStatus
import TestFixtures
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Contract section 9: live updates over Server-Sent Events, from one change-feed reader per process.
@Suite("Live updates (Server-Sent Events)", .enabled(if: TestRedis.isAvailable, "REDIS_URL is not set; run scripts/test"), .timeLimit(.minutes(2)))
struct LiveUpdatesTests {
    /// One event as the stream carried it.
    struct Event: Equatable {
        var id: String?
        var type: String?
        var data: String

        var json: JSONValue? { try? JSONValue(parsing: Array(data.utf8)) }
        var task: String? { json?["id"]?.stringValue }
        var rev: Int64? { json?["rev"]?.int64Value }
    }

    /// A watch over a raw connection: the events read so far.
    struct Watcher {
        let connection: RawConnection

        static func open(_ port: Int, _ path: String, headers: [String: String] = [:]) async throws -> Watcher {
            var head = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nX-SailPoint-Experimental: true\r\n"
            for (name, value) in headers { head += "\(name): \(value)\r\n" }
            return Watcher(connection: try await RawConnection.connect(port: port, sending: head + "\r\n"))
        }

        /// The events so far: `id`/`event`/`data` lines up to a blank line. (The body's chunk-size
        /// lines sit between events, where no field line is open.)
        var events: [Event] {
            let text = String(decoding: connection.received, as: UTF8.self)
            guard let start = text.range(of: "\r\n\r\n") else { return [] }
            var events: [Event] = []
            var current: Event?
            // By scalars: as Characters, "\r\n" is one, and would hide the line break.
            for scalars in text[start.upperBound...].unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
                let raw = Substring(String(scalars))
                let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
                if line.isEmpty {
                    if let event = current { events.append(event) }
                    current = nil
                } else if line.hasPrefix("id: ") {
                    current = current ?? Event(data: "")
                    current?.id = String(line.dropFirst(4))
                } else if line.hasPrefix("event: ") {
                    current = current ?? Event(data: "")
                    current?.type = String(line.dropFirst(7))
                } else if line.hasPrefix("data: ") {
                    var event = current ?? Event(data: "")
                    event.data += (event.data.isEmpty ? "" : "\n") + line.dropFirst(6)
                    current = event
                }
            }
            return events
        }

        var status: String? {
            let text = String(decoding: connection.received, as: UTF8.self)
            return text.split(separator: "\r\n").first.map(String.init)
        }

        /// Waits (bounded) until `condition` holds for the events.
        func wait(for what: String, timeout: Duration = .seconds(10), _ condition: ([Event]) -> Bool) async throws -> [Event] {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                let events = self.events
                if condition(events) { return events }
                try await Task.sleep(for: .milliseconds(20))
            }
            Issue.record("timed out waiting for \(what); events: \(events.map { "\($0.type ?? "") \($0.task ?? "") \($0.rev ?? 0)" })")
            return events
        }
    }

    static let patchHeaders = ["X-SailPoint-Experimental": "true", "Content-Type": "application/json-patch+json"]

    static func progress(_ base: String, _ id: String, _ value: Int) async throws {
        let response = try await HTTP.request(
            "PATCH",
            base + "/task-status/\(id)",
            headers: patchHeaders,
            body: Array(#"[{"op":"replace","path":"/percentComplete","value":\#(value)}]"#.utf8)
        )
        #expect(response.status == 200)
    }

    static func port(_ base: String) -> Int { Int(base.split(separator: ":").last ?? "") ?? 0 }

    @Test("a watch streams creations and updates of the tasks it names, each with an id; the filters apply; a status change reaches status watchers")
    func streamsChanges() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await space.putTask("t2")
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                let port = Self.port(base)
                let all = try await Watcher.open(port, "/v2026/task-status")
                let one = try await Watcher.open(port, "/task-status/v1/t1")
                let running = try await Watcher.open(port, "/v2026/task-status?filters=" + "completionStatus isnull".percentEncodedQuery)
                let quartz = try await Watcher.open(port, "/v2026/task-status?filters=" + #"type eq "QPOC""#.percentEncodedQuery)
                _ = try await all.wait(for: "the stream to open") { _ in all.status != nil }
                #expect(all.status == "HTTP/1.1 200 OK")
                try await Self.progress(base, "t1", 10)
                try await space.enqueue(task: "t2", patch: #"[{"op":"replace","path":"/completionStatus","value":"ERROR"}]"#, requestId: "done")
                _ = try await space.reply(task: "t2", requestId: "done")
                let created = try await HTTP.request(
                    "POST",
                    base + "/task-status",
                    headers: ["X-SailPoint-Experimental": "true", "Content-Type": "application/json"],
                    body: WatchingTests.document("t3", ["type": "QPOC"]).serialized()
                )
                #expect(created.status == 201)
                try await Self.progress(base, "t3", 30)
                let events = try await all.wait(for: "four changes") { $0.count >= 4 }
                #expect(events.map { "\($0.task ?? "")@\($0.rev ?? 0)" } == ["t1@2", "t2@2", "t3@1", "t3@2"])
                #expect(events.allSatisfy { $0.id != nil && $0.type == nil })
                #expect(Set(events.compactMap(\.id)).count == 4, "each event has an id of its own")
                #expect(events[2].json?["patch"]?.arrayValue?.first?["op"] == "add", "the creation carries the task")
                #expect(events[1].json?["summary"]?["completionStatus"] == "ERROR")
                let mine = try await one.wait(for: "t1's change") { !$0.isEmpty }
                #expect(mine.map { $0.task ?? "" } == ["t1"])
                // The running watcher sees t2 leave (its status changed), then t3 come.
                let runningEvents = try await running.wait(for: "the running tasks' changes") { $0.count >= 4 }
                #expect(runningEvents.map { "\($0.task ?? "")@\($0.rev ?? 0)" } == ["t1@2", "t2@2", "t3@1", "t3@2"])
                let qpoc = try await quartz.wait(for: "t3's changes") { $0.count >= 2 }
                #expect(qpoc.map { "\($0.task ?? "")@\($0.rev ?? 0)" } == ["t3@1", "t3@2"])
                for watcher in [all, one, running, quartz] { await watcher.connection.close() }
            }
        }
    }

    @Test("Last-Event-ID resumes with exactly the missed changes; a list's X-Last-Event-Id starts a watch with no gap and no repeat")
    func resumes() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                let port = Self.port(base)
                let first = try await Watcher.open(port, "/v2026/task-status")
                _ = try await first.wait(for: "the stream to open") { _ in first.status != nil }
                try await Self.progress(base, "t1", 1)
                let seen = try await first.wait(for: "one change") { $0.count >= 1 }
                await first.connection.close()
                for value in 2...4 { try await Self.progress(base, "t1", value) }
                let again = try await Watcher.open(port, "/v2026/task-status", headers: ["Last-Event-ID": seen[0].id ?? ""])
                let missed = try await again.wait(for: "the three missed changes") { $0.count >= 3 }
                #expect(missed.map { $0.rev ?? 0 } == [3, 4, 5])
                // A list, then changes, then a watch from the list's position: those changes, once.
                let list = try await HTTP.request("GET", base + "/v2026/task-status", headers: ["X-SailPoint-Experimental": "true"])
                let position = try #require(list.headers["x-last-event-id"])
                for value in 5...6 { try await Self.progress(base, "t1", value) }
                let fromList = try await Watcher.open(port, "/v2026/task-status?lastEventId=" + position.percentEncodedQuery)
                try await Self.progress(base, "t1", 7)
                let after = try await fromList.wait(for: "the changes since the list") { $0.count >= 3 }
                try await Task.sleep(for: .milliseconds(300))
                #expect(fromList.events.map { $0.rev ?? 0 } == [6, 7, 8])
                #expect(after.count == 3)
                // A position the feed no longer holds: told to list again, and the stream ends.
                _ = try await space.run("XTRIM", space.keys.events, "MAXLEN", "1")
                let gone = try await Watcher.open(port, "/v2026/task-status", headers: ["Last-Event-ID": seen[0].id ?? ""])
                let reset = try await gone.wait(for: "the reset") { $0.contains { $0.type == "reset" } }
                #expect(reset.last?.type == "reset" && reset.last?.json?["reason"] != nil)
                #expect(await gone.connection.waitForClose(timeout: .seconds(5)) || gone.events.count == 1)
                let malformed = try await Watcher.open(port, "/v2026/task-status", headers: ["Last-Event-ID": "yesterday"])
                _ = try await malformed.wait(for: "the answer") { _ in malformed.status != nil }
                #expect(malformed.status == "HTTP/1.1 400 Bad Request")
                for watcher in [again, fromList, gone, malformed] { await watcher.connection.close() }
            }
        }
    }

    @Test("a quiet stream gets a heartbeat comment once its heartbeat period passes")
    func heartbeats() async throws {
        try await TestSpace.with { space in
            try await RunningBridge.with(space, configure: { $0.watchHeartbeat = .seconds(1) }) { bridge in
                let base = try #require(await bridge.baseURL())
                let watcher = try await Watcher.open(Self.port(base), "/v2026/task-status")
                let started = ContinuousClock.now
                let beat = await eventually(timeout: .seconds(10)) { () -> Bool? in
                    String(decoding: watcher.connection.received, as: UTF8.self).contains(": keep-alive\n\n") ? true : nil
                }
                #expect(beat == true)
                #expect(ContinuousClock.now - started >= .milliseconds(900), "not before its period")
                #expect(watcher.events.isEmpty)
                await watcher.connection.close()
            }
        }
    }

    @Test("with authentication on, a watch needs a token with the read scope, as GET does")
    func watchNeedsReadScope() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            try await RunningBridge.with(space, configure: { $0.auth = Tokens.configuration }) { bridge in
                let base = try #require(await bridge.baseURL())
                let port = Self.port(base)
                let anonymous = try await Watcher.open(port, "/v2026/task-status")
                let writer = try await Watcher.open(
                    port,
                    "/task-status/v1/t1",
                    headers: ["Authorization": "Bearer " + (try await Tokens.sign(scope: .text("idn:task-management:write")))]
                )
                let reader = try await Watcher.open(
                    port,
                    "/v2026/task-status",
                    headers: ["Authorization": "Bearer " + (try await Tokens.sign(scope: .text("idn:task-management:read")))]
                )
                for watcher in [anonymous, writer, reader] { _ = try await watcher.wait(for: "an answer") { _ in watcher.status != nil } }
                #expect(anonymous.status == "HTTP/1.1 401 Unauthorized")
                #expect(writer.status == "HTTP/1.1 403 Forbidden")
                #expect(reader.status == "HTTP/1.1 200 OK")
                for watcher in [anonymous, writer, reader] { await watcher.connection.close() }
            }
        }
    }

    @Test("a graceful shutdown ends the live streams cleanly, and the bridge stops in time")
    func shutdownEndsStreams() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1")
            var watchers: [Watcher] = []
            let started = ContinuousClock.now
            try await RunningBridge.with(space) { bridge in
                let base = try #require(await bridge.baseURL())
                for _ in 0..<3 { watchers.append(try await Watcher.open(Self.port(base), "/v2026/task-status")) }
                for watcher in watchers { _ = try await watcher.wait(for: "the stream to open") { _ in watcher.status != nil } }
                try await Self.progress(base, "t1", 5)
                for watcher in watchers { _ = try await watcher.wait(for: "the change") { !$0.isEmpty } }
            }
            #expect(ContinuousClock.now - started < .seconds(10), "the open streams did not hold the shutdown up")
            for watcher in watchers {
                let ended = await eventually(timeout: .seconds(5)) { () -> Bool? in
                    watcher.connection.isClosed || watcher.connection.received.suffix(5).elementsEqual("0\r\n\r\n".utf8) ? true : nil
                }
                #expect(ended == true, "each stream ends with its last chunk")
                await watcher.connection.close()
            }
        }
    }

    @Test("a watcher that stops reading is told to list again and closed; the others get every change meanwhile")
    func slowWatcherDropped() async throws {
        try await TestSpace.with { space in
            try await space.putTask("t1", ["description": .string(String(repeating: "x", count: 6000))])
            try await RunningBridge.with(space, configure: { $0.watchBuffer = 16 }) { bridge in
                let base = try #require(await bridge.baseURL())
                let port = Self.port(base)
                let fast = try await Watcher.open(port, "/v2026/task-status")
                let slow = try StalledSocket(
                    port: port,
                    request: "GET /v2026/task-status HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nX-SailPoint-Experimental: true\r\n\r\n"
                )
                _ = try await fast.wait(for: "the stream to open") { _ in fast.status != nil }
                try await Task.sleep(for: .milliseconds(200))
                // Each change carries the whole task (about 6 KB): the stalled socket's buffers
                // fill, then its 16 places.
                let count = 600
                for value in 0..<count { try await Self.progress(base, "t1", value) }
                let events = try await fast.wait(for: "every change", timeout: .seconds(30)) { $0.count >= count }
                #expect(events.count == count && events.allSatisfy { $0.type == nil })
                let text = try slow.drain(timeout: .seconds(10))
                #expect(text.contains("event: reset"), "the stalled watcher is told to list again")
                #expect(text.hasSuffix("0\r\n\r\n"), "and its stream ends (the last chunk)")
                await fast.connection.close()
            }
        }
    }
}

/// A client that sends a request, then reads nothing (a small receive buffer) until asked to.
final class StalledSocket {
    private let fd: Int32

    init(port: Int, request: String) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var size: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect failed: \(errno)") }
        _ = request.utf8CString.withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count - 1, 0) }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Reads until the server closes, the response ends or `timeout` passes; the text read.
    func drain(timeout: Duration) throws -> String {
        var timeval = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeval, socklen_t(MemoryLayout<timeval>.size))
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            if n > 0 { bytes += buffer[0..<n] }
            if bytes.suffix(5).elementsEqual("0\r\n\r\n".utf8) { break }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    deinit { close(fd) }
}
