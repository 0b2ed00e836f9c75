//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Testing

@testable import HTTPAPI

/// The connection's timeouts as a value: which deadline runs in each state, and what passing it does.
@Suite("HTTP edge: the timeouts' state machine")
struct ConnectionTimeoutsTests {
    let limits = ConnectionTimeouts.Limits(header: .seconds(10), body: .seconds(30), idle: .seconds(60))
    let t0 = ContinuousClock.now

    func at(_ seconds: Double) -> ContinuousClock.Instant { t0 + .milliseconds(Int(seconds * 1000)) }

    @Test("a new connection has the header timeout from the accept; its first bytes do not reset it")
    func firstHead() {
        var machine = ConnectionTimeouts(limits: limits, acceptedAt: t0)
        #expect(machine.deadline?.at == at(10))
        #expect(machine.deadline?.reason == .header)
        #expect(machine.expired(now: at(10)) == .close(.header))
        machine.bytesReceived(now: at(9))
        #expect(machine.deadline?.at == at(10))
        #expect(machine.expired(now: at(9.5)) == ConnectionTimeouts.Expiry.none)
        // Part of a head came: the peer gets a 408.
        #expect(machine.expired(now: at(10)) == .requestTimeout(.header))
    }

    @Test("the body timeout counts the whole body from the head, however often bytes arrive")
    func bodyTotal() {
        var machine = ConnectionTimeouts(limits: limits, acceptedAt: t0)
        machine.bytesReceived(now: at(0))
        machine.headReceived(now: at(1))
        #expect(machine.deadline?.at == at(31))
        #expect(machine.deadline?.reason == .body)
        // Body parts are not events of the machine: nothing they do moves the deadline.
        #expect(machine.expired(now: at(31)) == .requestTimeout(.body))
        machine.requestEnded(now: at(2))
        #expect(machine.deadline == nil)
    }

    @Test("no timeout runs while the answer is owed or streams, however long")
    func answering() {
        var machine = ConnectionTimeouts(limits: limits, acceptedAt: t0)
        machine.headReceived(now: at(1))
        machine.requestEnded(now: at(1))
        #expect(machine.deadline == nil)
        let bodyUnread = machine.responseStarted(now: at(2))
        #expect(!bodyUnread)
        #expect(machine.deadline == nil)
        #expect(machine.expired(now: at(10_000)) == ConnectionTimeouts.Expiry.none)
        let bodyUnreadAtEnd = machine.responseEnded(now: at(7200))
        #expect(!bodyUnreadAtEnd)
        #expect(machine.deadline?.at == at(7260))
        #expect(machine.deadline?.reason == .idle)
    }

    @Test("after an answer: the idle timeout until a byte comes, then the header timeout from that byte")
    func keepAlive() {
        var machine = ConnectionTimeouts(limits: limits, acceptedAt: t0)
        machine.headReceived(now: at(0))
        machine.requestEnded(now: at(0))
        _ = machine.responseStarted(now: at(1))
        _ = machine.responseEnded(now: at(1))
        #expect(machine.deadline?.at == at(61))
        #expect(machine.expired(now: at(61)) == .close(.idle))
        machine.bytesReceived(now: at(50))
        #expect(machine.deadline?.at == at(60))
        #expect(machine.deadline?.reason == .header)
        #expect(machine.expired(now: at(60)) == .requestTimeout(.header))
    }

    @Test("an answer written before its body arrived says the body is unread, and the body timeout stops")
    func earlyAnswer() {
        var machine = ConnectionTimeouts(limits: limits, acceptedAt: t0)
        machine.headReceived(now: at(0))
        let bodyUnread = machine.responseStarted(now: at(1))
        #expect(bodyUnread)
        #expect(machine.deadline == nil)
        let bodyUnreadAtEnd = machine.responseEnded(now: at(1))
        #expect(bodyUnreadAtEnd)
    }

    @Test("a pipelined request's clock starts when the answers before it are written")
    func pipelined() {
        var machine = ConnectionTimeouts(limits: limits, acceptedAt: t0)
        machine.headReceived(now: at(0))
        machine.requestEnded(now: at(0))
        machine.bytesReceived(now: at(1))
        #expect(machine.deadline == nil)
        machine.headReceived(now: at(2))
        #expect(machine.owed == 2)
        #expect(machine.deadline == nil)
        _ = machine.responseStarted(now: at(100))
        let bodyUnread = machine.responseEnded(now: at(100))
        #expect(!bodyUnread)
        #expect(machine.deadline?.at == at(130))
        #expect(machine.deadline?.reason == .body)
    }
}
