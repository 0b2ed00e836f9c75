//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import TaskStatus
import Testing

@Suite("RFC 3339 times as the list index scores them")
struct RFC3339Tests {
    @Test(
        "a date-time reads as Unix milliseconds, its offset applied, digits past the millisecond dropped",
        arguments: [
            ("1970-01-01T00:00:00Z", 0), ("2020-07-11T21:23:15.000Z", 1_594_502_595_000), ("2020-07-11T23:23:15.5+02:00", 1_594_502_595_500),
            ("2020-07-11T21:23:15.123456z", 1_594_502_595_123), ("1969-12-31T23:59:59.999Z", -1), ("2024-02-29T12:00:00-01:30", 1_709_213_400_000),
        ] as [(String, Int64)]
    )
    func milliseconds(text: String, expected: Int64) {
        #expect(RFC3339.unixMilliseconds(of: text) == expected)
    }

    @Test("format writes UTC with milliseconds, zero-padded, the shape every stamp of the bridge has")
    func formatting() {
        #expect(RFC3339.format(seconds: 0, milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(RFC3339.format(seconds: 1_594_502_595, milliseconds: 7) == "2020-07-11T21:23:15.007Z")
        #expect(RFC3339.format(seconds: 951_868_799, milliseconds: 999) == "2000-02-29T23:59:59.999Z")
        #expect(RFC3339.format(seconds: -1, milliseconds: 500) == "1969-12-31T23:59:59.500Z")
        #expect(RFC3339.isValid(RFC3339.now()) && RFC3339.now().utf8.count == 24)
    }

    @Test("what format writes reads back; what is not a date-time reads as nil")
    func roundTrip() {
        for seconds: Int64 in [0, 86_399, 951_782_400, 1_594_502_595, 4_102_444_800] {
            #expect(RFC3339.unixMilliseconds(of: RFC3339.format(seconds: seconds, milliseconds: 42)) == seconds * 1000 + 42)
        }
        for text in ["", "2020-07-11", "2020-02-30T00:00:00Z", "2020-07-11T21:23:15", "yesterday"] {
            #expect(RFC3339.unixMilliseconds(of: text) == nil)
        }
    }
}
