//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

public import Foundation

/// What a load test found: the figures and how they were obtained.
public struct LoadReport: Sendable, Codable {
    /// CPU time a watched process (the bridge) used during the run.
    public struct ProcessCPU: Sendable, Codable {
        public var pid: Int32
        public var seconds: Double
        public var microsecondsPerRequest: Double
        /// Context switches of the process's threads over the run (summed over
        /// `/proc/<pid>/task/*/status`); `nil` where /proc does not tell.
        public var contextSwitches: ContextSwitches?
        /// Voluntary context switches per answered request: how often a thread blocked and was
        /// woken again (a socket, a lock, a condition, a timer).
        public var wakeUpsPerRequest: Double?
        /// Involuntary context switches (preemptions) per answered request.
        public var preemptionsPerRequest: Double?
        /// The same counts by thread name, most wake-ups first.
        public var threads: [ThreadSwitches]?
    }

    /// What the threads of one name did over the run.
    public struct ThreadSwitches: Sendable, Codable {
        public var name: String
        public var voluntary: Int
        public var nonvoluntary: Int
    }

    public var path: String
    public var mode: String
    public var rate: Double?
    public var tasks: Int
    public var invalidShare: Double
    public var concurrency: Int
    public var summary: LoadSummary
    /// Replies found only where the bridge stores them: their publication was missed.
    public var storedOnly: Int
    public var bridgeCPU: ProcessCPU?

    /// The report as JSON, for machines.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// The report as a few lines of text, for people.
    public var text: String {
        let s = summary
        let l = s.latencyMilliseconds
        var lines = [
            "load test on the \(path) path, \(mode), \(tasks) tasks, \(Int(invalidShare * 100))% invalid patches",
            "sent        \(s.sent)",
            "answered    \(s.answered)   missing \(s.missing)   mismatches \(s.mismatches)   duplicates \(s.duplicates)   transport errors \(s.transportErrors)"
                + (storedOnly > 0 ? "   (\(storedOnly) found only stored: their Pub/Sub message was missed)" : ""),
            String(format: "throughput  %.0f answers/s over %.2f s", s.throughput, s.seconds),
            String(
                format: "latency ms  p50 %.3f   p90 %.3f   p99 %.3f   p99.9 %.3f   max %.3f   (mean %.3f)",
                l.p50,
                l.p90,
                l.p99,
                l.p999,
                l.max,
                l.mean
            ),
            "statuses    " + s.statuses.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "   "),
        ]
        if let cpu = bridgeCPU {
            lines.append(String(format: "bridge CPU  %.2f s, %.1f µs per request (pid %d)", cpu.seconds, cpu.microsecondsPerRequest, cpu.pid))
            if let switches = cpu.contextSwitches, let wakeUps = cpu.wakeUpsPerRequest, let preemptions = cpu.preemptionsPerRequest {
                lines.append(
                    String(
                        format: "bridge wake-ups  %.2f per request (%d voluntary context switches), %.2f preemptions per request (%d)",
                        wakeUps,
                        switches.voluntary,
                        preemptions,
                        switches.nonvoluntary
                    )
                )
                let answered = Double(max(1, s.answered))
                let busy = (cpu.threads ?? []).filter { Double($0.voluntary) / answered >= 0.01 }
                if !busy.isEmpty {
                    lines.append(
                        "  by thread     "
                            + busy.map { "\($0.name) " + String(format: "%.2f", Double($0.voluntary) / answered) }.joined(separator: "   ")
                    )
                }
            }
        }
        if !s.examples.isEmpty {
            lines.append("problems (first \(s.examples.count)):")
            lines += s.examples.map { "  " + $0 }
        }
        lines.append(s.isClean ? "every request got exactly one right answer" : "NOT CLEAN: see the counts above")
        return lines.joined(separator: "\n")
    }
}
