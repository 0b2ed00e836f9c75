//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What a group of connections (by default, the process's connections to one Redis deployment)
/// learns of lost and silent ones.
///
/// A failover, a restart or `CLIENT KILL` breaks many connections at once, and a network path
/// that goes silent (a NAT entry dropped, a host gone: no FIN, no RST) leaves every connection on
/// it waiting. Each connection would otherwise find out alone, one timeout after another. So:
/// - every loss moves the **epoch**; links replace, at their next use, connections made before it;
/// - a connection that times out also **cuts** the other connections to the same node
///   (`shutdown(2)` on their sockets), so that those waiting for an answer fail at once instead
///   of each waiting out its own timeout in turn.
package final class ConnectionLosses: Sendable {
    private static let groups = Mutex<[RedisTopology: ConnectionLosses]>([:])

    /// The process's group for the deployment `configuration` reaches (its node, its sentinels,
    /// its cluster): every link uses it unless given another. A loss on one deployment says
    /// nothing of another's connections.
    package static func shared(for configuration: RedisConfiguration) -> ConnectionLosses {
        groups.withLock { groups in
            if let group = groups[configuration.topology] { return group }
            let group = ConnectionLosses()
            groups[configuration.topology] = group
            return group
        }
    }

    private let counter = Atomic<UInt64>(0)
    private let open = Mutex<[ObjectIdentifier: SocketHandle]>([:])

    package init() {}

    /// Moves with every loss; a connection made under an older one is replaced at its next use.
    package var epoch: UInt64 { counter.load(ordering: .acquiring) }

    /// How many connections are registered now (for tests).
    package var openCount: Int { open.withLock { $0.count } }

    func register(_ handle: SocketHandle) {
        open.withLock { $0[ObjectIdentifier(handle)] = handle }
    }

    func unregister(_ handle: SocketHandle) {
        _ = open.withLock { $0.removeValue(forKey: ObjectIdentifier(handle)) }
    }

    /// A connection broke (closed, reset, refused mid-use).
    func reportLoss() {
        counter.add(1, ordering: .releasing)
    }

    /// A connection to `node` got no answer within its timeout: the path may be dead, so every
    /// other connection to that node is cut, those waiting for an answer now and the others at
    /// their next read (links replace them before that, the epoch having moved). Returns how many
    /// were waiting.
    @discardableResult
    func reportSilence(of node: RedisConfiguration.Endpoint, except silent: SocketHandle?) -> Int {
        counter.add(1, ordering: .releasing)
        let others = open.withLock { open in open.values.filter { $0.node == node && $0 !== silent } }
        var cut = 0
        for handle in others where handle.cut() { cut += 1 }
        return cut
    }

    /// Cuts every connection of the group: for stopping threads that wait in reads (the Sentinel
    /// watchers).
    func cutAll() {
        let all = open.withLock { Array($0.values) }
        for handle in all { handle.cut() }
    }
}

/// A connection's socket as other threads may see it: whether it waits for an answer, and a way
/// to cut it. The lock keeps a cut from reaching a descriptor number the kernel already gave to
/// another socket once this one is closed.
final class SocketHandle: Sendable {
    let node: RedisConfiguration.Endpoint
    private let state: Mutex<State>

    private struct State {
        var descriptor: Int32
        var waiting = false
        var closed = false
        var cut = false
    }

    init(node: RedisConfiguration.Endpoint, descriptor: Int32) {
        self.node = node
        self.state = Mutex(State(descriptor: descriptor))
    }

    /// Whether the connection was cut from outside.
    var wasCut: Bool { state.withLock { $0.cut } }

    /// Marks the start and end of a blocking read. A read that starts after a cut fails at once.
    func setWaiting(_ waiting: Bool) {
        state.withLock { state in
            state.waiting = waiting
            if waiting, state.cut, !state.closed { _ = shutdown(state.descriptor, Int32(SHUT_RDWR)) }
        }
    }

    /// Cuts the connection: a read under way fails now, the next one at once. Returns whether a
    /// read was under way.
    @discardableResult
    func cut() -> Bool {
        state.withLock { state in
            guard !state.closed, !state.cut else { return false }
            state.cut = true
            guard state.waiting else { return false }
            return shutdown(state.descriptor, Int32(SHUT_RDWR)) == 0
        }
    }

    /// Called before the descriptor is closed: no cut may reach it afterwards.
    func close() {
        state.withLock { $0.closed = true }
    }
}
