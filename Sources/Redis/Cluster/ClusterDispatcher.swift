//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// Turns a pipeline's units and the slot map into one pipeline per node, and the nodes' answers
/// into what is done, what goes elsewhere and what is tried again: no I/O.
///
/// Units for one node keep their order, as do those of one slot when a redirect sends them on:
/// one task's commands never overtake each other.
package struct ClusterDispatcher {
    package let pipeline: RedisPipeline
    package let units: [ClusterRoute.Unit]
    /// One answer per command, filled in as nodes answer.
    package private(set) var answers: [RedisValue?]
    /// The units still to send, in order.
    package private(set) var pending: [Int]
    /// Units to send to the node an `ASK` named, after `ASKING`.
    private var asking: [Int: RedisConfiguration.Endpoint] = [:]
    private var nodeOf: [Int: RedisConfiguration.Endpoint] = [:]
    /// Redirects followed so far, for the bound.
    package private(set) var redirects = 0

    /// One round: the nodes in the order first used, and each node's units.
    package struct Round {
        package var order: [RedisConfiguration.Endpoint] = []
        package var groups: [RedisConfiguration.Endpoint: [Int]] = [:]
    }

    /// What a round's answers ask of the caller.
    package struct Outcome {
        /// A `MOVED` changed the map (read it again).
        package var moved: [(slot: Int, master: RedisConfiguration.Endpoint)] = []
        /// Something said "nothing ran, try again later" (`TRYAGAIN`, `CLUSTERDOWN`, ...).
        package var retry = false
    }

    /// The units of `pipeline` that go to one slot's master (scripts on every master and `WAIT`
    /// are not dispatched here).
    package init(pipeline: RedisPipeline, units: [ClusterRoute.Unit]) {
        self.pipeline = pipeline
        self.units = units
        self.answers = [RedisValue?](repeating: nil, count: pipeline.count)
        self.pending = units.indices.filter { units[$0].route != .everyMaster }
    }

    package var isDone: Bool { pending.isEmpty }

    /// Sets the answers of commands run elsewhere (on every master).
    package mutating func answer(_ command: Int, with value: RedisValue) {
        answers[command] = value
    }

    /// Where each pending unit goes: the node an `ASK` named, its slot's master, or, without a
    /// key, the node of the unit before it.
    package mutating func plan(with map: ClusterSlotMap) throws(RedisError) -> Round {
        var round = Round()
        var previous: RedisConfiguration.Endpoint?
        for u in pending {
            var target = asking[u]
            if target == nil {
                switch units[u].route {
                case .slot(let slot):
                    target = map.master(of: slot)
                    if target == nil { throw RedisError(code: .serverError, message: "CLUSTERDOWN no master serves slot \(slot)") }
                default:
                    target = (u > 0 ? nodeOf[u - 1] : nil) ?? previous ?? map.masters.first
                }
            }
            guard let target else { throw RedisError(code: .serverError, message: "CLUSTERDOWN the cluster has no master") }
            nodeOf[u] = target
            previous = target
            if round.groups[target] == nil { round.order.append(target) }
            round.groups[target, default: []].append(u)
        }
        return round
    }

    /// Each node's pipeline for a round: its units in order, an asked one after `ASKING`.
    package func pipelines(for round: Round) -> [(node: RedisConfiguration.Endpoint, pipeline: RedisPipeline)] {
        round.order.map { node in
            var sub = RedisPipeline()
            for u in round.groups[node]! {
                if asking[u] != nil { sub.begin("ASKING") }
                for c in units[u].commands { sub.append(command: c, of: pipeline) }
            }
            return (node, sub)
        }
    }

    /// Reads a round's answers (one set per node, in the round's order): what stands is kept,
    /// what was redirected or refused for now stays pending.
    package mutating func absorb(_ received: [RedisReplies], of round: Round) -> Outcome {
        var outcome = Outcome()
        var again: [Int] = []
        for (n, node) in round.order.enumerated() {
            var k = 0
            for u in round.groups[node]! {
                if asking[u] != nil { k += 1 }
                asking[u] = nil
                var verdict = Verdict.done
                for c in units[u].commands {
                    answers[c] = received[n][k]
                    k += 1
                    if verdict == .done { verdict = Self.verdict(answers[c]!, fallbackHost: ClusterDispatcher.host(of: node)) }
                }
                switch verdict {
                case .done:
                    continue
                case .redirect(.moved(let slot, let master)):
                    outcome.moved.append((slot, master))
                    redirects += 1
                case .redirect(.ask(_, let target)):
                    asking[u] = target
                    redirects += 1
                case .retry:
                    // Nothing ran (a migration, a failover): the same node again, after a pause;
                    // an asked unit goes back to the slot's owner, which redirects it.
                    outcome.retry = true
                }
                again.append(u)
            }
        }
        pending = again.sorted()
        return outcome
    }

    /// The answers, once every command has one.
    package var replies: RedisReplies {
        RedisReplies(assembling: answers.map { $0! })
    }

    package enum Verdict: Equatable {
        case done
        case redirect(ClusterRedirect)
        case retry
    }

    /// Whether an answer sends its unit elsewhere, asks for it again later, or stands. Inside a
    /// transaction the queued answers say it (`EXEC` then only says `EXECABORT`).
    package static func verdict(_ reply: RedisValue, fallbackHost: String) -> Verdict {
        guard let message = reply.errorMessage else { return .done }
        if let redirect = ClusterRedirect(errorMessage: message, fallbackHost: fallbackHost) { return .redirect(redirect) }
        for prefix in ["TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN"] where message.hasPrefix(prefix) { return .retry }
        return .done
    }

    /// The host a redirect without one means: the node that sent it.
    package static func host(of node: RedisConfiguration.Endpoint) -> String {
        if case .tcp(let host, _) = node { return host }
        return "127.0.0.1"
    }
}
