//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation
import Synchronization

/// The current master of one monitored name, shared by every connection of the process that goes
/// through the same sentinels: asked of the sentinels in turn when unknown, forgotten (a new
/// generation) after a lost connection, a `READONLY` or `UNBLOCKED` answer, or a `+switch-master`
/// event, so that every connection follows a failover at its next call.
///
/// The events come from watchers, a thread per sentinel, that run while someone holds a
/// ``SentinelWatch`` (the bridge's service, for its life); without one the router still follows
/// failovers, through lost connections and role answers.
package final class SentinelRouter: Sendable {
    package let sentinel: SentinelConfiguration
    private let state = Mutex(State())
    private let generationCounter = Atomic<UInt64>(1)
    private let switchCounter = Atomic<UInt64>(0)
    /// The watchers' connections, so that stopping them cuts their waiting reads.
    private let watcherConnections = ConnectionLosses()
    private let watcherThreads = Atomic<Int>(0)

    private struct State {
        var master: RedisConfiguration.Endpoint?
        /// How many ``SentinelWatch``es are held; the watchers run while it is above 0.
        var watches = 0
        /// Moves each time the watchers stop: a watcher of an older round ends.
        var round: UInt64 = 0
        /// Set from a sentinel's `+try-failover` until `+switch-master`, `+failover-end` or an
        /// abort (or a minute passes): a failover is under way.
        var failoverSince: ContinuousClock.Instant?
    }

    private static let routers = Mutex<[SentinelConfiguration: SentinelRouter]>([:])

    /// The process's router for these sentinels and name.
    package static func shared(for sentinel: SentinelConfiguration) -> SentinelRouter {
        routers.withLock { routers in
            if let router = routers[sentinel] { return router }
            let router = SentinelRouter(sentinel: sentinel)
            routers[sentinel] = router
            return router
        }
    }

    private init(sentinel: SentinelConfiguration) {
        self.sentinel = sentinel
    }

    /// Changes whenever the master may have changed; a connection made under an older
    /// generation is dropped at its next call.
    package var generation: UInt64 { generationCounter.load(ordering: .acquiring) }

    /// How many `+switch-master` events for this name the watchers have heard. Unlike
    /// ``generation``, which every lost connection moves, only the sentinels move it: a back-off
    /// may end early when it changes, without turning into a busy loop while the old master is
    /// down and not yet replaced.
    package var switches: UInt64 { switchCounter.load(ordering: .acquiring) }

    /// Whether a failover is under way: a sentinel began one (`+try-failover`) and none has
    /// announced its end yet (or a minute passed). Nothing written meanwhile should become
    /// visible: the node that took it may be about to stop being the master, and a replica that
    /// confirmed it may be about to follow another one.
    package var isFailingOver: Bool {
        guard let since = state.withLock({ $0.failoverSince }) else { return false }
        return ContinuousClock.now - since < .seconds(60)
    }

    /// The master as most of the sentinels that answer name it now (asked when not known), and
    /// the generation it belongs to: during a failover the leader may name the old master for
    /// seconds after the others name the new one.
    package func master(timeout: Duration) throws(RedisError) -> (endpoint: RedisConfiguration.Endpoint, generation: UInt64) {
        let generation = self.generation
        if let known = state.withLock({ $0.master }) { return (known, generation) }
        var failures: [String] = []
        var named: [RedisConfiguration.Endpoint] = []
        var votes: [Int] = []
        for node in sentinel.nodes {
            do {
                let link = try RedisConnection(configuration: configuration(of: node, timeout: timeout))
                let reply = try link.execute([RedisCommand("SENTINEL", "get-master-addr-by-name", sentinel.masterName)])[0]
                guard case .array(let parts) = reply, parts.count == 2, let host = parts[0].string, let port = parts[1].int.map(Int.init) else {
                    failures.append("\(node) does not know \(sentinel.masterName) (\(reply))")
                    continue
                }
                let endpoint = RedisConfiguration.Endpoint.tcp(host: host, port: port)
                if let k = named.firstIndex(of: endpoint) {
                    votes[k] += 1
                } else {
                    named.append(endpoint)
                    votes.append(1)
                }
            } catch {
                failures.append("\(node): \(error.message)")
            }
        }
        var best = -1
        for k in votes.indices where best < 0 || votes[k] > votes[best] { best = k }
        guard best >= 0 else {
            throw RedisError(
                code: .connectionFailed,
                message: "no sentinel named the master \(sentinel.masterName): \(failures.joined(separator: "; "))"
            )
        }
        let chosen = named[best]
        state.withLock { $0.master = chosen }
        return (chosen, generation)
    }

    /// Forgets the master, unless a newer generation already did: the next connection asks the
    /// sentinels again.
    package func invalidate(generation seen: UInt64) {
        state.withLock { state in
            guard generationCounter.load(ordering: .acquiring) == seen else { return }
            state.master = nil
            generationCounter.add(1, ordering: .releasing)
        }
    }

    private func note(_ event: String) {
        if event == "+try-failover" {
            state.withLock { $0.failoverSince = ContinuousClock.now }
            return
        }
        state.withLock { $0.failoverSince = nil }
        if event == "+switch-master" {
            invalidate(generation: generation)
            switchCounter.add(1, ordering: .releasing)
        }
    }

    private func configuration(of node: SentinelConfiguration.Node, timeout: Duration) -> RedisConfiguration {
        RedisConfiguration(
            endpoint: .tcp(host: node.host, port: node.port),
            username: sentinel.username,
            password: sentinel.password,
            connectTimeout: timeout,
            commandTimeout: timeout,
            tls: sentinel.tls
        )
    }

    /// Starts the watchers unless they run: they listen on every sentinel for a failover's start
    /// (only the leader announces it), its end and its aborts, each sentinel on a thread of its
    /// own, until every watch is stopped.
    package func startWatching() -> SentinelWatch {
        let round: UInt64? = state.withLock { state in
            state.watches += 1
            return state.watches == 1 ? state.round : nil
        }
        if let round {
            for node in sentinel.nodes {
                let thread = Thread { [self] in watch(node, round: round) }
                thread.name = "sentinel-watch"
                thread.start()
            }
        }
        return SentinelWatch { [self] in stopWatching() }
    }

    private func stopWatching() {
        let last = state.withLock { state in
            state.watches -= 1
            guard state.watches == 0 else { return false }
            state.round += 1
            return true
        }
        guard last else { return }
        // Each watcher waits in a read: cut it, and the watcher sees its round is over.
        watcherConnections.cutAll()
    }

    private func isCurrent(_ round: UInt64) -> Bool {
        state.withLock { $0.round == round && $0.watches > 0 }
    }

    /// How many watcher threads run now.
    package var runningWatchers: Int { watcherThreads.load(ordering: .acquiring) }

    private func watch(_ node: SentinelConfiguration.Node, round: UInt64) {
        watcherThreads.add(1, ordering: .releasing)
        defer { watcherThreads.subtract(1, ordering: .releasing) }
        // Ends when the round does; each pass waits in a read (cut by stopWatching) or 0.5 s.
        while isCurrent(round) {
            do {
                let connection = try RedisConnection(configuration: configuration(of: node, timeout: .seconds(3)), losses: watcherConnections)
                try connection.send([RedisCommand("PSUBSCRIBE", "+try-failover", "+switch-master", "+failover-end", "-failover-abort-*")])
                for _ in 0..<4 { _ = try connection.readReply() }
                // Keepalive finds a sentinel that vanished; the events themselves may be hours apart.
                connection.setCommandTimeout(.seconds(3600))
                while isCurrent(round) {
                    // `pmessage <pattern> <event> "<text>"`: the master's name is the first word of
                    // +switch-master's text, the second of the others'.
                    guard case .array(let parts) = try connection.readReply(), parts.count == 4, let event = parts[2].string,
                        let payload = parts[3].string
                    else { continue }
                    // (Words compared as Strings: comparing Substrings with a String here sent
                    // the 6.3 optimizer into an endless loop.)
                    let words = payload.split(separator: " ").prefix(2).map(String.init)
                    guard words.contains(sentinel.masterName) else { continue }
                    note(event)
                }
            } catch {
                if isCurrent(round) { Thread.sleep(forTimeInterval: 0.5) }
            }
        }
    }
}

/// Keeps a router's Sentinel watchers running until ``stop()`` (or until it is released).
package final class SentinelWatch: Sendable {
    private let onStop: @Sendable () -> Void
    private let stopped = Atomic<Bool>(false)

    init(onStop: @escaping @Sendable () -> Void) {
        self.onStop = onStop
    }

    deinit {
        stop()
    }

    /// Lets the watchers stop unless another watch holds them; their threads end soon after.
    package func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        onStop()
    }
}
