//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The CPU time a process has used so far (user plus system), read from Linux's
/// `/proc/<pid>/stat`; `nil` where there is no such file.
func processCPUSeconds(_ pid: Int32) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
    else { return nil }
    // After the command name in parentheses: state (field 3), ... utime (14), stime (15).
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    #if canImport(Glibc)
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    #else
    let ticks = 100.0
    #endif
    return (user + system) / ticks
}

/// How often threads gave up the CPU: voluntarily (they blocked, waiting for a socket, a lock, a
/// condition or a timer: a wake-up follows each) and involuntarily (the scheduler preempted them).
public struct ContextSwitches: Sendable, Codable, Equatable {
    public var voluntary: Int
    public var nonvoluntary: Int

    public init(voluntary: Int, nonvoluntary: Int) {
        self.voluntary = voluntary
        self.nonvoluntary = nonvoluntary
    }

    /// The counts after less the counts before.
    /// No switches.
    public static let zero = ContextSwitches(voluntary: 0, nonvoluntary: 0)

    public static func - (after: ContextSwitches, before: ContextSwitches) -> ContextSwitches {
        ContextSwitches(voluntary: after.voluntary - before.voluntary, nonvoluntary: after.nonvoluntary - before.nonvoluntary)
    }

    public static func + (a: ContextSwitches, b: ContextSwitches) -> ContextSwitches {
        ContextSwitches(voluntary: a.voluntary + b.voluntary, nonvoluntary: a.nonvoluntary + b.nonvoluntary)
    }
}

/// One thread's name and context switches, as its `/proc/<pid>/task/<tid>/status` tells them.
public struct ThreadStatus: Sendable, Equatable {
    /// The thread's name (`Name:`; Linux keeps its first 15 bytes).
    public var name: String
    public var switches: ContextSwitches

    /// Reads the `Name:`, `voluntary_ctxt_switches:` and `nonvoluntary_ctxt_switches:` lines of a
    /// status file; `nil` when either count is missing or not a number.
    public init?(parsing text: String) {
        var name = ""
        var voluntary: Int?
        var nonvoluntary: Int?
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon]
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch key {
            case "Name": name = value
            case "voluntary_ctxt_switches": voluntary = Int(value)
            case "nonvoluntary_ctxt_switches": nonvoluntary = Int(value)
            default: continue
            }
        }
        guard let voluntary, let nonvoluntary else { return nil }
        self.name = name
        self.switches = ContextSwitches(voluntary: voluntary, nonvoluntary: nonvoluntary)
    }
}

/// Every live thread of a process by thread id, read from `/proc/<pid>/task/*/status`; `nil`
/// where there is no such directory. A thread that ended meanwhile is left out (its counts are
/// lost: compare two samples of long-lived threads).
public func processThreads(_ pid: Int32) -> [Int32: ThreadStatus]? {
    let directory = "/proc/\(pid)/task"
    guard let tids = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
    var threads: [Int32: ThreadStatus] = [:]
    for tid in tids {
        guard let id = Int32(tid),
            let text = try? String(contentsOfFile: "\(directory)/\(tid)/status", encoding: .utf8),
            let status = ThreadStatus(parsing: text)
        else { continue }
        threads[id] = status
    }
    return threads
}

/// What each thread name's threads did between two samples of ``processThreads(_:)``, most
/// voluntary switches first; threads that started in between count from zero.
public func threadSwitches(before: [Int32: ThreadStatus], after: [Int32: ThreadStatus]) -> [(name: String, switches: ContextSwitches)] {
    var byName: [String: ContextSwitches] = [:]
    for (tid, now) in after {
        byName[now.name, default: .zero] = byName[now.name, default: .zero] + (now.switches - (before[tid]?.switches ?? .zero))
    }
    return byName.map { (name: $0.key, switches: $0.value) }.sorted {
        $0.switches.voluntary != $1.switches.voluntary ? $0.switches.voluntary > $1.switches.voluntary : $0.name < $1.name
    }
}
