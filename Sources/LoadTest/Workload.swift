//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import JSONPatch

/// The requests of a load test: what long-running services send while their tasks run.
///
/// Request `n` is a pure function of the seed and `n`, so that a reply can be checked against
/// what was sent without keeping the request around.
public struct Workload: Sendable {
    /// The share of patches that are invalid on purpose (answered 400).
    public var invalidShare: Double
    /// How many tasks the requests spread over.
    public var taskCount: Int
    /// Prefix of the task ids; each run uses its own, so that runs never share tasks.
    public var taskIdPrefix: String
    public var seed: UInt64
    /// Whether `message` requests append to `messages`; without, they replace a progress update
    /// instead, so that the task documents (and every reply and notification carrying one) keep
    /// their size over a long run.
    public var appendsMessages = true

    public init(taskCount: Int, taskIdPrefix: String, invalidShare: Double = 0.05, seed: UInt64 = 1) {
        self.taskCount = max(1, taskCount)
        self.taskIdPrefix = taskIdPrefix
        self.invalidShare = min(1, max(0, invalidShare))
        self.seed = seed
    }

    /// What a request does, and so what its reply must show.
    public enum Kind: String, Sendable, CaseIterable {
        /// `percentComplete` and `progress` replaced.
        case progress
        /// A message appended, an attribute counter replaced.
        case message
        /// `test` of the id, then `completionStatus`, `completed` and `percentComplete` replaced.
        case completion
        /// A patch the bridge must refuse with 400: an enum value out of range, a missing path,
        /// a failing `test`, a value of the wrong type.
        case invalid
    }

    /// One request: its task, its JSON Patch text, and what its reply must show.
    public struct Request: Sendable {
        public var sequence: Int
        public var taskIndex: Int
        public var kind: Kind
        /// The per-request number the patch writes (a step counter), checked in the reply.
        public var step: Int
        public var patch: [UInt8]
    }

    public func taskId(_ index: Int) -> String { "\(taskIdPrefix)-\(index)" }

    /// Request number `sequence`.
    public func request(_ sequence: Int) -> Request {
        var random = generator(sequence)
        let taskIndex = Int(random.next() % UInt64(taskCount))
        let x = random.nextUnit()
        let kind: Kind
        if x < invalidShare {
            kind = .invalid
        } else {
            // The valid mix, as workload.py has it: mostly progress, then messages, then completions.
            let y = random.nextUnit()
            kind = y < 0.58 ? .progress : (y < 0.79 ? (appendsMessages ? .message : .progress) : .completion)
        }
        let step = sequence
        let patch: String
        switch kind {
        case .progress:
            patch =
                #"[{"op":"replace","path":"/percentComplete","value":\#(step % 100)},{"op":"replace","path":"/progress","value":"Step \#(step)"}]"#
        case .message:
            patch =
                #"[{"op":"add","path":"/messages/-","value":{"type":"INFO","localizedText":{"locale":"en-US","message":"step \#(step) done"},"key":"akey","parameters":[{"name":"value"}]}},{"op":"replace","path":"/attributes/identityCount","value":\#(step)}]"#
        case .completion:
            patch =
                #"[{"op":"test","path":"/id","value":"\#(taskId(taskIndex))"},{"op":"replace","path":"/completionStatus","value":"Success"},{"op":"replace","path":"/completed","value":"2026-11-28T12:00:00.000Z"},{"op":"replace","path":"/percentComplete","value":100}]"#
        case .invalid:
            switch random.next() % 4 {
            case 0: patch = #"[{"op":"replace","path":"/completionStatus","value":"DONE"}]"#
            case 1: patch = #"[{"op":"remove","path":"/nonexistent"}]"#
            case 2: patch = #"[{"op":"test","path":"/id","value":"someone-else"}]"#
            default: patch = #"[{"op":"replace","path":"/messages","value":7}]"#
            }
        }
        return Request(sequence: sequence, taskIndex: taskIndex, kind: kind, step: step, patch: Array(patch.utf8))
    }

    /// The task of request `sequence`, without building the request.
    public func taskIndex(of sequence: Int) -> Int {
        var random = generator(sequence)
        return Int(random.next() % UInt64(taskCount))
    }

    private func generator(_ sequence: Int) -> SplitMix64 {
        SplitMix64(seed: seed &+ UInt64(truncatingIfNeeded: sequence) &* 0x9E37_79B9_7F4A_7C15)
    }

    /// Checks a reply's status and body against the request; `nil` when it is right, else why not.
    /// A 429 is a right answer for any request: the caller was over its rate limit.
    public func check(_ request: Request, status: Int, body: JSONValue) -> String? {
        if status == 429 {
            return body["message"] == " Rate Limit Exceeded " ? nil : "429 without the rate-limit body"
        }
        switch request.kind {
        case .invalid:
            guard status == 400 else { return "expected 400, got \(status)" }
            guard body["detailCode"] == "400.1 Bad Request Content", body["causes"]?.arrayValue?.isEmpty == false else {
                return "400 without the envelope and its causes"
            }
            return nil
        case .progress, .message, .completion:
            guard status == 200 else { return "expected 200, got \(status): \(body.jsonText.prefix(200))" }
            guard body["id"]?.stringValue == taskId(request.taskIndex) else { return "the body is another task's" }
            switch request.kind {
            case .progress:
                guard body["percentComplete"]?.int64Value == Int64(request.step % 100), body["progress"]?.stringValue == "Step \(request.step)"
                else { return "percentComplete/progress are not the ones sent" }
            case .message:
                guard body["attributes"]?["identityCount"]?.int64Value == Int64(request.step),
                    body["messages"]?.arrayValue?.last?["localizedText"]?["message"]?.stringValue == "step \(request.step) done"
                else { return "the appended message or the counter is missing" }
            case .completion:
                guard body["completionStatus"] == "SUCCESS", body["percentComplete"] == 100, body["completed"] != nil, body["completed"] != .null
                else { return "the completion is not in the body" }
            case .invalid:
                break
            }
            return nil
        }
    }

    /// A new task, as a service would create it before reporting on it.
    public func task(_ index: Int) -> JSONValue {
        [
            "id": .string(taskId(index)), "type": "QUARTZ", "uniqueName": .string("Load Test Task \(index)"),
            "description": "A task of the load test", "parentName": "Load Test", "launcher": "loadtest",
            "target": ["id": "c6dc37bf508149b28ce5b7d90ca4bbf9", "type": "APPLICATION", "name": "Active Directory [source]"],
            "created": "2026-11-28T12:00:00.000Z", "modified": "2026-11-28T12:00:00.000Z", "launched": "2026-11-28T12:00:00.000Z",
            "completed": nil, "completionStatus": nil,
            "messages": [], "returns": [["name": "label", "attributeName": "identityCount"]],
            "attributes": ["identityCount": 0], "progress": "Started", "percentComplete": 0,
            "taskDefinitionSummary": [
                "id": "2c91808475b4334b0175e1dff64b63c5", "uniqueName": "Cloud Account Aggregation",
                "description": "Aggregates from the specified application.", "parentName": "Cloud Account Aggregation",
                "executor": "sailpoint.task.ServiceTaskExecutor", "arguments": [:],
            ],
        ]
    }
}

/// A small, fast, seedable generator (SplitMix64): the same seed gives the same requests.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in [0, 1).
    mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
