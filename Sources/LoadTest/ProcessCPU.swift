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
