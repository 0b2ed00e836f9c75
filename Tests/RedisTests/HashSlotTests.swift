//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Redis
import Testing

@Suite("Cluster key slots")
struct HashSlotTests {
    @Test("CRC16 is XMODEM's: the check value of \"123456789\" is 0x31C3")
    func checkValue() {
        #expect(HashSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(HashSlot.crc16([UInt8]()) == 0)
    }

    /// Every expected slot is what `CLUSTER KEYSLOT` answered on redis-server 7.0.
    @Test(
        "slots match CLUSTER KEYSLOT, hash tags included",
        arguments: [
            ("", 0), ("123456789", 12739), ("foo", 12182), ("bar", 5061),
            ("{user1000}.following", 3443), ("{user1000}.followers", 3443),
            // An empty tag does not count: hashed whole. Only the first { and the first } after it.
            ("foo{}{bar}", 8363), ("foo{{bar}}zap", 4015), ("foo{bar}{zap}", 5061), ("{}", 15257), ("a{b", 13340), ("}{a}", 15495),
            // The contract's keys: every key of a task shares the id's slot...
            ("taskstatus:task:{demo-1}", 8948), ("taskstatus:reply:{demo-1}:r1", 8948), ("taskstatus:task:{t}1}", 15891),
            ("taskstatus:task:{é}", 10180),
            // ...except for an id starting with }, which is why such ids are refused.
            ("taskstatus:task:{}t1}", 10544), ("taskstatus:reply:{}t1}:r1", 15824),
        ]
    )
    func slots(key: String, slot: Int) {
        #expect(HashSlot.of(key) == slot)
    }
}
