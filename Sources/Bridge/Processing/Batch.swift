//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import JSONPatch
public import TaskStatus

/// What became of one request of a batch.
public enum RequestOutcome: Sendable, Equatable {
    /// Answered: the reply is stored (when the request stores one) and sent.
    case answered(TaskResponse)
    /// Not answered, nothing written for it: Redis refused for now (memory full, a failover, a
    /// lost connection...) or the task stayed contended. The stream leaves the entry pending and
    /// tries it again; HTTP answers 503 with `Retry-After`.
    case deferred(Deferral)
}

/// A batch as the processor works through it: which requests repeat an earlier one, which are
/// decided without their task, which task each of the others belongs to, and the answers so far.
/// No I/O: the processor does the round trips, this keeps the books.
struct Batch {
    private(set) var requests: [PatchRequest]
    /// For each request, the earlier request of the batch it repeats (same task, same request id,
    /// a reply to store), or -1. A repeat is never decided: it gets its first copy's answer.
    let primaryOf: [Int]
    /// Every request's index by task, tasks in order of first appearance.
    private let byTask: [[Int]]
    /// Requests answered without their task (refused before it: a bad entry, a bad token, over
    /// the rate limit; or an id that names no task), not yet stored.
    var early: [Int] = []
    /// The other requests, by task, in batch order within each task.
    var groups: [TaskGroup] = []
    /// Each request's answer; ``Answer/unanswered`` until it has one.
    private(set) var answers: [Answer]
    private(set) var deferrals: [Int: Deferral] = [:]
    /// When its commit went out, in Unix milliseconds, for a batch whose commit's answer was read
    /// later (the script answered the requests then): the stream latency is measured to it.
    var sentAt: Int64?

    /// One task's open requests and what the batch knows of the task.
    struct TaskGroup {
        let taskId: String
        var indices: [Int]
        var state: TaskState = .unknown
    }

    /// What a task looks like to this batch.
    enum TaskState {
        case unknown
        case record(TaskRecord)
        case absent
        case corrupt(rev: String, reason: String)
    }

    /// The answer to one request, as it is stored, published and announced.
    struct Answer {
        var response: TaskResponse
        /// The reply as stored and published.
        var reply: CommitScript.Payload
        /// A success's notification; `nil` for any other answer.
        var notification: CommitScript.Payload?
        /// Whether it still has to be published (the commit script publishes fresh ones).
        var needsPublishing = false
        /// Whether the commit script announced it whole (its change-feed entry, reply and
        /// acknowledgement): the announcer only counts it.
        var announced = false
        /// The task's place in the list index after this answer, for the announcement to set on a
        /// cluster (one Redis sets it in the commit script); `nil`: nothing to set.
        var index: TaskIndexEntry?

        /// What a request holds until it is answered (status 0 never leaves the processor).
        static let unanswered = Answer(status: 0)

        private init(status: Int) {
            response = TaskResponse(status: status, body: [])
            reply = .whole([])
        }

        var isAnswered: Bool { response.status != 0 }

        /// An answer decided and committed: its parts moved in.
        init(response: TaskResponse, reply: CommitScript.Payload, notification: CommitScript.Payload?) {
            self.response = response
            self.reply = reply
            self.notification = notification
        }

        /// A fresh answer: the reply built around the response's body.
        init(_ response: TaskResponse, for request: PatchRequest) {
            self.response = response
            self.reply = .framed(head: response.replyHead(requestId: request.requestId, taskId: request.taskId), body: response.body)
        }

        /// A reply found stored, with the task as it is now (`nil`: gone, or not read). An error
        /// is published again as it was stored. A success was stored without its task: it is
        /// answered with the task as it is now (its `ETag` the current revision, `rev` still the
        /// one the request made; 404 when the task is gone), and its notification is made again
        /// (the first may not have gone out): with the summary (and the task, when small) while
        /// the task is still at that revision, else with the patch alone (a later revision's
        /// announcement carries the task's state). A stored reply that does not read back is
        /// answered 500.
        init(stored bytes: [UInt8], for request: PatchRequest, current: TaskRecord?, wholeTaskLimit: Int) {
            self.init(stored: bytes, reading: StoredReply(json: bytes), for: request, current: current, wholeTaskLimit: wholeTaskLimit)
        }

        /// The same, with the stored reply read already (`nil`: it does not read back).
        init(stored bytes: [UInt8], reading stored: StoredReply?, for request: PatchRequest, current: TaskRecord?, wholeTaskLimit: Int) {
            reply = .whole(bytes)
            guard let stored else {
                self.response = .error(500, "the stored reply cannot be read")
                return
            }
            guard TaskResponse.isSuccess(stored.status), let rev = stored.rev else {
                self.response = stored.response ?? .error(500, "the stored reply cannot be read")
                return
            }
            if let body = stored.body {
                // Stored whole by a version before replies kept no task: published as stored.
                self.response = TaskResponse(status: stored.status, headers: stored.headers, body: body, rev: rev)
            } else {
                if let current {
                    self.response = TaskResponse(status: stored.status, headers: [("ETag", "\"\(current.rev)\"")], body: current.json, rev: rev)
                } else {
                    self.response = .error(
                        404,
                        "there is no task with id \(request.taskId) any more; this request was applied before, at revision \(rev)",
                        rev: rev
                    )
                }
                reply = .framed(head: response.replyHead(requestId: request.requestId, taskId: request.taskId), body: response.body)
            }
            let atRevision = current.flatMap { $0.rev == rev ? $0 : nil }
            // Set again (it is idempotent): the first announcement may not have run.
            index = atRevision.map(TaskIndexEntry.init)
            let summary = stored.body.map(Self.summary(ofTask:)) ?? atRevision?.summaryJSON
            let whole = atRevision.flatMap { $0.json.count <= wholeTaskLimit ? $0.json : nil }
            notification = .whole(
                UpdateNotification.json(
                    taskId: request.taskId,
                    rev: rev,
                    requestId: request.requestId,
                    patch: request.patchJSON,
                    summary: summary,
                    task: whole
                )
            )
            needsPublishing = true
        }

        /// The small properties of a TaskStatus given whole (a reply stored by an older version).
        private static func summary(ofTask body: [UInt8]) -> [UInt8] {
            guard case .object(let task)? = try? JSONParser.accepted.parse(body) else { return Array("{}".utf8) }
            var summary = JSONObject()
            for member in task where TaskProperty(name: member.key)?.isInSummary == true { summary[member.key] = member.value }
            return JSONValue.object(summary).serialized()
        }
    }

    init(_ requests: [PatchRequest]) {
        self.requests = requests
        self.answers = [Answer](repeating: .unanswered, count: requests.count)
        var listOf: [String: Int] = [:]
        var byTask: [[Int]] = []
        for i in requests.indices {
            if let k = listOf[requests[i].taskId] {
                byTask[k].append(i)
            } else {
                listOf[requests[i].taskId] = byTask.count
                byTask.append([i])
            }
        }
        self.byTask = byTask
        self.primaryOf = Self.primaries(of: requests, byTask: byTask)
    }

    /// Finds the repeats: a request with the same task and request id as an earlier one whose
    /// reply is stored. Only tasks with several requests in the batch can hold one; their few
    /// requests are compared pairwise (a set past 16), with no hashing for the others.
    static func primaries(of requests: [PatchRequest], byTask: [[Int]]) -> [Int] {
        var primaryOf = [Int](repeating: -1, count: requests.count)
        for list in byTask where list.count > 1 {
            if list.count <= 16 {
                for (a, i) in list.enumerated() where requests[i].storesReply {
                    for j in list[..<a] where primaryOf[j] < 0 && requests[j].storesReply && requests[j].requestId == requests[i].requestId {
                        primaryOf[i] = j
                        break
                    }
                }
            } else {
                var first: [String: Int] = [:]
                for i in list where requests[i].storesReply {
                    if let j = first[requests[i].requestId] { primaryOf[i] = j } else { first[requests[i].requestId] = i }
                }
            }
        }
        return primaryOf
    }

    /// The requests that are decided (not repeats), for rate limits and grouping.
    var primaries: some Sequence<Int> { requests.indices.lazy.filter { primaryOf[$0] < 0 } }

    /// Refuses a request before its task is read (over its rate limit).
    mutating func reject(_ i: Int, with response: TaskResponse) {
        requests[i].rejection = response
    }

    /// Sorts the primaries into those answered without their task and the task groups.
    mutating func formGroups() {
        for list in byTask {
            // Nearly always every request of the task is a primary to decide: the list is the group.
            if list.allSatisfy({ primaryOf[$0] < 0 && requests[$0].rejection == nil }), PatchRequest.isValidTaskId(requests[list[0]].taskId) {
                groups.append(TaskGroup(taskId: requests[list[0]].taskId, indices: list))
                continue
            }
            var indices: [Int] = []
            for i in list where primaryOf[i] < 0 {
                if requests[i].rejection != nil || !PatchRequest.isValidTaskId(requests[i].taskId) {
                    early.append(i)
                } else {
                    indices.append(i)
                }
            }
            if !indices.isEmpty { groups.append(TaskGroup(taskId: requests[indices[0]].taskId, indices: indices)) }
        }
        if early.count > 1 { early.sort() }
    }

    /// Whether some request still needs a decision or a commit.
    var hasOpenWork: Bool { !groups.isEmpty || !early.isEmpty }

    mutating func answer(_ i: Int, _ answer: Answer) {
        answers[i] = answer
    }

    /// Moves `answer` into place (it is left unanswered): no copy of its buffers.
    mutating func answer(_ i: Int, moving answer: inout Answer) {
        swap(&answers[i], &answer)
    }

    /// Notes that request `i`'s answer went out already (its entry was acknowledged, so its reply
    /// was published): the announcer only counts it.
    mutating func markAnnounced(_ i: Int) {
        answers[i].announced = true
    }

    /// Notes the task's place in the list index after request `i`, for the announcement.
    mutating func setIndex(_ index: TaskIndexEntry, of i: Int) {
        answers[i].index = index
    }

    /// Leaves a request unanswered: Redis refused for now.
    mutating func `defer`(_ i: Int, _ deferral: Deferral) {
        deferrals[i] = deferral
    }

    /// Defers every request of the batch, answered or not: nothing of it may become visible
    /// (its commits are not confirmed by enough replicas).
    mutating func deferEverything(_ deferral: Deferral) {
        for i in requests.indices where primaryOf[i] < 0 { deferrals[i] = deferral }
        groups = []
        early = []
    }

    /// Defers what is still open (after the last round).
    mutating func deferOpenWork(_ deferral: Deferral) {
        for group in groups { for i in group.indices { deferrals[i] = deferral } }
        for i in early { deferrals[i] = deferral }
        groups = []
        early = []
    }

    /// Gives each repeat its first copy's answer (reply only: the first copy announces the update)
    /// or its deferral.
    mutating func answerRepeats() {
        for i in requests.indices where primaryOf[i] >= 0 {
            let primary = primaryOf[i]
            if let deferral = deferrals[primary] {
                deferrals[i] = deferral
            } else if answers[primary].isAnswered {
                var answer = answers[primary]
                answer.notification = nil
                answer.needsPublishing = false
                answer.announced = false
                answers[i] = answer
            }
        }
    }

    /// Every request's outcome, in order. A request left neither answered nor deferred would be a
    /// bug; it is deferred (tried again), never answered with something made up.
    var outcomes: [RequestOutcome] {
        requests.indices.map { i in
            if let deferral = deferrals[i] { return .deferred(deferral) }
            if answers[i].isAnswered { return .answered(answers[i].response) }
            return .deferred(Deferral(.unanswered, "the request was left unanswered"))
        }
    }
}
